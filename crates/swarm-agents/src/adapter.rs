//! The adapter seam: what every agent adapter provides.

use std::path::PathBuf;
use std::time::Duration;
use swarm_core::event::Stream;
use swarm_core::failure::FailureClass;
use swarm_core::plan::Task;

#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("agent `{0}` has no adapter in this version of swarm")]
    Unsupported(String),
    #[error("agent `{agent}`: {message}")]
    Invalid { agent: String, message: String },
}

/// The provider an attempt's model is served by (`model: local/ok` → provider `local` from
/// `swarm.toml`). Never holds the key itself: only the name of the env var that does.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProviderSpec {
    /// The provider's name in `swarm.toml` (`local`).
    pub name: String,
    /// `openai-compatible`, `anthropic`, …
    pub kind: String,
    pub base_url: Option<String>,
    /// The model id without the provider prefix (`ok`).
    pub model: String,
    /// Name of the env var holding the key; the dispatcher makes sure the agent's environment
    /// has it (the user's value, or a placeholder for a local endpoint).
    pub api_key_env: String,
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
    /// The provider of `model`, when it names one from `swarm.toml`.
    pub provider: Option<ProviderSpec>,
    /// A directory private to this attempt (agent config, isolated HOME, …).
    pub attempt_dir: PathBuf,
    /// The project's root: agent binaries are also looked up in its `.tools/node_modules/.bin`.
    pub project_root: PathBuf,
    /// Where the agent writes its completion report, when the attempt must report (CLIs that
    /// confine writes to their workspace need to be told).
    pub completion_file: Option<PathBuf>,
}

/// A command run to completion before the agent starts (e.g. `cline auth`).
#[derive(Debug, Clone, PartialEq)]
pub struct SetupCommand {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// A fully built process invocation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Launch {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// `(VAR, FROM)`: set `VAR` to the value `FROM` has in the process's final environment (a
    /// key under the name the agent reads, without swarm ever holding it in a launch record).
    pub env_from: Vec<(String, String)>,
    /// Variables of swarm's own environment the agent must not inherit (a second credential
    /// its CLI would send too, a variable that redirects it elsewhere).
    pub env_remove: Vec<String>,
    pub cwd: PathBuf,
    /// Written to the process's stdin, which is then closed.
    pub stdin: Option<String>,
    /// Run in order, each to success, in `cwd` before `program` is started.
    pub setup: Vec<SetupCommand>,
}

impl Launch {
    /// `program args…` with `env`, in the attempt's working directory.
    pub fn in_workdir(
        spec: &AttemptSpec<'_>,
        program: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> Launch {
        Launch { program, args, env, cwd: spec.workdir.clone(), ..Default::default() }
    }

    /// [`Launch::in_workdir`] with the prompt written to stdin: what most agents read, since an
    /// argument is capped at 128 KiB.
    pub fn prompt_on_stdin(
        spec: &AttemptSpec<'_>,
        program: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> Launch {
        Launch { stdin: Some(spec.prompt.to_string()), ..Launch::in_workdir(spec, program, args, env) }
    }
}

/// What one output line of an agent means.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentOutput {
    /// Plain text worth showing as the task's latest activity.
    Text(String),
    /// The agent used a tool.
    Tool { name: String, detail: String },
    /// Tokens and cost to add to the attempt's totals.
    Usage { tokens_in: u64, tokens_out: u64, cost_usd: f64 },
    /// The agent's session / conversation id.
    Session(String),
    /// The agent reported an error.
    Error { class: FailureClass, message: String, retry_after: Option<Duration> },
}

impl AgentOutput {
    /// A one-line human rendering (for Text and Tool outputs).
    pub fn display_line(&self) -> Option<String> {
        match self {
            AgentOutput::Text(t) => Some(t.clone()),
            AgentOutput::Tool { name, detail } if detail.is_empty() => Some(format!("[tool] {name}")),
            AgentOutput::Tool { name, detail } => Some(format!("[tool] {name}: {detail}")),
            AgentOutput::Error { class, message, .. } => Some(format!("[error: {class}] {message}")),
            _ => None,
        }
    }
}

/// Longest `SWARM_PROMPT` an attempt gets: the environment shares the kernel's argument space
/// (one string at most 128 KiB), so a long prompt is cut here; stdin always carries it whole.
pub const ENV_PROMPT_LIMIT: usize = 32 * 1024;

/// `prompt` for the `SWARM_PROMPT` variable: whole when short, else its head and a note that
/// the whole prompt is on stdin.
pub fn env_prompt(prompt: &str) -> String {
    if prompt.len() <= ENV_PROMPT_LIMIT {
        return prompt.to_string();
    }
    let note = format!("\n[… truncated: {} bytes in all; the whole prompt is on stdin]", prompt.len());
    let mut cut = ENV_PROMPT_LIMIT - note.len();
    while !prompt.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{note}", &prompt[..cut])
}

pub trait Adapter: Send + Sync {
    fn name(&self) -> &str;

    fn launch(&self, spec: &AttemptSpec<'_>) -> Result<Launch, AdapterError>;

    /// Whether the agent can talk to swarm's model gateway (an OpenAI-compatible endpoint and a
    /// key it is given). Agents that cannot (a CLI signed in with its own account) fall back per
    /// attempt instead: a rate limit moves the next attempt to the next model.
    fn speaks_gateway(&self) -> bool {
        false
    }

    /// Whether the CLI can exit 0 although it failed (aider): then errors it printed, and did not
    /// recover from, fail the attempt.
    fn exit_zero_may_fail(&self) -> bool {
        false
    }

    /// Whether an exit 0 counts only after the agent reported usage (its run's result): some
    /// CLIs exit 0 having done nothing.
    fn needs_usage_to_succeed(&self) -> bool {
        false
    }

    /// Turns one raw output line into what it means. Never fails: unknown input is text.
    fn parse_line(&self, _stream: Stream, line: &str) -> Vec<AgentOutput> {
        vec![AgentOutput::Text(line.to_string())]
    }

    /// Why a failed attempt failed, from the errors its output reported (the `Error` outputs of
    /// `parse_line`), the last stderr lines and the exit code.
    fn classify(
        &self,
        exit_code: Option<i32>,
        errors: &[AgentOutput],
        stderr_tail: &[String],
    ) -> Option<(FailureClass, Option<Duration>)> {
        crate::classify::classify(exit_code, errors, stderr_tail)
    }
}
