//! `[models]`: the model hierarchy, each model's declared limits and price, and the checks that
//! tie its ids to `[providers]`.

use super::ProviderConfig;
use crate::duration;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Most layers a hierarchy may have (a task's `tier` is 1–7).
pub const MAX_LAYERS: usize = 7;

/// `[models]`: the model hierarchy (CONTRACT §8). Tasks without `model` get theirs from it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// The spend gate: paid models are used only when true (default false).
    pub allow_paid: Option<bool>,
    /// Longest a request waits for a model to free up before `models_exhausted` (default 1m).
    #[serde(default, with = "duration::opt_serde")]
    pub max_wait: Option<Duration>,
    /// Per-run cap in USD: once spent, no new request or attempt starts.
    pub budget_usd: Option<f64>,
    /// Per-run cap in tokens (in + out).
    pub budget_tokens: Option<u64>,
    /// Model ids `PROVIDER/MODEL`, layer 1 first; within a layer in order.
    #[serde(default)]
    pub layers: Vec<Vec<String>>,
    /// Declared limits, window and price of a model, by id.
    #[serde(default)]
    pub limits: BTreeMap<String, ModelLimitsConfig>,
}

/// `[models.limits."PROVIDER/MODEL"]`. Every key is optional; a missing limit is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelLimitsConfig {
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Requests per day.
    pub rpd: Option<u32>,
    /// Tokens per minute.
    pub tpm: Option<u64>,
    /// Context window, tokens.
    pub context: Option<u64>,
    /// Whether the model costs money; unset: its provider's `paid`, else yes.
    pub paid: Option<bool>,
    /// USD per million input tokens (default 0).
    pub price_in: Option<f64>,
    /// USD per million output tokens (default 0).
    pub price_out: Option<f64>,
}

/// `PROVIDER/MODEL` → (`PROVIDER`, `MODEL`): the provider is the part before the first `/`; the
/// rest (which may hold `/` and `:`) is the provider's own model id. None unless both are there.
pub fn split_model_id(id: &str) -> Option<(&str, &str)> {
    id.split_once('/').filter(|(p, m)| !p.is_empty() && !m.is_empty())
}

/// What a `models.toml` may hold: `[models]`, and providers that `swarm.toml` does not declare.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ModelsFile {
    pub(super) models: Option<ModelsConfig>,
    #[serde(default)]
    pub(super) providers: BTreeMap<String, ProviderConfig>,
}

impl ModelsConfig {
    /// Every model of the hierarchy with its layer (1-based), in routing order.
    pub fn models(&self) -> impl Iterator<Item = (u8, &str)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, layer)| layer.iter().map(move |m| ((i + 1) as u8, m.as_str())))
    }

    pub(super) fn problems(&self, providers: &BTreeMap<String, ProviderConfig>) -> Vec<String> {
        let mut out = Vec::new();
        if self.layers.len() > MAX_LAYERS {
            out.push(format!(
                "models.layers has {} layers; at most {MAX_LAYERS} are allowed (a task's tier is 1-{MAX_LAYERS})",
                self.layers.len()
            ));
        }
        for (i, layer) in self.layers.iter().enumerate() {
            if layer.is_empty() {
                out.push(format!("models.layers: layer {} is empty (remove it or name a model)", i + 1));
            }
        }
        let mut seen: BTreeMap<&str, u8> = BTreeMap::new();
        for (layer, id) in self.models() {
            if let Some(first) = seen.insert(id, layer) {
                out.push(format!(
                    "models.layers: `{id}` is listed twice (layers {first} and {layer}); a model has one place"
                ));
                continue;
            }
            match split_model_id(id) {
                None => out.push(format!(
                    "models.layers: `{id}` is not PROVIDER/MODEL (e.g. `gemini/gemini-2.5-flash`)"
                )),
                Some((provider, _)) if !providers.contains_key(provider) => {
                    let known: Vec<&str> = providers.keys().map(String::as_str).collect();
                    out.push(format!(
                        "models.layers: `{id}` names the provider `{provider}`, which is not declared in [providers] ({})",
                        if known.is_empty() { "none is".to_string() } else { format!("declared: {}", known.join(", ")) }
                    ));
                }
                Some(_) => {}
            }
        }
        for (id, limits) in &self.limits {
            let key = format!("models.limits.\"{id}\"");
            if !seen.contains_key(id.as_str()) {
                out.push(format!("{key}: `{id}` is in no layer of models.layers"));
            }
            for (name, value) in [
                ("rpm", limits.rpm.map(u64::from)),
                ("rpd", limits.rpd.map(u64::from)),
                ("tpm", limits.tpm),
                ("context", limits.context),
            ] {
                if value == Some(0) {
                    out.push(format!("{key}.{name} must be at least 1 (to stop using the model, remove it from models.layers)"));
                }
            }
            for (name, value) in [("price_in", limits.price_in), ("price_out", limits.price_out)] {
                if value.is_some_and(|v| !(v >= 0.0 && v.is_finite())) {
                    out.push(format!("{key}.{name} must be a price of 0 or more (USD per million tokens)"));
                }
            }
        }
        if self.budget_usd.is_some_and(|v| !(v >= 0.0 && v.is_finite())) {
            out.push("models.budget_usd must be 0 or more (USD)".into());
        }
        out
    }
}
