//! `swarm worker`: takes the attempts of the agents it has from the namespace's work queue, at
//! most `concurrency` at once, runs each with this host's executor, and says what happens on
//! the run's feed under a lease it renews. Reclaims the attempts of workers that went silent.
//! A first drain signal stops taking work and lets the running attempts finish (for up to
//! `drain_timeout`); a second, or the timeout, hands them back to the queue.

use super::guard::Guard;
use super::Said;
use crate::dispatcher::sweeper::{Request, Sweeper};
use crate::executor::ExecutorContext;
use crate::job::{AttemptEvent, AttemptJob, StopRequest};
use crate::os::reaper::Marker;
use chrono::Utc;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use swarm_core::scheduler::Failure;
use swarm_core::state::Reason;
use swarm_store::{Fenced, Lease, RedisStore, StoreError};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::{sleep, sleep_until, Instant};

/// What a worker is.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    pub name: String,
    pub namespace: String,
    pub concurrency: usize,
    /// The agents it runs, with their versions as found on this host.
    pub agents: Vec<(String, Option<String>)>,
    pub labels: Vec<(String, String)>,
    pub lease: Duration,
    pub drain_timeout: Duration,
}

/// What the worker's signals ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Work,
    /// Take nothing new; let the running attempts finish.
    Drain,
    /// Hand the running attempts back to the queue now.
    HandBack,
}

/// Something worth telling whoever watches the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerNote {
    Took {
        run_id: String,
        task: String,
        attempt: u32,
        fence: u64,
    },
    Ended {
        run_id: String,
        task: String,
        attempt: u32,
        ok: bool,
    },
    /// Another worker owns the attempt now: this one's late writes were refused.
    LeaseLost {
        run_id: String,
        task: String,
        attempt: u32,
        owner: String,
    },
    HandedBack {
        run_id: String,
        task: String,
        attempt: u32,
    },
    StoreTrouble {
        message: String,
    },
}

/// How often the worker says it is alive and looks for attempts of silent workers: an attempt
/// whose worker died is taken over within about a lease and this.
const BEAT: Duration = Duration::from_secs(1);
/// How often a worker with room looks for attempts of workers gone silent.
const RECLAIM_EVERY: Duration = Duration::from_millis(250);
/// Every this many beats, workers long silent are forgotten.
const FORGET_EVERY: u32 = 60;
/// Longest wait for new work in one read.
const TAKE_WAIT: Duration = Duration::from_millis(500);
/// How long a worker may be silent before the namespace forgets it.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Events are sent together when they come this close.
const BATCH: Duration = Duration::from_millis(50);

/// What the worker's attempts share.
struct Shared {
    queue: Arc<RedisStore>,
    ctx: Arc<ExecutorContext>,
    spec: WorkerSpec,
    host: String,
    guard: Guard,
    sweeper: Sweeper,
    /// Where the store is called from (threads that take no signal).
    io: super::io::IoThreads,
    running: AtomicUsize,
    /// The stream entries of the attempts running here.
    entries: std::sync::Mutex<std::collections::HashSet<String>>,
    ended: Notify,
    notes: mpsc::UnboundedSender<WorkerNote>,
    hand_back: watch::Receiver<bool>,
}

pub struct Worker {
    shared: Arc<Shared>,
    hand_back: watch::Sender<bool>,
}

