//! The dispatcher: the one owner of a run's state. It `select!`s over executor events, retry
//! timers, control requests (a face's cancel, `swarm cancel` through the store), store notes
//! and a heartbeat tick; feeds the pure scheduler; carries out its actions; and is the only
//! writer to the store. Nothing slow runs in its loop: executors do the attempts' work, hooks
//! and the sweeper have their own threads, the store writer its own.

mod attempts;
mod finish;
pub(crate) mod launch;
pub mod mirror;
mod models;
mod phases;
pub mod report_files;
mod setup;
pub(crate) mod sweeper;
mod team;
#[cfg(test)]
mod tests;
pub(crate) mod writer;

use crate::dispatcher::mirror::Mirror;
use crate::dispatcher::sweeper::Sweeper;
use crate::dispatcher::sweeper::Swept;
use crate::dispatcher::writer::{Note, Write, Writer};
use crate::engine::handle::{Canceller, Control, EventBus, RunHandle};
use crate::executor::ExecutorContext;
use crate::gateway::{Gateway, GatewayEvent, Ledger};
use crate::hooks::{HookKind, Hooks};
use crate::job::{AttemptEvent, AttemptJob, Events, StopRequest};
use crate::os::paths::RunDir;
use chrono::Utc;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_core::config::Config;
use swarm_core::event::{Event, EventKind};
use swarm_core::report::{RunRecord, RunReport, TaskReport};
use swarm_core::scheduler::{Action, Failure, Input, Restored, Scheduler};
use swarm_core::state::{Reason, RunState, TaskState};
use swarm_store::Store;
use tokio::sync::{mpsc, watch};

pub(crate) struct RunSetup {
    pub store: Arc<dyn Store>,
    pub record: RunRecord,
    /// Current task documents in plan order.
    pub tasks: Vec<TaskReport>,
    /// How tasks stood when resuming; `None` for a fresh run.
    pub restored: Option<Vec<Restored>>,
    pub retry_failed: bool,
    pub executors: Arc<dyn Executors>,
    pub config: Config,
    pub run_dir: RunDir,
    /// Value given to agents as `SWARM_STORE` (never carries a password).
    pub store_env: String,
    /// The lease token taken on the run before calling `run`.
    pub lease: String,
    /// The project's root (git root or current directory): hooks run and the mirror lives there.
    pub project_root: PathBuf,
    /// The model gateway hierarchy tasks talk to, when the config declares a hierarchy.
    pub gateway: Option<Arc<Gateway>>,
    /// What the run may spend through the gateway, and what it spent.
    pub ledger: Arc<Ledger>,
}

/// One running attempt of a task, as the dispatcher holds it.
struct LiveAttempt {
    n: u32,
    stop: watch::Sender<StopRequest>,
    route: LiveRoute,
    /// The attempt's gateway token, revoked when it ends.
    token: Option<String>,
    /// Why no model could serve the attempt's requests, once the gateway said so.
    exhausted: Option<String>,
}

/// Where a running attempt's model comes from.
#[derive(Debug, Clone, PartialEq)]
enum LiveRoute {
    /// The task's own model (or the agent's default).
    Task,
    /// The gateway, per request: its usage is the gateway's metering.
    Gateway,
    /// One model of the hierarchy, picked by the executor (once it said which).
    Hierarchy { picked: Option<String> },
}

impl LiveAttempt {
    /// Stands in for an attempt no longer (or never) held: nothing to revoke or fall back from.
    fn ended(n: u32) -> LiveAttempt {
        LiveAttempt {
            n,
            stop: watch::channel(StopRequest::None).0,
            route: LiveRoute::Task,
            token: None,
            exhausted: None,
        }
    }
}

/// Where attempts run: this process's executor, or (in the dispatcher's unit tests) a stand-in
/// that records the jobs it is given.
pub(crate) trait Executors: Send + Sync {
    /// Runs `job` to its end in the background; its events go to `events`.
    fn spawn(&self, job: AttemptJob, stop: watch::Receiver<StopRequest>, events: Events);
    /// Whether `agent` can talk to the model gateway.
    fn speaks_gateway(&self, agent: &str) -> bool;
}

