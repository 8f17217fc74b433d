//! The router's unit and property tests: catalogs and standings in, routes out. The helpers
//! here; the checks by what they ask of the router.

use super::*;
use crate::config::Config;
use proptest::prelude::*;
use std::path::Path;

mod catalog;
mod properties;
mod routes;
mod waits;

const NOW: u64 = 1_750_000_000_000; // 2025-06-15T15:06:40Z

fn entry(id: &str, layer: u8) -> ModelEntry {
    let (provider, model) = id.split_once('/').unwrap();
    ModelEntry {
        id: id.into(),
        layer,
        provider: provider.into(),
        provider_model: model.into(),
        rpm: None,
        rpd: None,
        tpm: None,
        context: None,
        paid: false,
        price_in: 0.0,
        price_out: 0.0,
        day_reset: DayReset::default(),
        groups: vec![],
    }
}

/// `[("p/a", 1), ("p/b", 1), ("p/c", 2)]`: free, unlimited models in those layers.
fn catalog(models: &[(&str, u8)]) -> Catalog {
    Catalog { models: models.iter().map(|(id, layer)| entry(id, *layer)).collect(), groups: vec![] }
}

fn three() -> Catalog {
    catalog(&[("p/a", 1), ("p/b", 1), ("p/c", 2)])
}

fn req() -> RouteRequest {
    RouteRequest {
        start_layer: 1,
        est_tokens: 1_000,
        now_ms: NOW,
        allow_paid: false,
        tried: vec![],
        needs_larger_than: None,
        spent_usd: 0.0,
        budget_usd: None,
        spent_tokens: 0,
        budget_tokens: None,
        max_wait_ms: 60_000,
    }
}

fn idle(n: usize) -> Vec<Standing> {
    vec![Standing::default(); n]
}

fn cooling(until_ms: u64) -> Standing {
    Standing { cooldown: Some(Cooldown::cooling(until_ms, "rate_limited")), ..Standing::default() }
}

fn disabled() -> Standing {
    Standing { disabled: Some("auth: the provider refused the API key".into()), ..Standing::default() }
}

fn used(model: usize, skipped: &[(usize, Skip)]) -> Route {
    Route::Use { model, skipped: skipped.to_vec() }
}

fn exhausted(r: Route) -> (String, Option<u64>) {
    match r {
        Route::Exhausted { why, frees_at_ms } => (why, frees_at_ms),
        other => panic!("expected Exhausted, got {other:?}"),
    }
}
