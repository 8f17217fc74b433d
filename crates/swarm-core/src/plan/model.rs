//! Plan and task types, shared by the markdown and JSON forms.

use crate::duration;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What does a task's work, as its agent name says. The names themselves (built in and custom)
/// are swarm-agents' table; plan validation receives them in [`PlanContext`](super::PlanContext).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentKind {
    /// `agent: exec`: the task's `command`, run by `sh`. No model, no completion report
    /// expected, the plan's directory unless the plan says otherwise.
    Exec,
    /// An AI coding agent (built in or custom): it needs a model, is expected to write a
    /// completion report, and works in its own worktree inside a git repository.
    Ai,
}

impl AgentKind {
    /// The name of the one agent that is no AI.
    pub const EXEC: &'static str = "exec";

    pub fn of(agent: &str) -> AgentKind {
        if agent == AgentKind::EXEC {
            AgentKind::Exec
        } else {
            AgentKind::Ai
        }
    }
}

/// A validated plan: tasks in file order, `defaults` already applied to each task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub name: String,
    pub namespace: String,
    /// Max tasks running at once; `None` means the CPU count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// The shared brief given to every agent with its task prompt.
    #[serde(default)]
    pub brief: String,
    /// Declared shared state (docs/contract.md §12): keys, their schemas and writers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<crate::team::StateDecl>,
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Workdir {
    /// The task gets its own git worktree.
    Worktree,
    /// The task runs in the plan's directory, shared with other tasks.
    #[default]
    Shared,
}

/// What happens when a worktree task's merge into the integration branch conflicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnConflict {
    /// The task fails with `merge_conflict`; its branch is kept for a person.
    #[default]
    Fail,
    /// A resolver attempt gets the conflicted merge to finish.
    Agent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub id: String,
    #[serde(default)]
    pub title: String,
    pub agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends: Vec<String>,
    #[serde(default, with = "duration::opt_serde", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Duration>,
    #[serde(default, with = "duration::opt_serde", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub stall: Option<Duration>,
    #[serde(default)]
    pub retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Where the task works; unset: its own git worktree for an AI agent inside a git
    /// repository, the plan's directory otherwise (see [`Task::workdir`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<Workdir>,
    /// A named role: the agent CLI's own named agent, or `[roles.NAME] prompt_file`'s text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// How much of its dependencies' reports the prompt carries; unset: `summary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<crate::team::Handoff>,
    /// What a merge conflict does; unset: `[worktree] on_conflict`, else `fail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_conflict: Option<OnConflict>,
    /// What a worker must say of itself to take the task (`swarm worker --labels k=v`): every
    /// label here, with the same value. Only for runs whose attempts go to workers.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The task prompt, verbatim markdown.
    #[serde(default)]
    pub prompt: String,
}

impl Task {
    pub fn kind(&self) -> AgentKind {
        AgentKind::of(&self.agent)
    }

    /// Whether an AI agent does this task (not `exec`): it needs a model.
    pub fn runs_agent(&self) -> bool {
        self.kind() == AgentKind::Ai
    }

    /// Where the task works: `workdir` when the plan sets it; else a worktree for an AI agent
    /// when the plan lies in a git repository (`in_git`), the shared directory otherwise.
    pub fn workdir(&self, in_git: bool) -> Workdir {
        match self.workdir {
            Some(w) => w,
            None if in_git && self.runs_agent() => Workdir::Worktree,
            None => Workdir::Shared,
        }
    }
}

impl Plan {
    pub fn task_index(&self, id: &str) -> Option<usize> {
        self.tasks.iter().position(|t| t.id == id)
    }
}