impl Executors for Arc<ExecutorContext> {
    fn spawn(&self, job: AttemptJob, stop: watch::Receiver<StopRequest>, events: Events) {
        tokio::spawn(crate::executor::run(job, self.clone(), stop, events));
    }

    fn speaks_gateway(&self, agent: &str) -> bool {
        self.registry.get(agent).is_ok_and(|a| a.speaks_gateway())
    }
}

/// What the run's jobs, hooks and records are built from; fixed for the run.
struct Context {
    config: Config,
    run_dir: RunDir,
    /// The store address agents get as `SWARM_STORE` (never with a password).
    store_env: String,
    project_root: PathBuf,
    host: String,
    started: Instant,
    /// A resumed run (its `run_started` event says so).
    resumed: bool,
    executors: Arc<dyn Executors>,
}

/// The run's side of the model hierarchy.
struct Models {
    gateway: Option<Arc<Gateway>>,
    ledger: Arc<Ledger>,
    /// The model hierarchy of the config (empty without one).
    catalog: swarm_core::router::Catalog,
    /// Tasks whose next attempt moves to the next model, and why (its `fallback_reason`).
    fell_back: HashMap<u32, String>,
}

/// Where what happens comes back to the loop.
struct Senders {
    exec: Events,
    ctl: mpsc::UnboundedSender<Control>,
    gw: mpsc::UnboundedSender<GatewayEvent>,
}

/// The loop's inputs besides a face's control requests.
struct Inbox {
    exec: mpsc::UnboundedReceiver<(u32, u32, AttemptEvent)>,
    gw: mpsc::UnboundedReceiver<GatewayEvent>,
    swept: mpsc::UnboundedReceiver<Swept>,
    notes: mpsc::UnboundedReceiver<Note>,
}

/// How the run is ending, once it is.
#[derive(Default)]
struct Ending {
    finished: Option<RunState>,
    /// Who asked to cancel, once someone did.
    cancelled_by: Option<String>,
    /// Why the store was lost to this run, once it was.
    store_lost: Option<String>,
}

struct Dispatcher {
    record: RunRecord,
    /// The tasks' documents, in plan order.
    docs: Vec<TaskReport>,
    running: HashMap<u32, LiveAttempt>,
    ctx: Context,
    models: Models,
    tx: Senders,
    ending: Ending,
    /// The only writer of run state to the store.
    writer: Writer,
    /// Ends what finished attempts left running outside their process groups.
    sweeper: Sweeper,
    bus: EventBus,
    hooks: Hooks,
    mirror: Mirror,
    /// When each task waiting for its first attempt became ready (its queued phase).
    ready_at: HashMap<u32, chrono::DateTime<Utc>>,
}

/// Starts the run's dispatcher on the current tokio runtime.
pub(crate) fn spawn(setup: RunSetup) -> RunHandle {
    let bus = EventBus::default();
    let first = bus.subscribe();
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let run_id = setup.record.run_id.clone();
    let join = tokio::spawn(run(setup, bus.clone(), ctl_tx.clone(), ctl_rx));
    RunHandle::new(run_id, Canceller::new(ctl_tx), bus, first, join)
}

