//! The orchestrator's side of `--workers`: an [`Executors`] that queues each job for the
//! namespace's workers and turns what the attempt's current owner says on the run's feed back
//! into the attempt's events. One reader of the feed per run; a stop the dispatcher asks for
//! becomes a request on the attempt (or drops it, when no live worker runs it).

use super::Said;
use crate::dispatcher::Executors;
use crate::executor::{AttemptLog, ExecutorContext};
use crate::job::{AttemptEvent, AttemptJob, Events, Evidence, StopRequest};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use swarm_core::scheduler::Failure;
use swarm_core::state::Reason;
use swarm_store::{FeedEntry, RedisStore, Stopped, StoreError, WorkItem};
use tokio::sync::watch;

/// How long the feed reader waits for news in one read.
const FEED_WAIT: Duration = Duration::from_millis(250);
/// A worker not heard of for this long is not counted as one that will take an attempt.
const NOBODY_AFTER: Duration = Duration::from_secs(10);
/// How long queuing an attempt is tried while the store is away (a Redis restart).
const ENQUEUE_FOR: Duration = Duration::from_secs(60);

/// A run's attempts, run by workers.
pub(crate) struct Queued {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Arc<RedisStore>,
    ns: String,
    run_id: String,
    /// The attempts queued and not yet ended, by (task id, attempt).
    open: Mutex<HashMap<(String, u32), Open>>,
    reader: std::sync::Once,
    /// Where the store is called from: one thread reads the feed, one queues and stops.
    io: super::io::IoThreads,
    /// The integration commit last pushed to the run's repository (`--repo`).
    pushed: Arc<Mutex<Option<String>>>,
    /// The queues this run looked for a live worker of.
    checked: Mutex<std::collections::HashSet<String>>,
    /// This host's executors: which agents speak the gateway; the repositories' locks, under
    /// which the run's branch is pushed and the workers' work merged.
    local: Arc<ExecutorContext>,
}

/// An attempt queued for the workers.
struct Open {
    task: u32,
    job: Arc<AttemptJob>,
    events: Events,
    /// The fencing token of the owner last heard (0: none yet).
    fence: u64,
    /// An owner working elsewhere (its own clone): its output lines are kept in the log here.
    log: Option<AttemptLog>,
    /// The dispatcher's stop request, for what runs here after the worker's end (a resolver).
    stop: watch::Receiver<StopRequest>,
}

impl Queued {
    pub(crate) fn new(queue: Arc<RedisStore>, ns: &str, run_id: &str, local: Arc<ExecutorContext>) -> Queued {
        let inner = Inner {
            queue,
            ns: ns.to_string(),
            run_id: run_id.to_string(),
            open: Mutex::default(),
            reader: std::sync::Once::new(),
            io: super::io::IoThreads::start("swarm-queue-io", 2),
            pushed: Arc::default(),
            checked: Mutex::default(),
            local,
        };
        Queued { inner: Arc::new(inner) }
    }
}

impl Executors for Queued {
    fn spawn(&self, job: AttemptJob, stop: watch::Receiver<StopRequest>, events: Events) {
        let inner = self.inner.clone();
        inner.reader.call_once(|| {
            tokio::spawn(read_feed(Arc::downgrade(&inner)));
        });
        let key = (job.task.id.clone(), job.attempt);
        let job = Arc::new(job);
        let open =
            Open { task: job.task_index, job: job.clone(), events, fence: 0, log: None, stop: stop.clone() };
        inner.open.lock().expect("open").insert(key.clone(), open);
        tokio::spawn(async move {
            let queued =
                match super::land::push_start(&inner.local.workspaces, &job, inner.pushed.clone()).await {
                    Ok(()) => enqueue(&inner, &job).await,
                    Err(e) => Err(e),
                };
            if queued.is_ok() {
                say_if_nobody_takes(&inner, &key, queue_of(&job)).await;
            }
            if let Err(message) = queued {
                inner.end(&key, Failure { reason: Reason::SpawnError, detail: Some(message) });
                return;
            }
            watch_stop(inner, key, stop).await;
        });
    }

    fn speaks_gateway(&self, agent: &str) -> bool {
        self.inner.local.speaks_gateway(agent)
    }
}

