//! `swarm.toml` (and a `models.toml` beside it): embedded defaults overlaid by the project's
//! files. Unknown keys are errors.

mod defaults;
mod hooks;
mod models;
mod providers;

pub use hooks::HooksConfig;
pub use models::{glob_match, split_model_id, GroupConfig, ModelLimitsConfig, ModelsConfig, MAX_LAYERS};
pub use providers::{
    ProviderConfig, FIRST_BYTE_TIMEOUT_STREAM, FIRST_BYTE_TIMEOUT_WHOLE, GEMINI_DAY_RESET, IDLE_TIMEOUT,
    PROVIDER_KINDS,
};

use crate::backoff::Backoff;
use crate::duration;
use crate::plan::AgentKind;
use models::ModelsFile;
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
    /// `[state]`: declared shared state, as a plan's `state:` (a plan's own wins).
    pub state: Option<crate::team::StateDecl>,
    /// `[roles.NAME]`: roles tasks may name (`role: NAME`).
    #[serde(default)]
    pub roles: BTreeMap<String, RoleConfig>,
    /// `[models]`: the model hierarchy, from `swarm.toml` or the `models.toml` beside it.
    pub models: Option<ModelsConfig>,
    /// Where the config was read from, if anywhere.
    #[serde(skip)]
    pub path: Option<PathBuf>,
    /// Where `[models]` was read from (`swarm.toml` or `models.toml`), if anywhere.
    #[serde(skip)]
    pub models_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Default concurrency when the plan sets none (default: CPU count).
    pub concurrency: Option<usize>,
    /// Queue the attempts for `swarm worker`s instead of running them here (as `--workers`).
    #[serde(default)]
    pub workers: bool,
    /// The repository workers on hosts without the checkout clone (as `--repo URL`).
    pub repo: Option<String>,
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
    /// For a custom agent: whether it uses swarm's model gateway (`SWARM_GATEWAY_URL`,
    /// `SWARM_GATEWAY_TOKEN`; default yes). With `false` a task without a `model` gets one model
    /// of the hierarchy per attempt, and a rate limit moves the next attempt to the next model.
    pub gateway: Option<bool>,
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
    /// How a task's work goes into the run's integration branch: `merge` (default, a merge
    /// commit per task), `squash` (one commit per task) or `rebase` (its commits replayed).
    pub merge: Option<String>,
    /// Author of the commits swarm makes, `Name <email>` (default `swarm <swarm@localhost>`).
    pub author: Option<String>,
    /// What a conflicting merge does for tasks that do not say (`fail` or `agent`).
    pub on_conflict: Option<crate::plan::OnConflict>,
    /// The agent of resolver attempts (default: the task's own).
    pub resolver_agent: Option<String>,
    /// Largest file swarm commits from a task's worktree (default 50 MiB); a bigger one is left
    /// out of the commit, in the worktree, and the attempt says so.
    pub max_file_size: Option<bytesize::ByteSize>,
}

/// `[roles.NAME]`: the text put before the prompt of a task with `role: NAME`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// A file (relative to swarm.toml's directory) whose text goes before the task prompt.
    pub prompt_file: Option<String>,
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
        self.mirror.unwrap_or(defaults::MIRROR)
    }

    pub fn mirror_dir(&self) -> PathBuf {
        self.mirror_dir.clone().unwrap_or_else(|| PathBuf::from(defaults::MIRROR_DIR))
    }
}

