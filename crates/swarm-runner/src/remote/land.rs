//! The orchestrator's git side of workers without the checkout (`swarm run --workers --repo
//! URL`): before a worktree attempt is queued, the integration branch goes to the run's
//! repository (where the worker fetches its start); when the attempt's counted end says its
//! work was pushed, that commit is fetched, checked and merged here, exactly as a local task's
//! work is merged, before the end reaches the dispatcher.

use crate::job::{AttemptEvent, AttemptJob, Events, WorkspaceSpec};
use crate::os::git::{self, GitError, Merged, RepoLock};
use crate::os::git_remote::{self, Pushed};
use std::sync::{Arc, Mutex};

/// Puts the integration branch on the run's repository before `job` is queued, unless it went
/// there as it is now already (`last`: the commit pushed last).
pub(super) async fn push_start(job: &AttemptJob, last: Arc<Mutex<Option<String>>>) -> Result<(), String> {
    let WorkspaceSpec::Worktree { repo, integration, remote: Some(remote), .. } = &job.workspace else {
        return Ok(());
    };
    let (repo, branch, url) = (repo.clone(), integration.branch.clone(), remote.url.clone());
    let pushed = tokio::task::spawn_blocking(move || {
        let _one_at_a_time = RepoLock::take(&repo)?;
        let head = git::commit_of(&repo, &branch)?;
        if last.lock().expect("last push").as_deref() == Some(head.as_str()) {
            return Ok(());
        }
        git_remote::push_branch(&repo, &url, &branch)?;
        *last.lock().expect("last push") = Some(head);
        Ok::<_, GitError>(())
    })
    .await;
    match pushed {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("cannot push the run's branch to its repository for the workers: {e}")),
        Err(e) => Err(format!("cannot push the run's branch to its repository for the workers: {e}")),
    }
}

/// The end `ev` of `job`, its pushed work (if any) merged here first; sent on `events`.
pub(super) fn finish(job: Arc<AttemptJob>, task: u32, ev: AttemptEvent, events: Events) {
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
        let merged = tokio::task::spawn_blocking(move || merge_pushed(&job, &pushed))
            .await
            .map_err(|e| GitError::Io {
                what: "the merge did not finish".into(),
                source: std::io::Error::other(e),
            })
            .and_then(|r| r);
        crate::executor::apply_merge(merged, &mut outcome, &mut evidence);
        let _ = events.send((task, attempt, AttemptEvent::Finished { exit_code, outcome, evidence }));
    });
}

/// Fetches the worker's commit, checks it is the one its end names, and merges it into the
/// integration branch from the task's worktree here (made at that commit).
fn merge_pushed(job: &AttemptJob, pushed: &Pushed) -> Result<Merged, GitError> {
    let WorkspaceSpec::Worktree { repo, path, branch, integration, remote: Some(remote), .. } =
        &job.workspace
    else {
        return Err(GitError::Command {
            args: vec!["fetch".into()],
            stderr: "a worker pushed the work of a task this run does not merge from a repository".into(),
        });
    };
    let _one_at_a_time = RepoLock::take(repo)?;
    let commit = git_remote::fetch_pushed(repo, &remote.url, pushed)?;
    git::fresh_worktree(repo, path, branch, Some(&commit))?;
    let mut merged = git::integrate(repo, path, branch, &pushed.message, &[], integration)?;
    merged.left_out = pushed.left_out.clone();
    Ok(merged)
}