impl Inner {
    /// Ends the attempt here, with `failure`, if it is still open.
    fn end(&self, key: &(String, u32), failure: Failure) {
        let Some(open) = self.open.lock().expect("open").remove(key) else { return };
        let ev = AttemptEvent::Finished {
            exit_code: None,
            outcome: Err(failure),
            evidence: Box::<Evidence>::default(),
        };
        let _ = open.events.send((open.task, key.1, ev));
    }

    fn is_open(&self, key: &(String, u32)) -> bool {
        self.open.lock().expect("open").contains_key(key)
    }

    /// Hands what one entry of the feed says to its attempt: who runs it (once per owner), its
    /// events (process ids are of another host: left out), its end.
    fn deliver(&self, entry: FeedEntry) {
        let key = (entry.task.clone(), entry.attempt);
        let mut open = self.open.lock().expect("open");
        let Some(o) = open.get_mut(&key) else { return }; // an attempt of an earlier orchestrator
        if entry.fence < o.fence {
            return;
        }
        if entry.fence > o.fence {
            let host = (!entry.host.is_empty()).then(|| entry.host.clone());
            o.send(
                entry.attempt,
                AttemptEvent::Taken { worker: entry.worker.clone(), host, fence: entry.fence },
            );
            o.fence = entry.fence;
        }
        match entry.said {
            swarm_store::Said::Events(json) => match serde_json::from_str::<Said>(&json) {
                Ok(events) => events.into_iter().map(elsewhere).for_each(|ev| o.send(entry.attempt, ev)),
                Err(e) => o.send(
                    entry.attempt,
                    AttemptEvent::Output {
                        stream: swarm_core::event::Stream::Stderr,
                        line: format!("swarm: worker {} said something unreadable: {e}", entry.worker),
                    },
                ),
            },
            swarm_store::Said::End(json) => {
                let ev = match serde_json::from_str::<AttemptEvent>(&json) {
                    Ok(ev @ AttemptEvent::Finished { .. }) => elsewhere(ev),
                    other => {
                        let why = other.map_or_else(|e| e.to_string(), |_| "not an end".into());
                        let detail =
                            format!("worker {}'s end of the attempt is unreadable: {why}", entry.worker);
                        let failure = Failure { reason: Reason::SpawnError, detail: Some(detail) };
                        AttemptEvent::Finished {
                            exit_code: None,
                            outcome: Err(failure),
                            evidence: Box::default(),
                        }
                    }
                };
                if let Some(mut o) = open.remove(&key) {
                    if let Some(log) = o.log.as_mut() {
                        log.finish();
                    }
                    super::land::finish(self.local.clone(), o.job, (o.task, ev), o.events, o.stop);
                }
            }
        }
    }
}

impl Open {
    /// Hands `ev` to the dispatcher; the output of an owner working elsewhere also goes into
    /// the attempt's log here (an owner on this host writes that log itself).
    fn send(&mut self, attempt: u32, ev: AttemptEvent) {
        match &ev {
            AttemptEvent::Started { workdir, .. } if *workdir != self.job.workspace.workdir() => {
                self.log = Some(AttemptLog::new(self.job.log.clone(), self.job.limits.log_limit));
            }
            AttemptEvent::Output { line, .. } => {
                if let Some(log) = self.log.as_mut() {
                    log.write(format!("{line}\n").as_bytes());
                }
            }
            _ => {}
        }
        let _ = self.events.send((self.task, attempt, ev));
    }
}

/// An event of an attempt on another host, as this one may keep it: its process ids mean
/// nothing here (and must never be signalled here).
fn elsewhere(ev: AttemptEvent) -> AttemptEvent {
    match ev {
        AttemptEvent::Started { workdir, .. } => AttemptEvent::Started { pid: None, workdir },
        AttemptEvent::CheckStarted { .. } => AttemptEvent::CheckStarted { pgid: None },
        ev => ev,
    }
}

