//! `swarm doctor`: is this machine ready to run plans? Store reachable (and its version,
//! persistence and schema), config valid, agent CLIs found (with versions), provider credentials
//! present (names only, never values). Exit 0 when healthy, 1 with the list of problems.

use crate::cli::DoctorArgs;
use crate::error::CliResult;
use crate::project::Project;
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use swarm_agents::catalog::{self, CATALOG};

pub fn doctor(store: Option<&str>, config: Option<&Path>, args: DoctorArgs) -> CliResult {
    let mut problems: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let mut lines: Vec<String> = Vec::new();

    // Config and store: a broken config is itself the problem to report.
    let project = match Project::discover(store, config) {
        Ok(p) => Some(p),
        Err(e) => {
            problems.push(format!("{:#}", e.error));
            lines.push(format!("config     FAIL  {:#}", e.error));
            None
        }
    };
    let mut store_json = json!(null);
    if let Some(p) = &project {
        lines.push(format!(
            "config     ok    {}",
            p.config
                .path
                .as_ref()
                .map_or("no swarm.toml (built-in defaults)".into(), |c| c.display().to_string())
        ));
        match swarm_store::open(&p.address, p.store_options(false)) {
            Ok(s) => match s.health() {
                Ok(h) => {
                    lines.push(format!(
                        "store      {}  {} ({} {}, schema v{}, {})",
                        if h.errors.is_empty() { "ok  " } else { "FAIL" },
                        h.address,
                        h.backend,
                        h.server_version,
                        h.schema_version,
                        h.persistence
                    ));
                    problems.extend(h.errors.iter().cloned());
                    warnings.extend(h.warnings.iter().cloned());
                    store_json = serde_json::to_value(&h).expect("health serializes");
                }
                Err(e) => {
                    problems.push(e.to_string());
                    lines.push(format!("store      FAIL  {e}"));
                }
            },
            // Not created yet: `swarm run` will, and doctor never creates a store.
            Err(swarm_store::StoreError::Missing { .. }) => {
                let swarm_store::Address::Sqlite(path) = &p.address else {
                    unreachable!("only files go missing")
                };
                let h = swarm_store::SqliteStore::health_if_created(path);
                lines.push(format!(
                    "store      ok    {} (not created yet; `swarm run` creates it; {} {}, schema v{})",
                    h.address, h.backend, h.server_version, h.schema_version
                ));
                store_json = serde_json::to_value(&h).expect("health serializes");
            }
            Err(e) => {
                problems.push(e.to_string());
                lines.push(format!("store      FAIL  {e}"));
                store_json = json!({ "address": p.address.describe(), "error": e.to_string() });
            }
        }
    }

    // Agent CLIs: a missing one is only a problem for plans that use it, so it is a warning.
    let extra = project.as_ref().map(|p| catalog::local_bin_dirs(&p.root)).unwrap_or_default();
    let mut agents_json = Vec::new();
    for info in CATALOG {
        let found = catalog::locate(info.binary, &extra);
        let version = found.as_deref().map(|b| catalog::version(b, Duration::from_secs(15)));
        let pin = match (info.package, info.pinned) {
            (Some(pkg), Some(v)) => format!(" (pinned {pkg}@{v})"),
            _ => String::new(),
        };
        let status = match (&found, &version) {
            (Some(path), Some(Ok(v))) => {
                if let Some(p) = info.pinned.filter(|p| !v.contains(*p)) {
                    warnings.push(format!("{} {v} is not the pinned version {p}", info.name));
                }
                format!("{v}  {}", path.display())
            }
            (Some(path), Some(Err(e))) => {
                warnings.push(format!("{}: {e}", info.name));
                format!("found at {} but {e}", path.display())
            }
            _ => format!("not found{pin}"),
        };
        lines.push(format!("agent      {:<9} {status}", info.name));
        agents_json.push(json!({
            "name": info.name, "binary": info.binary, "path": found.as_ref().map(|p| p.display().to_string()),
            "version": version.as_ref().and_then(|v| v.as_ref().ok()), "pinned": info.pinned, "package": info.package,
        }));
    }
    lines.push("agent      exec      built in (sh -c)".into());
    if let Some(p) = &project {
        for (name, a) in p.config.agents.iter().filter(|(_, a)| a.command.is_some()) {
            let program = a.command.as_deref().and_then(|c| c.split_whitespace().next()).unwrap_or("");
            let found = catalog::locate(program, &extra).is_some() || Path::new(program).is_file();
            if !found {
                problems.push(format!("custom agent `{name}`: `{program}` not found"));
            }
            lines.push(format!(
                "agent      {name:<9} custom: {}",
                if found { "ok" } else { "command not found" }
            ));
        }
    }

    // Provider credentials: names of variables only.
    let mut providers_json = Vec::new();
    if let Some(p) = &project {
        for (name, prov) in &p.config.providers {
            let local = prov
                .base_url
                .as_deref()
                .is_some_and(|u| u.contains("127.0.0.1") || u.contains("localhost") || u.contains("[::1]"));
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
                problems.push(format!("provider `{name}`: {state}"));
            }
            lines.push(format!("provider   {name:<9} {state}"));
            providers_json
                .push(json!({ "name": name, "kind": prov.kind, "credentials": ok, "detail": state }));
        }
    }

    let healthy = problems.is_empty();
    if args.json {
        let v = json!({
            "healthy": healthy, "problems": problems, "warnings": warnings,
            "store": store_json, "agents": agents_json, "providers": providers_json,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        for l in &lines {
            println!("{l}");
        }
        for w in &warnings {
            println!("warning: {w}");
        }
        if healthy {
            println!("healthy");
        } else {
            println!("{} problem(s):", problems.len());
            for p in &problems {
                println!("  - {p}");
            }
        }
    }
    Ok(if healthy { 0 } else { 1 })
}
