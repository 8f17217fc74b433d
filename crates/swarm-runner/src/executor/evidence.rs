//! The evidence of how an attempt ended beyond its exit code: the agent's completion report
//! (read as untrusted input, bounded for the store) and what git saw change compared with what
//! the report claims.

use crate::executor::agent_files::{self, UntrustedError};
use crate::job::{Evidence, ReportSpec};
use std::collections::BTreeSet;
use std::process::Stdio;
use swarm_core::completion::{Completion, CompletionStatus};
use swarm_core::scheduler::Failure;
use swarm_core::state::Reason;

/// Reads completion.json (as untrusted input, off the runtime's threads): a valid one is
/// kept, bounded for the store (and a status other than `done` fails the attempt); an
/// invalid or unreadable one fails it with every problem found; a missing one fails it only
/// when the agent must report.
pub async fn read_report(spec: &ReportSpec, outcome: &mut Result<(), Failure>, evidence: &mut Evidence) {
    let path = spec.path.clone();
    let read = tokio::task::spawn_blocking(move || agent_files::read(&path, agent_files::COMPLETION_LIMIT))
        .await
        .unwrap_or_else(|e| {
            Err(UntrustedError::Io { path: spec.path.clone(), source: std::io::Error::other(e) })
        });
    let path = spec.path.display();
    let bytes = match read {
        Ok(bytes) => bytes,
        Err(UntrustedError::Missing(_)) => {
            if spec.required && outcome.is_ok() {
                *outcome = Err(Failure {
                    reason: Reason::NoReport,
                    detail: Some(format!(
                        "no completion report: the agent wrote no completion.json at {path} (write it, or run `swarm report`)"
                    )),
                });
            }
            return;
        }
        Err(e) => {
            if outcome.is_ok() {
                *outcome = Err(Failure { reason: Reason::InvalidReport, detail: Some(e.to_string()) });
            } else {
                evidence.warnings.push(format!("unusable completion report: {e}"));
            }
            return;
        }
    };
    match swarm_core::completion::parse_bytes(&bytes, Some(&spec.run_id), Some(&spec.task_id)) {
        Ok(c) => keep_report(c, bytes, &path.to_string(), outcome, evidence),
        Err(errors) => {
            let errors = within_reason(errors).join("; ");
            if outcome.is_ok() {
                *outcome = Err(Failure {
                    reason: Reason::InvalidReport,
                    detail: Some(format!("{path} is not a valid completion report: {errors}")),
                });
            } else {
                evidence.warnings.push(format!("invalid completion report: {errors}"));
            }
        }
    }
}

/// A valid report: kept (bounded for the store), and a status other than `done` fails the
/// attempt if nothing else did.
fn keep_report(
    c: Completion,
    bytes: Vec<u8>,
    path: &str,
    outcome: &mut Result<(), Failure>,
    evidence: &mut Evidence,
) {
    let (c, cut) = agent_files::bounded(c);
    if let Some(cut) = cut {
        evidence
            .warnings
            .push(format!("completion report trimmed for the store ({cut}); the whole report is {path}"));
    }
    if outcome.is_ok() && c.status != CompletionStatus::Done {
        let status = serde_json::to_value(c.status).ok().and_then(|v| v.as_str().map(String::from));
        let blockers = if c.blockers.is_empty() {
            String::new()
        } else {
            format!("; blockers: {}", c.blockers.join("; "))
        };
        *outcome = Err(Failure {
            reason: Reason::ReportedFailure,
            detail: Some(format!(
                "the agent reported status `{}`: {}{blockers}",
                status.unwrap_or_default(),
                c.summary
            )),
        });
    }
    evidence.completion = Some(c);
    // Only a valid report is mirrored: the mirror is no way to copy other files out.
    evidence.completion_bytes = Some(bytes);
}

/// Every problem, within reason: a 1 MiB report can hold a million. At most 20, each cut to
/// 500 bytes.
fn within_reason(mut errors: Vec<String>) -> Vec<String> {
    if errors.len() > 20 {
        let more = errors.len() - 20;
        errors.truncate(20);
        errors.push(format!("… and {more} more"));
    }
    for e in &mut errors {
        let mut at = e.len().min(500);
        while !e.is_char_boundary(at) {
            at -= 1;
        }
        e.truncate(at);
    }
    errors
}

/// Files git reports as changed or new under `workdir`, relative to it; `None` outside git.
pub async fn git_changes(workdir: &std::path::Path) -> Option<BTreeSet<String>> {
    let dir = workdir.to_path_buf();
    tokio::task::spawn_blocking(move || git_changes_now(&dir)).await.ok().flatten()
}

/// [`git_changes`], blocking: used for the baseline, taken before the agent starts.
pub fn git_changes_now(workdir: &std::path::Path) -> Option<std::collections::BTreeSet<String>> {
    // The short format gives paths relative to `workdir` and works before the first commit.
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(workdir)
        .args(["status", "--short", "--untracked-files=all", "--", "."])
        // A shared task's directory is the user's checkout: reading it must not write its index.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.len() > 3)
            .map(|l| {
                let path = &l[3..];
                let path = path.rsplit(" -> ").next().unwrap_or(path);
                path.trim_matches('"').to_string()
            })
            .collect(),
    )
}

/// Compares what git saw change during the attempt with what the report claims: mismatches
/// are warnings, not failures.
pub async fn compare_changes(
    workdir: &std::path::Path,
    before: &std::collections::BTreeSet<String>,
    evidence: &mut Evidence,
) {
    let Some(after) = git_changes(workdir).await else { return };
    let changed: Vec<&String> = after.difference(before).collect();
    let Some(c) = &evidence.completion else {
        if changed.is_empty() {
            evidence.warnings.push("the attempt changed no files".into());
        }
        return;
    };
    let claimed: std::collections::BTreeSet<String> =
        c.files_changed.iter().map(|f| f.trim_start_matches("./").to_string()).collect();
    let unlisted: Vec<&str> =
        changed.iter().filter(|f| !claimed.contains(f.as_str())).map(|f| f.as_str()).collect();
    let phantom: Vec<&str> = claimed.iter().filter(|f| !after.contains(*f)).map(|f| f.as_str()).collect();
    if changed.is_empty() && claimed.is_empty() {
        evidence.warnings.push("the attempt changed no files".into());
    }
    if !unlisted.is_empty() {
        evidence.warnings.push(format!("changed but not in files_changed: {}", unlisted.join(", ")));
    }
    if !phantom.is_empty() {
        evidence
            .warnings
            .push(format!("listed in files_changed but unchanged per git: {}", phantom.join(", ")));
    }
}
