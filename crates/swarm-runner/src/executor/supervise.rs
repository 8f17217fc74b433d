//! The supervisor: one attempt's process group under watch. It streams output lines to the log
//! file and as events, enforces `timeout` and `stall` (SIGTERM to the group, SIGKILL after the
//! grace period), obeys stop requests, runs the task's `check`, gathers the evidence and says
//! how the attempt ended.

use crate::executor::attempt_log::AttemptLog;
use crate::executor::evidence;
use crate::job::StopRequest;
use crate::job::{AttemptEvent, AttemptJob, Evidence, ReportSpec};
use crate::os::reaper::Marker;
use std::collections::{BTreeSet, VecDeque};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use swarm_core::event::Stream;
use swarm_core::scheduler::Failure;
use swarm_core::state::Reason;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::{sleep_until, Instant};

/// Longest line forwarded as an event; the log keeps everything.
const MAX_EVENT_LINE: usize = 8 * 1024;

/// The time limits the supervisor enforces on the process it watches now (the agent's, then
/// the check's).
#[derive(Debug, Clone, Copy)]
struct Limits {
    timeout: Option<Duration>,
    stall: Option<Duration>,
    grace: Duration,
}

/// Stderr lines kept for failure classification.
const STDERR_TAIL_LINES: usize = 20;

/// Lines of a failed check's output kept for the report and the retry prompt.
const CHECK_TAIL_LINES: usize = 20;

pub struct Supervisor {
    task: u32,
    attempt: u32,
    /// Every process of the attempt carries it (the check's too).
    marker: Marker,
    report: ReportSpec,
    /// What git saw changed before the agent started, to compare with what it reports.
    baseline: Option<BTreeSet<String>>,
    workdir: PathBuf,
    check_tail: VecDeque<String>,
    limits: Limits,
    log: AttemptLog,
    check: Option<String>,
    check_timeout: Duration,
    stdin: Option<String>,
    tx: crate::job::Events,
    stop: watch::Receiver<StopRequest>,
    /// Reads the agent's output lines.
    adapter: Arc<dyn swarm_agents::Adapter>,
    /// Errors the agent reported, for classification at the end.
    agent_errors: Vec<swarm_agents::AgentOutput>,
    /// The agent got a model answer after its last error.
    recovered: bool,
    /// The agent reported usage (a run's result) at least once.
    saw_usage: bool,
    stderr_tail: VecDeque<String>,
    /// Last session id sent, so repeats are not sent again.
    session: Option<String>,
}

enum Ended {
    Exited(std::process::ExitStatus),
    Stopped(Reason, String),
}

