//! `[models]`: the model hierarchy, each model's declared limits and price, and the checks that
//! tie its ids to `[providers]`.

use super::ProviderConfig;
use crate::duration;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Most layers a hierarchy may have (a task's `tier` is 1–7).
pub const MAX_LAYERS: usize = 7;

/// `[models]`: the model hierarchy (docs/contract.md §8). Tasks without `model` get theirs from it.
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
    /// Limits several models share (one provider account's bucket), by group name.
    #[serde(default)]
    pub groups: BTreeMap<String, GroupConfig>,
}

/// `[models.groups.NAME]`: a limit the models matching `models` share, enforced together with
/// each one's own (OpenRouter's `:free` models draw on one account-wide bucket).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Model ids or glob patterns (`openrouter/*:free`).
    pub models: Vec<String>,
    pub rpm: Option<u32>,
    pub rpd: Option<u32>,
    pub tpm: Option<u64>,
    /// Whose midnight starts the group's day (default: its first model's provider's).
    pub day_reset: Option<String>,
}

impl GroupConfig {
    /// Whether model `id` is in the group.
    pub fn holds(&self, id: &str) -> bool {
        self.models.iter().any(|p| glob_match(p, id))
    }
}

/// `*` matches any run of characters (slashes too), `?` one; nothing else is special.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            (pi, ti) = (pi + 1, ti + 1);
        } else if pi < p.len() && p[pi] == '*' {
            (star, mark, pi) = (Some(pi), ti, pi + 1);
        } else if let Some(s) = star {
            (pi, mark, ti) = (s + 1, mark + 1, mark + 1);
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// `[models.limits."PROVIDER/MODEL"]`. Every key is optional; a missing limit is no limit.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
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
    /// Whose midnight starts the model's day (an IANA zone; default: its provider's).
    pub day_reset: Option<String>,
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
    fn group_problems(&self, seen: &BTreeMap<&str, u8>) -> Vec<String> {
        let mut out = Vec::new();
        for (name, g) in &self.groups {
            let key = format!("models.groups.{name}");
            if g.models.is_empty() {
                out.push(format!("{key}.models: name at least one model or pattern"));
            } else if !seen.keys().any(|id| g.holds(id)) {
                out.push(format!("{key}.models: no model of models.layers matches {:?}", g.models));
            }
            for (limit, value) in
                [("rpm", g.rpm.map(u64::from)), ("rpd", g.rpd.map(u64::from)), ("tpm", g.tpm)]
            {
                if value == Some(0) {
                    out.push(format!("{key}.{limit} must be at least 1"));
                }
            }
            if g.day_reset.as_deref().is_some_and(|z| crate::router::DayReset::parse(z).is_none()) {
                out.push(format!(
                    "{key}.day_reset: not a time zone (an IANA name like America/Los_Angeles or UTC)"
                ));
            }
        }
        out
    }

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
        out.extend(self.group_problems(&seen));
        for (id, limits) in &self.limits {
            if limits.day_reset.as_deref().is_some_and(|z| crate::router::DayReset::parse(z).is_none()) {
                out.push(format!("models.limits.\"{id}\".day_reset: not a time zone (an IANA name like America/Los_Angeles or UTC)"));
            }
        }
        if self.budget_usd.is_some_and(|v| !(v >= 0.0 && v.is_finite())) {
            out.push("models.budget_usd must be 0 or more (USD)".into());
        }
        out
    }
}
