//! `swarm doctor`: is this machine ready to run plans? Store reachable (and its version,
//! persistence and schema), config valid, agent CLIs found (with versions), provider credentials
//! present (names only, never values). Exit 0 when healthy, 1 with the list of problems.

use crate::cli::DoctorArgs;
use crate::error::CliResult;
use crate::project::Project;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use swarm_agents::catalog::{self, AgentInfo, CATALOG};
use swarm_store::{Health, StoreError};

pub fn doctor(store: Option<&str>, config: Option<&Path>, args: DoctorArgs) -> CliResult {
    let mut f = Findings::default();
    // A broken config is itself the problem to report.
    let project = match Project::discover(store, config) {
        Ok(p) => Some(p),
        Err(e) => {
            f.problems.push(format!("{:#}", e.error));
            f.lines.push(format!("config     FAIL  {:#}", e.error));
            None
        }
    };
    let store_json = match &project {
        Some(p) => {
            f.config(p);
            f.store(p)
        }
        None => json!(null),
    };
    let extra = project.as_ref().map(|p| catalog::local_bin_dirs(&p.root)).unwrap_or_default();
    let agents_json: Vec<Value> = CATALOG.iter().map(|info| f.agent_cli(info, &extra)).collect();
    f.lines.push("agent      exec      built in (sh -c)".into());
    let mut providers_json = Vec::new();
    if let Some(p) = &project {
        f.custom_agents(p, &extra);
        providers_json = f.providers(p);
    }
    let healthy = f.problems.is_empty();
    if args.json {
        let v = json!({
            "healthy": healthy, "problems": f.problems, "warnings": f.warnings,
            "store": store_json, "agents": agents_json, "providers": providers_json,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        f.print();
    }
    Ok(if healthy { 0 } else { 1 })
}

/// What doctor found: the lines it prints, what is wrong (exit 1) and what is worth fixing.
#[derive(Default)]
struct Findings {
    lines: Vec<String>,
    problems: Vec<String>,
    warnings: Vec<String>,
}

impl Findings {
    fn config(&mut self, p: &Project) {
        let from = p
            .config
            .path
            .as_ref()
            .map_or("no swarm.toml (built-in defaults)".into(), |c| c.display().to_string());
        self.lines.push(format!("config     ok    {from}"));
    }

    /// The store's health; the JSON `doctor --json` shows of it.
    fn store(&mut self, p: &Project) -> Value {
        match swarm_store::open(&p.address, p.store_options(false)) {
            Ok(s) => match s.health() {
                Ok(h) => {
                    self.lines.push(format!(
                        "store      {}  {} ({} {}, schema v{}, {})",
                        if h.errors.is_empty() { "ok  " } else { "FAIL" },
                        h.address,
                        h.backend,
                        h.server_version,
                        h.schema_version,
                        h.persistence
                    ));
                    self.problems.extend(h.errors.iter().cloned());
                    self.warnings.extend(h.warnings.iter().cloned());
                    health_json(&h)
                }
                Err(e) => {
                    self.fail_store(&e);
                    json!(null)
                }
            },
            // Not created yet: `swarm run` will, and doctor never creates a store.
            Err(StoreError::Missing { .. }) => {
                let swarm_store::Address::Sqlite(path) = &p.address else {
                    unreachable!("only files go missing")
                };
                let h = swarm_store::SqliteStore::health_if_created(path);
                self.lines.push(format!(
                    "store      ok    {} (not created yet; `swarm run` creates it; {} {}, schema v{})",
                    h.address, h.backend, h.server_version, h.schema_version
                ));
                health_json(&h)
            }
            Err(e) => {
                self.fail_store(&e);
                json!({ "address": p.address.describe(), "error": e.to_string() })
            }
        }
    }

    fn fail_store(&mut self, e: &StoreError) {
        self.problems.push(e.to_string());
        self.lines.push(format!("store      FAIL  {e}"));
    }

    /// A built-in agent's CLI: a missing one is only a problem for plans that use it, so it is
    /// a warning, as is a version other than the pinned one.
    fn agent_cli(&mut self, info: &AgentInfo, extra: &[PathBuf]) -> Value {
        let found = catalog::locate(info.binary, extra);
        let version = found.as_deref().map(|b| catalog::version(b, Duration::from_secs(15)));
        let pin = match (info.package, info.pinned) {
            (Some(pkg), Some(v)) => format!(" (pinned {pkg}@{v})"),
            _ => String::new(),
        };
        let status = match (&found, &version) {
            (Some(path), Some(Ok(v))) => {
                if let Some(p) = info.pinned.filter(|p| !v.contains(*p)) {
                    self.warnings.push(format!("{} {v} is not the pinned version {p}", info.name));
                }
                format!("{v}  {}", path.display())
            }
            (Some(path), Some(Err(e))) => {
                self.warnings.push(format!("{}: {e}", info.name));
                format!("found at {} but {e}", path.display())
            }
            _ => format!("not found{pin}"),
        };
        self.lines.push(format!("agent      {:<9} {status}", info.name));
        json!({
            "name": info.name, "binary": info.binary, "path": found.as_ref().map(|p| p.display().to_string()),
            "version": version.as_ref().and_then(|v| v.as_ref().ok()), "pinned": info.pinned, "package": info.package,
        })
    }

    /// Custom agents: their command must be there.
    fn custom_agents(&mut self, p: &Project, extra: &[PathBuf]) {
        for (name, a) in p.config.agents.iter().filter(|(_, a)| a.command.is_some()) {
            let program = a.command.as_deref().and_then(|c| c.split_whitespace().next()).unwrap_or("");
            let found = catalog::locate(program, extra).is_some() || Path::new(program).is_file();
            if !found {
                self.problems.push(format!("custom agent `{name}`: `{program}` not found"));
            }
            let state = if found { "ok" } else { "command not found" };
            self.lines.push(format!("agent      {name:<9} custom: {state}"));
        }
    }

    /// Provider credentials: the names of their variables only, never values.
    fn providers(&mut self, p: &Project) -> Vec<Value> {
        let mut out = Vec::new();
        for (name, prov) in &p.config.providers {
            let local = prov.base_url.as_deref().is_some_and(swarm_runner::util::is_loopback);
            let (state, ok) = match prov.api_key_env.as_deref() {
                Some(var) if std::env::var_os(var).is_some_and(|v| !v.is_empty()) => {
                    (format!("{var} is set"), true)
                }
                Some(var) if local => {
                    (format!("{var} is not set: a placeholder key is used for this local endpoint"), true)
                }
                Some(var) => (format!("{var} is not set"), false),
                None if local => {
                    ("no api_key_env: a placeholder key is used for this local endpoint".into(), true)
                }
                None => ("no api_key_env configured".into(), false),
            };
            if !ok {
                self.problems.push(format!("provider `{name}`: {state}"));
            }
            self.lines.push(format!("provider   {name:<9} {state}"));
            out.push(json!({ "name": name, "kind": prov.kind, "credentials": ok, "detail": state }));
        }
        out
    }

    fn print(&self) {
        for l in &self.lines {
            println!("{l}");
        }
        for w in &self.warnings {
            println!("warning: {w}");
        }
        if self.problems.is_empty() {
            println!("healthy");
        } else {
            println!("{} problem(s):", self.problems.len());
            for p in &self.problems {
                println!("  - {p}");
            }
        }
    }
}

fn health_json(h: &Health) -> Value {
    serde_json::to_value(h).expect("health serializes")
}
