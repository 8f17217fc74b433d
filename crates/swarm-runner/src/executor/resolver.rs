//! The conflict resolver (docs/contract.md §12, `on_conflict: agent`): when a succeeded task's merge
//! into the integration branch conflicts, the integration branch is merged into the task's
//! worktree with the conflict left in place, and an agent is started there with both sides'
//! reports and the conflicting paths. It succeeds when no conflict marker is left and the
//! task's check passes: the merge is committed and the task's work merged after all.

use super::attempt_log::AttemptLog;
use super::route::Resolved;
use super::supervise::Supervisor;
use super::ExecutorContext;
use crate::job::{AttemptJob, Events, Merged, ResolverRun, StopRequest, WorkspaceSpec};
use crate::os::git_resolve as g;
use chrono::Utc;
use std::path::Path;
use swarm_core::completion::Completion;
use swarm_core::scheduler::Failure;
use swarm_core::state::Reason;
use swarm_core::team::{render_handoff, Handoff, HandoffSource};
use tokio::sync::watch;

/// What the resolver leaves: the merge it completed (if it did) and how its attempt went.
pub(super) struct Resolution {
    pub merged: Option<Merged>,
    pub run: ResolverRun,
}

/// Runs the resolver for `conflict` (the task's work that did not merge). `ours`: the task's
/// own report. Blocking git runs off the runtime's threads.
pub(super) async fn resolve(
    job: &AttemptJob,
    ctx: &ExecutorContext,
    c: &super::merge::Conflict<'_>,
    conflict: &Merged,
    ours: Option<&Completion>,
    stop: &mut watch::Receiver<StopRequest>,
) -> Option<Resolution> {
    let (resolved, copied) = (c.resolved, c.copied);
    let agent = job.resolver.clone()?;
    let WorkspaceSpec::Worktree { path: tree, integration, .. } = &job.workspace else { return None };
    let started_at = Utc::now();
    let log = job.log.with_extension("resolver.log");
    let mut run = ResolverRun {
        agent: agent.clone(),
        started_at,
        ended_at: started_at,
        exit_code: None,
        failure: None,
        log,
    };
    let (t, onto, author) = (tree.clone(), integration.branch.clone(), integration.author.clone());
    let started =
        blocking(move || g::start_conflicted_merge(&t, &onto, &author).map_err(|e| e.to_string())).await;
    let paths = match started.and_then(|r| r) {
        Ok(paths) => paths,
        Err(e) => return Some(failed(run, format!("cannot start the merge for the resolver: {e}"))),
    };
    let theirs = their_side(job, tree, &conflict.start, &integration.branch, &integration.author);
    let mut rjob = job.clone();
    rjob.task.agent = agent;
    rjob.prompt = resolver_prompt(job, &paths, ours, &theirs, &integration.branch);
    rjob.workspace = WorkspaceSpec::Shared { dir: job.workspace.workdir() };
    rjob.report.required = false;
    rjob.files = vec![];
    rjob.log = run.log.clone();
    let (exit_code, outcome) = supervise(&rjob, ctx, resolved, stop, c.tx.clone()).await;
    run.exit_code = exit_code;
    run.ended_at = Utc::now();
    let outcome = outcome.and_then(|()| {
        let left = g::markers_left(tree, &paths);
        if left.is_empty() {
            return g::conclude_merge(tree, copied, &integration.author)
                .map_err(|e| fail(format!("cannot commit the resolved merge: {e}")));
        }
        Err(fail(format!("conflict markers are left in {}", left.join(", "))))
    });
    if let Err(f) = outcome {
        g::abort_merge(tree, &integration.author);
        run.failure = Some(f);
        return Some(Resolution { merged: None, run });
    }
    let message =
        format!("swarm: run {}, task {} (merge resolved by {})", job.run_id, job.task.id, run.agent);
    match ctx.workspaces.integrate(&job.workspace, message, copied.to_vec()).await {
        Some(Ok(m)) if m.outcome == crate::job::MergeOutcome::Merged => {
            Some(Resolution { merged: Some(m), run })
        }
        Some(Ok(m)) => Some(failed(run, format!("the resolved merge still does not merge: {:?}", m.outcome))),
        Some(Err(e)) => Some(failed(run, format!("the resolved merge could not be merged: {e}"))),
        None => None,
    }
}

