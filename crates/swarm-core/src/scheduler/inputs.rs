//! What goes into the scheduler and what comes out: the task graph's nodes, the inputs it is fed,
//! the actions it answers with, its options; and two pure helpers around it (the nodes of a
//! plan, the outcome an attempt is recorded with).

use crate::backoff::Backoff;
use crate::plan::Plan;
use crate::state::{Reason, RunState, TaskState};
use std::collections::HashMap;
use std::time::Duration;

/// One node as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct Node {
    pub deps: Vec<u32>,
    /// Index into the agent table (for per-agent limits).
    pub agent: u16,
    /// 1 + retries.
    pub max_attempts: u32,
}

/// How a task stood when a run is resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    pub state: TaskState,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The attempt `attempt` of `task` ended; `Ok` when it succeeded. A retry never starts
    /// sooner than `retry_after` (a provider's `retry-after`) from now.
    AttemptEnded { task: u32, attempt: u32, outcome: Result<(), Failure>, retry_after: Option<Duration> },
    /// The attempt failed on its model (a rate limit, a quota, …) and another model of the
    /// hierarchy is left for it: the next attempt starts at once, on that model, without
    /// spending one of the task's retries.
    FellBack { task: u32, attempt: u32, failure: Failure },
    /// The backoff delay announced by `Action::RetryAfter` has passed.
    RetryDue { task: u32 },
    /// Stop: nothing new starts, running attempts are stopped, the rest is cancelled.
    Cancel,
    /// The run cannot go on (e.g. its store lease is lost): nothing new starts, running attempts
    /// are stopped, and every task that did not finish fails with `failure`, never `cancelled`.
    Abort(Failure),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    pub reason: Reason,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    SetState { task: u32, state: TaskState, reason: Option<Reason>, detail: Option<String> },
    Start { task: u32, attempt: u32 },
    RetryAfter { task: u32, next_attempt: u32, delay: Duration },
    Stop { task: u32 },
    Finished(RunState),
}

pub struct Options {
    pub concurrency: usize,
    /// Limit per agent index (`None`: only the global limit).
    pub agent_limits: Vec<Option<usize>>,
    pub fail_fast: bool,
    pub backoff: Backoff,
    pub seed: u64,
}

/// The outcome an attempt is recorded with. A failure while the run's store was lost (`store_lost`
/// says why) is `lease_lost`, not a cancel by a user; a failure of an attempt the model gateway
/// found no model for (`exhausted` says why) is `models_exhausted`, unless it was cancelled.
pub fn settle(
    outcome: Result<(), Failure>,
    store_lost: Option<&str>,
    exhausted: Option<String>,
) -> Result<(), Failure> {
    match outcome {
        Err(f) if f.reason == Reason::Cancelled => match store_lost {
            Some(why) => Err(Failure { reason: Reason::LeaseLost, detail: Some(why.to_string()) }),
            None => Err(f),
        },
        Err(f) => match exhausted {
            Some(why) => Err(Failure { reason: Reason::ModelsExhausted, detail: Some(why) }),
            None => Err(f),
        },
        Ok(()) => Ok(()),
    }
}

/// Builds scheduler nodes from a validated plan; returns the nodes and the agent table.
pub fn nodes_for(plan: &Plan) -> (Vec<Node>, Vec<String>) {
    let index: HashMap<&str, u32> =
        plan.tasks.iter().enumerate().map(|(i, t)| (t.id.as_str(), i as u32)).collect();
    let mut agents: Vec<String> = Vec::new();
    let nodes = plan
        .tasks
        .iter()
        .map(|t| {
            let agent = match agents.iter().position(|a| *a == t.agent) {
                Some(p) => p,
                None => {
                    agents.push(t.agent.clone());
                    agents.len() - 1
                }
            } as u16;
            Node {
                deps: t.depends.iter().map(|d| index[d.as_str()]).collect(),
                agent,
                max_attempts: 1 + t.retries,
            }
        })
        .collect();
    (nodes, agents)
}
