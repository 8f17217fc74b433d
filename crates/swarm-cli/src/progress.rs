//! Reporters: renderings of the public event stream. A live TTY view (one line per running task
//! and overall counts), plain log lines when not on a terminal, or JSON lines.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use swarm_core::event::{Event, EventKind};
use swarm_core::report::RunReport;
use swarm_core::state::TaskState;
use swarm_runner::util::RunDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    Tty,
    Plain,
    Json,
}

pub trait Reporter: Send {
    fn event(&mut self, ev: &Event);
    fn finish(&mut self, report: &RunReport, dir: &RunDir);
}

pub fn reporter(mode: OutputMode, total: usize) -> Box<dyn Reporter> {
    match mode {
        OutputMode::Json => Box::new(JsonReporter),
        OutputMode::Plain => Box::new(PlainReporter::default()),
        OutputMode::Tty => Box::new(TtyReporter::new(total)),
    }
}

pub struct JsonReporter;

impl Reporter for JsonReporter {
    fn event(&mut self, ev: &Event) {
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer(&mut out, ev);
        let _ = out.write_all(b"\n");
    }
    fn finish(&mut self, _: &RunReport, _: &RunDir) {
        let _ = std::io::stdout().flush();
    }
}

/// One line per meaningful change; output lines are left to the log files.
#[derive(Default)]
pub struct PlainReporter {
    width: usize,
}

fn stamp(ev: &Event) -> String {
    format!("[{:>7.1}s]", ev.elapsed_ms as f64 / 1000.0)
}

/// The line a state change deserves, if any.
fn describe(ev: &Event, width: usize) -> Option<String> {
    let line = match &ev.kind {
        EventKind::AttemptStarted { task, attempt, agent, model, .. } => {
            let model = model.as_deref().map(|m| format!(" {m}")).unwrap_or_default();
            format!("{task:<width$} running    attempt {attempt} ({agent}{model})")
        }
        EventKind::TaskState { task, state, reason, detail } => match state {
            TaskState::Succeeded => format!("{task:<width$} succeeded"),
            TaskState::Failed | TaskState::Blocked | TaskState::Cancelled => format!(
                "{task:<width$} {:<10} {}{}",
                state.as_str(),
                reason.map(|r| r.as_str()).unwrap_or(""),
                detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
            ),
            _ => return None,
        },
        EventKind::RetryScheduled { task, next_attempt, delay_ms } => {
            format!("{task:<width$} retrying   attempt {next_attempt} in {:.1}s", *delay_ms as f64 / 1000.0)
        }
        EventKind::CancelRequested { source } => {
            format!("cancel requested ({source}); stopping running tasks")
        }
        EventKind::Warning { message } => format!("warning: {message}"),
        EventKind::ModelServing { task, model, layer, .. } => {
            format!("{task:<width$} model      {model} (layer {layer})")
        }
        EventKind::ModelFallback { task, model, class, action, .. } => {
            format!("{task:<width$} model      {model}: {class}, {action}; on to the next model")
        }
        EventKind::ModelWait { task, model, until, .. } => format!(
            "{task:<width$} waiting    every allowed model is busy; {model} frees up at {}",
            until.format("%H:%M:%S UTC")
        ),
        EventKind::StoreLost { message, .. } => format!("error: {message}"),
        _ => return None,
    };
    Some(format!("{} {line}", stamp(ev)))
}

impl PlainReporter {
    /// The line `ev` deserves, its task column as wide as the longest task seen so far.
    fn line(&mut self, ev: &Event) -> Option<String> {
        if let Some(task) = ev.kind.task() {
            self.width = self.width.max(task.len()).min(32);
        }
        describe(ev, self.width.max(8))
    }
}

impl Reporter for PlainReporter {
    fn event(&mut self, ev: &Event) {
        if let Some(line) = self.line(ev) {
            out(format_args!("{line}"));
        }
    }
    fn finish(&mut self, report: &RunReport, dir: &RunDir) {
        print_summary(report, dir);
    }
}

/// Live view: a header with counts and one spinner line per running task.
pub struct TtyReporter {
    multi: MultiProgress,
    header: ProgressBar,
    bars: HashMap<String, ProgressBar>,
    states: HashMap<String, TaskState>,
    total: usize,
    width: usize,
}

impl TtyReporter {
    fn new(total: usize) -> TtyReporter {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let header = multi.add(ProgressBar::new(total as u64));
        header.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30.cyan/blue}] {pos}/{len} {wide_msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        header.enable_steady_tick(Duration::from_millis(200));
        TtyReporter { multi, header, bars: HashMap::new(), states: HashMap::new(), total, width: 8 }
    }

    fn counts_message(&self) -> String {
        let count = |s: TaskState| self.states.values().filter(|x| **x == s).count();
        format!(
            "running {}  ok {}  failed {}  blocked {}  cancelled {}",
            count(TaskState::Running),
            count(TaskState::Succeeded),
            count(TaskState::Failed),
            count(TaskState::Blocked),
            count(TaskState::Cancelled)
        )
    }
}

