//! Hooks (`[hooks]` in swarm.toml): shell commands run when a task ends, fails, or the run ends,
//! and a webhook that receives every such event as a JSON POST. Each hook runs on a background
//! thread and is bounded by its timeout; its outcome (ok or not) goes to a callback, so a hook
//! that fails or hangs becomes a warning and never holds up the run.

mod command;
mod webhook;

use crate::os::net::origin;
use command::run_command;
use serde_json::{json, Value};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use swarm_core::backoff::Backoff;
use swarm_core::config::HooksConfig;
use webhook::{longest_backoff, post};

/// Hook commands and webhook calls running at once; more wait their turn (on their own
/// thread, so the caller never waits).
const MAX_RUNNING: usize = 8;
/// Bytes of a failed command's stderr kept for its warning.
const STDERR_TAIL: usize = 2048;
/// Longer payloads are not put in `SWARM_HOOK_PAYLOAD`: one environment string must stay under
/// Linux's 128 KiB `MAX_ARG_STRLEN`, or the hook could not even start. stdin always has it.
const MAX_ENV_PAYLOAD: usize = 120 * 1024;
/// How long a finished hook's stderr may stay open (held by something it left running elsewhere)
/// before the warning is written with what was read so far.
const STDERR_DRAIN: Duration = Duration::from_millis(500);
/// Delay before webhook retry n: 0.5s, 1s, 2s, … up to 5s, ±25%.
const WEBHOOK_BACKOFF: Backoff =
    Backoff { initial: Duration::from_millis(500), factor: 2.0, max: Duration::from_secs(5), jitter: 0.25 };

/// Which moment a hook marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookKind {
    /// A task reached a final state (any of them); `on_task_end`.
    TaskEnd,
    /// A task failed or was blocked; `on_failure`.
    Failure,
    /// The run ended; `on_run_end`.
    RunEnd,
}

impl HookKind {
    /// The name hooks see: `SWARM_HOOK_EVENT` and the webhook's `"hook"` field.
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::TaskEnd => "task_end",
            HookKind::Failure => "failure",
            HookKind::RunEnd => "run_end",
        }
    }

    /// The `[hooks]` key of its command.
    pub fn config_key(self) -> &'static str {
        match self {
            HookKind::TaskEnd => "on_task_end",
            HookKind::Failure => "on_failure",
            HookKind::RunEnd => "on_run_end",
        }
    }
}

impl fmt::Display for HookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookTarget {
    /// The shell command, as configured.
    Command(String),
    /// The webhook's origin (`https://host:port`): the rest of a URL often holds a secret.
    Webhook(String),
}

/// How one hook ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookResult {
    /// Exit code 0, or a 2xx answer.
    Ok,
    /// The command ended unsuccessfully: an exit `code`, or killed by `signal`.
    Exited { code: Option<i32>, signal: Option<i32>, stderr_tail: String },
    /// Still running at the timeout: its whole process group was killed.
    TimedOut { after: Duration },
    /// Stopped (its whole process group killed) because the run was cancelled and ended.
    Aborted,
    /// The command could not be started.
    SpawnFailed { error: String },
    /// Every try failed (connection error, timeout or non-2xx answer); `error` is the last one.
    WebhookFailed { error: String },
}

/// One hook's outcome, as reported to the callback given to [`Hooks::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOutcome {
    pub kind: HookKind,
    pub target: HookTarget,
    pub result: HookResult,
    /// Requests made (webhook); 1 for a command.
    pub tries: u32,
    pub elapsed: Duration,
}

impl HookOutcome {
    pub fn is_ok(&self) -> bool {
        self.result == HookResult::Ok
    }
}

