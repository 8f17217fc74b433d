//! Where attempts work: the plan's own directory, or a git worktree per task. Worktrees of one
//! repository are created one at a time (git's own locks refuse concurrent `worktree add`), and
//! the `[worktree] setup` command runs in a new one with its own time limit. All of it runs in
//! the attempt's executor, never in the dispatcher's loop, and gives way to a stop request.

use crate::job::StopRequest;
use crate::job::{AgentFile, Limits, WorkspaceSpec};
use crate::os::bounded::{run_bounded, sh, Bounded};
use crate::os::reaper::Marker;
use crate::os::{git, git_remote};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use swarm_core::scheduler::Failure;
use swarm_core::state::Reason;
use tokio::sync::watch;

/// One lock per repository, shared by every executor of the process (and, for the git work
/// itself, a file lock every process on the host takes: workers of one project).
#[derive(Default)]
pub struct Workspaces {
    repos: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
}

/// A workspace made ready for an attempt.
pub struct Prepared {
    /// The agent's working directory.
    pub workdir: PathBuf,
    /// Files copied into its worktree (`.worktreeinclude`): never committed.
    pub copied: Vec<String>,
    /// The user's checkout as it was before the agent started (worktree tasks).
    pub user: Option<git::UserSide>,
}

/// Lines of a failed setup command's output kept in the failure detail.
const SETUP_TAIL_LINES: usize = 10;

impl Workspaces {
    fn lock(&self, repo: &Path) -> Arc<tokio::sync::Mutex<()>> {
        self.repos.lock().expect("repo locks").entry(repo.to_path_buf()).or_default().clone()
    }

    /// Makes the workspace ready and returns the agent's working directory and the files
    /// copied into it (`.worktreeinclude`, never committed): a worktree is made fresh from the
    /// integration branch (so a re-run starts clean, and a dependent from its dependencies'
    /// merged work), then its setup command runs.
    pub async fn prepare(
        &self,
        spec: &WorkspaceSpec,
        limits: &Limits,
        marker: &Marker,
        stop: &mut watch::Receiver<StopRequest>,
    ) -> Result<Prepared, Failure> {
        let WorkspaceSpec::Worktree { repo, path, branch, start, setup, .. } = spec else {
            return Ok(Prepared { workdir: spec.workdir(), copied: vec![], user: None });
        };
        let fail = |detail: String| Failure { reason: Reason::SpawnError, detail: Some(detail) };
        let (tree, branch, start) = (path.clone(), branch.clone(), start.clone());
        let (copied, user) = self
            .in_repo(repo, "making the worktree", move |repo| {
                git::fresh_worktree(repo, &tree, &branch, Some(&start))?;
                let copied = crate::os::include::copy_included(repo, &tree)?;
                Ok((copied, git::UserSide::of(repo)))
            })
            .await
            .map_err(|e| fail(format!("cannot make worktree {}: {e}", path.display())))?;
        if let Some(cmd) = setup.as_deref().filter(|c| !c.trim().is_empty()) {
            run_setup(cmd, path, limits, marker, stop).await?;
        }
        Ok(Prepared { workdir: spec.workdir(), copied, user: Some(user) })
    }

    /// Brings a succeeded worktree task's work back: commits what it left (but `keep_out`),
    /// then merges it into the integration branch, one merge per repository at a time.
    pub async fn integrate(
        &self,
        spec: &WorkspaceSpec,
        message: String,
        keep_out: Vec<String>,
    ) -> Option<Result<git::Merged, git::GitError>> {
        let WorkspaceSpec::Worktree { repo, path, branch, integration, .. } = spec else { return None };
        let (path, branch, integration) = (path.clone(), branch.clone(), integration.clone());
        let merged = self
            .in_repo(repo, "the merge", move |repo| {
                git::integrate(repo, &path, &branch, &message, &keep_out, &integration)
            })
            .await;
        Some(merged)
    }
}

