//! completion.json (CONTRACT §5): what an agent writes when it finishes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The version of the completion format this swarm writes and reads.
pub const COMPLETION_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Completion {
    /// Always 1 for this format.
    #[schemars(range(min = 1, max = 1))]
    pub schema_version: u32,
    pub run_id: String,
    pub task_id: String,
    pub status: CompletionStatus,
    /// What was done, one paragraph.
    pub summary: String,
    #[serde(default)]
    pub files_changed: Vec<String>,
    #[serde(default)]
    pub tests: Vec<TestRun>,
    #[serde(default)]
    pub follow_ups: Vec<String>,
    #[serde(default)]
    pub blockers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompletionStatus {
    Done,
    Partial,
    Blocked,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRun {
    pub command: String,
    pub passed: bool,
}
