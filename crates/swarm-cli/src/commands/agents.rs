//! `swarm agents`: each agent adapter, whether its CLI is found, its version and the pinned one.

use crate::cli::AgentsArgs;
use crate::error::CliResult;
use crate::project::Project;
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use swarm_agents::catalog::{self, CATALOG};

pub fn agents(store: Option<&str>, config: Option<&Path>, args: AgentsArgs) -> CliResult {
    let project = Project::discover(store, config)?;
    let extra = catalog::local_bin_dirs(&project.root);
    let mut rows = Vec::new();
    for info in CATALOG {
        let path = catalog::locate(info.binary, &extra);
        let version = path.as_deref().map(|p| catalog::version(p, Duration::from_secs(15)));
        rows.push(json!({
            "name": info.name,
            "binary": info.binary,
            "found": path.is_some(),
            "path": path.as_ref().map(|p| p.display().to_string()),
            "version": version.as_ref().and_then(|v| v.as_ref().ok()),
            "version_error": version.as_ref().and_then(|v| v.as_ref().err()),
            "package": info.package,
            "pinned": info.pinned,
            "pinned_ok": match (info.pinned, version.as_ref().and_then(|v| v.as_ref().ok())) {
                (Some(p), Some(v)) => Some(v.contains(p)),
                _ => None,
            },
        }));
    }
    rows.push(json!({ "name": "exec", "binary": "sh", "found": true, "builtin": true }));
    for (name, a) in project.config.agents.iter().filter(|(_, a)| a.command.is_some()) {
        rows.push(json!({ "name": name, "custom": true, "command": a.command }));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
        return Ok(0);
    }
    println!("{:<10} {:<10} {:<12} {:<10} PATH", "AGENT", "FOUND", "VERSION", "PINNED");
    for r in &rows {
        let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
        let found = if r["builtin"] == true {
            "built in".to_string()
        } else if r["custom"] == true {
            "custom".to_string()
        } else if r["found"] == true {
            "yes".to_string()
        } else {
            "no".to_string()
        };
        let pinned = match (r["pinned"].as_str(), r["pinned_ok"].as_bool()) {
            (Some(p), Some(true)) => format!("{p} ok"),
            (Some(p), Some(false)) => format!("{p} DIFFERS"),
            (Some(p), None) => p.to_string(),
            _ => "-".into(),
        };
        let where_ = if r["custom"] == true { s("command") } else { s("path") };
        println!("{:<10} {:<10} {:<12} {:<10} {}", s("name"), found, s("version"), pinned, where_);
    }
    Ok(0)
}