/// The first attempt of the run on a queue no live worker takes from (no worker runs its
/// agent with its labels) says so in the run's events: it waits until one comes.
async fn say_if_nobody_takes(inner: &Arc<Inner>, key: &(String, u32), on: String) {
    if !inner.checked.lock().expect("checked").insert(on.clone()) {
        return;
    }
    let (queue, ns, name) = (inner.queue.clone(), inner.ns.clone(), on.clone());
    let takers = inner.io.run(move || queue.takers(&ns, &name, NOBODY_AFTER)).await;
    if !matches!(takers, Some(Ok(t)) if t.is_empty()) {
        return;
    }
    let message = format!(
        "no live worker takes from queue `{on}` (its agent, and the labels the task needs) in namespace {}: the attempt waits for one (swarm worker --agents … --labels …)",
        inner.ns
    );
    if let Some(o) = inner.open.lock().expect("open").get_mut(key) {
        o.send(key.1, AttemptEvent::Warning { message });
    }
}

/// The queue `job` goes on: its agent's, or its agent's with its labels.
pub(crate) fn queue_of(job: &AttemptJob) -> String {
    swarm_store::queue_name(&job.task.agent, &job.task.labels)
}

/// Queues `job` for the workers of its agent, trying again while the store is away.
async fn enqueue(inner: &Arc<Inner>, job: &AttemptJob) -> Result<(), String> {
    let json = serde_json::to_string(job).map_err(|e| format!("cannot write the attempt's job: {e}"))?;
    let item = WorkItem {
        run_id: job.run_id.clone(),
        task: job.task.id.clone(),
        attempt: job.attempt,
        queue: queue_of(job),
        job: json,
    };
    let deadline = tokio::time::Instant::now() + ENQUEUE_FOR;
    loop {
        let (queue, ns, item) = (inner.queue.clone(), inner.ns.clone(), item.clone());
        match inner.io.run(move || queue.enqueue(&ns, &item)).await {
            Some(Ok(_)) => return Ok(()),
            // A refusal (a Redis ACL without a command swarm needs) will not pass with time.
            Some(Err(e))
                if tokio::time::Instant::now() < deadline && !matches!(e, StoreError::Auth { .. }) =>
            {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Some(Err(e)) => return Err(format!("cannot queue the attempt for the workers: {e}")),
            None => return Err("cannot queue the attempt for the workers: the store's thread is gone".into()),
        }
    }
}

/// Turns the dispatcher's stop request into one on the attempt: a live owner stops it; one no
/// live worker runs is dropped and ends here, cancelled. Asked again each second until the
/// attempt ends (its owner may die meanwhile).
async fn watch_stop(inner: Arc<Inner>, key: (String, u32), mut stop: watch::Receiver<StopRequest>) {
    if stop.changed().await.is_err() {
        return; // the dispatcher let go of the attempt
    }
    while inner.is_open(&key) {
        let kill = *stop.borrow() == StopRequest::Kill;
        let on = inner.open.lock().expect("open").get(&key).map(|o| queue_of(&o.job)).unwrap_or_default();
        let (queue, ns, run, k) = (inner.queue.clone(), inner.ns.clone(), inner.run_id.clone(), key.clone());
        let asked = inner.io.run(move || queue.stop_attempt(&ns, &run, (&k.0, k.1, &on), kill)).await;
        if let Some(Ok(Stopped::Dropped)) = asked {
            let detail = "run cancelled before a live worker ran it".to_string();
            inner.end(&key, Failure { reason: Reason::Cancelled, detail: Some(detail) });
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            changed = stop.changed() => if changed.is_err() { return },
        }
    }
}

/// Reads the run's feed for as long as the run holds its executors, handing each entry to
/// its attempt; a store that went away is read again once it is back.
async fn read_feed(inner: Weak<Inner>) {
    let mut after = "0-0".to_string();
    // Held for one read at a time (at most FEED_WAIT): the run's end lets go of it.
    while let Some(strong) = inner.upgrade() {
        let (queue, ns, run, from) =
            (strong.queue.clone(), strong.ns.clone(), strong.run_id.clone(), after.clone());
        match strong.io.run(move || queue.feed(&ns, &run, &from, 512, Some(FEED_WAIT))).await {
            Some(Ok(entries)) => {
                for entry in entries {
                    after = entry.id.clone();
                    strong.deliver(entry);
                }
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
