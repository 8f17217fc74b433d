//! Why a git step of a run failed, in the words users read.

use std::path::PathBuf;

/// Why a git step failed. The messages are what users read: git's own words where git spoke.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git could not be started at all.
    #[error("cannot run git: {0}")]
    Spawn(#[source] std::io::Error),
    /// A git command failed: `git ARGS: STDERR`.
    #[error("git {}: {stderr}", args.join(" "))]
    Command { args: Vec<String>, stderr: String },
    /// `rev` names no commit in the repository.
    #[error("`{rev}` names no commit in {}", repo.display())]
    NoCommit { rev: String, repo: PathBuf },
    /// A file or directory swarm handles beside git (a worktree's, an included file).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A worktree swarm made is not as it made it (its `.git` or HEAD changed): swarm commits
    /// nothing there.
    #[error("swarm did not commit: the worktree {} is not as swarm made it: {why}", tree.display())]
    Tampered { tree: PathBuf, why: String },
    /// The task's branch shares no history with the integration branch.
    #[error("branch {branch} shares no history with the run's integration branch (it was replaced by unrelated commits); nothing of it was merged")]
    Unrelated { branch: String },
    /// `.worktreeinclude` cannot be read as gitignore patterns.
    #[error("{}: {message}", file.display())]
    Include { file: PathBuf, message: String },
}
