//! The hierarchy as routing sees it: every model of `[models] layers` in routing order, with its
//! declared limits, window and price resolved.

use super::day::DayReset;
use crate::config::{split_model_id, Config};

/// The models of the hierarchy in routing order: layer 1 first, within a layer in listed order.
/// A model is named by its index here in [`crate::router::route`] and its answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    pub models: Vec<ModelEntry>,
    /// Limits shared by several models (`[models.groups]`); a model names its groups by index.
    pub groups: Vec<GroupEntry>,
}

/// A limit several models share.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupEntry {
    pub name: String,
    pub rpm: Option<u32>,
    pub rpd: Option<u32>,
    pub tpm: Option<u64>,
    pub day_reset: DayReset,
}

impl GroupEntry {
    /// The key its shared windows are kept under in the store, beside the models' own.
    pub fn key(&self) -> String {
        format!("group:{}", self.name)
    }
}

/// One model of the hierarchy. Limits left out are no limits; an unknown context window is
/// taken to fit any request.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEntry {
    /// `PROVIDER/MODEL`, as in `[models] layers`.
    pub id: String,
    /// 1-7.
    pub layer: u8,
    /// The `[providers]` entry that serves it.
    pub provider: String,
    /// The provider's own id of the model (may hold `/` and `:`).
    pub provider_model: String,
    pub rpm: Option<u32>,
    pub rpd: Option<u32>,
    pub tpm: Option<u64>,
    /// Context window, tokens.
    pub context: Option<u64>,
    /// Costs money: only used when the run allows paid models.
    pub paid: bool,
    /// USD per million input tokens.
    pub price_in: f64,
    /// USD per million output tokens.
    pub price_out: f64,
    /// Where its daily quota's day begins.
    pub day_reset: DayReset,
    /// The groups whose shared limits it also counts against (indexes into `Catalog::groups`).
    pub groups: Vec<usize>,
}

impl ModelEntry {
    /// Model `id` of layer `layer`, as the config describes it.
    fn of(c: &Config, id: &str, layer: u8) -> ModelEntry {
        let (provider, provider_model) = split_model_id(id).unwrap_or(("", id));
        let limits = c.model_limits(id).cloned().unwrap_or_default();
        ModelEntry {
            id: id.to_string(),
            layer,
            provider: provider.to_string(),
            provider_model: provider_model.to_string(),
            rpm: limits.rpm,
            rpd: limits.rpd,
            tpm: limits.tpm,
            context: limits.context,
            paid: c.model_paid(id),
            price_in: limits.price_in.unwrap_or(0.0),
            price_out: limits.price_out.unwrap_or(0.0),
            day_reset: c.model_day_reset(id),
            groups: vec![],
        }
    }
}

/// The config's groups, each model told which it belongs to.
fn groups_of(c: &Config, models: &mut [ModelEntry]) -> Vec<GroupEntry> {
    let mut out = Vec::new();
    for (name, g) in c.model_groups() {
        let members: Vec<usize> = (0..models.len()).filter(|&i| g.holds(&models[i].id)).collect();
        let day_reset = g.day_reset.as_deref().and_then(DayReset::parse);
        let day_reset =
            day_reset.or_else(|| members.first().map(|&i| models[i].day_reset)).unwrap_or_default();
        for &i in &members {
            models[i].groups.push(out.len());
        }
        out.push(GroupEntry { name: name.clone(), rpm: g.rpm, rpd: g.rpd, tpm: g.tpm, day_reset });
    }
    out
}

impl Catalog {
    /// The hierarchy of a (validated) config; empty without `[models]`.
    pub fn from_config(c: &Config) -> Catalog {
        let mut models = Vec::new();
        for (i, layer) in c.model_layers().iter().enumerate() {
            for id in layer {
                models.push(ModelEntry::of(c, id, (i + 1).min(u8::MAX as usize) as u8));
            }
        }
        let groups = groups_of(c, &mut models);
        Catalog { models, groups }
    }

    /// Model `id` alone (a task pinned to it: no other model may serve it), with its limits,
    /// price and groups from the config, in its layer of the hierarchy if it has one, else in
    /// layer 0 (route it with `start_layer` 0).
    pub fn pinned(c: &Config, id: &str) -> Catalog {
        let layer = c.model_layers().iter().position(|l| l.iter().any(|m| m == id));
        let layer = layer.map_or(0, |i| (i + 1).min(u8::MAX as usize) as u8);
        // Whether a pinned paid model may run was decided when its attempt started (the run's
        // allow_paid, and a loopback provider that says nothing of pay being free): routing
        // does not ask again.
        let mut models = vec![ModelEntry { paid: false, ..ModelEntry::of(c, id, layer) }];
        let groups = groups_of(c, &mut models);
        Catalog { models, groups }
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// The index of model `id`, if it is in the hierarchy.
    pub fn index(&self, id: &str) -> Option<usize> {
        self.models.iter().position(|m| m.id == id)
    }

    /// The number of layers (the highest layer any model is in; 0 when empty).
    pub fn layers(&self) -> u8 {
        self.models.iter().map(|m| m.layer).max().unwrap_or(0)
    }

    /// What `tokens_in` + `tokens_out` cost on model `i`, in USD (0 for an unknown index).
    pub fn cost_usd(&self, i: usize, tokens_in: u64, tokens_out: u64) -> f64 {
        self.models
            .get(i)
            .map_or(0.0, |m| (tokens_in as f64 * m.price_in + tokens_out as f64 * m.price_out) / 1_000_000.0)
    }
}