/// Runs (or resumes) a run to its end and returns its final report.
async fn run(
    setup: RunSetup,
    bus: EventBus,
    ctl_tx: mpsc::UnboundedSender<Control>,
    mut ctl_rx: mpsc::UnboundedReceiver<Control>,
) -> RunReport {
    let store = setup.store.clone();
    let setup_store = setup.store.clone();
    let (mut d, mut sched, mut inbox) = Dispatcher::new(setup, bus, ctl_tx.clone());
    // Whatever an agent detaches re-parents to swarm, where its attempt's marker finds it.
    crate::os::reaper::become_subreaper();
    let poller_stop = Arc::new(AtomicBool::new(false));
    spawn_cancel_poller(store, d.record.run_id.clone(), ctl_tx, poller_stop.clone());
    d.begin(&mut sched);
    let mut heartbeat = tokio::time::interval(Duration::from_secs(2));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while d.ending.finished.is_none() {
        let input = tokio::select! {
            Some((task, attempt, ev)) = inbox.exec.recv() => d.on_attempt(task, attempt, ev),
            Some(ctl) = ctl_rx.recv() => d.on_control(ctl),
            Some(swept) = inbox.swept.recv() => { d.on_swept(swept); None }
            Some(ev) = inbox.gw.recv() => { d.on_gateway(ev); None }
            Some(note) = inbox.notes.recv() => d.on_note(note),
            _ = heartbeat.tick() => { d.heartbeat(); None }
        };
        d.feed(&mut sched, input);
    }
    poller_stop.store(true, Ordering::Relaxed);
    // Finishing waits on the store, the sweeper and hooks: off the runtime's threads.
    let store = setup_store;
    tokio::task::spawn_blocking(move || d.finish(&mut inbox.notes, &mut inbox.swept, &*store))
        .await
        .expect("finishing a run does not panic")
}

impl Dispatcher {
    /// Feeds the scheduler `input`, if any, and carries out what it answers.
    fn feed(&mut self, sched: &mut Scheduler, input: Option<Input>) {
        if let Some(input) = input {
            let mut actions = Vec::new();
            sched.handle(input, &mut actions);
            self.carry_out(sched, actions);
        }
    }

    fn heartbeat(&mut self) {
        if let Some(o) = self.record.owner.as_mut() {
            o.heartbeat_at = Utc::now();
        }
        self.writer.send(Write::Run(self.record.clone()));
    }

    fn on_note(&mut self, note: Note) -> Option<Input> {
        match note {
            Note::Warning(message) => {
                self.emit(EventKind::Warning { message });
                None
            }
            Note::LeaseLost(message) => self.lease_lost(message),
        }
    }

    fn emit(&mut self, kind: EventKind) {
        let ev = Event {
            run_id: self.record.run_id.clone(),
            timestamp: Utc::now(),
            elapsed_ms: self.ctx.started.elapsed().as_millis() as u64,
            kind,
        };
        if ev.kind.is_persistent() {
            self.writer.send(Write::Event(ev.clone()));
        }
        self.bus.publish(ev);
    }

    fn save_task(&mut self, task: u32) {
        self.writer.send(Write::Task(self.docs[task as usize].clone()));
    }

    fn id(&self, task: u32) -> &str {
        &self.record.spec.tasks[task as usize].id
    }

    /// The route of attempt `attempt` of `task`, while it runs.
    fn live_route(&mut self, task: u32, attempt: u32) -> Option<&mut LiveRoute> {
        self.running.get_mut(&task).filter(|r| r.n == attempt).map(|r| &mut r.route)
    }

