//! `swarm models`: the model hierarchy as every swarm process on the store sees it — each
//! model's layer, whether it is ok, cooling down (until when, why) or disabled, its limits and
//! its usage this minute and today; `--defaults` prints the built-in hierarchy.

use crate::cli::ModelsArgs;
use crate::error::{CliError, CliResult};
use crate::project::Project;
use serde_json::{json, Value};
use std::path::Path;
use swarm_core::router::{defaults, Catalog};
use swarm_runner::{Engine, ModelRow, ModelState};
use swarm_store::StoreError;

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
    let rows = match project.open_store() {
        Ok(store) => project.engine(store)?.models(&ns).map_err(CliError::from_engine)?,
        // Nothing recorded yet (no store here) is a hierarchy at rest, not an error.
        Err(e) if matches!(e.error.downcast_ref::<StoreError>(), Some(StoreError::Missing { .. })) => {
            Engine::idle_models(&project.config)
        }
        Err(e) => return Err(e),
    };
    if args.json {
        let json: Vec<Value> = rows.iter().map(row_json).collect();
        println!("{}", serde_json::to_string_pretty(&json).expect("rows serialize"));
        return Ok(0);
    }
    println!("namespace {ns}");
    println!("{:<5} {:<44} {:<40} {:<22} usage (minute / today)", "layer", "model", "state", "limits");
    for r in &rows {
        println!("{}", row_line(r));
    }
    Ok(0)
}

/// One model as `swarm models --json` and the MCP `models` tool show it.
pub fn row_json(r: &ModelRow) -> Value {
    let (until, reason) = match &r.state {
        ModelState::Ok => (None, None),
        ModelState::Cooling { until, reason } | ModelState::Disabled { until, reason } => {
            (Some(until), Some(reason))
        }
    };
    let learned = r.learned.as_ref().map(|l| json!({ "rpm": l.rpm, "rpd": l.rpd, "source": l.source }));
    json!({
        "model": r.model, "layer": r.layer, "state": r.state.as_str(), "until": until, "reason": reason,
        "paid": r.paid, "free_tier": !no_free_tier(r),
        "limits": { "rpm": r.rpm, "rpd": r.rpd, "tpm": r.tpm, "context": r.context },
        "learned": learned,
        "groups": r.groups,
        "day_reset": r.day_reset, "resets_at": r.resets_at,
        "usage": { "minute_requests": r.minute_requests, "minute_tokens": r.minute_tokens,
                   "day_requests": r.day_requests, "day_tokens": r.day_tokens },
    })
}

/// The provider said `limit: 0`: the model has no free tier for this project or account.
fn no_free_tier(r: &ModelRow) -> bool {
    r.learned.as_ref().is_some_and(|l| l.rpm == Some(0) || l.rpd == Some(0))
}

fn row_line(r: &ModelRow) -> String {
    let state = match &r.state {
        ModelState::Ok => "ok".to_string(),
        ModelState::Cooling { until, reason } | ModelState::Disabled { until, reason } => {
            format!("{} until {} ({reason})", r.state.as_str(), until.format("%m-%d %H:%M:%SZ"))
        }
    };
    let paid = if r.paid { " (paid)" } else { "" };
    let mut line = format!(
        "{:<5} {:<44} {:<40} {:<22} {} req, {} tok / {} req",
        r.layer,
        format!("{}{paid}", r.model),
        state,
        limits_text(r),
        r.minute_requests,
        r.minute_tokens,
        r.day_requests
    );
    line += &format!("\n      day resets {} ({})", r.resets_at.format("%m-%d %H:%M:%SZ"), r.day_reset);
    if !r.groups.is_empty() {
        line += &format!("; counts against group {}", r.groups.join(", "));
    }
    if let Some(l) = &r.learned {
        let what = if no_free_tier(r) { "no free tier: " } else { "paced by what " };
        line += &format!("\n      {what}{}", l.source);
    }
    line
}

/// The limits routing goes by: the provider's own (`learned`) over the declared ones.
fn limits_text(r: &ModelRow) -> String {
    let learned = r.learned.as_ref();
    let rpm = learned.and_then(|l| l.rpm).map(|v| format!("rpm {v} (learned)"));
    let rpd = learned.and_then(|l| l.rpd).map(|v| format!("rpd {v} (learned)"));
    let limits: Vec<String> = [
        rpm.or(r.rpm.map(|v| format!("rpm {v}"))),
        rpd.or(r.rpd.map(|v| format!("rpd {v}"))),
        r.tpm.map(|v| format!("tpm {v}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if limits.is_empty() {
        "-".to_string()
    } else {
        limits.join(", ")
    }
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
