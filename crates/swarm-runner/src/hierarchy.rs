//! The model hierarchy's effects, shared by the gateway (a model per request) and the executor
//! (a model per attempt, for agents that talk to providers themselves): the models' standings
//! read from the store for the router, and a failure's policy carried out on the store's clock
//! for every process on it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use swarm_core::config::Config;
use swarm_core::failure::FailureClass;
use swarm_core::router::{self, Catalog, Policy, Standing};
use swarm_store::{ModelStanding, Store, StoreError};

/// What routing needs, for one engine: the store the standings are shared through, the
/// hierarchy, the providers that serve it, how long a request or attempt may wait for a model.
pub struct Hierarchy {
    pub store: Arc<dyn Store>,
    pub catalog: Catalog,
    pub config: Config,
    pub max_wait: Duration,
}

impl Hierarchy {
    /// The hierarchy of `config`, when it declares one.
    pub fn of(store: Arc<dyn Store>, config: &Config) -> Option<Arc<Hierarchy>> {
        let catalog = Catalog::from_config(config);
        (!catalog.is_empty()).then(|| {
            Arc::new(Hierarchy { store, catalog, config: config.clone(), max_wait: config.max_wait() })
        })
    }

    /// The catalog's model ids, in routing order.
    pub fn ids(&self) -> Vec<String> {
        self.catalog.models.iter().map(|m| m.id.clone()).collect()
    }
}

/// The store's picture of the models as the router takes it, with the run's own disabled set
/// (index → why); the store's clock.
pub fn standings(from_store: Vec<ModelStanding>, disabled: &HashMap<usize, String>) -> (u64, Vec<Standing>) {
    let now_ms = from_store.first().map_or_else(wall_ms, |s| s.now_ms);
    let standings = from_store
        .into_iter()
        .enumerate()
        .map(|(i, s)| Standing {
            cooldown: s.cooldown.filter(|c| c.lasts(now_ms)),
            disabled: disabled.get(&i).cloned(),
            minute_requests: s.minute_requests,
            minute_tokens: s.minute_tokens,
            day_requests: s.day_requests,
            minute_frees_at_ms: None,
        })
        .collect();
    (now_ms, standings)
}

/// The policy for a failure of `class` on a model, on the store's clock `now_ms`.
pub fn policy_for(class: FailureClass, retry_after: Option<Duration>, repeats: u32, now_ms: u64) -> Policy {
    let retry_after_ms = retry_after.map(|d| d.as_millis() as u64);
    router::policy(class, retry_after_ms, repeats, now_ms, fastrand::f64())
}

/// Carries out `policy` on `model` for every process on the store: a cooldown is stored (a
/// longer one in place is kept). Blocking.
pub fn apply_policy(store: &dyn Store, ns: &str, model: &str, policy: &Policy) -> Result<(), StoreError> {
    match policy {
        Policy::Cool(cooldown) => store.model_cool(ns, model, cooldown),
        Policy::TryLarger | Policy::PassThrough => Ok(()),
    }
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
