//! Threads for the queue's store calls that never take a signal. A socket read with a timeout
//! fails with EINTR when a signal handler runs on its thread, even under SA_RESTART
//! (signal(7)); a worker reaps children all the time (SIGCHLD), and a Redis reply lost that way
//! is a delivery lost (found by bench/workers: attempts delivered to a worker and never run).
//! The runtime's own threads keep their signals: children inherit the mask of the thread that
//! spawns them, and an agent must hear SIGTERM.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// A few threads, signals blocked, running blocking calls for async code.
pub(crate) struct IoThreads {
    jobs: Mutex<Sender<Job>>,
}

impl IoThreads {
    pub(crate) fn start(name: &str, n: usize) -> IoThreads {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..n.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || serve(&rx));
            spawned.expect("spawn an I/O thread");
        }
        IoThreads { jobs: Mutex::new(tx) }
    }

    /// Runs `f` on one of the threads; its result.
    pub(crate) async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs.lock().expect("io jobs").send(job).ok()?;
        rx.await.ok()
    }
}

fn serve(rx: &Mutex<Receiver<Job>>) {
    crate::os::process::block_signals();
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return, // every sender is gone
        }
    }
}
