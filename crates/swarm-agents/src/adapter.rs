//! The adapter seam: what every agent adapter provides.

use std::path::PathBuf;
use swarm_core::event::Stream;
use swarm_core::plan::Task;

#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("agent `{0}` has no adapter in this version of swarm")]
    Unsupported(String),
    #[error("agent `{agent}`: {message}")]
    Invalid { agent: String, message: String },
}

/// Everything an adapter needs to launch one attempt.
#[derive(Debug, Clone)]
pub struct AttemptSpec<'a> {
    pub run_id: &'a str,
    pub task: &'a Task,
    pub attempt: u32,
    /// The plan's brief followed by the task prompt.
    pub prompt: &'a str,
    pub model: Option<&'a str>,
    pub workdir: PathBuf,
}

/// A fully built process invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// Written to the process's stdin, which is then closed.
    pub stdin: Option<String>,
}

/// One output line as the adapter understood it.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputLine {
    /// Plain text worth showing as the task's latest activity.
    Text(String),
}

pub trait Adapter: Send + Sync {
    fn name(&self) -> &str;

    fn launch(&self, spec: &AttemptSpec<'_>) -> Result<Launch, AdapterError>;

    /// Turns one raw output line into what it means. Never fails: unknown input is text.
    fn parse_line(&self, _stream: Stream, line: &str) -> OutputLine {
        OutputLine::Text(line.to_string())
    }
}