impl Reporter for TtyReporter {
    fn event(&mut self, ev: &Event) {
        if let Some(task) = ev.kind.task() {
            self.width = self.width.max(task.len()).min(32);
        }
        match &ev.kind {
            EventKind::AttemptStarted { task, attempt, agent, .. } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {prefix} {elapsed:>4} {wide_msg}")
                        .expect("valid template"),
                );
                bar.set_prefix(format!("{task:<w$} {agent:<8} #{attempt}", w = self.width));
                bar.enable_steady_tick(Duration::from_millis(120));
                if let Some(old) = self.bars.insert(task.clone(), bar) {
                    old.finish_and_clear();
                }
            }
            EventKind::Output { task, line, .. } => {
                if let Some(bar) = self.bars.get(task) {
                    if !line.trim().is_empty() {
                        bar.set_message(console::strip_ansi_codes(line).to_string());
                    }
                }
            }
            EventKind::ModelServing { task, attempt, model, layer } => {
                // The spinner line shows the model the task is on.
                if let Some(bar) = self.bars.get(task) {
                    bar.set_prefix(format!("{task:<w$} L{layer} {model} #{attempt}", w = self.width));
                }
            }
            EventKind::AttemptFinished { task, .. } => {
                if let Some(bar) = self.bars.remove(task) {
                    bar.finish_and_clear();
                }
            }
            EventKind::TaskState { task, state, .. } => {
                self.states.insert(task.clone(), *state);
                if state.is_terminal() {
                    self.header.set_position(self.states.values().filter(|s| s.is_terminal()).count() as u64);
                }
                self.header.set_message(self.counts_message());
            }
            _ => {}
        }
        if let Some(line) = describe(ev, self.width) {
            if !matches!(ev.kind, EventKind::AttemptStarted { .. }) {
                let _ = self.multi.println(line);
            }
        }
        let _ = self.total;
    }

    fn finish(&mut self, report: &RunReport, dir: &RunDir) {
        for (_, bar) in self.bars.drain() {
            bar.finish_and_clear();
        }
        self.header.finish_and_clear();
        let _ = self.multi.clear();
        print_summary(report, dir);
    }
}

/// A line to stdout. A reader that went away (`swarm run | head -1`) must not kill the run.
fn out(line: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
}

pub fn print_summary(r: &RunReport, dir: &RunDir) {
    for line in summary(r, dir, |p| p.is_file()) {
        out(format_args!("{line}"));
    }
}

/// The lines that end a run's output: its outcome, each failed task, where the report is;
/// `written` says which files exist (a path is printed only for a file that does).
fn summary(r: &RunReport, dir: &RunDir, written: impl Fn(&Path) -> bool) -> Vec<String> {
    let secs = r.ended_at.map(|e| (e - r.started_at).num_milliseconds() as f64 / 1000.0).unwrap_or(0.0);
    let c = &r.counts;
    let mut lines = vec![format!(
        "run {} {} in {secs:.1}s: {} succeeded, {} failed, {} blocked, {} cancelled",
        r.run_id, r.state, c.succeeded, c.failed, c.blocked, c.cancelled
    )];
    for t in r.tasks.iter().filter(|t| matches!(t.state, TaskState::Failed)) {
        // An attempt that printed nothing has no log file: none is pointed at.
        let log = t.attempts.last().and_then(|a| a.log.as_deref()).filter(|l| written(Path::new(l)));
        let log = log.map_or("no output".to_string(), |l| format!("log: {l}"));
        lines.push(format!(
            "  failed  {}: {}{} ({log})",
            t.id,
            t.reason.map(|r| r.as_str()).unwrap_or("?"),
            t.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
        ));
    }
    lines.push(report_line(dir, written(&dir.report_json())));
    lines
}

/// Where the report is, or that it was not written (the run said why in a warning).
pub fn report_line(dir: &RunDir, written: bool) -> String {
    let path = dir.report_json();
    if written {
        format!("report: {}", path.display())
    } else {
        format!("report: not written ({} could not be written; see the warning above)", path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_testkit::fixtures;

    /// What `swarm run` prints off a terminal for the fixed run: a line per state change, then
    /// the summary.
    #[test]
    fn plain_lines_of_a_run() {
        let mut plain = PlainReporter::default();
        let mut lines: Vec<String> = fixtures::run_events().iter().filter_map(|ev| plain.line(ev)).collect();
        let (_, report) = fixtures::finished_run();
        let dir = RunDir::new(std::path::Path::new("/work/webapp/.swarm"), fixtures::RUN_ID);
        lines.extend(summary(&report, &dir, |_| true));
        insta::assert_snapshot!(lines.join("\n"));
    }
}
