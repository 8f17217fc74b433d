//! `swarm worker`: takes the attempts of the agents it has from the work queues of one namespace
//! or of every namespace the store has (docs/contract.md §11), at most `concurrency` at once, runs each with this host's executor, and says what happens on
//! the run's feed under a lease it renews. Reclaims the attempts of workers that went silent.
//! A first drain signal stops taking work and lets the running attempts finish (for up to
//! `drain_timeout`); a second, or the timeout, hands them back to the queue.

use super::guard::Guard;
use crate::dispatcher::sweeper::Sweeper;
use crate::executor::ExecutorContext;
use chrono::Utc;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use swarm_store::{Lease, RedisStore, StoreError};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::{sleep, sleep_until, Instant};

/// What a worker is.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    pub name: String,
    pub serves: Serves,
    pub concurrency: usize,
    /// The agents it runs, with their versions as found on this host.
    pub agents: Vec<(String, Option<String>)>,
    pub labels: Vec<(String, String)>,
    pub lease: Duration,
    pub drain_timeout: Duration,
    /// Where worktree tasks of runs whose checkout is not here work.
    pub clones: super::place::Clones,
}

/// The namespaces whose attempts a worker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serves {
    /// This one only (`--namespace`).
    Only(String),
    /// Every namespace of the store with a queue for one of its agents (those a Redis ACL
    /// user may read), and `home` (the project's own) always.
    Every { home: String },
}

/// A namespace a worker serves, with the queues it takes from there.
#[derive(Debug, Clone)]
struct Serving {
    ns: String,
    queues: Vec<String>,
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
/// Shortest wait for new work in one namespace when it serves several.
const TAKE_WAIT_EACH: Duration = Duration::from_millis(20);

/// What the worker's attempts share.
pub(super) struct Shared {
    pub(super) queue: Arc<RedisStore>,
    pub(super) ctx: Arc<ExecutorContext>,
    pub(super) spec: WorkerSpec,
    /// The namespaces served now (refreshed when it serves every one).
    serving: std::sync::Mutex<Vec<Serving>>,
    pub(super) host: String,
    pub(super) guard: Guard,
    /// This host's model gateway, for agents that talk to one.
    pub(super) gateway: super::gateway::WorkerGateway,
    pub(super) sweeper: Sweeper,
    /// Where the store is called from (threads that take no signal).
    pub(super) io: super::io::IoThreads,
    pub(super) running: AtomicUsize,
    /// The stream entries of the attempts running here.
    pub(super) entries: std::sync::Mutex<std::collections::HashSet<String>>,
    pub(super) ended: Notify,
    pub(super) notes: mpsc::UnboundedSender<WorkerNote>,
    pub(super) hand_back: watch::Receiver<bool>,
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
        let gateway = super::gateway::WorkerGateway::new(store.clone(), config);
        let hierarchy = crate::hierarchy::Hierarchy::of(store.clone(), config);
        let mut ctx = ExecutorContext::new(registry, store_secret, hierarchy);
        ctx.store = Some(store);
        let guard = Guard::start(&ctx.swarm_bin).unwrap_or_else(|_| Guard::none());
        let (hand_back, hand_back_rx) = watch::channel(false);
        let host = crate::os::process::hostname();
        let serving = match &spec.serves {
            Serves::Only(ns) | Serves::Every { home: ns } => {
                let queues = spec.agents.iter().map(|(a, _)| a.clone()).collect();
                vec![Serving { ns: ns.clone(), queues }]
            }
        };
        let shared = Shared {
            queue,
            ctx: Arc::new(ctx),
            spec,
            serving: serving.into(),
            host,
            guard,
            gateway,
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
        let home = s.serving()[0].ns.clone();
        blocking(&s, move |s| s.queue.beat(&home, &s.spec.name, &s.info("running"))).await?;
        let (mut next_beat, mut next_reclaim, mut beats) = (Instant::now(), Instant::now(), 0u32);
        // The namespaces whose deliveries to this name were taken up (a worker restarted under
        // it, or a reply lost to a broken connection, leaves some never read).
        let mut recovered = std::collections::HashSet::new();
        while *mode.borrow() == Mode::Work {
            if Instant::now() >= next_beat {
                next_beat = Instant::now() + BEAT;
                beats += 1;
                self.refresh().await;
                self.beat("running", beats % FORGET_EVERY == 0).await;
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
            for on in s.serving() {
                if !recovered.contains(&on.ns) && self.recover(&on).await {
                    recovered.insert(on.ns);
                }
            }
            // A dead worker's attempts began before anything still queued: they go first.
            if Instant::now() >= next_reclaim {
                next_reclaim = Instant::now() + RECLAIM_EVERY;
                if self.reclaim(free).await > 0 {
                    continue;
                }
            }
            if !self.take(free).await {
                recovered.clear();
            }
        }
        self.drain(mode).await;
        Ok(())
    }

    /// Takes up to `free` new attempts, waiting a little for them; false when the store failed
    /// (the server may have delivered what the broken connection never brought).
    async fn take(&self, mut free: usize) -> bool {
        let s = &self.shared;
        let serving = s.serving();
        let wait = (TAKE_WAIT / serving.len().max(1) as u32).max(TAKE_WAIT_EACH);
        for on in serving {
            let lease = s.spec.lease;
            let taken =
                blocking(s, move |s| s.queue.take(&on.ns, &s.spec.name, &on.queues, lease, free, wait));
            match taken.await {
                Ok(leases) => {
                    free = free.saturating_sub(leases.len());
                    leases.into_iter().for_each(|l| self.start(l));
                }
                Err(e) => {
                    self.trouble(e).await;
                    return false;
                }
            }
            if free == 0 {
                break;
            }
        }
        true
    }

    /// Looks again (at every beat) for the namespaces it serves (every one: new ones) and their
    /// queues it takes from (those of tasks needing labels it has).
    async fn refresh(&self) {
        let s = &self.shared;
        let (agents, serves) = (s.agent_names(), s.spec.serves.clone());
        let found = blocking(s, move |s| {
            let namespaces = match &serves {
                Serves::Only(ns) => vec![ns.clone()],
                Serves::Every { home } => {
                    let mut found = s.queue.queued_namespaces(&agents)?;
                    found.retain(|ns| ns != home);
                    found.insert(0, home.clone());
                    found
                }
            };
            let labels = &s.spec.labels;
            let queues = |ns: String| Ok(Serving { queues: s.queue.queues_for(&ns, &agents, labels)?, ns });
            namespaces.into_iter().map(queues).collect::<Result<Vec<_>, StoreError>>()
        });
        match found.await {
            Ok(serving) => *s.serving.lock().expect("serving") = serving,
            Err(e) => self.trouble(e).await,
        }
    }

    /// Says the worker is alive in every namespace it serves, as `state` (and, with `forget`,
    /// forgets the workers long silent).
    async fn beat(&self, state: &'static str, forget: bool) {
        let s = &self.shared;
        for on in s.serving() {
            let beat = blocking(s, move |s| {
                s.queue.beat(&on.ns, &s.spec.name, &s.info(state))?;
                if forget {
                    s.queue.forget_workers(&on.ns, &on.queues, FORGET_AFTER)?;
                }
                Ok(())
            });
            if let Err(e) = beat.await {
                return self.trouble(e).await;
            }
        }
    }

    /// Takes up what was delivered to this worker on `on` and is not running here; whether it
    /// could look.
    async fn recover(&self, on: &Serving) -> bool {
        let s = &self.shared;
        let running: Vec<String> = s.entries.lock().expect("entries").iter().cloned().collect();
        let (on, lease) = (on.clone(), s.spec.lease);
        let pending =
            blocking(s, move |s| s.queue.take_pending(&on.ns, &s.spec.name, &on.queues, lease, &running));
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
        let mut taken = 0;
        for on in s.serving() {
            let (lease, max) = (s.spec.lease, free - taken);
            match blocking(s, move |s| s.queue.reclaim(&on.ns, &s.spec.name, &on.queues, lease, max)).await {
                Ok(leases) => {
                    taken += leases.len();
                    leases.into_iter().for_each(|l| self.start(l));
                }
                Err(e) => {
                    self.trouble(e).await;
                    break;
                }
            }
            if taken >= free {
                break;
            }
        }
        taken
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
            super::attempt::attempt(&s, lease).await;
            s.entries.lock().expect("entries").remove(&entry);
            s.running.fetch_sub(1, Ordering::SeqCst);
            s.ended.notify_one();
        });
    }

