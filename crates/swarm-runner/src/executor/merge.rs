//! An attempt's work merged back: a succeeded worktree task's commit goes into the run's
//! integration branch here, or to the run's repository from a worker's own clone; a conflict
//! fails the attempt, or, with `on_conflict: agent`, gets a resolver.

use super::{resolver, route, ExecutorContext};
use crate::job::{AttemptEvent, AttemptJob, Events, Evidence, Merged, ModelRoute, StopRequest};
use swarm_core::scheduler::Failure;
use swarm_core::state::Reason;
use tokio::sync::watch;

/// A succeeded worktree task's work goes into the run's integration branch; a conflict fails
/// the attempt (`merge_conflict`, naming the paths) and leaves the branch as it was.
pub(super) async fn integrate(
    job: &AttemptJob,
    ctx: &ExecutorContext,
    model: Option<&str>,
    copied: Vec<String>,
    outcome: &mut Result<(), Failure>,
    evidence: &mut Evidence,
) {
    let who = match (&job.route, model) {
        (ModelRoute::Gateway { .. }, _) => format!("{}, models of the hierarchy", job.task.agent),
        (_, Some(model)) => format!("{}, model {model}", job.task.agent),
        (_, None) => job.task.agent.clone(),
    };
    let message = format!(
        "swarm: run {}, task {} (attempt {}, {who})\n\n{}",
        job.run_id, job.task.id, job.attempt, job.task.title
    );
    if let Some(pushed) = ctx.workspaces.push(&job.workspace, message.clone(), copied.clone()).await {
        match pushed {
            Ok(p) => {
                warn_left_out(&p.left_out, evidence);
                evidence.pushed = Some(p);
            }
            Err(e) => {
                *outcome = Err(Failure {
                    reason: Reason::MergeFailed,
                    detail: Some(format!("the task's work could not be pushed to the run's repository: {e}")),
                })
            }
        }
        return;
    }
    let Some(merged) = ctx.workspaces.integrate(&job.workspace, message, copied).await else { return };
    apply_merge(merged, outcome, evidence);
}

/// What merging a task's work into the integration branch makes of its attempt: a conflict
/// fails it (`merge_conflict`, naming the paths), any other failure is `merge_failed`.
pub(crate) fn apply_merge(
    merged: Result<crate::os::git::Merged, crate::os::git::GitError>,
    outcome: &mut Result<(), Failure>,
    evidence: &mut Evidence,
) {
    match merged {
        Ok(m) => {
            if let crate::os::git::MergeOutcome::Conflict { paths } = &m.outcome {
                *outcome = Err(Failure {
                    reason: Reason::MergeConflict,
                    detail: Some(format!(
                        "merging into the integration branch conflicts in {}; the task's work is kept on {}",
                        paths.join(", "),
                        m.branch
                    )),
                });
            }
            if evidence.pushed.is_none() {
                warn_left_out(&m.left_out, evidence);
            }
            evidence.merged = Some(m);
        }
        Err(e) => {
            // Not a conflict between two tasks' edits: git failed, or the worktree was tampered
            // with (a deleted `.git`, unrelated history, a `.git` pointing elsewhere).
            *outcome = Err(Failure {
                reason: Reason::MergeFailed,
                detail: Some(format!("the task's work could not be merged: {e}")),
            })
        }
    }
}

fn warn_left_out(left_out: &[(String, u64)], evidence: &mut Evidence) {
    if left_out.is_empty() {
        return;
    }
    let files: Vec<String> = left_out.iter().map(|(p, n)| format!("{p} ({})", size(*n))).collect();
    evidence.warnings.push(format!(
        "left out of the task's commit, over [worktree] max_file_size: {} (they stay in its worktree)",
        files.join(", ")
    ));
}

/// What a resolver needs from its attempt.
pub(super) struct Conflict<'a> {
    pub(super) resolved: &'a route::Resolved,
    pub(super) copied: &'a [String],
    pub(super) tx: Events,
}

/// `on_conflict: agent`: a conflicting merge gets a resolver attempt; when it resolves the
/// conflict the task's work is merged and the attempt succeeds after all.
pub(super) async fn resolve_conflict(
    job: &AttemptJob,
    ctx: &ExecutorContext,
    c: Conflict<'_>,
    outcome: &mut Result<(), Failure>,
    evidence: &mut Evidence,
    stop: &mut watch::Receiver<StopRequest>,
) {
    let Some(conflict) =
        evidence.merged.clone().filter(|m| matches!(m.outcome, crate::job::MergeOutcome::Conflict { .. }))
    else {
        return;
    };
    let ours = evidence.completion.clone();
    let Some(r) = resolver::resolve(job, ctx, &c, &conflict, ours.as_ref(), stop).await else {
        return;
    };
    if let Some(merged) = r.merged {
        // The task's commit stays what the agent made; the merge is the resolver's.
        evidence.merged =
            Some(Merged { commit: conflict.commit.clone(), start: conflict.start.clone(), ..merged });
        *outcome = Ok(());
    } else if let (Err(f), Some(why)) =
        (outcome.as_mut(), r.run.failure.as_ref().and_then(|f| f.detail.clone()))
    {
        f.detail = Some(format!("{}; the resolver failed: {why}", f.detail.clone().unwrap_or_default()));
    }
    evidence.resolver = Some(r.run);
}

/// `on_conflict: agent` for work a worker pushed from its own clone: it was merged here, so
/// when that merge conflicts the resolver runs here, on this host's agent and model route.
pub(crate) async fn resolve_pushed(
    job: &AttemptJob,
    ctx: &ExecutorContext,
    (outcome, evidence): (&mut Result<(), Failure>, &mut Evidence),
    stop: &mut watch::Receiver<StopRequest>,
    tx: Events,
) {
    if job.resolver.is_none() || !matches!(outcome, Err(f) if f.reason == Reason::MergeConflict) {
        return;
    }
    let (task, attempt) = (job.task_index, job.attempt);
    let send = |ev: AttemptEvent| {
        let _ = tx.send((task, attempt, ev));
    };
    let Ok(resolved) = route::resolve(job, ctx.hierarchy.as_ref(), stop, send).await else { return };
    let conflict = Conflict { resolved: &resolved, copied: &[], tx: tx.clone() };
    resolve_conflict(job, ctx, conflict, outcome, evidence, stop).await;
}

fn size(bytes: u64) -> String {
    bytesize::ByteSize(bytes).display().iec().to_string()
}