impl Worker {
    /// A worker on `queue` (the store `store` opened as its work queue), running attempts with
    /// this host's agents (`registry`, `config`'s hierarchy); its notes go to `notes`.
    pub fn new(
        store: Arc<dyn swarm_store::Store>,
        config: &swarm_core::config::Config,
        registry: swarm_agents::Registry,
        store_secret: Option<String>,
        spec: WorkerSpec,
        notes: mpsc::UnboundedSender<WorkerNote>,
    ) -> Result<Worker, String> {
        let queue = store.clone().work_queue().ok_or_else(|| {
            format!(
                "a worker needs a Redis store, whose queue it reads (--store redis://…); {} is not one",
                store.describe()
            )
        })?;
        let hierarchy = crate::hierarchy::Hierarchy::of(store.clone(), config);
        let mut ctx = ExecutorContext::new(registry, store_secret, hierarchy);
        ctx.store = Some(store);
        let guard = Guard::start(&ctx.swarm_bin).unwrap_or_else(|_| Guard::none());
        let (hand_back, hand_back_rx) = watch::channel(false);
        let host = crate::os::process::hostname();
        let shared = Shared {
            queue,
            ctx: Arc::new(ctx),
            spec,
            host,
            guard,
            sweeper: Sweeper::start(|_| {}),
            io: super::io::IoThreads::start("swarm-worker-io", 4),
            running: AtomicUsize::new(0),
            entries: Default::default(),
            ended: Notify::new(),
            notes,
            hand_back: hand_back_rx,
        };
        Ok(Worker { shared: Arc::new(shared), hand_back })
    }

    /// Works until `mode` asks to drain, then drains; errors only when the store refuses it
    /// from the start.
    pub async fn run(self, mut mode: watch::Receiver<Mode>) -> Result<(), StoreError> {
        crate::os::reaper::become_subreaper();
        let s = self.shared.clone();
        blocking(&s, |s| s.queue.beat(&s.spec.namespace, &s.spec.name, &s.info("running"))).await?;
        let (mut next_beat, mut next_reclaim, mut beats) = (Instant::now() + BEAT, Instant::now(), 0u32);
        // What was delivered to this name and never taken up (a worker restarted under it).
        let mut recover = true;
        while *mode.borrow() == Mode::Work {
            if Instant::now() >= next_beat {
                next_beat = Instant::now() + BEAT;
                beats += 1;
                self.beat(beats % FORGET_EVERY == 0).await;
            }
            let free = s.spec.concurrency.saturating_sub(s.running.load(Ordering::SeqCst));
            if free == 0 {
                tokio::select! {
                    _ = s.ended.notified() => {}
                    _ = mode.changed() => {}
                    _ = sleep_until(next_beat) => {}
                }
                continue;
            }
            if std::mem::take(&mut recover) {
                recover = !self.recover().await;
            }
            // A dead worker's attempts began before anything still queued: they go first.
            if Instant::now() >= next_reclaim {
                next_reclaim = Instant::now() + RECLAIM_EVERY;
                if self.reclaim(free).await > 0 {
                    continue;
                }
            }
            let agents = s.agent_names();
            let (lease, wait) = (s.spec.lease, TAKE_WAIT);
            let taken = blocking(&s, move |s| {
                s.queue.take(&s.spec.namespace, &s.spec.name, &agents, lease, free, wait)
            });
            match taken.await {
                Ok(leases) => leases.into_iter().for_each(|l| self.start(l)),
                Err(e) => {
                    // The server may have delivered what the broken connection never brought.
                    recover = true;
                    self.trouble(e).await;
                }
            }
        }
        self.drain(mode).await;
        Ok(())
    }

    /// Says the worker is alive (and, with `forget`, forgets the workers long silent).
    async fn beat(&self, forget: bool) {
        let s = &self.shared;
        let beat = blocking(s, |s| s.queue.beat(&s.spec.namespace, &s.spec.name, &s.info("running")));
        if let Err(e) = beat.await {
            return self.trouble(e).await;
        }
        if forget {
            let agents = s.agent_names();
            let _ =
                blocking(s, move |s| s.queue.forget_workers(&s.spec.namespace, &agents, FORGET_AFTER)).await;
        }
    }

    /// Takes up what was delivered to this worker and is not running here; whether it could look.
    async fn recover(&self) -> bool {
        let s = &self.shared;
        let running: Vec<String> = s.entries.lock().expect("entries").iter().cloned().collect();
        let (agents, lease) = (s.agent_names(), s.spec.lease);
        let pending = blocking(s, move |s| {
            s.queue.take_pending(&s.spec.namespace, &s.spec.name, &agents, lease, &running)
        });
        match pending.await {
            Ok(leases) => {
                leases.into_iter().for_each(|l| self.start(l));
                true
            }
            Err(e) => {
                self.trouble(e).await;
                false
            }
        }
    }

