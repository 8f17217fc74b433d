//! The hierarchy as routing sees it: every model of `[models] layers` in routing order, with its
//! declared limits, window and price resolved.

use crate::config::{split_model_id, Config};

/// The models of the hierarchy in routing order: layer 1 first, within a layer in listed order.
/// A model is named by its index here in [`crate::router::route`] and its answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    pub models: Vec<ModelEntry>,
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
}

impl Catalog {
    /// The hierarchy of a (validated) config; empty without `[models]`.
    pub fn from_config(c: &Config) -> Catalog {
        let mut models = Vec::new();
        for (i, layer) in c.model_layers().iter().enumerate() {
            for id in layer {
                let (provider, provider_model) = split_model_id(id).unwrap_or(("", id));
                let limits = c.model_limits(id).copied().unwrap_or_default();
                models.push(ModelEntry {
                    id: id.clone(),
                    layer: (i + 1).min(u8::MAX as usize) as u8,
                    provider: provider.to_string(),
                    provider_model: provider_model.to_string(),
                    rpm: limits.rpm,
                    rpd: limits.rpd,
                    tpm: limits.tpm,
                    context: limits.context,
                    paid: c.model_paid(id),
                    price_in: limits.price_in.unwrap_or(0.0),
                    price_out: limits.price_out.unwrap_or(0.0),
                });
            }
        }
        Catalog { models }
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
