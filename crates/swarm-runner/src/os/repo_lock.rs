//! One process at a time in a repository's worktrees and merges, across processes.

use crate::os::git::{git_ok_raw, GitError};
use std::path::Path;

/// A repository's worktrees are made and merged into by one process at a time: several
/// workers on one host share the repository. An exclusive `flock` on `swarm.lock` in the
/// repository's common git directory, let go when dropped (or when the process dies).
pub struct RepoLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl RepoLock {
    /// Waits for the lock of `repo`.
    pub fn take(repo: &Path) -> Result<RepoLock, GitError> {
        let common = git_ok_raw(repo, &["rev-parse", "--git-common-dir"])?;
        RepoLock::at(&repo.join(common.trim()).join("swarm.lock"))
    }

    /// Waits for the lock file `path` (made if missing): one process at a time past it.
    pub fn at(path: &Path) -> Result<RepoLock, GitError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(GitError::io(format!("cannot open {}", path.display())))?;
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| {
            GitError::Io { what: format!("cannot lock {}", path.display()), source: std::io::Error::from(e) }
        })?;
        Ok(RepoLock { _lock: lock })
    }
}
