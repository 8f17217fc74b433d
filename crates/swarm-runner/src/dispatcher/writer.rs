//! The store writer: a thread that batches the dispatcher's writes into transactions. When the
//! store fails, writes are kept and retried with backoff, so a store that goes away for a while
//! loses nothing; the dispatcher never blocks on it. When the store is lost for good (the run is
//! gone from it, its file was replaced, another orchestrator holds it, or it stays away after the
//! run ended), the writer says so and counts every write the store never got.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use swarm_core::backoff::Backoff;
use swarm_core::event::Event;
use swarm_core::report::{RunRecord, StoreFailure, TaskReport};
use swarm_core::state::{Reason, TaskState};
use swarm_store::{Batch, Store, StoreError};

pub enum Write {
    Run(RunRecord),
    Task(TaskReport),
    Event(Event),
}

pub struct Writer {
    /// `None` once closed.
    tx: Option<Sender<Write>>,
    handle: Option<JoinHandle<Closed>>,
    /// Writes sent after the writer stopped (its lease was lost): the store never gets them.
    dropped: AtomicU64,
}

/// How the writer ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Closed {
    /// Writes (task updates, events, run updates) the store never got.
    pub lost_writes: u64,
    /// Why the writer stopped before storing everything: the lease was lost, or the store
    /// stayed away past the give-up time.
    pub error: Option<String>,
}

impl Closed {
    /// The report's account of a store that failed the run, if it did; `tasks` are the run's
    /// final task documents.
    pub fn failure(&self, tasks: &[TaskReport]) -> Option<StoreFailure> {
        if self.lost_writes == 0 && self.error.is_none() {
            return None;
        }
        let mut message = self.error.clone().unwrap_or_else(|| "the store lost writes".into());
        let lost_lease = tasks.iter().filter(|t| t.reason == Some(Reason::LeaseLost)).count();
        if lost_lease > 0 {
            message.push_str(&format!("; {lost_lease} unfinished task(s) failed with lease_lost"));
        }
        let n = self.lost_writes;
        message.push_str(&format!(
            "; {n} write{} not stored (the report on disk has the whole run)",
            if n == 1 { " was" } else { "s were" }
        ));
        Some(StoreFailure { message, lost_writes: n })
    }
}

impl Writer {
    /// Every write carries `lease`, which the writer renews well before `crate::os::lease::LEASE_TTL` runs out.
    /// `note` is called (from the writer thread) when the store fails, recovers, or the lease is
    /// lost. Once closed, writes the store refuses are retried for `give_up_after`, no longer.
    pub fn start(
        store: Arc<dyn Store>,
        run_id: String,
        lease: String,
        known: HashMap<String, TaskState>,
        give_up_after: Duration,
        note: impl Fn(Note) + Send + 'static,
    ) -> Writer {
        let (tx, rx) = channel();
        let handle = std::thread::Builder::new()
            .name("swarm-store-writer".into())
            .spawn(move || write_loop(store, run_id, lease, known, rx, give_up_after, note))
            .expect("spawn store writer thread");
        Writer { tx: Some(tx), handle: Some(handle), dropped: AtomicU64::new(0) }
    }