impl Supervisor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        job: &AttemptJob,
        adapter: Arc<dyn swarm_agents::Adapter>,
        workdir: PathBuf,
        baseline: Option<BTreeSet<String>>,
        stdin: Option<String>,
        log: AttemptLog,
        stop: watch::Receiver<StopRequest>,
        tx: crate::job::Events,
    ) -> Supervisor {
        let l = job.limits;
        Supervisor {
            task: job.task_index,
            attempt: job.attempt,
            marker: Marker::attempt(&job.run_id, &job.task.id, job.attempt),
            report: job.report.clone(),
            baseline,
            workdir,
            check_tail: VecDeque::new(),
            limits: Limits { timeout: l.timeout, stall: l.stall, grace: l.grace },
            log,
            check: job.check.clone(),
            check_timeout: l.check_timeout,
            stdin,
            tx,
            stop,
            adapter,
            agent_errors: Vec::new(),
            recovered: false,
            saw_usage: false,
            stderr_tail: VecDeque::new(),
            session: None,
        }
    }

    fn send(&self, ev: AttemptEvent) {
        let _ = self.tx.send((self.task, self.attempt, ev));
    }

    /// Supervises the agent, then gathers the evidence: how it ended, its report, its check.
    pub async fn run(mut self, mut child: Child) -> (Option<i32>, Result<(), Failure>, Evidence) {
        let baseline = self.baseline.take();
        let (exit_code, mut outcome) = match self.supervise(&mut child, false).await {
            Ok(v) => v,
            Err(e) => (None, Err(Failure { reason: Reason::SpawnError, detail: Some(e.to_string()) })),
        };
        if outcome.is_ok() && exit_code == Some(0) && self.adapter.needs_usage_to_succeed() && !self.saw_usage
        {
            outcome = Err(Failure {
                reason: Reason::ExitCode,
                detail: Some(format!(
                    "{} exited 0 without a result (no model answer was reported)",
                    self.adapter.name()
                )),
            });
        }
        // Some CLIs (aider) exit 0 after errors they never recovered from.
        if outcome.is_ok()
            && exit_code == Some(0)
            && self.adapter.exit_zero_may_fail()
            && !self.agent_errors.is_empty()
            && !self.recovered
        {
            outcome = Err(Failure {
                reason: Reason::ExitCode,
                detail: Some("exited 0 but reported errors it did not recover from".into()),
            });
        }
        let mut evidence = Evidence::default();
        if let Err(f) = &mut outcome {
            if f.reason != Reason::Cancelled
                && (f.reason == Reason::ExitCode || !self.agent_errors.is_empty())
            {
                let tail: Vec<String> = self.stderr_tail.iter().cloned().collect();
                if let Some((class, retry_after)) =
                    self.adapter.classify(exit_code, &self.agent_errors, &tail)
                {
                    evidence.failure_class = Some(class);
                    evidence.retry_after = retry_after;
                    let wait = retry_after
                        .map(|d| format!(", retry after {}", swarm_core::duration::format(d)))
                        .unwrap_or_default();
                    let first = self.agent_errors.iter().find_map(|e| match e {
                        swarm_agents::AgentOutput::Error { message, .. } => Some(message.clone()),
                        _ => None,
                    });
                    let mut detail = f.detail.take().unwrap_or_else(|| f.reason.to_string());
                    detail.push_str(&format!(" ({class}{wait})"));
                    match first {
                        Some(m) => {
                            let m: String = m.chars().take(300).collect();
                            detail.push_str(&format!(": {m}"));
                        }
                        // No error the agent reported: its last words on stderr say why.
                        None => detail.push_str(&last_words(&tail)),
                    }
                    f.detail = Some(detail);
                }
            }
        }
        // The exit code decides first; then the agent's own report; then the check.
        evidence::read_report(&self.report.clone(), &mut outcome, &mut evidence).await;
        if outcome.is_ok() {
            if let Some(check) = self.check.take() {
                outcome = self.run_check(&check, self.workdir.clone()).await;
                if outcome.is_err() && !self.check_tail.is_empty() {
                    evidence.check_output =
                        Some(self.check_tail.iter().cloned().collect::<Vec<_>>().join("\n"));
                }
            }
        }
        if let Some(before) = baseline {
            evidence::compare_changes(&self.workdir, &before, &mut evidence).await;
        }
        self.log.finish();
        if let Some(e) = &self.log.error {
            evidence.warnings.push(e.clone());
        }
        (exit_code, outcome, evidence)
    }

    async fn run_check(&mut self, check: &str, dir: PathBuf) -> Result<(), Failure> {
        let spawn = Command::new("/bin/sh")
            .arg("-c")
            .arg(check)
            .current_dir(&dir)
            .envs(self.marker.env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawn {
            Ok(c) => c,
            Err(e) => {
                return Err(Failure {
                    reason: Reason::CheckFailed,
                    detail: Some(format!("cannot run check `{check}`: {e}")),
                })
            }
        };
        self.send(AttemptEvent::CheckStarted { pgid: child.id() });
        // The check has its own time limit, not what is left of the agent's.
        let agent_limits = self.limits;
        self.limits = Limits { timeout: Some(self.check_timeout), stall: None, grace: agent_limits.grace };
        let result = self.supervise(&mut child, true).await;
        self.limits = agent_limits;
        match result {
            Ok((_, Ok(()))) => Ok(()),
            Ok((code, Err(f))) => {
                let why = match f.reason {
                    Reason::ExitCode => {
                        format!("exit code {}", code.map_or("none".into(), |c| c.to_string()))
                    }
                    _ => f.detail.unwrap_or_else(|| f.reason.to_string()),
                };
                Err(Failure {
                    reason: if f.reason == Reason::Cancelled { f.reason } else { Reason::CheckFailed },
                    detail: Some(format!("check `{check}` failed: {why}")),
                })
            }
            Err(e) => {
                Err(Failure { reason: Reason::CheckFailed, detail: Some(format!("check `{check}`: {e}")) })
            }
        }
    }

    /// Supervises `child` to the end. Returns the exit code and whether it counts as success.
    async fn supervise(
        &mut self,
        child: &mut Child,
        is_check: bool,
    ) -> std::io::Result<(Option<i32>, Result<(), Failure>)> {
        let pgid = child.id().unwrap_or(0);
        if is_check {
            self.append_log(b"\n--- swarm: running check ---\n");
        }
        if let (Some(input), Some(mut stdin)) = (self.stdin.take().filter(|_| !is_check), child.stdin.take())
        {
            // A child that never reads its stdin must not block us: write in the background.
            tokio::spawn(async move { stdin.write_all(input.as_bytes()).await });
        }
        let (mut lines, activity, readers) = read_outputs(child);
        let started = Instant::now();
        let far = started + Duration::from_secs(100 * 365 * 86_400);
        let deadline = self.limits.timeout.map_or(far, |t| started + t);
        let mut stall_at = self.limits.stall.map_or(far, |s| started + s);
        let ended = loop {
            tokio::select! {
                biased;
                status = child.wait() => break Ended::Exited(status?),
                Some((stream, line)) = lines.recv(), if readers > 0 => {
                    self.forward(stream, &line, is_check);
                    if let Some(s) = self.limits.stall { stall_at = Instant::now() + s; }
                }
                _ = activity.notified(), if self.limits.stall.is_some() => {
                    if let Some(s) = self.limits.stall { stall_at = Instant::now() + s; }
                }
                _ = sleep_until(deadline) => {
                    let t = self.limits.timeout.unwrap_or_default();
                    break Ended::Stopped(Reason::Timeout, format!("timed out after {}", swarm_core::duration::format(t)));
                }
                _ = sleep_until(stall_at) => {
                    let s = self.limits.stall.unwrap_or_default();
                    break Ended::Stopped(Reason::Stalled, format!("no output for {}", swarm_core::duration::format(s)));
                }
                changed = self.stop.changed() => {
                    if changed.is_err() || *self.stop.borrow() != StopRequest::None {
                        break Ended::Stopped(Reason::Cancelled, "run cancelled".into());
                    }
                }
            }
        };
        let result = match ended {
            Ended::Exited(status) => {
                // The leader is gone; whatever it left behind in its group goes too.
                self.terminate_group(pgid, child, false).await;
                let code = status.code();
                let outcome = match (code, status.signal()) {
                    (Some(0), _) => Ok(()),
                    (Some(c), _) => Err(Failure {
                        reason: Reason::ExitCode,
                        detail: Some(format!("exited with code {c}")),
                    }),
                    (None, Some(sig)) => Err(Failure {
                        reason: Reason::ExitCode,
                        detail: Some(format!("killed by signal {sig}")),
                    }),
                    (None, None) => {
                        Err(Failure { reason: Reason::ExitCode, detail: Some("exited abnormally".into()) })
                    }
                };
                (code, outcome)
            }
            Ended::Stopped(reason, detail) => {
                let kill_now = *self.stop.borrow() == StopRequest::Kill;
                let status = self.terminate_group(pgid, child, kill_now).await;
                (status.and_then(|s| s.code()), Err(Failure { reason, detail: Some(detail) }))
            }
        };
        // Drain what is left in the pipes, but never wait on a pipe held open by an escaped process.
        // (Without readers the channel is closed and `recv` returns `None` at once.)
        let drain_until = Instant::now() + Duration::from_millis(500);
        loop {
            tokio::select! {
                item = lines.recv() => match item {
                    Some((stream, line)) => self.forward(stream, &line, is_check),
                    None => break,
                },
                _ = sleep_until(drain_until) => break,
            }
        }
        Ok(result)
    }

    /// SIGTERM the group (unless `kill_now`), wait up to the grace period, then SIGKILL it.
    async fn terminate_group(
        &mut self,
        pgid: u32,
        child: &mut Child,
        kill_now: bool,
    ) -> Option<std::process::ExitStatus> {
        crate::os::process::terminate_group(pgid, child, self.limits.grace, kill_now, &mut self.stop).await
    }

    fn append_log(&mut self, bytes: &[u8]) {
        if let Some(message) = self.log.write(bytes) {
            self.send(AttemptEvent::Output { stream: Stream::Stderr, line: format!("swarm: {message}") });
        }
    }

    /// Appends a line to the log (plain blocking writes: small, local, and cheaper than a hop to
    /// tokio's blocking pool) and forwards it as an event.
    fn forward(&mut self, stream: Stream, line: &[u8], is_check: bool) {
        self.append_log(line);
        // End an unfinished last line, but never break a long line `read_lines` split in pieces.
        if !line.ends_with(b"\n") && line.len() < MAX_LINE {
            self.append_log(b"\n");
        }
        if is_check {
            let text = String::from_utf8_lossy(&line[..line.len().min(500)]).trim_end().to_string();
            if self.check_tail.len() == CHECK_TAIL_LINES {
                self.check_tail.pop_front();
            }
            self.check_tail.push_back(text);
            return;
        }
        // The whole line for the parser (a JSON event may be long); events stay bounded.
        let full = String::from_utf8_lossy(line);
        let full = full.trim_end_matches(['\n', '\r']);
        if stream == Stream::Stderr {
            if self.stderr_tail.len() == STDERR_TAIL_LINES {
                self.stderr_tail.pop_front();
            }
            self.stderr_tail.push_back(full.chars().take(500).collect());
        }
        use swarm_agents::AgentOutput;
        for output in self.adapter.parse_line(stream, full) {
            match output {
                AgentOutput::Text(_) | AgentOutput::Tool { .. } => {
                    let mut text = output.display_line().unwrap_or_default();
                    if text.len() > MAX_EVENT_LINE {
                        let mut cut = MAX_EVENT_LINE;
                        while !text.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        text.truncate(cut);
                    }
                    self.send(AttemptEvent::Output { stream, line: text });
                }
                AgentOutput::Session(id) => {
                    if self.session.as_deref() != Some(id.as_str()) {
                        self.session = Some(id.clone());
                        self.send(AttemptEvent::Session { id });
                    }
                }
                AgentOutput::Error { class, ref message, .. } => {
                    if let Some(text) = output.display_line() {
                        self.send(AttemptEvent::Output {
                            stream,
                            line: text.chars().take(MAX_EVENT_LINE).collect(),
                        });
                    }
                    let message: String = message.chars().take(MAX_EVENT_LINE).collect();
                    if self.agent_errors.len() < 50 {
                        self.agent_errors.push(output.clone());
                    }
                    self.recovered = false;
                    self.send(AttemptEvent::AgentError { class, message });
                }
                AgentOutput::Usage { tokens_in, tokens_out, cost_usd } => {
                    self.saw_usage = true;
                    // Usage after an error means a retry got through (aider prints it per call).
                    if !self.agent_errors.is_empty() {
                        self.recovered = true;
                    }
                    self.send(AttemptEvent::Usage { tokens_in, tokens_out, cost_usd });
                }
            }
        }
    }
}