/// A one-line message, fit for a warning.
impl fmt::Display for HookOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            HookTarget::Command(cmd) => write!(f, "hook {} `{cmd}`", self.kind.config_key())?,
            HookTarget::Webhook(url) => write!(f, "webhook {url} ({})", self.kind)?,
        }
        let secs = self.elapsed.as_secs_f64();
        match &self.result {
            HookResult::Ok if self.tries > 1 => {
                write!(f, " succeeded after {} tries ({secs:.1}s)", self.tries)
            }
            HookResult::Ok => write!(f, " succeeded ({secs:.1}s)"),
            HookResult::Exited { code, signal, stderr_tail } => {
                match (code, signal) {
                    (Some(code), _) => write!(f, " exited with code {code}")?,
                    (None, Some(sig)) => write!(f, " was killed by signal {sig}")?,
                    (None, None) => write!(f, " failed")?,
                }
                if !stderr_tail.is_empty() {
                    write!(f, ": {stderr_tail}")?;
                }
                Ok(())
            }
            HookResult::Aborted => write!(f, " was stopped: the run was cancelled"),
            HookResult::TimedOut { after } => {
                write!(f, " timed out after {} and was killed", swarm_core::duration::format(*after))
            }
            HookResult::SpawnFailed { error } => write!(f, " could not start: {error}"),
            HookResult::WebhookFailed { error } => {
                let tries = if self.tries == 1 { "try" } else { "tries" };
                write!(f, " failed after {} {tries} ({secs:.1}s): {error}", self.tries)
            }
        }
    }
}

type Report = dyn Fn(HookOutcome) + Send + Sync;

/// The configured hooks. Cheap to clone; clones share the callback and the running count.
#[derive(Clone)]
pub struct Hooks {
    on_task_end: Option<String>,
    on_failure: Option<String>,
    on_run_end: Option<String>,
    timeout: Duration,
    webhook: Option<Webhook>,
    dir: Option<PathBuf>,
    report: Arc<Report>,
    running: Arc<Running>,
    /// Set when the run gives up on its hooks: running commands are killed, waiting ones skipped.
    aborted: Arc<AtomicBool>,
}

#[derive(Debug, Clone)]
struct Webhook {
    url: String,
    origin: String,
    timeout: Duration,
    retries: u32,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("on_task_end", &self.on_task_end)
            .field("on_failure", &self.on_failure)
            .field("on_run_end", &self.on_run_end)
            .field("timeout", &self.timeout)
            .field("webhook", &self.webhook.as_ref().map(|w| &w.origin))
            .finish_non_exhaustive()
    }
}

impl Hooks {
    /// `report` receives every hook's outcome, on the hook's own thread.
    pub fn new(config: &HooksConfig, report: impl Fn(HookOutcome) + Send + Sync + 'static) -> Hooks {
        let command = |c: &Option<String>| c.clone().filter(|c| !c.trim().is_empty());
        Hooks {
            on_task_end: command(&config.on_task_end),
            on_failure: command(&config.on_failure),
            on_run_end: command(&config.on_run_end),
            timeout: config.timeout(),
            webhook: config.webhook.as_ref().map(|url| Webhook {
                url: url.clone(),
                origin: origin(url),
                timeout: config.webhook_timeout(),
                retries: config.webhook_retries(),
            }),
            dir: None,
            report: Arc::new(report),
            running: Arc::new(Running::default()),
            aborted: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Hook commands run in `dir` (default: the current directory).
    pub fn in_dir(mut self, dir: impl Into<PathBuf>) -> Hooks {
        self.dir = Some(dir.into());
        self
    }

    /// Whether firing `kind` would run anything (so callers can skip building the payload).
    pub fn is_configured(&self, kind: HookKind) -> bool {
        self.command(kind).is_some() || self.webhook.is_some()
    }

    /// The longest one fired hook can take once started: the command timeout, or every webhook
    /// try timing out plus the delays between them, whichever is longer.
    pub fn max_duration(&self) -> Duration {
        let webhook = self.webhook.as_ref().map_or(Duration::ZERO, |w| {
            let delays: Duration = (1..=w.retries).map(longest_backoff).sum();
            w.timeout * (w.retries + 1) + delays
        });
        // A killed command may take a moment to be reaped and reported.
        (self.timeout + Duration::from_secs(1)).max(webhook)
    }

    /// Runs the hook command for `kind` (if configured) and calls the webhook (if configured),
    /// each on its own thread; returns at once.
    pub fn fire(&self, kind: HookKind, payload: Value) -> HookHandle {
        let mut threads = Vec::new();
        let json = Arc::new(serde_json::to_string(&payload).expect("JSON values serialize"));
        if let Some(cmd) = self.command(kind) {
            let (cmd, json, timeout, dir) = (cmd.to_string(), json.clone(), self.timeout, self.dir.clone());
            let target = HookTarget::Command(cmd.clone());
            let aborted = self.aborted.clone();
            threads.extend(
                self.spawn(kind, target, move || (run_command(&cmd, kind, &json, timeout, dir, &aborted), 1)),
            );
        }
        if let Some(hook) = self.webhook.clone() {
            let body = serde_json::to_vec(&json!({ "hook": kind.as_str(), "payload": payload }))
                .expect("JSON values serialize");
            let target = HookTarget::Webhook(hook.origin.clone());
            threads.extend(self.spawn(kind, target, move || post(&hook, &body)));
        }
        HookHandle { threads }
    }

    /// Stops every hook command still running (its whole process group) and skips those waiting
    /// for a slot; each reports [`HookResult::Aborted`].
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::Relaxed);
    }