    pub fn send(&self, w: Write) {
        if let Some(tx) = &self.tx {
            if tx.send(w).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Takes no more writes, waits until the ones sent are stored (or given up on) and says
    /// what the store never got. Later calls return the same.
    pub fn close(&mut self) -> Closed {
        self.tx = None;
        let mut closed = match self.handle.take() {
            Some(h) => h.join().unwrap_or_else(|_| Closed {
                lost_writes: 0,
                error: Some("the store writer thread panicked".into()),
            }),
            None => Closed::default(),
        };
        closed.lost_writes += self.dropped.swap(0, Ordering::Relaxed);
        closed
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

#[derive(Default)]
struct Pending {
    run: Option<RunRecord>,
    tasks: HashMap<String, TaskReport>,
    order: Vec<String>,
    events: Vec<Event>,
    /// Writes gathered here (a task written twice counts twice).
    writes: u64,
}

impl Pending {
    fn add(&mut self, w: Write) {
        self.writes += 1;
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

/// How long the writer gathers writes before a transaction.
const LINGER: Duration = Duration::from_millis(3);

pub enum Note {
    Warning(String),
    LeaseLost(String),
}

/// Why a store error means this writer lost the run for good, if it does: another orchestrator
/// holds the lease or changed the run, or the run (or the store's file) is gone.
fn lease_lost(e: &StoreError, run_id: &str, store: &dyn Store) -> Option<String> {
    match e {
        StoreError::Fenced { .. } | StoreError::Conflict { .. } | StoreError::Replaced { .. } => {
            Some(e.to_string())
        }
        StoreError::NoSuchRun(_) => Some(format!(
            "run `{run_id}` is no longer in the store {} (was it emptied, flushed, or restarted without persistence?)",
            store.describe()
        )),
        _ => None,
    }
}

/// After the run ended, the store failing for `give_up_after`: what is lost, said loudly.
fn give_up(
    closed: std::time::Instant,
    give_up_after: Duration,
    pending: &Pending,
    e: &StoreError,
    store: &dyn Store,
) -> Option<Closed> {
    (closed.elapsed() >= give_up_after).then(|| Closed {
        lost_writes: pending.writes,
        error: Some(format!(
            "gave up on store {} {:.1}s after the run ended: {e}",
            store.describe(),
            closed.elapsed().as_secs_f64()
        )),
    })
}

/// Waits up to `wait` for writes, then lingers a moment so a burst of transitions becomes one
/// transaction (one round trip on Redis; readers in other processes see changes a few
/// milliseconds later). Whether the channel is still open.
fn gather(rx: &Receiver<Write>, pending: &mut Pending, wait: Duration) -> bool {
    match rx.recv_timeout(wait) {
        Ok(w) => pending.add(w),
        Err(RecvTimeoutError::Timeout) => return true,
        Err(RecvTimeoutError::Disconnected) => return false,
    }
    let linger_until = std::time::Instant::now() + LINGER;
    loop {
        let left = linger_until.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(w) => pending.add(w),
            Err(RecvTimeoutError::Timeout) => return true,
            Err(RecvTimeoutError::Disconnected) => return false,
        }
    }
}

fn write_loop(
    store: Arc<dyn Store>,
    run_id: String,
    lease: String,
    mut known: HashMap<String, TaskState>,
    rx: Receiver<Write>,
    give_up_after: Duration,
    note: impl Fn(Note),
) -> Closed {
    // Child processes exit all the time; their SIGCHLD must not interrupt this thread's store
    // I/O (a socket read with a timeout is not restarted after a signal).
    crate::os::process::block_signals();
    let warn = |m: String| note(Note::Warning(m));
    // The run is lost to this writer: whatever it holds or is still sent is never stored.
    let lost = |message: String, pending: &Pending| {
        note(Note::LeaseLost(message.clone()));
        Closed { lost_writes: pending.writes + rx.try_iter().count() as u64, error: Some(message) }
    };
    // Numbers this writer's batches; a retried batch keeps its number, so a store that did
    // apply it (only the answer was lost) recognises the replay.
    let mut batches: u64 = 0;
    let mut renewed = std::time::Instant::now();
    let mut pending = Pending::default();
    let mut failing_since: Option<std::time::Instant> = None;
    let mut closed_at: Option<std::time::Instant> = None;
    // Reconnects back off like task retries do, from 100 ms up to 5 s.
    let backoff = Backoff {
        initial: Duration::from_millis(100),
        factor: 2.0,
        max: Duration::from_secs(5),
        jitter: 0.25,
    };
    let mut delays = backoff.iter(fastrand::u64(..));
    let mut retry_delay = backoff.initial;
    let mut open = true;
    while open || !pending.is_empty() {
        if open {
            // Block for work; while writes are pending (the store is failing), wake up to retry.
            let wait = if pending.is_empty() { crate::os::lease::LEASE_TTL / 6 } else { retry_delay };
            open = gather(&rx, &mut pending, wait);
            if !open {
                closed_at = Some(std::time::Instant::now());
            }
        }
        if renewed.elapsed() >= crate::os::lease::LEASE_TTL / 6 {
            match store.acquire_lease(&run_id, &lease, crate::os::lease::LEASE_TTL, None) {
                Ok(()) => renewed = std::time::Instant::now(),
                Err(e) => {
                    if let Some(message) = lease_lost(&e, &run_id, &*store) {
                        return lost(message, &pending);
                    }
                    // Otherwise the store is away; the write below reports it.
                }
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
                delays = backoff.iter(fastrand::u64(..));
                retry_delay = backoff.initial;
                for (id, t) in &pending.tasks {
                    known.insert(id.clone(), t.state);
                }
                batches += 1;
                pending = Pending::default();
            }
            Err(e) => {
                if let Some(message) = lease_lost(&e, &run_id, &*store) {
                    return lost(message, &pending);
                }
                failing_since.get_or_insert_with(|| {
                    warn(format!("store write failed, keeping writes and retrying: {e}"));
                    std::time::Instant::now()
                });
                if let Some(closed) = closed_at {
                    // Shutting down: keep trying for a bounded time, then give up loudly.
                    if let Some(given_up) = give_up(closed, give_up_after, &pending, &e, &*store) {
                        return given_up;
                    }
                    std::thread::sleep(retry_delay.min(give_up_after.saturating_sub(closed.elapsed())));
                }
                retry_delay = delays.next().unwrap_or(backoff.max);
            }
        }
    }
    Closed::default()
}
