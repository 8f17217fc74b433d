//! Where attempts work: the plan's own directory, or a git worktree per task. Worktrees of one
//! repository are created one at a time (git's own locks refuse concurrent `worktree add`), and
//! the `[worktree] setup` command runs in a new one with its own time limit. All of it runs in
//! the attempt's executor, never in the dispatcher's loop, and gives way to a stop request.

use crate::job::StopRequest;
use crate::job::{Limits, WorkspaceSpec};
use crate::os::git;
use crate::os::process::signal_group;
use crate::os::reaper::Marker;
use nix::sys::signal::Signal;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use swarm_core::scheduler::Failure;
use swarm_core::state::Reason;
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::watch;

/// One lock per repository, shared by every executor of the process.
#[derive(Default)]
pub struct Workspaces {
    repos: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
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
    ) -> Result<(PathBuf, Vec<String>), Failure> {
        let WorkspaceSpec::Worktree { repo, path, branch, start, setup, .. } = spec else {
            return Ok((spec.workdir(), vec![]));
        };
        let fail = |detail: String| Failure { reason: Reason::SpawnError, detail: Some(detail) };
        let copied = {
            let lock = self.lock(repo);
            let _one_at_a_time = lock.lock().await;
            let (repo, tree, branch, start) = (repo.clone(), path.clone(), branch.clone(), start.clone());
            tokio::task::spawn_blocking(move || {
                git::fresh_worktree(&repo, &tree, &branch, Some(&start))?;
                git::copy_included(&repo, &tree)
            })
            .await
            .map_err(|e| fail(e.to_string()))?
            .map_err(|e| fail(format!("cannot make worktree {}: {e}", path.display())))?
        };
        if let Some(cmd) = setup.as_deref().filter(|c| !c.trim().is_empty()) {
            run_setup(cmd, path, limits, marker, stop).await?;
        }
        Ok((spec.workdir(), copied))
    }

    /// Brings a succeeded worktree task's work back: commits what it left (but `keep_out`),
    /// then merges it into the integration branch, one merge per repository at a time.
    pub async fn integrate(
        &self,
        spec: &WorkspaceSpec,
        message: String,
        keep_out: Vec<String>,
    ) -> Option<Result<git::Merged, String>> {
        let WorkspaceSpec::Worktree { repo, path, branch, integration, .. } = spec else { return None };
        let lock = self.lock(repo);
        let _one_at_a_time = lock.lock().await;
        let (path, branch, integration) = (path.clone(), branch.clone(), integration.clone());
        let merged = tokio::task::spawn_blocking(move || {
            git::integrate(&path, &branch, &message, &keep_out, &integration)
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
        Some(merged)
    }
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

/// Why a bounded command did not run to its end.
pub enum Bounded {
    Spawn(std::io::Error),
    TimedOut,
    Stopped,
}

/// `sh -c CMD` in `dir` with `env` added to swarm's own environment.
pub fn sh(cmd: &str, dir: &Path, env: &[(&str, String)]) -> Command {
    let mut command = Command::new("/bin/sh");
    command.arg("-c").arg(cmd).current_dir(dir).envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    command
}

/// Runs `command` in its own process group, its output (stdout and stderr, the last 64 KiB)
/// returned; the whole group is stopped (SIGTERM, then SIGKILL after `grace`) at `timeout` or on
/// a stop request.
pub async fn run_bounded(
    mut command: Command,
    timeout: Duration,
    grace: Duration,
    stop: &mut watch::Receiver<StopRequest>,
) -> Result<(std::process::ExitStatus, String), Bounded> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(Bounded::Spawn)?;
    let pgid = child.id().unwrap_or(0);
    // Output is read on the side: a command that leaves a process holding its pipes open must
    // not keep us waiting once it exited.
    let output = Arc::new(Mutex::new(Vec::new()));
    let readers: Vec<_> = [
        child.stdout.take().map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        child.stderr.take().map(|e| Box::new(e) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    .map(|mut pipe| {
        let output = output.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut buf).await {
                let mut kept = output.lock().expect("output");
                kept.extend_from_slice(&buf[..n]);
                let over = kept.len().saturating_sub(64 * 1024);
                kept.drain(..over);
            }
        })
    })
    .collect();
    let text =
        |output: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&output.lock().expect("output")).into_owned();
    let stopped = async {
        loop {
            if stop.changed().await.is_err() || *stop.borrow() != StopRequest::None {
                return;
            }
        }
    };
    let why = tokio::select! {
        status = child.wait() => {
            if pgid != 0 {
                signal_group(pgid, Signal::SIGKILL); // whatever it left behind in its group
            }
            for r in readers {
                let _ = tokio::time::timeout(Duration::from_millis(200), r).await;
            }
            return status.map(|s| (s, text(&output))).map_err(Bounded::Spawn);
        }
        _ = tokio::time::sleep(timeout) => Bounded::TimedOut,
        _ = stopped => Bounded::Stopped,
    };
    if pgid != 0 {
        signal_group(pgid, Signal::SIGTERM);
        signal_group(pgid, Signal::SIGCONT);
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            signal_group(pgid, Signal::SIGKILL);
        }
        signal_group(pgid, Signal::SIGKILL);
    }
    let _ = child.wait().await;
    Err(why)
}
