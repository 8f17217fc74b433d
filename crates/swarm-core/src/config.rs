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
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Events kept per run (Redis: stream entries, approximately; default 100000).
    pub event_retention: Option<usize>,
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

impl Config {
    /// Reads `path`; a missing file is an error (the user named it).
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let mut cfg: Config = toml::from_str(&text)
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
        Ok(())
    }

    pub fn custom_agents(&self) -> Vec<String> {
        self.agents.iter().filter(|(_, a)| a.command.is_some()).map(|(n, _)| n.clone()).collect()
    }

    pub fn grace(&self) -> Duration {
        self.run.grace.unwrap_or(Duration::from_secs(5))
    }

    pub fn backoff(&self) -> Backoff {
        let d = Backoff::default();
        Backoff {
            initial: self.run.retry_backoff.unwrap_or(d.initial),
            max: self.run.retry_backoff_max.unwrap_or(d.max),
            ..d
        }
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
}