    /// Takes over up to `free` attempts of workers gone silent; how many.
    async fn reclaim(&self, free: usize) -> usize {
        let s = &self.shared;
        let (agents, lease) = (s.agent_names(), s.spec.lease);
        match blocking(s, move |s| s.queue.reclaim(&s.spec.namespace, &s.spec.name, &agents, lease, free))
            .await
        {
            Ok(leases) => {
                let n = leases.len();
                leases.into_iter().for_each(|l| self.start(l));
                n
            }
            Err(e) => {
                self.trouble(e).await;
                0
            }
        }
    }

    async fn trouble(&self, e: StoreError) {
        let _ = self.shared.notes.send(WorkerNote::StoreTrouble { message: e.to_string() });
        sleep(Duration::from_millis(500)).await;
    }

    fn start(&self, lease: Lease) {
        let s = self.shared.clone();
        s.running.fetch_add(1, Ordering::SeqCst);
        s.entries.lock().expect("entries").insert(lease.entry.clone());
        let item = &lease.item;
        let _ = s.notes.send(WorkerNote::Took {
            run_id: item.run_id.clone(),
            task: item.task.clone(),
            attempt: item.attempt,
            fence: lease.fence,
        });
        tokio::spawn(async move {
            let entry = lease.entry.clone();
            attempt(&s, lease).await;
            s.entries.lock().expect("entries").remove(&entry);
            s.running.fetch_sub(1, Ordering::SeqCst);
            s.ended.notify_one();
        });
    }

    /// No new work: the running attempts finish (up to the drain timeout, or until a second
    /// signal), then what still runs is handed back.
    async fn drain(self, mut mode: watch::Receiver<Mode>) {
        let s = self.shared.clone();
        let _ = blocking(&s, |s| s.queue.beat(&s.spec.namespace, &s.spec.name, &s.info("draining"))).await;
        let deadline = Instant::now() + s.spec.drain_timeout;
        while s.running.load(Ordering::SeqCst) > 0 && *mode.borrow() != Mode::HandBack {
            tokio::select! {
                _ = s.ended.notified() => {}
                _ = mode.changed() => {}
                _ = sleep_until(deadline) => break,
                _ = sleep(BEAT) => {
                    let _ = blocking(&s, |s| s.queue.beat(&s.spec.namespace, &s.spec.name, &s.info("draining"))).await;
                }
            }
        }
        let _ = self.hand_back.send(true);
        while s.running.load(Ordering::SeqCst) > 0 {
            tokio::select! {
                _ = s.ended.notified() => {}
                _ = sleep(Duration::from_millis(100)) => {}
            }
        }
        let _ = blocking(&s, |s| s.queue.beat(&s.spec.namespace, &s.spec.name, &s.info("stopped"))).await;
    }
}

impl Shared {
    fn agent_names(&self) -> Vec<String> {
        self.spec.agents.iter().map(|(a, _)| a.clone()).collect()
    }

    /// What `swarm workers` shows of this worker.
    fn info(&self, state: &str) -> String {
        let agents: Vec<_> =
            self.spec.agents.iter().map(|(a, v)| json!({ "name": a, "version": v })).collect();
        let labels: serde_json::Map<String, serde_json::Value> =
            self.spec.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        json!({
            "host": self.host,
            "pid": std::process::id(),
            "state": state,
            "agents": agents,
            "labels": labels,
            "capacity": self.spec.concurrency,
            "running": self.running.load(Ordering::SeqCst),
            "lease_ms": self.spec.lease.as_millis() as u64,
            "swarm": env!("CARGO_PKG_VERSION"),
            "said_at": Utc::now(),
        })
        .to_string()
    }
}

/// Runs `f` with the worker's store on its I/O threads.
async fn blocking<T: Send + 'static>(
    s: &Arc<Shared>,
    f: impl FnOnce(&Shared) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let shared = s.clone();
    s.io.run(move || f(&shared)).await.unwrap_or_else(|| {
        Err(StoreError::Backend { address: "worker".into(), message: "the store's thread is gone".into() })
    })
}