    /// Waits until no hook is running or waiting to run, at most `bound`; whether they all ended.
    pub fn wait_idle(&self, bound: Duration) -> bool {
        self.running.wait_idle(bound)
    }

    fn command(&self, kind: HookKind) -> Option<&str> {
        match kind {
            HookKind::TaskEnd => &self.on_task_end,
            HookKind::Failure => &self.on_failure,
            HookKind::RunEnd => &self.on_run_end,
        }
        .as_deref()
    }

    /// Runs `work` on a new thread once a slot is free and reports its outcome.
    fn spawn(
        &self,
        kind: HookKind,
        target: HookTarget,
        work: impl FnOnce() -> (HookResult, u32) + Send + 'static,
    ) -> Option<JoinHandle<HookOutcome>> {
        let (report, running) = (self.report.clone(), self.running.clone());
        running.enter();
        let failed_target = target.clone();
        let spawned = std::thread::Builder::new().name(format!("swarm-hook-{kind}")).spawn(move || {
            let _leave = Leave(&running);
            let _slot = running.slot();
            let started = Instant::now();
            let (result, tries) = work();
            let outcome = HookOutcome { kind, target, result, tries, elapsed: started.elapsed() };
            report(outcome.clone());
            outcome
        });
        match spawned {
            Ok(handle) => Some(handle),
            Err(e) => {
                self.running.leave();
                (self.report)(HookOutcome {
                    kind,
                    target: failed_target,
                    result: HookResult::SpawnFailed { error: format!("no thread for the hook: {e}") },
                    tries: 0,
                    elapsed: Duration::ZERO,
                });
                None
            }
        }
    }
}

/// The hooks one [`Hooks::fire`] started.
#[derive(Debug)]
pub struct HookHandle {
    threads: Vec<JoinHandle<HookOutcome>>,
}

impl HookHandle {
    /// Waits for every hook of this firing to end; their outcomes (also given to the callback).
    /// Each is bounded by its timeout, see [`Hooks::max_duration`].
    pub fn wait(self) -> Vec<HookOutcome> {
        self.threads.into_iter().filter_map(|t| t.join().ok()).collect()
    }

    pub fn is_finished(&self) -> bool {
        self.threads.iter().all(JoinHandle::is_finished)
    }
}

/// How many hooks are pending (started or waiting for a slot), and how many hold a slot.
#[derive(Default)]
struct Running {
    counts: Mutex<(usize, usize)>,
    changed: Condvar,
}

impl Running {
    fn enter(&self) {
        self.counts.lock().expect("hook counts").0 += 1;
    }

    fn leave(&self) {
        self.counts.lock().expect("hook counts").0 -= 1;
        self.changed.notify_all();
    }

    fn slot(&self) -> Slot<'_> {
        let mut counts = self.counts.lock().expect("hook counts");
        while counts.1 >= MAX_RUNNING {
            counts = self.changed.wait(counts).expect("hook counts");
        }
        counts.1 += 1;
        Slot(self)
    }

    fn wait_idle(&self, bound: Duration) -> bool {
        let counts = self.counts.lock().expect("hook counts");
        let (counts, _) = self.changed.wait_timeout_while(counts, bound, |c| c.0 > 0).expect("hook counts");
        counts.0 == 0
    }
}