impl Config {
    /// Reads `path` and the `models.toml` beside it, if any; a missing `path` is an error (the
    /// user named it).
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let mut cfg = Config::parse_unchecked(&read_text(path)?, path)?;
        cfg.merge_models_file(&path.with_file_name(MODELS_FILE))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses and validates the text of a config file; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let cfg = Config::parse_unchecked(text, path)?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn parse_unchecked(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text)
            .map_err(|e| ConfigError::Invalid { path: path.into(), message: e.to_string() })?;
        cfg.path = Some(path.into());
        cfg.models_path = cfg.models.is_some().then(|| path.into());
        Ok(cfg)
    }

    /// `swarm.toml` in `dir` if present, else the embedded defaults; either way with the
    /// `models.toml` in `dir`, if any.
    pub fn discover(dir: &Path) -> Result<Config, ConfigError> {
        let path = dir.join("swarm.toml");
        if path.is_file() {
            return Config::read(&path);
        }
        let mut cfg = Config::default();
        cfg.merge_models_file(&dir.join(MODELS_FILE))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Takes `[models]` (and providers) from `path` when that file exists. `[models]` may be
    /// defined in one file only, and a provider declared once.
    fn merge_models_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        if !path.is_file() || self.path.as_deref() == Some(path) {
            return Ok(());
        }
        let invalid = |message: String| ConfigError::Invalid { path: path.into(), message };
        let file: ModelsFile = toml::from_str(&read_text(path)?).map_err(|e| invalid(e.to_string()))?;
        let here = path.display();
        if let Some(models) = file.models {
            if let Some(there) = &self.models_path {
                return Err(invalid(format!(
                    "[models] is defined both in `{}` and in `{here}`; keep one of them",
                    there.display()
                )));
            }
            self.models = Some(models);
            self.models_path = Some(path.into());
        }
        for (name, provider) in file.providers {
            if self.providers.contains_key(&name) {
                let there = self.path.as_deref().unwrap_or(Path::new("swarm.toml")).display();
                return Err(invalid(format!(
                    "providers.{name} is declared both in `{there}` and in `{here}`; keep one of them"
                )));
            }
            self.providers.insert(name, provider);
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid =
            |message: String| ConfigError::Invalid { path: self.path.clone().unwrap_or_default(), message };
        if let Some(models) = &self.models {
            if let Some(problem) = models.problems(&self.providers).into_iter().next() {
                let path = self.models_path.clone().or_else(|| self.path.clone()).unwrap_or_default();
                return Err(ConfigError::Invalid { path, message: problem });
            }
        }
        for (name, p) in &self.providers {
            // Other kinds (`ollama`, `groq`, …) are spoken to as OpenAI Chat; a near miss of a
            // known one is a typo that would silently speak the wrong format.
            let near = crate::diagnostic::closest(&p.kind, PROVIDER_KINDS.iter().copied());
            if !PROVIDER_KINDS.contains(&p.kind.as_str()) && near.is_some() {
                return Err(invalid(format!(
                    "providers.{name}.kind is `{}`: did you mean `{}`? (known kinds: {}; any other is spoken to as OpenAI Chat)",
                    p.kind,
                    near.unwrap_or_default(),
                    PROVIDER_KINDS.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                )));
            }
            if p.day_reset.as_deref().is_some_and(|z| crate::router::DayReset::parse(z).is_none()) {
                return Err(invalid(format!(
                    "providers.{name}.day_reset: not a time zone (an IANA name like America/Los_Angeles or UTC)"
                )));
            }
        }
        for (name, agent) in &self.agents {
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
        if let Some(m) = self.worktree.merge.as_deref().filter(|m| !["merge", "squash", "rebase"].contains(m))
        {
            return Err(invalid(format!("worktree.merge is `{m}`: use `merge`, `squash` or `rebase`")));
        }
        if let Some(a) = self.worktree.author.as_deref().filter(|a| !(a.contains('<') && a.ends_with('>'))) {
            return Err(invalid(format!("worktree.author is `{a}`: write it as `Name <email>`")));
        }
        if self.feedback.mirror_dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            return Err(invalid(
                "feedback.mirror_dir must not be empty (set `mirror = false` to turn it off)".into(),
            ));
        }
        Ok(())
    }

    /// Checks `[agents.NAME]` against the built-in agent names (swarm-agents' table): a built-in
    /// agent's section only tunes it, any other name is a custom agent and needs `command`.
    pub fn check_agents(&self, builtin: &[&str]) -> Result<(), ConfigError> {
        let invalid =
            |message: String| ConfigError::Invalid { path: self.path.clone().unwrap_or_default(), message };
        for (name, agent) in &self.agents {
            let builtin = builtin.contains(&name.as_str());
            if builtin && agent.command.is_some() {
                return Err(invalid(format!(
                    "agents.{name}: `command` cannot override the built-in agent `{name}`; use another name"
                )));
            }
            if !builtin && agent.command.is_none() {
                return Err(invalid(format!("agents.{name}: a custom agent needs `command`")));
            }
        }
        Ok(())
    }

    pub fn custom_agents(&self) -> Vec<String> {
        self.agents.iter().filter(|(_, a)| a.command.is_some()).map(|(n, _)| n.clone()).collect()
    }

    pub fn check_timeout(&self) -> Duration {
        self.run.check_timeout.unwrap_or(defaults::CHECK_TIMEOUT)
    }

    /// Bytes kept of one attempt's log (`[run] log_limit`).
    pub fn log_limit(&self) -> u64 {
        self.run.log_limit.map_or(defaults::LOG_LIMIT, |b| b.as_u64())
    }

    /// `[worktree] max_file_size`, bytes.
    pub fn max_file_size(&self) -> u64 {
        self.worktree.max_file_size.map_or(defaults::MAX_FILE_SIZE, |b| b.as_u64())
    }

    /// `[worktree] setup_timeout`: the bound on setup commands and agent pre-steps.
    pub fn setup_timeout(&self) -> Duration {
        self.worktree.setup_timeout.unwrap_or(defaults::SETUP_TIMEOUT)
    }

    pub fn grace(&self) -> Duration {
        self.run.grace.unwrap_or(defaults::GRACE)
    }

    /// How long a finished run keeps retrying writes to a store that is away.
    pub fn store_give_up_after(&self) -> Duration {
        self.store.give_up_after.unwrap_or(defaults::STORE_GIVE_UP_AFTER)
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
        self.agents.get(agent).and_then(|a| a.require_report).unwrap_or(AgentKind::of(agent) == AgentKind::Ai)
    }

    pub fn agent_limit(&self, agent: &str) -> Option<usize> {
        self.agents.get(agent).and_then(|a| a.concurrency)
    }

    /// Whether a model hierarchy is configured (`[models] layers` names at least one model).
    pub fn has_model_hierarchy(&self) -> bool {
        !self.model_layers().is_empty()
    }

    /// `[models] layers`, layer 1 first (empty without a hierarchy).
    pub fn model_layers(&self) -> &[Vec<String>] {
        self.models.as_ref().map_or(&[], |m| m.layers.as_slice())
    }

    /// Where model `id`'s day begins: its own `day_reset`, else its provider's.
    pub fn model_day_reset(&self, id: &str) -> crate::router::DayReset {
        let own = self
            .model_limits(id)
            .and_then(|l| l.day_reset.as_deref())
            .and_then(crate::router::DayReset::parse);
        own.or_else(|| {
            let provider = split_model_id(id).map(|(p, _)| p)?;
            self.providers.get(provider).map(ProviderConfig::day_reset)
        })
        .unwrap_or_default()
    }

    /// The `[models.groups]`, by name.
    pub fn model_groups(&self) -> impl Iterator<Item = (&String, &GroupConfig)> {
        self.models.iter().flat_map(|m| m.groups.iter())
    }

    pub fn model_limits(&self, id: &str) -> Option<&ModelLimitsConfig> {
        self.models.as_ref().and_then(|m| m.limits.get(id))
    }

    /// Whether a model costs money: unless it or its provider says `paid = false`, it does.
    pub fn model_paid(&self, id: &str) -> bool {
        let own = self.model_limits(id).and_then(|l| l.paid);
        let provider = || split_model_id(id).and_then(|(p, _)| self.providers.get(p)).and_then(|p| p.paid);
        own.or_else(provider).unwrap_or(defaults::PAID)
    }

    /// `[models] allow_paid` (default false); `swarm run --allow-paid` sets it.
    pub fn allow_paid(&self) -> bool {
        self.models.as_ref().and_then(|m| m.allow_paid).unwrap_or(defaults::ALLOW_PAID)
    }

    /// `[models] max_wait` (default 1m).
    pub fn max_wait(&self) -> Duration {
        self.models.as_ref().and_then(|m| m.max_wait).unwrap_or(defaults::MAX_WAIT)
    }

    /// `[models] budget_usd`: the run's spend cap, if any.
    pub fn budget_usd(&self) -> Option<f64> {
        self.models.as_ref().and_then(|m| m.budget_usd)
    }

    /// `[models] budget_tokens`: the run's token cap, if any.
    pub fn budget_tokens(&self) -> Option<u64> {
        self.models.as_ref().and_then(|m| m.budget_tokens)
    }
}

/// The file beside `swarm.toml` that may hold `[models]` instead of it.
pub const MODELS_FILE: &str = "models.toml";

fn read_text(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })
}

/// Provider prefixes agents know by themselves (models.dev ids): a `model:` naming one needs no
/// `[providers.NAME]` in swarm.toml.
pub const AGENT_PROVIDERS: &[&str] = &[
    "anthropic",
    "openai",
    "google",
    "openrouter",
    "groq",
    "mistral",
    "deepseek",
    "xai",
    "ollama",
    "azure",
    "amazon-bedrock",
    "github-copilot",
    "opencode",
    "kilo",
    "cline",
    "vertex",
    "together",
    "fireworks",
    "cerebras",
];

#[cfg(test)]
mod tests;
