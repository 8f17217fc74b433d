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
pub mod report_files;
pub(crate) mod sweeper;
pub(crate) mod writer;

use crate::dispatcher::mirror::Mirror;
use crate::dispatcher::sweeper::Sweeper;
use crate::dispatcher::writer::{Note, Write, Writer};
use crate::engine::handle::{Canceller, Control, EventBus, RunHandle};
use crate::executor::ExecutorContext;
use crate::gateway::{Gateway, GatewayEvent, Ledger};
use crate::hooks::{HookKind, HookOutcome, Hooks};
use crate::job::Events;
use crate::job::StopRequest;
use crate::os::paths::RunDir;
use crate::os::process::hostname;
use chrono::Utc;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_core::config::Config;
use swarm_core::event::{Event, EventKind};
use swarm_core::plan::Plan;
use swarm_core::report::{Owner, RunRecord, RunReport, TaskReport};
use swarm_core::scheduler::{self, Action, Failure, Input, Options, Restored, Scheduler};
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
    pub executors: Arc<ExecutorContext>,
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

struct Dispatcher {
    store: Arc<dyn Store>,
    record: RunRecord,
    plan: Plan,
    docs: Vec<TaskReport>,
    executors: Arc<ExecutorContext>,
    config: Config,
    run_dir: RunDir,
    store_env: String,
    bus: EventBus,
    writer: Writer,
    /// Ends what finished attempts left running outside their process groups.
    sweeper: Sweeper,
    /// Why the store was lost to this run, once it was.
    store_lost: Option<String>,
    started: Instant,
    exec_tx: Events,
    ctl_tx: mpsc::UnboundedSender<Control>,
    running: HashMap<u32, LiveAttempt>,
    host: String,
    finished: Option<RunState>,
    /// Who asked to cancel, once someone did.
    cancelled_by: Option<String>,
    hooks: Hooks,
    mirror: Mirror,
    project_root: PathBuf,
    gateway: Option<Arc<Gateway>>,
    ledger: Arc<Ledger>,
    gw_tx: mpsc::UnboundedSender<GatewayEvent>,
    /// The model hierarchy of the config (empty without one).
    catalog: swarm_core::router::Catalog,
    /// Tasks whose next attempt moves to the next model, and why (its `fallback_reason`).
    fell_back: HashMap<u32, String>,
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
    let RunSetup {
        store,
        mut record,
        tasks,
        restored,
        retry_failed,
        executors,
        config,
        run_dir,
        store_env,
        lease,
        project_root,
        gateway,
        ledger,
    } = setup;
    let plan = record.spec.clone();
    let (nodes, agents) = scheduler::nodes_for(&plan);
    let concurrency = record.concurrency.max(1);
    let opts = Options {
        concurrency,
        agent_limits: agents.iter().map(|a| config.agent_limit(a)).collect(),
        fail_fast: record.fail_fast,
        backoff: config.backoff(),
        seed: fastrand::u64(..),
    };
    let names: Vec<String> = plan.tasks.iter().map(|t| t.id.clone()).collect();
    let resumed = restored.is_some();
    let mut sched = match &restored {
        Some(r) => Scheduler::restore(nodes, names, opts, r, retry_failed),
        None => Scheduler::new(nodes, names, opts),
    };
    // Whatever an agent detaches re-parents to swarm, where its attempt's marker finds it.
    crate::os::reaper::become_subreaper();
    let host = hostname();
    record.owner = Some(Owner { pid: std::process::id(), host: host.clone(), heartbeat_at: Utc::now() });
    record.state = RunState::Running;
    record.ended_at = None;

    let (note_tx, mut note_rx) = mpsc::unbounded_channel::<Note>();
    let hook_tx = note_tx.clone();
    let hooks = Hooks::new(&config.hooks, move |outcome: HookOutcome| {
        if !outcome.is_ok() {
            let _ = hook_tx.send(Note::Warning(outcome.to_string()));
        }
    })
    .in_dir(&project_root);
    let mirror = Mirror::new(&project_root, &config.feedback);
    // The states the store holds now: every write expects to find what this writer left.
    let known = tasks.iter().map(|t| (t.id.clone(), t.state)).collect();
    let give_up_after = config.store_give_up_after();
    let writer = Writer::start(store.clone(), record.run_id.clone(), lease, known, give_up_after, move |n| {
        let _ = note_tx.send(n);
    });
    let (exec_tx, mut exec_rx) = mpsc::unbounded_channel();
    let (gw_tx, mut gw_rx) = mpsc::unbounded_channel();
    let (swept_tx, mut swept_rx) = mpsc::unbounded_channel();
    let sweeper = Sweeper::start(move |s| {
        let _ = swept_tx.send(s);
    });
    let config_for_catalog = config.clone();
    let mut d = Dispatcher {
        store,
        record,
        plan,
        docs: tasks,
        executors,
        config,
        run_dir,
        store_env,
        bus,
        writer,
        sweeper,
        store_lost: None,
        started: Instant::now(),
        exec_tx,
        ctl_tx: ctl_tx.clone(),
        running: HashMap::new(),
        host,
        finished: None,
        cancelled_by: None,
        hooks,
        mirror,
        project_root,
        gateway,
        ledger,
        gw_tx,
        catalog: swarm_core::router::Catalog::from_config(&config_for_catalog),
        fell_back: HashMap::new(),
    };
    d.writer.send(Write::Run(d.record.clone()));
    d.emit(EventKind::RunStarted {
        plan: d.record.plan.clone(),
        namespace: d.record.namespace.clone(),
        tasks: d.plan.tasks.len(),
        concurrency,
        resumed,
    });