/// Where one attempt stands, as its owner here sees it.
struct Owned {
    lease: Lease,
    /// Events not yet said.
    batch: Vec<AttemptEvent>,
    /// When they are to be said.
    say_at: Option<Instant>,
    renew_at: Instant,
    stop: watch::Sender<StopRequest>,
    /// Another worker owns it now, or this one handed it back: nothing more is said.
    gone: bool,
}

/// Runs one attempt the worker took, to its end (or until it is lost or handed back).
async fn attempt(s: &Arc<Shared>, lease: Lease) {
    let item = lease.item.clone();
    let marker = Marker::attempt(&item.run_id, &item.task, item.attempt);
    let job = match readable(&lease) {
        Ok(job) => job,
        Err(failure) => {
            let end =
                AttemptEvent::Finished { exit_code: None, outcome: Err(failure), evidence: Box::default() };
            let mut owned = Owned::new(lease, watch::channel(StopRequest::None).0, s.spec.lease);
            return finish(s, &mut owned, end).await;
        }
    };
    s.guard.open(&marker);
    let (stop, stop_rx) = watch::channel(StopRequest::None);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let grace = job.limits.grace;
    tokio::spawn(crate::executor::run(job, s.ctx.clone(), stop_rx, tx));
    let mut owned = Owned::new(lease, stop, s.spec.lease);
    let mut hand_back = s.hand_back.clone();
    loop {
        let say_at = owned.say_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            ev = rx.recv() => match ev {
                Some((_, _, ev @ AttemptEvent::Finished { .. })) => {
                    finish(s, &mut owned, ev).await;
                    break;
                }
                Some((_, _, ev)) => owned.hold(ev),
                None => break,
            },
            _ = sleep_until(say_at), if owned.say_at.is_some() => say(s, &mut owned).await,
            _ = sleep_until(owned.renew_at) => renew(s, &mut owned).await,
            changed = hand_back.changed(), if !owned.gone => {
                if changed.is_ok() && *hand_back.borrow() {
                    give_back(s, &mut owned).await;
                }
            }
        }
    }
    s.guard.close(&marker);
    // What the agent left behind here goes with it (off the attempt's path: one look at the
    // process table serves the attempts that end close together).
    let (task, attempt) = (0, item.attempt);
    s.sweeper.sweep(Request { task, attempt, marker, grace, log: None });
}

/// The lease's job, or why it cannot run here.
fn readable(lease: &Lease) -> Result<AttemptJob, Failure> {
    let job: AttemptJob = serde_json::from_str(&lease.item.job).map_err(|e| Failure {
        reason: Reason::SpawnError,
        detail: Some(format!("the attempt's job is unreadable: {e}")),
    })?;
    if !job.project_root.is_dir() {
        let detail = format!(
            "this worker cannot reach the run's project at {} (run workers where the project lies, at the same path)",
            job.project_root.display()
        );
        return Err(Failure { reason: Reason::SpawnError, detail: Some(detail) });
    }
    Ok(job)
}

impl Owned {
    fn new(lease: Lease, stop: watch::Sender<StopRequest>, every: Duration) -> Owned {
        Owned {
            lease,
            batch: Vec::new(),
            say_at: None,
            renew_at: Instant::now() + every / 3,
            stop,
            gone: false,
        }
    }

    fn hold(&mut self, ev: AttemptEvent) {
        if self.gone {
            return;
        }
        self.batch.push(ev);
        let soon = if self.batch.len() >= 256 { Instant::now() } else { Instant::now() + BATCH };
        self.say_at = Some(self.say_at.map_or(soon, |at| at.min(soon)));
    }

