//! Where the project is: its root (the top of the git repository, as git sees it, or the current
//! directory), `.swarm/` state directory, config and store.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use swarm_core::config::Config;
use swarm_store::{Address, Store};

use crate::error::CliError;

pub struct Project {
    pub root: PathBuf,
    pub state_dir: PathBuf,
    pub config: Config,
    pub address: Address,
}

/// Env var holding the secrets of a store address given with its password masked (`***`), as
/// swarm gives `SWARM_STORE` to agents; users may set both too, to keep a password out of a URL.
pub const STORE_PASSWORD_ENV: &str = "SWARM_STORE_PASSWORD";

/// The store address with its masked secrets filled in from [`STORE_PASSWORD_ENV`].
fn with_secret(text: &str) -> String {
    match std::env::var(STORE_PASSWORD_ENV) {
        Ok(secret) if !secret.is_empty() && text.contains("***") => swarm_store::unmask(text, &secret),
        _ => text.to_string(),
    }
}

impl Project {
    pub fn discover(store: Option<&str>, config: Option<&Path>) -> Result<Project, CliError> {
        let cwd =
            std::env::current_dir().context("cannot read the current directory").map_err(CliError::other)?;
        let root = swarm_runner::util::repo_of(&cwd).unwrap_or_else(|| cwd.clone());
        let config = match config {
            Some(p) => Config::read(p),
            None => Config::discover(&root),
        }
        .and_then(|c| c.check_agents(&swarm_agents::builtin_names()).map(|()| c))
        .map_err(|e| CliError::invalid(anyhow::Error::new(e)))?;
        let state_dir = root.join(".swarm");
        let address = match store {
            Some(s) => Address::parse(&with_secret(s), &cwd),
            None => Ok(Address::Sqlite(state_dir.join("state.db"))),
        }
        .map_err(|e| CliError::invalid(anyhow::Error::new(e)))?;
        Ok(Project { root, state_dir, config, address })
    }

    /// A plan named by a remote caller (MCP, the JSON API): a `.md` or `.json` file inside the
    /// project, reached through no link that leads out of it. Its last component is opened
    /// without following links when it is read ([`swarm_core::plan::load`]).
    pub fn plan_inside(&self, path: &str) -> Result<PathBuf, String> {
        let rel = Path::new(path);
        let named = rel.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if !matches!(named.as_deref(), Some("md" | "markdown" | "json")) {
            return Err(format!("`plan_path` must name a plan file (`.md` or `.json`), not `{path}`"));
        }
        let outside = || format!("`plan_path` must name a file inside the project ({})", self.root.display());
        let file = self.root.join(rel);
        let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
            return Err(outside());
        };
        let root = self.root.canonicalize().map_err(|e| format!("cannot read the project root: {e}"))?;
        let dir = dir.canonicalize().map_err(|_| format!("no such plan: `{path}`"))?;
        if !dir.starts_with(&root) {
            return Err(outside());
        }
        Ok(dir.join(name))
    }

    /// Creates `.swarm/` with a `.gitignore` so run state never ends up in the user's commits.
    pub fn ensure_state_dir(&self) {
        if std::fs::create_dir_all(&self.state_dir).is_ok() {
            let ignore = self.state_dir.join(".gitignore");
            if !ignore.exists() {
                let _ = std::fs::write(
                    ignore,
                    "# swarm's run state: logs, reports, worktrees, the embedded store\n*\n",
                );
            }
        }
    }

    /// The run engine for this project on `store`.
    pub fn engine(&self, store: Arc<dyn Store>) -> Result<swarm_runner::Engine, CliError> {
        let registry = swarm_agents::Registry::from_config(&self.config).map_err(CliError::invalid)?;
        Ok(swarm_runner::Engine::new(
            store,
            self.config.clone(),
            registry,
            self.root.clone(),
            self.state_dir.clone(),
            self.address.describe(),
            self.address.secret(),
        ))
    }

    /// Opens the store for reading (and for writes to what it holds): a store that does not
    /// exist yet is an error (exit 2), never created.
    pub fn open_store(&self) -> Result<Arc<dyn Store>, CliError> {
        swarm_store::open(&self.address, self.store_options(false)).map_err(CliError::from_store)
    }

    /// Opens the store, creating it (and `.swarm/`, for the default store) if needed: for
    /// commands that write new things (`swarm run`, `swarm state set`).
    pub fn create_store(&self) -> Result<Arc<dyn Store>, CliError> {
        if matches!(&self.address, Address::Sqlite(p) if p.starts_with(&self.state_dir)) {
            self.ensure_state_dir();
        }
        swarm_store::open(&self.address, self.store_options(true)).map_err(CliError::from_store)
    }

    pub fn store_options(&self, create: bool) -> swarm_store::Options {
        let mut o = swarm_store::Options { create, ..swarm_store::Options::default() };
        // Where a user confined to its namespaces (Redis ACL) finds its runs.
        o.namespaces.push(self.default_namespace());
        if let Ok(ns) = std::env::var("SWARM_NAMESPACE") {
            o.namespaces.push(ns);
        }
        if let Some(n) = self.config.store.event_retention {
            o.event_retention = n;
        }
        o
    }

    /// The `namespace` default: the name of the git root (or current) directory.
    pub fn default_namespace(&self) -> String {
        self.root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "default".into())
    }

    /// What plan `file` inherits from the project: its name, namespace, the agents, roles and
    /// providers it may name.
    pub fn plan_context(&self, file: &Path) -> swarm_core::plan::PlanContext {
        swarm_core::plan::PlanContext {
            default_name: file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "plan".into()),
            default_namespace: self.default_namespace(),
            agents: swarm_agents::agent_names(&self.config),
            roles: Some(swarm_agents::roles::role_names(&self.config, &self.root)),
            plan_dir: None,
            providers: Some(self.config.providers.keys().cloned().collect()),
        }
    }
}
