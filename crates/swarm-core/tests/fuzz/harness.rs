//! The fuzz loop: inputs from a proptest strategy, each run on a worker thread under a deadline,
//! panics caught and counted (not shrunk: a campaign keeps going and saves what it found).

use proptest::strategy::{BoxedStrategy, Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// One thing to fuzz: inputs, and a check that panics on a bug or returns `Err` when a property
/// (e.g. "every error carries a location within the input") does not hold.
pub struct Target {
    pub name: &'static str,
    pub inputs: fn() -> BoxedStrategy<Vec<u8>>,
    pub check: fn(&[u8]) -> Result<(), String>,
}

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub cases: u64,
    pub panics: u64,
    pub hangs: u64,
    /// Inputs on which a property did not hold (without a panic).
    pub violations: u64,
    pub elapsed: Duration,
    /// The first few findings: what went wrong, and where the input was saved (if anywhere).
    pub findings: Vec<String>,
}

impl Stats {
    pub fn clean(&self) -> bool {
        self.panics == 0 && self.hangs == 0 && self.violations == 0
    }

    pub fn line(&self, name: &str) -> String {
        format!(
            "{name:<14} {:>9} cases  {:>3} panics  {:>3} hangs  {:>3} bad errors  {:>8.1}s",
            self.cases,
            self.panics,
            self.hangs,
            self.violations,
            self.elapsed.as_secs_f64()
        )
    }
}

pub struct Settings {
    pub cases: u64,
    pub seed: u64,
    /// A case still running after this is a hang.
    pub deadline: Duration,
    /// Where to save inputs that panicked, hung or broke a property.
    pub save_to: Option<PathBuf>,
    /// Stop after this many hangs (each leaves a thread spinning).
    pub max_hangs: u64,
}

enum Outcome {
    Ok,
    Violation(String),
    Panic(String),
}

thread_local! {
    static IN_WORKER: Cell<bool> = const { Cell::new(false) };
}
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Panics on worker threads are recorded quietly (a campaign may see many); any other thread's
/// panic (a failing assertion in a test) is printed as usual.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_WORKER.with(Cell::get) {
                let at = info.location().map(|l| format!(" at {l}")).unwrap_or_default();
                let msg = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{msg}{at}"));
            } else {
                default(info);
            }
        }));
    });
}

struct Worker {
    send: Sender<Vec<u8>>,
    recv: Receiver<Outcome>,
}

fn worker(check: fn(&[u8]) -> Result<(), String>) -> Worker {
    let (send, inputs) = channel::<Vec<u8>>();
    let (results, recv) = channel();
    std::thread::Builder::new()
        .name("fuzz-worker".into())
        // Debug builds of the parsers use more stack than the default 2 MiB on deep inputs; the
        // binary's main thread has 8 MiB, so this is what a user's `swarm` gets.
        .stack_size(8 << 20)
        .spawn(move || {
            IN_WORKER.with(|w| w.set(true));
            for input in inputs {
                let outcome = match catch_unwind(AssertUnwindSafe(|| check(&input))) {
                    Ok(Ok(())) => Outcome::Ok,
                    Ok(Err(why)) => Outcome::Violation(why),
                    Err(_) => Outcome::Panic(
                        LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default(),
                    ),
                };
                if results.send(outcome).is_err() {
                    return;
                }
            }
        })
        .expect("spawn fuzz worker");
    Worker { send, recv }
}

fn rng(seed: u64, target: &str) -> TestRng {
    // Each target gets its own stream from the one seed.
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    for (i, b) in target.bytes().enumerate() {
        bytes[8 + i % 24] ^= b;
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

pub fn run(target: &Target, s: &Settings) -> Stats {
    install_panic_hook();
    let started = Instant::now();
    let mut runner = TestRunner::new_with_rng(Config::default(), rng(s.seed, target.name));
    let strategy = (target.inputs)();
    let mut stats = Stats::default();
    let mut w = worker(target.check);
    for case in 0..s.cases {
        let input = match strategy.new_tree(&mut runner) {
            Ok(tree) => tree.current(),
            Err(e) => panic!("{}: cannot generate an input: {e}", target.name),
        };
        w.send.send(input.clone()).expect("fuzz worker alive");
        stats.cases += 1;
        let what = match w.recv.recv_timeout(s.deadline) {
            Ok(Outcome::Ok) => continue,
            Ok(Outcome::Violation(why)) => {
                stats.violations += 1;
                format!("bad error: {why}")
            }
            Ok(Outcome::Panic(msg)) => {
                stats.panics += 1;
                format!("panic: {msg}")
            }
            Err(RecvTimeoutError::Timeout) => {
                stats.hangs += 1;
                w = worker(target.check); // the old one is left to finish (or spin) alone
                format!("hang: still running after {:?}", s.deadline)
            }
            Err(RecvTimeoutError::Disconnected) => {
                stats.panics += 1;
                w = worker(target.check);
                "the worker thread died".to_string()
            }
        };
        let saved = s.save_to.as_ref().map(|dir| {
            let _ = std::fs::create_dir_all(dir);
            let path = dir.join(format!("{}-{}-{case}.bin", target.name, s.seed));
            let _ = std::fs::write(&path, &input);
            format!(" (input: {})", path.display())
        });
        if stats.findings.len() < 10 {
            let shown = String::from_utf8_lossy(&input[..input.len().min(300)]).into_owned();
            stats.findings.push(format!(
                "{} case {case}: {what}{}\n    input ({} bytes): {shown:?}",
                target.name,
                saved.unwrap_or_default(),
                input.len()
            ));
        }
        if stats.hangs >= s.max_hangs {
            break;
        }
    }
    stats.elapsed = started.elapsed();
    stats
}
