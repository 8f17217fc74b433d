//! The store writer: a thread that batches the dispatcher's writes into transactions. When the
//! store fails, writes are kept and retried with backoff, so a store that goes away for a while
//! loses nothing; the dispatcher never blocks on it.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use swarm_core::event::Event;
use swarm_core::report::{RunRecord, TaskReport};
use swarm_core::state::TaskState;
use swarm_store::{Batch, Store};

pub enum Write {
    Run(RunRecord),
    Task(TaskReport),
    Event(Event),
}

pub struct Writer {
    tx: Sender<Write>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    /// Every write carries `lease`, which the writer renews well before `LEASE_TTL` runs out.
    /// `note` is called (from the writer thread) when the store fails, recovers, or the lease is
    /// lost to another orchestrator.
    pub fn start(
        store: Arc<dyn Store>,
        run_id: String,
        lease: String,
        known: HashMap<String, TaskState>,
        note: impl Fn(Note) + Send + 'static,
    ) -> Writer {
        let (tx, rx) = channel();
        let handle = std::thread::Builder::new()
            .name("swarm-store-writer".into())
            .spawn(move || write_loop(store, run_id, lease, known, rx, note))
            .expect("spawn store writer thread");
        Writer { tx, handle: Some(handle) }
    }

    pub fn send(&self, w: Write) {
        let _ = self.tx.send(w);
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let (tx, _rx) = channel();
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[derive(Default)]
struct Pending {
    run: Option<RunRecord>,
    tasks: HashMap<String, TaskReport>,
    order: Vec<String>,
    events: Vec<Event>,
}

impl Pending {
    fn add(&mut self, w: Write) {
        match w {
            Write::Run(r) => self.run = Some(r),
            Write::Task(t) => {
                if !self.tasks.contains_key(&t.id) {
                    self.order.push(t.id.clone());
                }
                self.tasks.insert(t.id.clone(), t);
            }
            Write::Event(e) => self.events.push(e),
        }
    }

    /// The batch, expecting every task it touches to be in the state this writer last stored:
    /// anything else means someone else wrote the run, and the store refuses the batch.
    fn batch(&self, lease: &str, number: u64, known: &HashMap<String, TaskState>) -> Batch {
        Batch {
            id: Some(format!("{lease}#{number}")),
            lease: Some(lease.to_string()),
            expect: self.order.iter().filter_map(|id| known.get(id).map(|s| (id.clone(), *s))).collect(),
            run: self.run.clone(),
            tasks: self.order.iter().map(|id| self.tasks[id].clone()).collect(),
            events: self.events.clone(),
        }
    }

    fn is_empty(&self) -> bool {
        self.run.is_none() && self.tasks.is_empty() && self.events.is_empty()
    }
}

/// How long a lease lasts without renewal; an orchestrator that died is taken over after this.
pub const LEASE_TTL: Duration = Duration::from_secs(30);

/// How long the writer gathers writes before a transaction.
const LINGER: Duration = Duration::from_millis(3);

pub enum Note {
    Warning(String),
    LeaseLost(String),
}

fn write_loop(
    store: Arc<dyn Store>,
    run_id: String,
    lease: String,
    mut known: HashMap<String, TaskState>,
    rx: Receiver<Write>,
    note: impl Fn(Note),
) {
    // Child processes exit all the time; their SIGCHLD must not interrupt this thread's store
    // I/O (a socket read with a timeout is not restarted after a signal).
    block_signals();
    let warn = |m: String| note(Note::Warning(m));
    // Numbers this writer's batches; a retried batch keeps its number, so a store that did
    // apply it (only the answer was lost) recognises the replay.
    let mut batches: u64 = 0;
    let mut renewed = std::time::Instant::now();
    let mut pending = Pending::default();
    let mut failing_since: Option<std::time::Instant> = None;
    let mut retry_delay = Duration::from_millis(100);
    let mut open = true;
    while open || !pending.is_empty() {
        if open {
            // Block for work; while writes are pending (the store is failing), wake up to retry.
            let wait = if pending.is_empty() { LEASE_TTL / 6 } else { retry_delay };
            match rx.recv_timeout(wait) {
                Ok(w) => pending.add(w),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
            // Linger a moment so a burst of transitions becomes one transaction (one round trip
            // on Redis); readers in other processes see changes a few milliseconds later.
            let linger_until = std::time::Instant::now() + LINGER;
            while open {
                let left = linger_until.saturating_duration_since(std::time::Instant::now());
                match rx.recv_timeout(left) {
                    Ok(w) => pending.add(w),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => open = false,
                }
            }
        }
        if renewed.elapsed() >= LEASE_TTL / 6 {
            match store.acquire_lease(&run_id, &lease, LEASE_TTL, None) {
                Ok(()) => renewed = std::time::Instant::now(),
                Err(
                    e @ (swarm_store::StoreError::Fenced { .. } | swarm_store::StoreError::Conflict { .. }),
                ) => {
                    note(Note::LeaseLost(e.to_string()));
                    return;
                }
                Err(_) => {} // the store is away; the write below reports it
            }
        }
        if pending.is_empty() {
            continue;
        }
        match store.apply(&run_id, &pending.batch(&lease, batches, &known)) {
            Ok(()) => {
                if let Some(since) = failing_since.take() {
                    warn(format!(
                        "store {} is back after {:.1}s; pending writes saved",
                        store.describe(),
                        since.elapsed().as_secs_f64()
                    ));
                }
                retry_delay = Duration::from_millis(100);
                for (id, t) in &pending.tasks {
                    known.insert(id.clone(), t.state);
                }
                batches += 1;
                pending = Pending::default();
            }
            Err(e @ (swarm_store::StoreError::Fenced { .. } | swarm_store::StoreError::Conflict { .. })) => {
                note(Note::LeaseLost(e.to_string()));
                return;
            }
            Err(e) => {
                let since = *failing_since.get_or_insert_with(|| {
                    warn(format!("store write failed, keeping writes and retrying: {e}"));
                    std::time::Instant::now()
                });
                if !open {
                    // Shutting down: keep trying for a bounded time, then give up loudly.
                    if since.elapsed() > Duration::from_secs(30) {
                        warn(format!(
                            "giving up on store {}: {} task and {} event writes lost: {e}",
                            store.describe(),
                            pending.tasks.len(),
                            pending.events.len()
                        ));
                        return;
                    }
                    std::thread::sleep(retry_delay);
                }
                retry_delay = (retry_delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Blocks the signals swarm handles elsewhere (SIGCHLD, SIGINT, SIGTERM, SIGHUP) in the calling
/// thread, so they are delivered to the runtime's threads instead.
pub fn block_signals() {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGCHLD, Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
}