    fn carry_out(&mut self, sched: &mut Scheduler, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            let follow_up = match action {
                Action::SetState { task, state, reason, detail } => {
                    self.set_state(task, state, reason, detail);
                    None
                }
                Action::Start { task, attempt } => self.start(task, attempt),
                Action::RetryAfter { task, next_attempt, delay } => {
                    self.emit(EventKind::RetryScheduled {
                        task: self.id(task).to_string(),
                        next_attempt,
                        delay_ms: delay.as_millis() as u64,
                    });
                    let tx = self.tx.ctl.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = tx.send(Control::RetryDue(task));
                    });
                    None
                }
                Action::Stop { task } => {
                    if let Some(r) = self.running.get(&task) {
                        let _ = r.stop.send(StopRequest::Terminate);
                    }
                    None
                }
                Action::Finished(state) => {
                    self.ending.finished = Some(state);
                    None
                }
            };
            if let Some(input) = follow_up {
                let mut more = Vec::new();
                sched.handle(input, &mut more);
                queue.extend(more);
            }
        }
    }

    fn set_state(&mut self, task: u32, state: TaskState, reason: Option<Reason>, detail: Option<String>) {
        if state == TaskState::Ready {
            self.note_ready(task);
        }
        let doc = &mut self.docs[task as usize];
        doc.state = state;
        if state.is_terminal() {
            doc.reason = reason;
            doc.detail = detail.clone();
        } else if state == TaskState::Pending && reason.is_some() {
            // A failed attempt that will be retried: the task is not failed; the scheduler
            // says why it waits.
            doc.reason = None;
            doc.detail = detail.clone();
        } else {
            doc.reason = None;
            if state != TaskState::Running {
                doc.detail = None;
            }
        }
        let id = doc.id.clone();
        if state != TaskState::Running {
            // A running task is saved by `start` together with its new attempt record, so no
            // reader ever sees `running` without the attempt.
            self.save_task(task);
        }
        let (reason, detail) = if state.is_terminal() {
            (reason, detail)
        } else {
            (None, self.docs[task as usize].detail.clone())
        };
        self.emit(EventKind::TaskState { task: id, state, reason, detail });
        self.mirror_task(task);
        if state.is_terminal() {
            let payload = serde_json::json!({
                "run_id": self.record.run_id, "plan": self.record.plan, "namespace": self.record.namespace,
                "task": self.docs[task as usize],
            });
            if state == TaskState::Failed {
                self.hooks.fire(HookKind::Failure, payload.clone());
            }
            self.hooks.fire(HookKind::TaskEnd, payload);
        }
    }

    /// Mirrors a task's status for tools without store access: tasks of reporting agents, and
    /// any task that wrote a completion report (plain `exec` tasks stay out of it).
    fn mirror_task(&mut self, task: u32) {
        let doc = &self.docs[task as usize];
        let reporting =
            self.ctx.config.require_report(&doc.agent) || doc.attempts.iter().any(|a| a.completion.is_some());
        if !reporting {
            return;
        }
        if let Err(e) = self.mirror.task_status(&self.record.run_id, doc) {
            self.emit(EventKind::Warning { message: e.to_string() });
        }
    }

    fn on_control(&mut self, ctl: Control) -> Option<Input> {
        match ctl {
            Control::RetryDue(task) => Some(Input::RetryDue { task }),
            Control::Cancel(source) => {
                if self.ending.cancelled_by.is_some() {
                    return None;
                }
                self.ending.cancelled_by = Some(source.clone());
                self.emit(EventKind::CancelRequested { source });
                Some(Input::Cancel)
            }
            Control::Kill => {
                for r in self.running.values() {
                    let _ = r.stop.send(StopRequest::Kill);
                }
                if self.ending.cancelled_by.is_none() {
                    self.ending.cancelled_by = Some("kill".into());
                    return Some(Input::Cancel);
                }
                None
            }
        }
    }

    /// The store is lost to this run (emptied, replaced, or taken by another orchestrator): stop
    /// the attempts and fail what did not finish with `lease_lost`. This is no user cancel.
    fn lease_lost(&mut self, message: String) -> Option<Input> {
        if self.ending.store_lost.is_some() {
            return None;
        }
        self.emit(EventKind::Warning {
            message: format!("{message}; stopping this orchestrator's attempts"),
        });
        self.ending.store_lost = Some(message.clone());
        Some(Input::Abort(Failure { reason: Reason::LeaseLost, detail: Some(message) }))
    }
}

/// Watches the store for `swarm cancel` from another process.
fn spawn_cancel_poller(
    store: Arc<dyn Store>,
    run_id: String,
    tx: mpsc::UnboundedSender<Control>,
    stop: Arc<AtomicBool>,
) {
    std::thread::Builder::new()
        .name("swarm-cancel-poll".into())
        .spawn(move || {
            crate::os::process::block_signals();
            while !stop.load(Ordering::Relaxed) {
                if let Ok(true) = store.cancel_requested(&run_id) {
                    let _ = tx.send(Control::Cancel("swarm cancel".into()));
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
        .expect("spawn cancel poller");
}
