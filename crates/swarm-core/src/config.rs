//! `swarm.toml`: embedded defaults overlaid by the project's file. Unknown keys are errors.

use crate::backoff::Backoff;
use crate::duration;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config `{path}`: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub run: RunConfig,
    /// Per-agent settings; for a name that is not built in, this defines a custom agent.
    #[serde(default)]
    pub agents: BTreeMap<String, AgentConfig>,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub hooks: HooksConfig,
    #[serde(default)]
    pub feedback: FeedbackConfig,
    #[serde(default)]
    pub worktree: WorktreeConfig,
    /// Where the config was read from, if anywhere.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Default concurrency when the plan sets none (default: CPU count).
    pub concurrency: Option<usize>,
    /// Time between SIGTERM and SIGKILL when an attempt is stopped (default 5s).
    #[serde(default, with = "duration::opt_serde")]
    pub grace: Option<Duration>,
    /// First retry delay (default 2s); doubles each retry, with ±25% jitter.
    #[serde(default, with = "duration::opt_serde")]
    pub retry_backoff: Option<Duration>,
    /// Longest retry delay (default 2m).
    #[serde(default, with = "duration::opt_serde")]
    pub retry_backoff_max: Option<Duration>,
    /// Longest a task's `check` may run (default 10m); past it the check fails.
    #[serde(default, with = "duration::opt_serde")]
    pub check_timeout: Option<Duration>,
    /// Largest log kept per attempt (default 32 MiB): its first and last halves, the middle of
    /// a longer output left out (`"64 MiB"`, `"500 KB"` or a number of bytes).
    pub log_limit: Option<bytesize::ByteSize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Events kept per run (Redis: stream entries, approximately; default 100000).
    pub event_retention: Option<usize>,
    /// How long a run that ended keeps retrying writes to a store that is away before it gives
    /// up on them (default 30s). During the run, writes are kept and retried without limit.
    #[serde(default, with = "duration::opt_serde")]
    pub give_up_after: Option<Duration>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Command template for a custom agent: `{prompt}`, `{model}`, `{workdir}` are substituted
    /// per argument (no shell involved).
    pub command: Option<String>,
    /// At most this many attempts of this agent at once.
    pub concurrency: Option<usize>,
    /// Extra environment for the agent.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Whether an attempt without a completion report fails (`no_report`). Default: yes for AI
    /// agents (built-in and custom), no for `exec`.
    pub require_report: Option<bool>,
    /// A pre-step (`sh -c`, in the attempt's working directory) run before every attempt of
    /// this agent: a login, an install. Bounded by `[worktree] setup_timeout`; a failure or
    /// timeout fails the attempt (`spawn_error`).
    pub setup: Option<String>,
}

/// `[worktree]`: how task worktrees are prepared.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorktreeConfig {
    /// Run (`sh -c`) in every new worktree before its agent starts (`npm ci`, copying `.env`);
    /// a failure or timeout fails the attempt with reason `setup_failed`.
    pub setup: Option<String>,
    /// Longest the setup command (and an agent's pre-step) may take (default 10m).
    #[serde(default, with = "duration::opt_serde")]
    pub setup_timeout: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub kind: String,
    pub base_url: Option<String>,
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
}

/// `[hooks]`: shell commands run (and a webhook called) when tasks and runs end. A hook that
/// fails or hangs is reported as a warning and never holds up the run.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    /// Run (`sh -c`) after every task reaches a final state, with the task's JSON on stdin.
    pub on_task_end: Option<String>,
    /// Run after a task fails or is blocked.
    pub on_failure: Option<String>,
    /// Run when the run ends, with the run report's JSON on stdin.
    pub on_run_end: Option<String>,
    /// A hook command still running after this is killed with its whole process group (default 30s).
    #[serde(default, with = "duration::opt_serde")]
    pub timeout: Option<Duration>,
    /// `http://` or `https://` URL that receives every hook event as a JSON POST.
    pub webhook: Option<String>,
    /// Time allowed for one webhook request (default 10s).
    #[serde(default, with = "duration::opt_serde")]
    pub webhook_timeout: Option<Duration>,
    /// Extra tries after a connection error or a 5xx answer (default 3).
    pub webhook_retries: Option<u32>,
}