/// Starts the resolver's agent and supervises it (its check included) to its end.
async fn supervise(
    rjob: &AttemptJob,
    ctx: &ExecutorContext,
    resolved: &Resolved,
    stop: &mut watch::Receiver<StopRequest>,
    tx: Events,
) -> (Option<i32>, Result<(), Failure>) {
    let launched = match super::launch(rjob, ctx, resolved, stop).await {
        Ok(l) => l,
        Err(f) => return (None, Err(f)),
    };
    let log = AttemptLog::new(rjob.log.clone(), rjob.limits.log_limit);
    let supervisor = Supervisor::new(
        rjob,
        launched.adapter,
        launched.workdir,
        None,
        launched.stdin,
        log,
        stop.clone(),
        tx,
    );
    let (exit_code, outcome, _) = supervisor.run(launched.child).await;
    (exit_code, outcome)
}

fn fail(detail: String) -> Failure {
    Failure { reason: Reason::MergeConflict, detail: Some(detail) }
}

fn failed(mut run: ResolverRun, detail: String) -> Resolution {
    run.ended_at = Utc::now();
    run.failure = Some(fail(detail));
    Resolution { merged: None, run }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f).await.map_err(|e| e.to_string())
}

/// The other side: the reports of the tasks whose commits the integration branch gained since
/// this task started (their completion.json beside this attempt's), else the commit lines.
fn their_side(job: &AttemptJob, tree: &Path, since: &str, onto: &str, author: &str) -> Vec<String> {
    let log = g::their_log(tree, since, onto, author);
    let dir = job.report.path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut out = Vec::new();
    for line in log.lines() {
        // Subjects swarm writes: `swarm: run R, task T (attempt N, …)`.
        let Some(rest) = line.split_once(", task ").map(|(_, r)| r) else { continue };
        let Some((task, rest)) = rest.split_once(" (attempt ") else { continue };
        let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let file = dir.join(format!("{task}.{n}.json"));
        let report = super::agent_files::read(&file, 256 * 1024)
            .ok()
            .and_then(|b| swarm_core::completion::parse_bytes(&b, None, Some(task)).ok());
        out.push(match report {
            Some(c) => render_handoff(&source(task, &c), Handoff::Summary).trim_end().to_string(),
            None => format!("## Hand-off from {task}\n\n(no report; commit: {line})"),
        });
    }
    if out.is_empty() && !log.trim().is_empty() {
        out.push(format!("Commits the integration branch gained:\n{}", log.trim_end()));
    }
    out
}

fn source(task: &str, c: &Completion) -> HandoffSource {
    HandoffSource {
        task_id: task.to_string(),
        summary: c.summary.clone(),
        files_changed: c.files_changed.clone(),
        follow_ups: c.follow_ups.clone(),
        blockers: c.blockers.clone(),
        ..HandoffSource::default()
    }
}

fn resolver_prompt(
    job: &AttemptJob,
    paths: &[String],
    ours: Option<&Completion>,
    theirs: &[String],
    onto: &str,
) -> String {
    let t = &job.task;
    let list: Vec<String> = paths.iter().map(|p| format!("- {p}")).collect();
    let check = t.check.as_deref().map(|c| format!(" and the check `{c}` passes")).unwrap_or_default();
    let mine = match ours {
        Some(c) => render_handoff(&source(&t.id, c), Handoff::Summary).trim_end().to_string(),
        None => format!("## Hand-off from {}\n\n(no report)", t.id),
    };
    let theirs = if theirs.is_empty() { "(nothing recorded)".to_string() } else { theirs.join("\n\n") };
    format!(
        "# Resolve a merge conflict\n\n\
         Task `{id}` ({title}) finished, but merging its work into the run's integration branch `{onto}` \
         conflicts. This directory holds that merge in progress (`{onto}` merged into the task's branch).\n\n\
         Conflicting paths:\n{paths}\n\n\
         Edit each conflicting file so it keeps what both sides meant, and remove every conflict marker \
         (`<<<<<<<`, `=======`, `>>>>>>>`). Do not commit: swarm commits the merge once no marker is left{check}.\n\n\
         # This side: task `{id}`\n\nIts task:\n\n{prompt}\n\n{mine}\n\n# The other side: what `{onto}` gained\n\n{theirs}\n",
        id = t.id,
        title = t.title,
        paths = list.join("\n"),
        prompt = t.prompt.trim_end(),
    )
}
