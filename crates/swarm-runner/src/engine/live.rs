//! The runs this process drives: their cancellers and event buses, so the engine stops a
//! local run directly and hears its changes as they happen instead of polling the store.

use super::handle::{Canceller, EventBus};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use swarm_core::event::Event;
use tokio::sync::mpsc;

#[derive(Default)]
pub(crate) struct LiveRuns {
    runs: Mutex<HashMap<String, (Canceller, EventBus)>>,
}

impl LiveRuns {
    pub(crate) fn add(&self, run_id: &str, canceller: Canceller, bus: EventBus) {
        let mut runs = self.runs.lock().expect("live runs");
        // Runs that ended since: their dispatchers are gone.
        runs.retain(|_, (c, _)| !c.is_closed());
        runs.insert(run_id.to_string(), (canceller, bus));
    }

    /// The canceller of `run_id`, while this process drives it.
    pub(crate) fn canceller(&self, run_id: &str) -> Option<Canceller> {
        let runs = self.runs.lock().expect("live runs");
        runs.get(run_id).map(|(c, _)| c.clone()).filter(|c| !c.is_closed())
    }

    /// `run_id`'s events from now on, while this process drives it.
    pub(crate) fn subscribe(&self, run_id: &str) -> Option<Subscription> {
        let runs = self.runs.lock().expect("live runs");
        let (c, bus) = runs.get(run_id)?;
        (!c.is_closed()).then(|| Subscription(bus.subscribe()))
    }

    /// The runs this process drives now.
    pub(crate) fn ids(&self) -> Vec<String> {
        let runs = self.runs.lock().expect("live runs");
        runs.iter().filter(|(_, (c, _))| !c.is_closed()).map(|(id, _)| id.clone()).collect()
    }
}

/// A run's events, for a blocking caller.
pub(crate) struct Subscription(mpsc::UnboundedReceiver<Arc<Event>>);

impl Subscription {
    /// The next event within `wait`; `None` when none came or the run's bus closed (it ended).
    pub(crate) fn recv_timeout(&mut self, wait: Duration) -> Option<Arc<Event>> {
        let deadline = Instant::now() + wait;
        loop {
            match self.0.try_recv() {
                Ok(ev) => return Some(ev),
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
                Err(mpsc::error::TryRecvError::Empty) if Instant::now() >= deadline => return None,
                Err(mpsc::error::TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}
