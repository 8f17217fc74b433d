//! `swarm models`: the model hierarchy as every swarm process on the store sees it — each
//! model's layer, whether it is ok, cooling down (until when, why) or disabled, its limits and
//! its usage this minute and today; `--defaults` prints the built-in hierarchy.

use crate::cli::ModelsArgs;
use crate::error::{CliError, CliResult};
use crate::project::Project;
use chrono::{TimeZone, Utc};
use serde_json::json;
use std::path::Path;
use swarm_core::router::{defaults, Catalog};
use swarm_store::{ModelStanding, StoreError};

pub fn models(store: Option<&str>, config: Option<&Path>, args: ModelsArgs) -> CliResult {
    if args.defaults {
        return print_defaults(args.json);
    }
    let project = Project::discover(store, config)?;
    if Catalog::from_config(&project.config).is_empty() {
        if args.json {
            println!("[]");
        } else {
            println!("no model hierarchy: swarm.toml (or models.toml beside it) has no [models] layers");
            println!("see `swarm models --defaults` for the built-in one, and docs/models.md");
        }
        return Ok(0);
    }
    let ns = args.namespace.clone().unwrap_or_else(|| project.default_namespace());
    let rows = rows(&project, Some(&ns))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows).expect("rows serialize"));
        return Ok(0);
    }
    println!("namespace {ns}");
    println!("{:<5} {:<44} {:<34} {:<22} usage (minute / today)", "layer", "model", "state", "limits");
    for r in &rows {
        let state = match r["state"].as_str() {
            Some("ok") => "ok".to_string(),
            Some(s) => format!(
                "{s} until {} ({})",
                r["until"].as_str().and_then(|u| u.get(11..19)).unwrap_or("?"),
                r["reason"].as_str().unwrap_or("")
            ),
            None => String::new(),
        };
        let limit = |k: &str| r["limits"][k].as_u64().map(|v| format!("{k} {v}"));
        let limits: Vec<String> = ["rpm", "rpd", "tpm"].iter().filter_map(|k| limit(k)).collect();
        let limits = if limits.is_empty() { "-".to_string() } else { limits.join(", ") };
        let paid = if r["paid"] == true { " (paid)" } else { "" };
        let u = &r["usage"];
        println!(
            "{:<5} {:<44} {:<34} {:<22} {} req, {} tok / {} req",
            r["layer"],
            format!("{}{paid}", r["model"].as_str().unwrap_or("")),
            state,
            limits,
            u["minute_requests"],
            u["minute_tokens"],
            u["day_requests"]
        );
    }
    Ok(0)
}

/// Every model of the project's hierarchy with its standing on the store (namespace `ns`, default
/// the project's): what `swarm models --json` prints and the MCP `models` tool answers.
pub fn rows(project: &Project, ns: Option<&str>) -> CliResult<Vec<serde_json::Value>> {
    let catalog = Catalog::from_config(&project.config);
    let ns = ns.map(String::from).unwrap_or_else(|| project.default_namespace());
    let ids: Vec<String> = catalog.models.iter().map(|m| m.id.clone()).collect();
    // Nothing recorded yet (no store here) is a hierarchy at rest, not an error.
    let standings = match project.open_store() {
        Ok(store) => store.model_standings(&ns, &ids).map_err(CliError::from_store)?,
        Err(e) if matches!(e.error.downcast_ref::<StoreError>(), Some(StoreError::Missing { .. })) => {
            ids.iter().map(|id| ModelStanding { model: id.clone(), ..Default::default() }).collect()
        }
        Err(e) => return Err(e),
    };
    let now = standings
        .first()
        .map(|s| s.now_ms)
        .filter(|n| *n > 0)
        .unwrap_or_else(|| Utc::now().timestamp_millis() as u64);
    let rows: Vec<serde_json::Value> = catalog
        .models
        .iter()
        .zip(&standings)
        .map(|(m, s)| {
            let cooldown = s.cooldown.as_ref().filter(|c| c.lasts(now));
            let state = cooldown.map_or("ok", |c| c.kind.as_str());
            json!({
                "model": m.id, "layer": m.layer, "state": state,
                "until": cooldown.and_then(|c| Utc.timestamp_millis_opt(c.until_ms as i64).single()),
                "reason": cooldown.map(|c| c.reason.clone()),
                "paid": m.paid,
                "limits": { "rpm": m.rpm, "rpd": m.rpd, "tpm": m.tpm, "context": m.context },
                "usage": { "minute_requests": s.minute_requests, "minute_tokens": s.minute_tokens,
                           "day_requests": s.day_requests, "day_tokens": s.day_tokens },
            })
        })
        .collect();
    Ok(rows)
}

fn print_defaults(json: bool) -> CliResult {
    if json {
        let layers: Vec<_> = defaults::explain()
            .into_iter()
            .map(|(layer, models, why)| json!({ "layer": layer, "models": models, "why": why }))
            .collect();
        let out = json!({ "layers": layers, "toml": defaults::DEFAULT_MODELS_TOML });
        println!("{}", serde_json::to_string_pretty(&out).expect("defaults serialize"));
        return Ok(0);
    }
    println!("The built-in model hierarchy: free Gemini first, paid last.\n");
    for (layer, models, why) in defaults::explain() {
        println!("layer {layer}: {}", models.join(", "));
        println!("  {why}\n");
    }
    println!("To use it, put this in swarm.toml (or a models.toml beside it) and set the keys:\n");
    println!("{}", defaults::DEFAULT_MODELS_TOML);
    Ok(0)
}
