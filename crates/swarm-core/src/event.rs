//! The public event: one serializable record of something that happened in a run. It feeds the
//! terminal progress, `--json` output, the store's event log and the report alike.

use crate::state::{Reason, RunState, TaskState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Event {
    pub run_id: String,
    pub timestamp: DateTime<Utc>,
    /// Milliseconds since this orchestrator session started the run.
    pub elapsed_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    RunStarted {
        plan: String,
        namespace: String,
        tasks: usize,
        concurrency: usize,
        resumed: bool,
    },
    TaskState {
        task: String,
        state: TaskState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    AttemptStarted {
        task: String,
        attempt: u32,
        agent: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
    },
    Output {
        task: String,
        attempt: u32,
        stream: Stream,
        line: String,
    },
    AttemptFinished {
        task: String,
        attempt: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    RetryScheduled {
        task: String,
        next_attempt: u32,
        delay_ms: u64,
    },
    CancelRequested {
        source: String,
    },
    Warning {
        message: String,
    },
    /// A shared-state key of the run's namespace was changed by one of its agents.
    StateChanged {
        key: String,
        /// `set` or `delete`.
        op: String,
        version: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempt: Option<u32>,
    },
    /// A store write refused because the writer's lease on the run was not (or no longer) the
    /// run's: another orchestrator took the run over.
    WriteRejected {
        lease: String,
        tasks: Vec<String>,
        events: usize,
    },
    /// The run's store could not be written any more: it was emptied, deleted or replaced,
    /// another orchestrator took the run, or it stayed away past the give-up time. What follows
    /// is only in the report on disk; `lost_writes` counts the writes that were not stored.
    StoreLost {
        message: String,
        lost_writes: u64,
    },
    /// The model gateway absorbed a provider's refusal of one of the attempt's requests (a
    /// rate limit, a quota, an overload, …) and sent the request on to the next model; `action`
    /// says what became of `model` (cooling until …, disabled for the run).
    ModelFallback {
        task: String,
        attempt: u32,
        model: String,
        class: crate::failure::FailureClass,
        action: String,
    },
    /// The model gateway serves the attempt's requests with `model` (of hierarchy `layer`) now:
    /// said at its first request and whenever the model changes.
    ModelServing {
        task: String,
        attempt: u32,
        model: String,
        layer: u8,
    },
    /// Every allowed model is cooling down or at its limit: the attempt's request waits for
    /// `model` until `until` (within `[models] max_wait`).
    ModelWait {
        task: String,
        attempt: u32,
        model: String,
        until: DateTime<Utc>,
    },
    RunFinished {
        state: RunState,
        succeeded: usize,
        failed: usize,
        blocked: usize,
        cancelled: usize,
    },
}

impl EventKind {
    /// Output lines are streamed to live consumers and logs but not kept in the store.
    pub fn is_persistent(&self) -> bool {
        !matches!(self, EventKind::Output { .. })
    }

    pub fn task(&self) -> Option<&str> {
        match self {
            EventKind::TaskState { task, .. }
            | EventKind::AttemptStarted { task, .. }
            | EventKind::Output { task, .. }
            | EventKind::AttemptFinished { task, .. }
            | EventKind::RetryScheduled { task, .. }
            | EventKind::ModelFallback { task, .. }
            | EventKind::ModelWait { task, .. }
            | EventKind::ModelServing { task, .. } => Some(task),
            _ => None,
        }
    }
}
