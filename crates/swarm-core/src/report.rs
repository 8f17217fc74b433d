//! The run report (docs/contract.md §4): what `swarm status --json` prints and `report.json` holds.
//! The same task and attempt records are what the store keeps.

use crate::state::{Reason, RunState, TaskState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunReport {
    pub run_id: String,
    pub plan: String,
    pub namespace: String,
    pub state: RunState,
    /// The commit worktree tasks started from (runs inside a git repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_commit: Option<String>,
    /// Where their work was merged: `swarm/<RUN_ID>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_branch: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub counts: Counts,
    pub totals: Usage,
    /// Tokens and cost per model (attempts without a model count under `""`), by model name.
    /// Attempts served through the gateway count per request, under the model that served it.
    #[serde(default)]
    pub by_model: Vec<ModelUsage>,
    /// Gateway requests, tokens and cost per layer of the model hierarchy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_layer: Vec<LayerUsage>,
    pub tasks: Vec<TaskReport>,
    /// Set when the run's store failed it for good (see the `store_lost` event): the store
    /// does not hold the run as this report tells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_error: Option<StoreFailure>,
    /// The shared-state changes the run's agents made (and the writes refused), oldest first,
    /// as the namespace's change feed had them when the run ended (at most the last 200).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub state_changes: Vec<crate::state_doc::StateChange>,
}

/// Why a run's store could not record it, and how many writes it missed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StoreFailure {
    pub message: String,
    /// Writes (task updates, events, run updates) that never reached the store.
    pub lost_writes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ModelUsage {
    pub model: String,
    pub attempts: u32,
    /// Gateway requests this model served.
    #[serde(default)]
    pub requests: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
}

impl ModelUsage {
    /// What it served, for people: `2 attempt(s), 3 request(s), 120 in, 40 out, $0.0012` (the
    /// requests only when the gateway served any). `swarm status` and report.md show this.
    pub fn summary(&self) -> String {
        let requests =
            if self.requests > 0 { format!(", {} request(s)", self.requests) } else { String::new() };
        format!(
            "{} attempt(s){requests}, {} in, {} out, ${:.4}",
            self.attempts, self.tokens_in, self.tokens_out, self.cost_usd
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LayerUsage {
    pub layer: u8,
    pub requests: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
}

/// What one model served for one attempt through the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ModelRequests {
    pub model: String,
    pub layer: u8,
    pub count: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    /// How long these requests waited in the gateway, all together, before going to this model
    /// (for a free slot within the limits, and on models that refused them first).
    #[serde(default)]
    pub wait_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskReport {
    pub id: String,
    #[serde(default)]
    pub title: String,
    pub agent: String,
    #[serde(default)]
    pub depends: Vec<String>,
    pub state: TaskState,
    pub reason: Option<Reason>,
    /// Human detail for `reason`, e.g. the failed dependency or the OS error.
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub attempts: Vec<AttemptReport>,
    /// A worktree task's branch (`swarm/<RUN_ID>--<TASK_ID>`), kept after the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The commit of its work on that branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The commit its worktree started from (the integration branch then): `swarm diff` shows
    /// `start_commit..commit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_commit: Option<String>,
    /// How its work came back: merged into the integration branch, a conflict, or nothing to
    /// merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<MergeState>,
    /// The paths that conflicted, for `merge: conflict`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflict_paths: Vec<String>,
    /// What its work changed, per git (relative to the repository).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files_changed: Vec<String>,
    /// The dependencies whose reports its prompt carried (`handoff`, docs/contract.md §12).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handoff_from: Vec<String>,
}

/// How a worktree task's work came back into the run's integration branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MergeState {
    Merged,
    /// It conflicted, and a resolver attempt (`on_conflict: agent`) completed the merge.
    Resolved,
    Conflict,
    /// The task changed nothing: there was nothing to merge.
    Skipped,
}

impl TaskReport {
    /// A task of a new run: pending, no attempt yet.
    pub fn pending(t: &crate::plan::Task) -> TaskReport {
        TaskReport { title: t.title.clone(), depends: t.depends.clone(), ..TaskReport::new(&t.id, &t.agent) }
    }

    /// Task `id` of `agent`, pending, with nothing else known of it.
    pub fn new(id: &str, agent: &str) -> TaskReport {
        TaskReport {
            id: id.into(),
            title: String::new(),
            agent: agent.into(),
            depends: vec![],
            state: TaskState::Pending,
            reason: None,
            detail: None,
            attempts: vec![],
            branch: None,
            commit: None,
            start_commit: None,
            merge: None,
            conflict_paths: vec![],
            files_changed: vec![],
            handoff_from: vec![],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AttemptReport {
    pub n: u32,
    pub agent: String,
    pub model: Option<String>,
    pub layer: Option<u8>,
    pub exit_code: Option<i32>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    pub fallback_reason: Option<String>,
    #[serde(default)]
    pub reason: Option<Reason>,
    #[serde(default)]
    pub detail: Option<String>,
    /// Process group of the attempt while it runs; used to reap it after an orchestrator crash.
    #[serde(default)]
    pub pid: Option<u32>,
    #[serde(default)]
    pub host: Option<String>,
    /// The worker that ran the attempt (`swarm run --workers`; the last, when it changed hands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Path of the attempt's log file.
    #[serde(default)]
    pub log: Option<String>,
    /// Directory the attempt ran in (the shared directory or the task's worktree).
    #[serde(default)]
    pub workdir: Option<String>,
    /// The agent's completion report, when it wrote a valid one.
    #[serde(default)]
    pub completion: Option<crate::completion::Completion>,
    /// Last lines of the failed `check`'s output.
    #[serde(default)]
    pub check_output: Option<String>,
    /// Things that did not fail the attempt but deserve a look (e.g. files changed that the
    /// report does not list).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// What the agent's output says went wrong (e.g. `rate_limited`), for a failed attempt.
    #[serde(default)]
    pub failure_class: Option<crate::failure::FailureClass>,
    /// How long the provider asked to wait before the next request (`retry-after`).
    #[serde(default)]
    pub retry_after_ms: Option<u64>,
    /// The agent's own session/conversation id, when it reports one.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Requests the attempt made through the model gateway, per model that served them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<ModelRequests>,
    /// What the attempt was for: unset for the task's own work, `resolver` for one that
    /// resolved its merge conflict (`on_conflict: agent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<AttemptKind>,
    /// When the attempt's turn came: its task became ready to run (the first attempt) or its
    /// previous attempt ended (a retry); it waited for a free slot (and a retry's backoff) until
    /// `started_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<DateTime<Utc>>,
    /// When the task's `check` started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks_at: Option<DateTime<Utc>>,
    /// When its work went to the merge queue (worktree tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merging_at: Option<DateTime<Utc>>,
    /// The times its requests waited for a model slot (every allowed model cooling or at its
    /// limit, or refusing first); an open one has no `to` yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_waits: Vec<ModelWaitSpan>,
}

/// A time an attempt waited for a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ModelWaitSpan {
    pub from: DateTime<Utc>,
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
    /// The model it waited for, when one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// What an attempt was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptKind {
    Agent,
    Resolver,
}

impl AttemptReport {
    /// Attempt `n` of `agent`, started at `started_at`; nothing known of it yet.
    pub fn new(n: u32, agent: &str, started_at: DateTime<Utc>) -> AttemptReport {
        AttemptReport {
            n,
            agent: agent.to_string(),
            model: None,
            layer: None,
            exit_code: None,
            started_at,
            ended_at: None,
            tokens_in: 0,
            tokens_out: 0,
            cost_usd: 0.0,
            fallback_reason: None,
            reason: None,
            detail: None,
            pid: None,
            host: None,
            worker: None,
            log: None,
            workdir: None,
            completion: None,
            check_output: None,
            warnings: vec![],
            failure_class: None,
            retry_after_ms: None,
            session_id: None,
            requests: vec![],
            kind: None,
            queued_at: None,
            checks_at: None,
            merging_at: None,
            model_waits: vec![],
        }
    }

    /// Still running: it has not ended.
    pub fn is_running(&self) -> bool {
        self.ended_at.is_none()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Counts {
    pub pending: usize,
    pub ready: usize,
    pub running: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub blocked: usize,
    pub cancelled: usize,
}

impl Counts {
    pub fn of<'a>(states: impl IntoIterator<Item = &'a TaskState>) -> Counts {
        let mut c = Counts::default();
        for s in states {
            *c.slot(*s) += 1;
        }
        c
    }

    fn slot(&mut self, s: TaskState) -> &mut usize {
        match s {
            TaskState::Pending => &mut self.pending,
            TaskState::Ready => &mut self.ready,
            TaskState::Running => &mut self.running,
            TaskState::Succeeded => &mut self.succeeded,
            TaskState::Failed => &mut self.failed,
            TaskState::Blocked => &mut self.blocked,
            TaskState::Cancelled => &mut self.cancelled,
        }
    }

    pub fn total(&self) -> usize {
        self.pending
            + self.ready
            + self.running
            + self.succeeded
            + self.failed
            + self.blocked
            + self.cancelled
    }

    pub fn finished(&self) -> usize {
        self.succeeded + self.failed + self.blocked + self.cancelled
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Usage {
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
}

/// The run's own record in the store: everything about a run except its tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunRecord {
    pub run_id: String,
    pub plan: String,
    pub namespace: String,
    pub plan_file: String,
    /// Directory where `shared` tasks run and relative paths resolve.
    pub workdir: String,
    pub state: RunState,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub concurrency: usize,
    pub fail_fast: bool,
    /// Paid models may serve (`--allow-paid`): `swarm resume` keeps it.
    #[serde(default)]
    pub allow_paid: bool,
    /// The run's attempts are queued for workers (`--workers`): `swarm resume` keeps it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub workers: bool,
    pub owner: Option<Owner>,
    /// The validated plan, so `resume` does not depend on the file still being there.
    pub spec: crate::plan::Plan,
    /// The run's git side when its plan lies in a repository: where worktree tasks start from
    /// and where their work is merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<RunGit>,
}

/// A run inside a git repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunGit {
    /// The repository's top directory.
    pub repo: String,
    /// The commit the run started from (HEAD at `swarm run`, or `--base`).
    pub base_commit: String,
    /// `swarm/<RUN_ID>`: every worktree task's work is merged into it, in dependency order.
    pub integration_branch: String,
    /// The repository workers on hosts without the checkout clone (`swarm run --repo URL`):
    /// the integration branch is pushed there, their work fetched from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
}

/// The orchestrator process that drives a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Owner {
    pub pid: u32,
    pub host: String,
    pub heartbeat_at: DateTime<Utc>,
}

impl RunReport {
    pub fn build(run: &RunRecord, tasks: Vec<TaskReport>) -> RunReport {
        let counts = Counts::of(tasks.iter().map(|t| &t.state));
        let mut totals = Usage::default();
        let mut by_model: std::collections::BTreeMap<String, ModelUsage> = Default::default();
        let mut by_layer: std::collections::BTreeMap<u8, LayerUsage> = Default::default();
        let empty = |model: String| ModelUsage {
            model,
            attempts: 0,
            requests: 0,
            tokens_in: 0,
            tokens_out: 0,
            cost_usd: 0.0,
        };
        for a in tasks.iter().flat_map(|t| &t.attempts) {
            totals.tokens_in += a.tokens_in;
            totals.tokens_out += a.tokens_out;
            totals.cost_usd += a.cost_usd;
            if a.requests.is_empty() {
                let model = a.model.clone().unwrap_or_default();
                let m = by_model.entry(model.clone()).or_insert_with(|| empty(model));
                m.attempts += 1;
                m.tokens_in += a.tokens_in;
                m.tokens_out += a.tokens_out;
                m.cost_usd += a.cost_usd;
                continue;
            }
            for r in &a.requests {
                let m = by_model.entry(r.model.clone()).or_insert_with(|| empty(r.model.clone()));
                m.attempts += 1;
                m.requests += r.count;
                m.tokens_in += r.tokens_in;
                m.tokens_out += r.tokens_out;
                m.cost_usd += r.cost_usd;
                let l = by_layer.entry(r.layer).or_insert(LayerUsage {
                    layer: r.layer,
                    requests: 0,
                    tokens_in: 0,
                    tokens_out: 0,
                    cost_usd: 0.0,
                });
                l.requests += r.count;
                l.tokens_in += r.tokens_in;
                l.tokens_out += r.tokens_out;
                l.cost_usd += r.cost_usd;
            }
        }
        RunReport {
            run_id: run.run_id.clone(),
            plan: run.plan.clone(),
            namespace: run.namespace.clone(),
            state: run.state,
            base_commit: run.git.as_ref().map(|g| g.base_commit.clone()),
            integration_branch: run.git.as_ref().map(|g| g.integration_branch.clone()),
            started_at: run.started_at,
            ended_at: run.ended_at,
            counts,
            totals,
            by_model: by_model.into_values().collect(),
            by_layer: by_layer.into_values().collect(),
            tasks,
            store_error: None,
            state_changes: vec![],
        }
    }
}