impl HooksConfig {
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(Duration::from_secs(30))
    }

    pub fn webhook_timeout(&self) -> Duration {
        self.webhook_timeout.unwrap_or(Duration::from_secs(10))
    }

    pub fn webhook_retries(&self) -> u32 {
        self.webhook_retries.unwrap_or(3)
    }

    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (key, value) in [
            ("on_task_end", &self.on_task_end),
            ("on_failure", &self.on_failure),
            ("on_run_end", &self.on_run_end),
        ] {
            if value.as_deref().is_some_and(|c| c.trim().is_empty()) {
                out.push(format!("hooks.{key} must not be empty (leave it out to run nothing)"));
            }
        }
        for (key, value) in [("timeout", self.timeout), ("webhook_timeout", self.webhook_timeout)] {
            if value == Some(Duration::ZERO) {
                out.push(format!("hooks.{key} must be longer than 0s"));
            }
        }
        if let Some(url) = &self.webhook {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                out.push(format!("hooks.webhook must be an http:// or https:// URL, not `{url}`"));
            }
        }
        out
    }
}

/// `[feedback]`: where agents' completion reports and task states are mirrored as plain files.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackConfig {
    /// Mirror `completion.json` and `status.json` of every task (default true).
    pub mirror: Option<bool>,
    /// Mirror directory, relative to the project root (default `plans/agent-shared`).
    pub mirror_dir: Option<PathBuf>,
    /// The report instructions appended to AI agents' prompts; `{completion_file}`, `{run_id}`,
    /// `{task_id}` and `{attempt}` are filled in; `""` appends nothing.
    pub footer: Option<String>,
}

impl FeedbackConfig {
    pub fn mirror(&self) -> bool {
        self.mirror.unwrap_or(true)
    }

    pub fn mirror_dir(&self) -> PathBuf {
        self.mirror_dir.clone().unwrap_or_else(|| PathBuf::from("plans/agent-shared"))
    }
}

