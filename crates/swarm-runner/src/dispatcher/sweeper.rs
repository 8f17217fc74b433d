//! The sweeper: ends what finished attempts left running outside their process groups, on its
//! own thread. Requests arriving close together share one look at the process table (a look
//! costs about half a millisecond; thousands of short attempts must not pay it one by one), and
//! a leftover that ignores SIGTERM is killed after the grace period without holding up anything
//! else. The dispatcher hears back only about attempts that did leave something.

use crate::os::reaper::{self, Ended, Marker, Scope};
use nix::sys::signal::Signal;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long requests are gathered before one look at the process table.
const GATHER: Duration = Duration::from_millis(50);
/// How often dying leftovers are checked on.
const TICK: Duration = Duration::from_millis(10);

/// One finished attempt whose leftovers to end.
#[derive(Debug, Clone)]
pub struct Request {
    pub task: u32,
    pub attempt: u32,
    pub marker: Marker,
    /// How long leftovers get between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// The attempt's log: what was ended is noted at its end.
    pub log: Option<PathBuf>,
}

/// What the sweep of one attempt found and did (sent only when it found something).
#[derive(Debug, Clone)]
pub struct Swept {
    pub task: u32,
    pub attempt: u32,
    pub ended: Ended,
}

enum Msg {
    Sweep(Request),
    Flush(Sender<()>),
}

pub struct Sweeper {
    tx: Option<Sender<Msg>>,
    handle: Option<JoinHandle<()>>,
}

impl Sweeper {
    /// Starts the thread; `report` is called (on it) for every attempt that left processes.
    pub fn start(report: impl Fn(Swept) + Send + 'static) -> Sweeper {
        let (tx, rx) = channel();
        let handle = std::thread::Builder::new()
            .name("swarm-sweeper".into())
            .spawn(move || sweep_loop(rx, report))
            .expect("spawn the sweeper thread");
        Sweeper { tx: Some(tx), handle: Some(handle) }
    }

    pub fn sweep(&self, request: Request) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Sweep(request));
        }
    }

    /// Returns once every request made so far is done: its leftovers gone and reported.
    pub fn flush(&self) {
        let (done, wait) = channel();
        if self.tx.as_ref().is_some_and(|tx| tx.send(Msg::Flush(done)).is_ok()) {
            let _ = wait.recv();
        }
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.flush();
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// An attempt's leftovers being ended.
struct Dying {
    request: Request,
    targets: Vec<(u32, u64)>,
    deadline: Instant,
    killed: usize,
    sigkilled: bool,
    /// Looks for processes forked meanwhile.
    rounds: u32,
}

fn sweep_loop(rx: Receiver<Msg>, report: impl Fn(Swept)) {
    crate::os::process::block_signals();
    let mut queued: Vec<Request> = Vec::new();
    let mut flushes: Vec<Sender<()>> = Vec::new();
    let mut dying: Vec<Dying> = Vec::new();
    let mut gather_until: Option<Instant> = None;
    let mut open = true;
    while open || !queued.is_empty() || !dying.is_empty() {
        let wait = match gather_until {
            Some(t) => t.saturating_duration_since(Instant::now()),
            None if !dying.is_empty() => TICK,
            None => Duration::from_secs(3600),
        };
        let wait = if dying.is_empty() { wait } else { wait.min(TICK) };
        match rx.recv_timeout(wait) {
            Ok(Msg::Sweep(r)) => {
                queued.push(r);
                gather_until.get_or_insert_with(|| Instant::now() + GATHER);
            }
            Ok(Msg::Flush(done)) => {
                flushes.push(done);
                gather_until = Some(Instant::now());
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                open = false;
                gather_until = Some(Instant::now());
            }
        }
        if gather_until.is_some_and(|t| Instant::now() >= t) {
            gather_until = None;
            start_ending(std::mem::take(&mut queued), &mut dying);
        }
        dying.retain_mut(|d| !d.settle(&report));
        if queued.is_empty() && dying.is_empty() {
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        }
    }
}

/// One look at the process table for every queued request; what was found gets SIGTERM (or
/// SIGKILL when there is no grace) and joins the dying.
fn start_ending(requests: Vec<Request>, dying: &mut Vec<Dying>) {
    if requests.is_empty() {
        return;
    }
    let markers: Vec<Marker> = requests.iter().map(|r| r.marker.clone()).collect();
    for (request, targets) in requests.into_iter().zip(reaper::find_each(&markers, Scope::Mine)) {
        if targets.is_empty() {
            continue;
        }
        let now_kill = request.grace.is_zero();
        for t in &targets {
            if now_kill {
                reaper::signal(*t, Signal::SIGKILL);
            } else {
                reaper::signal(*t, Signal::SIGTERM);
                reaper::signal(*t, Signal::SIGCONT);
            }
        }
        let killed = if now_kill { targets.len() } else { 0 };
        let deadline = Instant::now() + if now_kill { STUCK } else { request.grace };
        dying.push(Dying { deadline, request, targets, killed, sigkilled: now_kill, rounds: 0 });
    }
}

/// How long a process may take to die after SIGKILL before it is reported rather than waited on
/// (one stuck in the kernel, say).
const STUCK: Duration = Duration::from_secs(5);

impl Dying {
    /// SIGKILL after the grace period; once all are gone, reap, note and report. Returns whether
    /// this attempt's leftovers are settled.
    fn settle(&mut self, report: &impl Fn(Swept)) -> bool {
        let left: Vec<(u32, u64)> =
            self.targets.iter().copied().filter(|t| reaper::still_there(*t)).collect();
        let overdue = Instant::now() >= self.deadline;
        if !left.is_empty() && !overdue {
            return false;
        }
        if !left.is_empty() && !self.sigkilled {
            for t in &left {
                reaper::signal(*t, Signal::SIGKILL);
            }
            self.killed += left.len();
            self.sigkilled = true;
            self.deadline = Instant::now() + STUCK;
            return false;
        }
        // What they forked while dying belongs to the attempt just the same (a few rounds).
        if self.rounds < 3 {
            self.rounds += 1;
            let more: Vec<(u32, u64)> =
                reaper::find_each(std::slice::from_ref(&self.request.marker), Scope::Mine)
                    .pop()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|t| !self.targets.contains(t))
                    .collect();
            if !more.is_empty() {
                for t in &more {
                    reaper::signal(*t, Signal::SIGKILL);
                }
                self.killed += more.len();
                self.targets.extend(more);
                self.deadline = Instant::now() + STUCK;
                return false;
            }
        }
        for (pid, _) in &self.targets {
            reaper::reap(*pid);
        }
        let ended = Ended { found: self.targets.len(), killed: self.killed };
        if let Some(log) = &self.request.log {
            note_in_log(log, ended);
        }
        report(Swept { task: self.request.task, attempt: self.request.attempt, ended });
        true
    }
}

fn note_in_log(log: &std::path::Path, ended: Ended) {
    use std::io::Write;
    let killed = if ended.killed > 0 { format!(" ({} needed SIGKILL)", ended.killed) } else { String::new() };
    let line = format!(
        "swarm: ended {} process(es) the attempt left running outside its process group{killed}\n",
        ended.found
    );
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
        let _ = f.write_all(line.as_bytes());
    }
}
