//! The orchestrator's git side of workers without the checkout (`swarm run --workers --repo
//! URL`): before a worktree attempt is queued, the integration branch goes to the run's
//! repository (where the worker fetches its start); when the attempt's counted end says its
//! work was pushed, that commit is fetched, checked and merged here, exactly as a local task's
//! work is merged, before the end reaches the dispatcher.

use crate::executor::workspace::Workspaces;
use crate::job::{AttemptEvent, AttemptJob, Events, StopRequest, WorkspaceSpec};
use crate::os::git::{self, GitError, Merged};
use crate::os::git_remote::{self, Pushed};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Puts the integration branch on the run's repository before `job` is queued, unless it went
/// there as it is now already (`last`: the commit pushed last).
pub(super) async fn push_start(
    workspaces: &Workspaces,
    job: &AttemptJob,
    last: Arc<Mutex<Option<String>>>,
) -> Result<(), String> {
    let WorkspaceSpec::Worktree { repo, integration, remote: Some(remote), .. } = &job.workspace else {
        return Ok(());
    };
    let (branch, url) = (integration.branch.clone(), remote.url.clone());
    let pushed = workspaces.in_repo(repo, "the push", move |repo| {
        let head = git::commit_of(repo, &branch)?;
        if last.lock().expect("last push").as_deref() == Some(head.as_str()) {
            return Ok(());
        }
        git_remote::push_branch(repo, &url, &branch)?;
        *last.lock().expect("last push") = Some(head);
        Ok(())
    });
    pushed.await.map_err(|e| format!("cannot push the run's branch to its repository for the workers: {e}"))
}

/// The end `ev` of `job`, its pushed work (if any) merged here first (a conflict resolved here
/// by the task's resolver, `on_conflict: agent`, until `stop` says otherwise); sent on `events`.
pub(super) fn finish(
    local: Arc<crate::executor::ExecutorContext>,
    job: Arc<AttemptJob>,
    (task, ev): (u32, AttemptEvent),
    events: Events,
    mut stop: watch::Receiver<StopRequest>,
) {
    let pushed = match &ev {
        AttemptEvent::Finished { outcome: Ok(()), evidence, .. } => evidence.pushed.clone(),
        _ => None,
    };
    let Some(pushed) = pushed else {
        let _ = events.send((task, job.attempt, ev));
        return;
    };
    tokio::spawn(async move {
        let AttemptEvent::Finished { exit_code, mut outcome, mut evidence } = ev else { return };
        let attempt = job.attempt;
        let merged = match &job.workspace {
            WorkspaceSpec::Worktree { repo, .. } => {
                let job = job.clone();
                local
                    .workspaces
                    .in_repo(repo, "the merge", move |repo| merge_pushed(repo, &job, &pushed))
                    .await
            }
            WorkspaceSpec::Shared { .. } => Err(unmergeable()),
        };
        crate::executor::apply_merge(merged, &mut outcome, &mut evidence);
        let both = (&mut outcome, &mut *evidence);
        crate::executor::resolve_pushed(&job, &local, both, &mut stop, events.clone()).await;
        let _ = events.send((task, attempt, AttemptEvent::Finished { exit_code, outcome, evidence }));
    });
}

/// Fetches the worker's commit into `repo`, checks it is the one its end names, and merges it
/// into the integration branch from the task's worktree here (made at that commit).
fn merge_pushed(repo: &Path, job: &AttemptJob, pushed: &Pushed) -> Result<Merged, GitError> {
    let WorkspaceSpec::Worktree { path, branch, integration, remote: Some(remote), .. } = &job.workspace
    else {
        return Err(unmergeable());
    };
    let commit = git_remote::fetch_pushed(repo, &remote.url, pushed)?;
    git::fresh_worktree(repo, path, branch, Some(&commit))?;
    let mut merged = git::integrate(repo, path, branch, &pushed.message, &[], integration)?;
    merged.left_out = pushed.left_out.clone();
    Ok(merged)
}

/// A pushed end of a task that names no repository to fetch it from.
fn unmergeable() -> GitError {
    GitError::Command {
        args: vec!["fetch".into()],
        stderr: "a worker pushed the work of a task this run does not merge from a repository".into(),
    }
}
