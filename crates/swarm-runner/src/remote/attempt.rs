//! One attempt a worker took, to its end: the job run by this host's executor, its events said
//! on the run's feed in batches, its lease renewed, a stop request heard, its end reported once
//! (or the attempt handed back, or given up when another worker owns it now).

use super::gateway::Granted;
use super::worker::{blocking, Shared, WorkerNote};
use super::Said;
use crate::dispatcher::sweeper::Request;
use crate::job::{AttemptEvent, AttemptJob, StopRequest};
use crate::os::reaper::Marker;
use std::sync::Arc;
use std::time::Duration;
use swarm_core::scheduler::Failure;
use swarm_core::state::Reason;
use swarm_store::{Fenced, Lease, StoreError};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, sleep_until, Instant};

/// Events are sent together when they come this close.
const BATCH: Duration = Duration::from_millis(50);

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
pub(super) async fn attempt(s: &Arc<Shared>, lease: Lease) {
    let item = lease.item.clone();
    let marker = Marker::attempt(&item.run_id, &item.task, item.attempt);
    let (job, granted) = match prepare(s, &lease).await {
        Ok(ready) => ready,
        Err(failure) => {
            let end =
                AttemptEvent::Finished { exit_code: None, outcome: Err(failure), evidence: Box::default() };
            let mut owned = Owned::new(lease, watch::channel(StopRequest::None).0, s.spec.lease);
            return finish(s, &mut owned, end).await;
        }
    };
    // What this worker's gateway says of the attempt's requests (nothing, without a grant).
    let (token, mut gateway, _no_gateway) = match granted {
        Some(g) => (Some(g.token), g.events, None),
        None => {
            let (tx, rx) = mpsc::unbounded_channel();
            (None, rx, Some(tx))
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
                    while let Ok(event) = gateway.try_recv() {
                        owned.hold(AttemptEvent::Gateway { event });
                    }
                    finish(s, &mut owned, ev).await;
                    break;
                }
                Some((_, _, ev)) => owned.hold(ev),
                None => break,
            },
            Some(event) = gateway.recv() => owned.hold(AttemptEvent::Gateway { event }),
            _ = sleep_until(say_at), if owned.say_at.is_some() => say(s, &mut owned).await,
            _ = sleep_until(owned.renew_at) => renew(s, &mut owned).await,
            changed = hand_back.changed(), if !owned.gone => {
                if changed.is_ok() && *hand_back.borrow() {
                    give_back(s, &mut owned).await;
                }
            }
        }
    }
    if let Some(token) = token {
        s.gateway.revoke(&token);
    }
    s.guard.close(&marker);
    // What the agent left behind here goes with it (off the attempt's path: one look at the
    // process table serves the attempts that end close together).
    let (task, attempt) = (0, item.attempt);
    s.sweeper.sweep(Request { task, attempt, marker, grace, log: None });
}

/// The lease's job as it runs here (in this host's clone, on this worker's gateway), or why it
/// cannot.
async fn prepare(s: &Shared, lease: &Lease) -> Result<(AttemptJob, Option<Granted>), Failure> {
    let job = readable(lease)?;
    let mut job = super::place::place(job, &s.spec.clones, lease.fence).await?;
    let granted = s.gateway.take_over(&mut job, &lease.ns).await?;
    Ok((job, granted))
}

/// The lease's job, or why it cannot be read.
fn readable(lease: &Lease) -> Result<AttemptJob, Failure> {
    let job: AttemptJob = serde_json::from_str(&lease.item.job).map_err(|e| Failure {
        reason: Reason::SpawnError,
        detail: Some(format!("the attempt's job is unreadable: {e}")),
    })?;
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
    let answer = blocking(s, move |s| s.queue.say(&s.spec.name, &s.host, &lease, &json)).await;
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
    let answer = blocking(s, move |s| s.queue.renew(&s.spec.name, &lease, every)).await;
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
            s.queue.finish_saying(&s.spec.name, &lease, said, &outcome)
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
    let released = blocking(s, move |s| s.queue.release(&s.spec.name, &lease)).await;
    if matches!(released, Ok(Fenced::Accepted { .. })) {
        let item = &owned.lease.item;
        let _ = s.notes.send(WorkerNote::HandedBack {
            run_id: item.run_id.clone(),
            task: item.task.clone(),
            attempt: item.attempt,
        });
    }
}