    /// No new work: the running attempts finish (up to the drain timeout, or until a second
    /// signal), then what still runs is handed back.
    async fn drain(self, mut mode: watch::Receiver<Mode>) {
        let s = self.shared.clone();
        self.beat("draining", false).await;
        let deadline = Instant::now() + s.spec.drain_timeout;
        while s.running.load(Ordering::SeqCst) > 0 && *mode.borrow() != Mode::HandBack {
            tokio::select! {
                _ = s.ended.notified() => {}
                _ = mode.changed() => {}
                _ = sleep_until(deadline) => break,
                _ = sleep(BEAT) => self.beat("draining", false).await,
            }
        }
        let _ = self.hand_back.send(true);
        while s.running.load(Ordering::SeqCst) > 0 {
            tokio::select! {
                _ = s.ended.notified() => {}
                _ = sleep(Duration::from_millis(100)) => {}
            }
        }
        self.beat("stopped", false).await;
    }
}

impl Shared {
    fn serving(&self) -> Vec<Serving> {
        self.serving.lock().expect("serving").clone()
    }

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
pub(super) async fn blocking<T: Send + 'static>(
    s: &Arc<Shared>,
    f: impl FnOnce(&Shared) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let shared = s.clone();
    s.io.run(move || f(&shared)).await.unwrap_or_else(|| {
        Err(StoreError::Backend { address: "worker".into(), message: "the store's thread is gone".into() })
    })
}