    let poller_stop = Arc::new(AtomicBool::new(false));
    spawn_cancel_poller(d.store.clone(), d.record.run_id.clone(), ctl_tx, poller_stop.clone());

    for dir in [d.run_dir.logs(), d.run_dir.completions()] {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            d.emit(EventKind::Warning { message: format!("cannot create {}: {e}", dir.display()) });
        }
    }
    let mut actions = Vec::new();
    sched.start(&mut actions);
    d.carry_out(&mut sched, actions);

    let mut heartbeat = tokio::time::interval(Duration::from_secs(2));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while d.finished.is_none() {
        let input = tokio::select! {
            Some((task, attempt, ev)) = exec_rx.recv() => d.on_attempt(task, attempt, ev),
            Some(ctl) = ctl_rx.recv() => d.on_control(ctl),
            Some(swept) = swept_rx.recv() => { d.on_swept(swept); None }
            Some(ev) = gw_rx.recv() => { d.on_gateway(ev); None }
            Some(note) = note_rx.recv() => match note {
                Note::Warning(message) => { d.emit(EventKind::Warning { message }); None }
                Note::LeaseLost(message) => d.lease_lost(message),
            },
            _ = heartbeat.tick() => {
                if let Some(o) = d.record.owner.as_mut() { o.heartbeat_at = Utc::now(); }
                d.writer.send(Write::Run(d.record.clone()));
                None
            }
        };
        if let Some(input) = input {
            let mut actions = Vec::new();
            sched.handle(input, &mut actions);
            d.carry_out(&mut sched, actions);
        }
    }
    poller_stop.store(true, Ordering::Relaxed);
    // Finishing waits on the store, the sweeper and hooks: off the runtime's threads.
    tokio::task::spawn_blocking(move || d.finish(&mut note_rx, &mut swept_rx))
        .await
        .expect("finishing a run does not panic")
}

impl Dispatcher {
    fn emit(&mut self, kind: EventKind) {
        let ev = Event {
            run_id: self.record.run_id.clone(),
            timestamp: Utc::now(),
            elapsed_ms: self.started.elapsed().as_millis() as u64,
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
        &self.plan.tasks[task as usize].id
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
                    // Never sooner than the provider asked (`retry-after` of a rate limit).
                    let asked = self.docs[task as usize]
                        .attempts
                        .last()
                        .and_then(|a| a.retry_after_ms)
                        .map(Duration::from_millis)
                        .unwrap_or_default();
                    let delay = delay.max(asked);
                    self.emit(EventKind::RetryScheduled {
                        task: self.id(task).to_string(),
                        next_attempt,
                        delay_ms: delay.as_millis() as u64,
                    });
                    let tx = self.ctl_tx.clone();
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
                    self.finished = Some(state);
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
        let doc = &mut self.docs[task as usize];
        doc.state = state;
        if state.is_terminal() {
            doc.reason = reason;
            doc.detail = detail.clone();
        } else if state == TaskState::Pending && reason.is_some() {
            // A failed attempt that will be retried: the task is not failed, say why it waits.
            doc.reason = None;
            doc.detail = Some(format!(
                "attempt {} failed ({}){}; retrying",
                doc.attempts.len(),
                reason.map(|r| r.as_str()).unwrap_or("?"),
                detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
            ));
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
            self.config.require_report(&doc.agent) || doc.attempts.iter().any(|a| a.completion.is_some());
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
                if self.cancelled_by.is_some() {
                    return None;
                }
                self.cancelled_by = Some(source.clone());
                self.emit(EventKind::CancelRequested { source });
                Some(Input::Cancel)
            }
            Control::Kill => {
                for r in self.running.values() {
                    let _ = r.stop.send(StopRequest::Kill);
                }
                if self.cancelled_by.is_none() {
                    self.cancelled_by = Some("kill".into());
                    return Some(Input::Cancel);
                }
                None
            }
        }
    }

    /// The store is lost to this run (emptied, replaced, or taken by another orchestrator): stop
    /// the attempts and fail what did not finish with `lease_lost`. This is no user cancel.
    fn lease_lost(&mut self, message: String) -> Option<Input> {
        if self.store_lost.is_some() {
            return None;
        }
        self.emit(EventKind::Warning {
            message: format!("{message}; stopping this orchestrator's attempts"),
        });
        self.store_lost = Some(message.clone());
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
            crate::dispatcher::writer::block_signals();
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