/// Longest chunk read as one line: output without newlines is split rather than buffered whole.
const MAX_LINE: usize = 256 * 1024;

/// An attempt's output lines, from either stream.
type Lines = mpsc::Receiver<(Stream, Vec<u8>)>;

/// `child`'s stdout and stderr read line by line on their own tasks: the lines, a notice of
/// any output (a partial line is activity too), and how many readers there are.
/// Lines of stderr shown after a failure with no reported error.
const LAST_WORDS_LINES: usize = 3;

/// `": line | line"`: the last non-empty lines of a stderr tail, secrets masked, bounded; empty
/// when there are none.
fn last_words(tail: &[String]) -> String {
    let lines: Vec<&str> = tail.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect();
    let last = &lines[lines.len().saturating_sub(LAST_WORDS_LINES)..];
    if last.is_empty() {
        return String::new();
    }
    let words: String = swarm_core::secrets::mask_secrets(&last.join(" | ")).chars().take(600).collect();
    format!(": {words}")
}

fn read_outputs(child: &mut Child) -> (Lines, Arc<Notify>, usize) {
    let (line_tx, lines) = mpsc::channel::<(Stream, Vec<u8>)>(256);
    let activity = Arc::new(Notify::new());
    let mut readers = 0;
    if let Some(out) = child.stdout.take() {
        tokio::spawn(read_lines(out, Stream::Stdout, line_tx.clone(), activity.clone()));
        readers += 1;
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(read_lines(err, Stream::Stderr, line_tx, activity.clone()));
        readers += 1;
    }
    (lines, activity, readers)
}

/// Reads raw lines (any bytes, newline-terminated or not) until EOF.
async fn read_lines(
    pipe: impl AsyncRead + Unpin,
    stream: Stream,
    tx: mpsc::Sender<(Stream, Vec<u8>)>,
    activity: Arc<Notify>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, pipe);
    let mut buf = Vec::new();
    loop {
        let chunk = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(chunk) => chunk,
        };
        let (take, complete) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        buf.extend_from_slice(&chunk[..take]);
        reader.consume(take);
        if !complete {
            activity.notify_one();
        }
        if (complete || buf.len() >= MAX_LINE) && tx.send((stream, std::mem::take(&mut buf))).await.is_err() {
            return;
        }
    }
    if !buf.is_empty() {
        let _ = tx.send((stream, buf)).await;
    }
}
