//! A live run as a face holds it: its id, a way to stop it, its public events, its end. Each
//! run has its own channels, so runs started in one process never see each other's events.

use std::sync::{Arc, Mutex};
use swarm_core::event::Event;
use swarm_core::report::RunReport;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What a face asks of a running dispatcher.
#[derive(Debug)]
pub(crate) enum Control {
    RetryDue(u32),
    /// Stop gracefully; the text says who asked (`ctrl-c`, `swarm cancel`, `mcp`, …).
    Cancel(String),
    /// Stop now: SIGKILL every running attempt.
    Kill,
}

/// Stops a run; cheap to clone and to hand to a signal handler or a server.
#[derive(Debug, Clone)]
pub struct Canceller {
    tx: mpsc::UnboundedSender<Control>,
}

impl Canceller {
    pub(crate) fn new(tx: mpsc::UnboundedSender<Control>) -> Canceller {
        Canceller { tx }
    }

    /// Graceful: nothing new starts, running attempts get SIGTERM (SIGKILL after the grace
    /// period). `source` is recorded in the run's `cancel_requested` event.
    pub fn cancel(&self, source: &str) {
        let _ = self.tx.send(Control::Cancel(source.into()));
    }

    /// At once: every running attempt gets SIGKILL.
    pub fn kill(&self) {
        let _ = self.tx.send(Control::Kill);
    }

    /// Whether its run is over (its dispatcher is gone).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Fans the run's public events out to every subscriber, in order; a subscriber that went
/// away is dropped.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventBus {
    subscribers: Arc<Mutex<Vec<mpsc::UnboundedSender<Arc<Event>>>>>,
}

impl EventBus {
    pub(crate) fn subscribe(&self) -> mpsc::UnboundedReceiver<Arc<Event>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.lock().expect("subscribers").push(tx);
        rx
    }

    pub(crate) fn publish(&self, ev: Event) {
        let ev = Arc::new(ev);
        self.subscribers.lock().expect("subscribers").retain(|s| s.send(ev.clone()).is_ok());
    }

    /// Ends every subscription (their streams end once they read what was sent).
    pub(crate) fn close(&self) {
        self.subscribers.lock().expect("subscribers").clear();
    }
}

/// A run started or resumed by the [`Engine`](crate::Engine).
pub struct RunHandle {
    run_id: String,
    canceller: Canceller,
    bus: EventBus,
    first: Option<mpsc::UnboundedReceiver<Arc<Event>>>,
    join: JoinHandle<RunReport>,
}

impl RunHandle {
    pub(crate) fn new(
        run_id: String,
        canceller: Canceller,
        bus: EventBus,
        first: mpsc::UnboundedReceiver<Arc<Event>>,
        join: JoinHandle<RunReport>,
    ) -> RunHandle {
        RunHandle { run_id, canceller, bus, first: Some(first), join }
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn canceller(&self) -> Canceller {
        self.canceller.clone()
    }

    /// Every event of the run from its very first (once; later calls get `None`).
    pub fn events(&mut self) -> Option<mpsc::UnboundedReceiver<Arc<Event>>> {
        self.first.take()
    }

    /// The run's events from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Arc<Event>> {
        self.bus.subscribe()
    }

    pub(crate) fn bus(&self) -> EventBus {
        self.bus.clone()
    }

    /// Waits for the run to end; its final report.
    pub async fn wait(self) -> RunReport {
        drop(self.first);
        self.join.await.expect("the dispatcher task does not panic")
    }
}