impl Config {
    /// Reads `path`; a missing file is an error (the user named it).
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Config::parse(&text, path)
    }

    /// Parses and validates the text of a config file; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text)
            .map_err(|e| ConfigError::Invalid { path: path.into(), message: e.to_string() })?;
        cfg.path = Some(path.into());
        cfg.validate()?;
        Ok(cfg)
    }

    /// `swarm.toml` in `dir` if present, else the embedded defaults.
    pub fn discover(dir: &Path) -> Result<Config, ConfigError> {
        let path = dir.join("swarm.toml");
        if path.is_file() {
            Config::read(&path)
        } else {
            Ok(Config::default())
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid =
            |message: String| ConfigError::Invalid { path: self.path.clone().unwrap_or_default(), message };
        for (name, agent) in &self.agents {
            let builtin = crate::plan::AGENTS.contains(&name.as_str());
            if builtin && agent.command.is_some() {
                return Err(invalid(format!(
                    "agents.{name}: `command` cannot override the built-in agent `{name}`; use another name"
                )));
            }
            if !builtin && agent.command.is_none() {
                return Err(invalid(format!("agents.{name}: a custom agent needs `command`")));
            }
            if agent.concurrency == Some(0) {
                return Err(invalid(format!("agents.{name}.concurrency must be at least 1")));
            }
        }
        if self.run.concurrency == Some(0) {
            return Err(invalid("run.concurrency must be at least 1".into()));
        }
        if let Some(problem) = self.hooks.problems().into_iter().next() {
            return Err(invalid(problem));
        }
        if self.feedback.mirror_dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            return Err(invalid(
                "feedback.mirror_dir must not be empty (set `mirror = false` to turn it off)".into(),
            ));
        }
        Ok(())
    }

    pub fn custom_agents(&self) -> Vec<String> {
        self.agents.iter().filter(|(_, a)| a.command.is_some()).map(|(n, _)| n.clone()).collect()
    }

    pub fn check_timeout(&self) -> Duration {
        self.run.check_timeout.unwrap_or(Duration::from_secs(600))
    }

    /// Bytes kept of one attempt's log (`[run] log_limit`).
    pub fn log_limit(&self) -> u64 {
        self.run.log_limit.map_or(32 * 1024 * 1024, |b| b.as_u64())
    }

    /// `[worktree] setup_timeout`: the bound on setup commands and agent pre-steps.
    pub fn setup_timeout(&self) -> Duration {
        self.worktree.setup_timeout.unwrap_or(Duration::from_secs(600))
    }

    pub fn grace(&self) -> Duration {
        self.run.grace.unwrap_or(Duration::from_secs(5))
    }

    /// How long a finished run keeps retrying writes to a store that is away.
    pub fn store_give_up_after(&self) -> Duration {
        self.store.give_up_after.unwrap_or(Duration::from_secs(30))
    }

    pub fn backoff(&self) -> Backoff {
        let d = Backoff::default();
        Backoff {
            initial: self.run.retry_backoff.unwrap_or(d.initial),
            max: self.run.retry_backoff_max.unwrap_or(d.max),
            ..d
        }
    }

    pub fn require_report(&self, agent: &str) -> bool {
        self.agents.get(agent).and_then(|a| a.require_report).unwrap_or(agent != "exec")
    }

    pub fn agent_limit(&self, agent: &str) -> Option<usize> {
        self.agents.get(agent).and_then(|a| a.concurrency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors() {
        let dir = std::env::temp_dir().join(format!("swarm-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("swarm.toml");
        std::fs::write(&p, "[run]\nconcurency = 3\n").unwrap();
        let err = Config::read(&p).unwrap_err().to_string();
        assert!(err.contains("concurency"), "{err}");
        std::fs::write(
            &p,
            "[agents.mine]\ncommand = \"my-cli {prompt}\"\nconcurrency = 2\n[run]\ngrace = \"2s\"\n",
        )
        .unwrap();
        let cfg = Config::read(&p).unwrap();
        assert_eq!(cfg.custom_agents(), vec!["mine".to_string()]);
        assert_eq!(cfg.agent_limit("mine"), Some(2));
        assert_eq!(cfg.grace(), Duration::from_secs(2));
        std::fs::write(&p, "[agents.mine]\nconcurrency = 2\n").unwrap();
        assert!(Config::read(&p).unwrap_err().to_string().contains("needs `command`"));
    }

    #[test]
    fn hooks_and_feedback_have_defaults_and_reject_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("swarm-cfg-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("swarm.toml");
        let cfg = Config::default();
        assert_eq!(cfg.hooks.timeout(), Duration::from_secs(30));
        assert_eq!(cfg.hooks.webhook_timeout(), Duration::from_secs(10));
        assert_eq!(cfg.hooks.webhook_retries(), 3);
        assert!(cfg.feedback.mirror());
        assert_eq!(cfg.feedback.mirror_dir(), PathBuf::from("plans/agent-shared"));
        std::fs::write(
            &p,
            "[hooks]\non_task_end = \"cat > t.json\"\non_failure = \"notify\"\non_run_end = \"cat\"\n\
             timeout = \"500ms\"\nwebhook = \"http://127.0.0.1:9/h\"\nwebhook_timeout = \"2s\"\nwebhook_retries = 0\n\
             [feedback]\nmirror = false\nmirror_dir = \"shared/out\"\n",
        )
        .unwrap();
        let cfg = Config::read(&p).unwrap();
        assert_eq!(cfg.hooks.on_task_end.as_deref(), Some("cat > t.json"));
        assert_eq!(cfg.hooks.timeout(), Duration::from_millis(500));
        assert_eq!(cfg.hooks.webhook_timeout(), Duration::from_secs(2));
        assert_eq!(cfg.hooks.webhook_retries(), 0);
        assert!(!cfg.feedback.mirror());
        assert_eq!(cfg.feedback.mirror_dir(), PathBuf::from("shared/out"));
        for (text, want) in [
            ("[hooks]\non_end = \"x\"\n", "on_end"),
            ("[feedback]\nmirror_path = \"x\"\n", "mirror_path"),
            ("[hooks]\ntimeout = \"soon\"\n", "soon"),
            ("[hooks]\ntimeout = \"0s\"\n", "hooks.timeout must be longer than 0s"),
            ("[hooks]\non_failure = \" \"\n", "hooks.on_failure must not be empty"),
            ("[hooks]\nwebhook = \"example.com/h\"\n", "http:// or https://"),
            ("[feedback]\nmirror_dir = \"\"\n", "feedback.mirror_dir must not be empty"),
        ] {
            std::fs::write(&p, text).unwrap();
            let err = Config::read(&p).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