    /// What a fenced write's answer means for the attempt.
    fn heard(&mut self, s: &Shared, answer: Result<Fenced, StoreError>) -> bool {
        match answer {
            Ok(Fenced::Accepted { stop, .. }) => {
                match stop.as_deref() {
                    Some("kill") => self.stop.send_replace(StopRequest::Kill),
                    Some(_) => self.stop.send_replace(StopRequest::Terminate),
                    None => StopRequest::None,
                };
                true
            }
            Ok(Fenced::Duplicate) => true,
            Ok(Fenced::LeaseLost { owner, .. }) => {
                self.gone = true;
                self.batch.clear();
                self.say_at = None;
                let _ = self.stop.send(StopRequest::Kill);
                let item = &self.lease.item;
                let _ = s.notes.send(WorkerNote::LeaseLost {
                    run_id: item.run_id.clone(),
                    task: item.task.clone(),
                    attempt: item.attempt,
                    owner,
                });
                true
            }
            Err(e) => {
                let _ = s.notes.send(WorkerNote::StoreTrouble { message: e.to_string() });
                false
            }
        }
    }
}

/// Says the held events on the run's feed (kept for the next try when the store is away).
async fn say(s: &Arc<Shared>, owned: &mut Owned) {
    owned.say_at = None;
    if owned.gone || owned.batch.is_empty() {
        return;
    }
    let events: Said = std::mem::take(&mut owned.batch);
    let json = serde_json::to_string(&events).expect("events are JSON");
    let lease = owned.lease.clone();
    let answer =
        blocking(s, move |s| s.queue.say(&s.spec.namespace, &s.spec.name, &s.host, &lease, &json)).await;
    if !owned.heard(s, answer) && !owned.gone {
        let mut events = events;
        events.append(&mut owned.batch);
        owned.batch = events;
        owned.say_at = Some(Instant::now() + Duration::from_millis(500));
    }
}

async fn renew(s: &Arc<Shared>, owned: &mut Owned) {
    let every = s.spec.lease;
    owned.renew_at = Instant::now() + every / 3;
    if owned.gone {
        owned.renew_at = Instant::now() + Duration::from_secs(3600);
        return;
    }
    let lease = owned.lease.clone();
    let answer = blocking(s, move |s| s.queue.renew(&s.spec.namespace, &s.spec.name, &lease, every)).await;
    if !owned.heard(s, answer) {
        owned.renew_at = Instant::now() + Duration::from_millis(500);
    }
}

/// Says the last events and the end, in one step: counted once, and only while this worker
/// owns the attempt. Tried again while the store is away (a restart), for up to a few leases.
async fn finish(s: &Arc<Shared>, owned: &mut Owned, end: AttemptEvent) {
    let item = owned.lease.item.clone();
    let ok = matches!(&end, AttemptEvent::Finished { outcome: Ok(()), .. });
    let outcome = serde_json::to_string(&end).expect("an end is JSON");
    let said =
        (!owned.batch.is_empty()).then(|| serde_json::to_string(&owned.batch).expect("events are JSON"));
    let deadline = Instant::now() + s.spec.lease * 4;
    while !owned.gone {
        let (lease, outcome, said) = (owned.lease.clone(), outcome.clone(), said.clone());
        let answer = blocking(s, move |s| {
            let said = said.as_deref().map(|events| (s.host.as_str(), events));
            s.queue.finish_saying(&s.spec.namespace, &s.spec.name, &lease, said, &outcome)
        });
        if owned.heard(s, answer.await) || Instant::now() > deadline {
            break;
        }
        sleep(Duration::from_millis(500)).await;
    }
    if !owned.gone {
        let _ = s.notes.send(WorkerNote::Ended {
            run_id: item.run_id,
            task: item.task,
            attempt: item.attempt,
            ok,
        });
    }
}

/// Hands the attempt back to the queue and stops its agent here.
async fn give_back(s: &Arc<Shared>, owned: &mut Owned) {
    owned.gone = true;
    owned.batch.clear();
    owned.say_at = None;
    let _ = owned.stop.send(StopRequest::Terminate);
    let lease = owned.lease.clone();
    let released = blocking(s, move |s| s.queue.release(&s.spec.namespace, &s.spec.name, &lease)).await;
    if matches!(released, Ok(Fenced::Accepted { .. })) {
        let item = &owned.lease.item;
        let _ = s.notes.send(WorkerNote::HandedBack {
            run_id: item.run_id.clone(),
            task: item.task.clone(),
            attempt: item.attempt,
        });
    }
}