/// Frees a running slot when the hook's work ends (even by a panic).
struct Slot<'a>(&'a Running);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.counts.lock().expect("hook counts").1 -= 1;
        self.0.changed.notify_all();
    }
}

/// Counts a hook as ended when its thread ends (even by a panic in the callback).
struct Leave<'a>(&'a Arc<Running>);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(target: HookTarget, result: HookResult, tries: u32) -> String {
        HookOutcome { kind: HookKind::Failure, target, result, tries, elapsed: Duration::from_millis(1500) }
            .to_string()
    }

    #[test]
    fn outcomes_read_as_warnings() {
        let cmd = || HookTarget::Command("notify.sh".into());
        assert_eq!(
            outcome(cmd(), HookResult::Exited { code: Some(3), signal: None, stderr_tail: "boom".into() }, 1),
            "hook on_failure `notify.sh` exited with code 3: boom"
        );
        assert_eq!(
            outcome(cmd(), HookResult::Exited { code: None, signal: Some(9), stderr_tail: String::new() }, 1),
            "hook on_failure `notify.sh` was killed by signal 9"
        );
        assert_eq!(
            outcome(cmd(), HookResult::TimedOut { after: Duration::from_secs(30) }, 1),
            "hook on_failure `notify.sh` timed out after 30s and was killed"
        );
        assert_eq!(
            outcome(
                HookTarget::Webhook("https://hooks.example".into()),
                HookResult::WebhookFailed { error: "HTTP 503".into() },
                4
            ),
            "webhook https://hooks.example (failure) failed after 4 tries (1.5s): HTTP 503"
        );
        assert_eq!(outcome(cmd(), HookResult::Ok, 1), "hook on_failure `notify.sh` succeeded (1.5s)");
    }

    #[test]
    fn webhook_urls_are_shown_without_path_or_credentials() {
        assert_eq!(origin("https://hooks.slack.com/services/T0/B0/SECRET"), "https://hooks.slack.com");
        assert_eq!(origin("http://user:pw@127.0.0.1:8080/x?token=1"), "http://127.0.0.1:8080");
    }

    #[test]
    fn unconfigured_hooks_do_nothing() {
        let hooks = Hooks::new(&HooksConfig::default(), |o| panic!("nothing should run: {o}"));
        assert!(!hooks.is_configured(HookKind::RunEnd));
        assert!(hooks.fire(HookKind::RunEnd, json!({})).wait().is_empty());
        assert!(hooks.wait_idle(Duration::ZERO));
        let cfg = HooksConfig { on_failure: Some("true".into()), ..HooksConfig::default() };
        let hooks = Hooks::new(&cfg, |_| {});
        assert!(hooks.is_configured(HookKind::Failure) && !hooks.is_configured(HookKind::TaskEnd));
        assert_eq!(hooks.max_duration(), Duration::from_secs(31));
    }

    #[test]
    fn a_command_that_cannot_start_is_reported() {
        let cfg = HooksConfig { on_run_end: Some("true".into()), ..HooksConfig::default() };
        let hooks = Hooks::new(&cfg, |_| {}).in_dir("/nonexistent/swarm-hook-dir");
        let outcomes = hooks.fire(HookKind::RunEnd, json!({})).wait();
        assert!(matches!(outcomes[0].result, HookResult::SpawnFailed { .. }), "{outcomes:?}");
    }

    #[test]
    fn at_most_max_running_hooks_run_at_once_and_the_rest_wait() {
        let cfg = HooksConfig { on_task_end: Some("sleep 0.2".into()), ..HooksConfig::default() };
        let hooks = Hooks::new(&cfg, |_| {});
        let started = Instant::now();
        let handles: Vec<_> =
            (0..MAX_RUNNING + 1).map(|_| hooks.fire(HookKind::TaskEnd, json!({}))).collect();
        assert!(started.elapsed() < Duration::from_millis(150), "fire never waits");
        assert!(!hooks.wait_idle(Duration::from_millis(50)));
        assert!(hooks.wait_idle(Duration::from_secs(10)));
        // The last one had to wait for a slot: two rounds of 0.2s.
        assert!(started.elapsed() >= Duration::from_millis(400), "{:?}", started.elapsed());
        assert!(handles.into_iter().flat_map(HookHandle::wait).all(|o| o.is_ok()));
    }
}
