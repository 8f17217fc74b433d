//! Task and run states and the reasons a task did not succeed (docs/contract.md §3).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The public state of a task (a plan node). Attempts have their own record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Pending,
    Ready,
    Running,
    Succeeded,
    Failed,
    Blocked,
    Cancelled,
}

impl TaskState {
    pub const ALL: [TaskState; 7] = [
        TaskState::Pending,
        TaskState::Ready,
        TaskState::Running,
        TaskState::Succeeded,
        TaskState::Failed,
        TaskState::Blocked,
        TaskState::Cancelled,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(self, TaskState::Succeeded | TaskState::Failed | TaskState::Blocked | TaskState::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Ready => "ready",
            TaskState::Running => "running",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
            TaskState::Blocked => "blocked",
            TaskState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<TaskState> {
        TaskState::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a task (or an attempt) did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    ExitCode,
    Timeout,
    Stalled,
    SpawnError,
    DependencyFailed,
    NoReport,
    InvalidReport,
    CheckFailed,
    ModelsExhausted,
    MergeConflict,
    LeaseLost,
    Cancelled,
    /// The agent's own completion report says it did not finish (`partial`, `blocked`, `failed`).
    ReportedFailure,
    /// The worktree's `[worktree] setup` command failed or timed out.
    SetupFailed,
    /// The task's work could not be brought back for another reason than a conflict: git failed,
    /// or its worktree is not as swarm made it (`.git` rewritten or deleted, HEAD moved).
    MergeFailed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ExitCode => "exit_code",
            Reason::Timeout => "timeout",
            Reason::Stalled => "stalled",
            Reason::SpawnError => "spawn_error",
            Reason::DependencyFailed => "dependency_failed",
            Reason::NoReport => "no_report",
            Reason::InvalidReport => "invalid_report",
            Reason::CheckFailed => "check_failed",
            Reason::ModelsExhausted => "models_exhausted",
            Reason::MergeConflict => "merge_conflict",
            Reason::LeaseLost => "lease_lost",
            Reason::Cancelled => "cancelled",
            Reason::ReportedFailure => "reported_failure",
            Reason::SetupFailed => "setup_failed",
            Reason::MergeFailed => "merge_failed",
        }
    }

    /// Whether another attempt may fix it. A spawn error (missing binary) or a cancel will not.
    pub fn is_retryable(self) -> bool {
        // A merge conflict keeps the task's branch for a person: running it again would only
        // make the same edits on top of the same integration branch.
        !matches!(
            self,
            Reason::SpawnError
                | Reason::Cancelled
                | Reason::DependencyFailed
                | Reason::MergeConflict
                | Reason::MergeFailed
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }

    /// The process exit code for a finished run (docs/contract.md §2).
    pub fn exit_code(self) -> i32 {
        match self {
            RunState::Succeeded => 0,
            RunState::Running | RunState::Failed => 1,
            RunState::Cancelled => 130,
        }
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