impl Workspaces {
    /// Runs `f` on `repo` off the runtime, one at a time per repository in this process and
    /// across processes (its file lock); `what` names it if it never finishes.
    pub(crate) async fn in_repo<T: Send + 'static>(
        &self,
        repo: &Path,
        what: &str,
        f: impl FnOnce(&Path) -> Result<T, git::GitError> + Send + 'static,
    ) -> Result<T, git::GitError> {
        let lock = self.lock(repo);
        let _one_at_a_time = lock.lock().await;
        let repo = repo.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let _other_processes_wait = git::RepoLock::take(&repo)?;
            f(&repo)
        })
        .await
        .map_err(|e| git::GitError::Io {
            what: format!("{what} did not finish"),
            source: std::io::Error::other(e),
        })
        .and_then(|r| r)
    }

    /// A worker in its own clone: commits a succeeded worktree task's work (but `keep_out`)
    /// and pushes it to the run's repository, where the orchestrator merges it. `None` when
    /// the workspace is merged here instead.
    pub async fn push(
        &self,
        spec: &WorkspaceSpec,
        message: String,
        keep_out: Vec<String>,
    ) -> Option<Result<git_remote::Pushed, git::GitError>> {
        let WorkspaceSpec::Worktree { repo, path, branch, integration, remote: Some(remote), .. } = spec
        else {
            return None;
        };
        let to = remote.push_to.clone()?;
        let (path, branch, url) = (path.clone(), branch.clone(), remote.url.clone());
        let (max_file_size, author) = (integration.max_file_size, integration.author.clone());
        let pushed = self
            .in_repo(repo, "the push", move |repo| {
                git_remote::commit_and_push(&git_remote::PushSpec {
                    repo,
                    tree: &path,
                    branch: &branch,
                    message: &message,
                    keep_out: &keep_out,
                    max_file_size,
                    author: &author,
                    url: &url,
                    to: &to,
                })
            })
            .await;
        Some(pushed)
    }
}

/// Writes swarm's files for the agent (the state doc) into its working directory; returns
/// those a worktree did not have, relative to the worktree, so they are never committed.
pub fn write_agent_files(
    spec: &WorkspaceSpec,
    workdir: &Path,
    files: &[AgentFile],
) -> Result<Vec<String>, String> {
    let mut new = Vec::new();
    for file in files {
        let target = workdir.join(&file.path);
        let existed = target.exists();
        let written = target
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&target, &file.text));
        written.map_err(|e| format!("cannot write {}: {e}", target.display()))?;
        if let (WorkspaceSpec::Worktree { path, .. }, false) = (spec, existed) {
            if let Ok(rel) = target.strip_prefix(path) {
                new.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    Ok(new)
}

/// Runs the worktree's setup command (`sh -c`) in its own process group, bounded by
/// `setup_timeout` and by a stop request; fails with `setup_failed` naming why.
async fn run_setup(
    cmd: &str,
    dir: &Path,
    limits: &Limits,
    marker: &Marker,
    stop: &mut watch::Receiver<StopRequest>,
) -> Result<(), Failure> {
    let failed = |detail: String| Failure { reason: Reason::SetupFailed, detail: Some(detail) };
    let command = sh(cmd, dir, &marker.env());
    let (status, output) = match run_bounded(command, limits.setup_timeout, limits.grace, stop).await {
        Ok(done) => done,
        Err(Bounded::Spawn(e)) => return Err(failed(format!("cannot run setup `{cmd}`: {e}"))),
        Err(Bounded::TimedOut) => {
            return Err(failed(format!(
                "setup `{cmd}` timed out after {}",
                swarm_core::duration::format(limits.setup_timeout)
            )))
        }
        Err(Bounded::Stopped) => {
            return Err(Failure { reason: Reason::Cancelled, detail: Some("run cancelled".into()) })
        }
    };
    if status.success() {
        return Ok(());
    }
    let tail: Vec<&str> = output.lines().rev().take(SETUP_TAIL_LINES).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(failed(format!("setup `{cmd}` failed ({status}): {}", tail.join("\n"))))
}
