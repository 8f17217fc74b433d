//! Git's side of a conflict resolver (`on_conflict: agent`): the integration branch merged into
//! the task's worktree with the conflict left for the resolver, what it left unresolved, and
//! the merge concluded or given up.

use super::git::{git, git_ok, GitError};
use std::path::Path;

/// Merges `onto` (the integration branch) into the task's branch checked out in `tree`,
/// leaving a conflict in place; returns the conflicting paths (empty: it merged cleanly).
pub fn start_conflicted_merge(tree: &Path, onto: &str, author: &str) -> Result<Vec<String>, GitError> {
    let message = format!("swarm: merge {onto} (conflict resolved by an agent)");
    let out = git(tree, &["merge", "--no-ff", "--no-edit", "-m", &message, onto], author)?;
    if out.status.success() {
        return Ok(vec![]);
    }
    let paths: Vec<String> = git_ok(tree, &["diff", "--name-only", "--diff-filter=U"], author)?
        .lines()
        .map(String::from)
        .collect();
    if paths.is_empty() {
        let _ = git(tree, &["merge", "--abort"], author);
        return Err(GitError::command(&["merge"], &out));
    }
    Ok(paths)
}

/// The paths among `paths` that still hold conflict markers (or are gone as files but still
/// unmerged for git, which `git add` settles).
pub fn markers_left(tree: &Path, paths: &[String]) -> Vec<String> {
    paths
        .iter()
        .filter(|p| {
            std::fs::read(tree.join(p)).is_ok_and(|bytes| {
                String::from_utf8_lossy(&bytes)
                    .lines()
                    .any(|l| l.starts_with("<<<<<<< ") || l.starts_with(">>>>>>> ") || l == "=======")
            })
        })
        .cloned()
        .collect()
}

/// Commits the resolved merge (everything but `keep_out`).
pub fn conclude_merge(tree: &Path, keep_out: &[String], author: &str) -> Result<(), GitError> {
    git_ok(tree, &["add", "-A", "--", "."], author)?;
    if !keep_out.is_empty() {
        let mut reset = vec!["reset", "--quiet", "--"];
        reset.extend(keep_out.iter().map(String::as_str));
        git_ok(tree, &reset, author)?;
    }
    git_ok(tree, &["commit", "--quiet", "--no-verify", "--no-edit"], author).map(drop)
}

/// Gives the merge up: the task's branch as it was before.
pub fn abort_merge(tree: &Path, author: &str) {
    let _ = git(tree, &["merge", "--abort"], author);
    let _ = git(tree, &["reset", "--hard", "--quiet", "HEAD"], author);
}

/// What the integration branch gained since `since`, one line per commit (bounded).
pub fn their_log(tree: &Path, since: &str, onto: &str, author: &str) -> String {
    let range = format!("{since}..{onto}");
    git_ok(tree, &["log", "--no-merges", "--format=- %s", "-n", "50", &range], author).unwrap_or_default()
}
