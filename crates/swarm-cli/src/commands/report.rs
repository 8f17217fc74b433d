//! `swarm report`: an agent writes its completion report (docs/contract.md §5) with a command instead
//! of by hand; `swarm report --check FILE` validates one. The file goes where swarm told the
//! attempt to put it (`SWARM_COMPLETION_FILE`); the orchestrator reads it when the agent exits
//! and records it with the attempt, so this command needs no store.

use crate::error::{CliError, CliResult};
use anyhow::{anyhow, Context};
use clap::{Args, ValueEnum};
use serde_json::json;
use std::path::{Path, PathBuf};
use swarm_core::completion::{self, Completion, CompletionStatus, TestRun, COMPLETION_SCHEMA_VERSION};

#[derive(Args, Debug)]
#[command(
    after_help = "Run by an agent inside a swarm task: writes completion.json to SWARM_COMPLETION_FILE \
(for SWARM_RUN_ID and SWARM_TASK_ID) and prints its path.\n\
Exit codes: 0 written, or valid with --check · 1 --check found errors · 2 invalid arguments, or not inside a task."
)]
pub struct ReportArgs {
    /// How the task ended; anything but `done` fails the task.
    #[arg(long, value_enum, required_unless_present = "check")]
    pub status: Option<ReportStatus>,
    /// What was done, one paragraph.
    #[arg(long, required_unless_present = "check")]
    pub summary: Option<String>,
    /// A file changed (repeatable).
    #[arg(long = "file", value_name = "F")]
    pub files: Vec<String>,
    /// A test command run and its result (repeatable), e.g. --test "cargo test=pass".
    #[arg(long = "test", value_name = "CMD=pass|fail", value_parser = parse_test)]
    pub tests: Vec<TestRun>,
    /// Something left for later (repeatable).
    #[arg(long = "follow-up", value_name = "TEXT")]
    pub follow_ups: Vec<String>,
    /// What stands in the way (repeatable).
    #[arg(long = "blocker", value_name = "TEXT")]
    pub blockers: Vec<String>,
    /// Print the written JSON (or, with --check, the result as JSON) instead of a path.
    #[arg(long)]
    pub json: bool,
    /// Validate an existing completion.json against its schema instead of writing one; every
    /// error is listed. Inside a task, run_id and task_id must also be the task's.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["status", "summary", "files", "tests", "follow_ups", "blockers"]
    )]
    pub check: Option<PathBuf>,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum ReportStatus {
    Done,
    Partial,
    Blocked,
    Failed,
}

impl From<ReportStatus> for CompletionStatus {
    fn from(s: ReportStatus) -> Self {
        match s {
            ReportStatus::Done => CompletionStatus::Done,
            ReportStatus::Partial => CompletionStatus::Partial,
            ReportStatus::Blocked => CompletionStatus::Blocked,
            ReportStatus::Failed => CompletionStatus::Failed,
        }
    }
}

/// `CMD=pass|fail`, split at the last `=` (the command may hold some).
fn parse_test(text: &str) -> Result<TestRun, String> {
    let bad = || format!("expected CMD=pass or CMD=fail, e.g. \"cargo test=pass\"; got `{text}`");
    let (command, result) = text.rsplit_once('=').ok_or_else(bad)?;
    let passed = match result.trim() {
        "pass" | "passed" => true,
        "fail" | "failed" => false,
        _ => return Err(bad()),
    };
    let command = command.trim();
    if command.is_empty() {
        return Err(bad());
    }
    Ok(TestRun { command: command.into(), passed })
}

/// The attempt this process runs in, from the environment swarm gives every attempt.
struct Task {
    run_id: String,
    task_id: String,
    file: PathBuf,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Task {
    fn from_env() -> Result<Task, CliError> {
        let file = var("SWARM_COMPLETION_FILE");
        let run_id = var("SWARM_RUN_ID");
        let task_id = var("SWARM_TASK_ID");
        match (file, run_id, task_id) {
            (Some(file), Some(run_id), Some(task_id)) => Ok(Task { run_id, task_id, file: file.into() }),
            (file, run_id, _) => {
                let missing = if file.is_none() {
                    "SWARM_COMPLETION_FILE"
                } else if run_id.is_none() {
                    "SWARM_RUN_ID"
                } else {
                    "SWARM_TASK_ID"
                };
                Err(CliError::invalid(anyhow!(
                    "swarm report must run inside a swarm task ({missing} is not set)"
                )))
            }
        }
    }
}

pub fn report(args: ReportArgs) -> CliResult {
    if let Some(path) = &args.check {
        return check(path, args.json);
    }
    let task = Task::from_env()?;
    let (Some(status), Some(summary)) = (args.status, args.summary) else {
        unreachable!("clap requires --status and --summary without --check");
    };
    if summary.trim().is_empty() {
        return Err(CliError::invalid(anyhow!("--summary must say what was done")));
    }
    let report = Completion {
        schema_version: COMPLETION_SCHEMA_VERSION,
        run_id: task.run_id.clone(),
        task_id: task.task_id.clone(),
        status: status.into(),
        summary,
        files_changed: args.files,
        tests: args.tests,
        follow_ups: args.follow_ups,
        blockers: args.blockers,
    };
    let mut text = serde_json::to_string_pretty(&report).expect("completion reports serialize");
    text.push('\n');
    // What the orchestrator will accept, checked the way it will check it.
    if let Err(errors) = completion::parse(&text, Some(&task.run_id), Some(&task.task_id)) {
        return Err(CliError::invalid(anyhow!("the report would not be valid:\n  {}", errors.join("\n  "))));
    }
    swarm_runner::util::write_atomic(&task.file, text.as_bytes())
        .with_context(|| format!("cannot write the completion report `{}`", task.file.display()))
        .map_err(CliError::other)?;
    if args.json {
        print!("{text}");
    } else {
        println!("{}", task.file.display());
    }
    Ok(0)
}

fn check(path: &Path, json: bool) -> CliResult {
    // Bytes, not text: a file that is not UTF-8 is an error at its offset, not silently repaired.
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read `{}`", path.display()))
        .map_err(CliError::invalid)?;
    let (run, task) = (var("SWARM_RUN_ID"), var("SWARM_TASK_ID"));
    let result = completion::parse_bytes(&bytes, run.as_deref(), task.as_deref());
    let errors = result.as_ref().err().cloned().unwrap_or_default();
    if json {
        println!(
            "{}",
            json!({ "file": path.display().to_string(), "valid": errors.is_empty(), "errors": errors })
        );
    } else {
        match &result {
            Ok(c) => {
                println!("{}: valid completion report (status {})", path.display(), status_name(c.status))
            }
            Err(errors) => {
                let n = errors.len();
                println!("{}: {n} error{}", path.display(), if n == 1 { "" } else { "s" });
                for e in errors {
                    println!("  {e}");
                }
            }
        }
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

fn status_name(s: CompletionStatus) -> String {
    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_results_split_at_the_last_equals_sign() {
        assert_eq!(
            parse_test("FOO=1 cargo test=pass").unwrap(),
            TestRun { command: "FOO=1 cargo test".into(), passed: true }
        );
        assert_eq!(
            parse_test("make check = fail").unwrap(),
            TestRun { command: "make check".into(), passed: false }
        );
        for bad in ["cargo test", "cargo test=ok", "=pass", "x=", ""] {
            assert!(parse_test(bad).is_err(), "{bad}");
        }
        assert_eq!(status_name(CompletionStatus::Blocked), "blocked");
    }
}
