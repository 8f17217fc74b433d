//! The model hierarchy's effects, shared by the gateway (a model per request) and the executor
//! (a model per attempt, for agents that talk to providers themselves): the models' and groups'
//! windows read from the store for the router (with the provider's day, the limits providers
//! said themselves, when a full window frees), the buckets a reservation must fit, and a
//! failure's policy carried out on the store's clock for every process on it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use swarm_core::config::Config;
use swarm_core::failure::{self, FailureClass};
use swarm_core::router::{self, Catalog, GroupFull, ModelEntry, Policy, Standing};
use swarm_store::{Bucket, DayWindow, Learned, ModelLimits, ModelStanding, StandingQuery, Store, StoreError};

/// What routing needs, for one engine: the store the standings are shared through, the
/// hierarchy, the providers that serve it, how long a request or attempt may wait for a model.
pub struct Hierarchy {
    pub store: Arc<dyn Store>,
    pub catalog: Catalog,
    pub config: Config,
    pub max_wait: Duration,
}

/// The store's picture of the hierarchy: each model's window, then each group's.
#[derive(Debug, Clone)]
pub struct Picture {
    pub models: Vec<ModelStanding>,
    pub groups: Vec<ModelStanding>,
}

impl Picture {
    pub fn now_ms(&self) -> u64 {
        self.models.first().or(self.groups.first()).map_or_else(wall_ms, |s| s.now_ms)
    }

    /// The same picture `ms` later (a cached one, aged).
    pub fn aged(&self, ms: u64) -> Picture {
        let age = |v: &Vec<ModelStanding>| {
            v.iter().map(|s| ModelStanding { now_ms: s.now_ms + ms, ..s.clone() }).collect()
        };
        Picture { models: age(&self.models), groups: age(&self.groups) }
    }
}

impl Hierarchy {
    /// The hierarchy of `config`, when it declares one.
    pub fn of(store: Arc<dyn Store>, config: &Config) -> Option<Arc<Hierarchy>> {
        Some(Hierarchy::of_or_empty(store, config)).filter(|h| !h.catalog.is_empty())
    }

    /// The hierarchy of `config`, empty when it declares none.
    pub fn of_or_empty(store: Arc<dyn Store>, config: &Config) -> Arc<Hierarchy> {
        Hierarchy::over(store, config, Catalog::from_config(config))
    }

    /// Model `id` alone (a task pinned to it), its limits and cooldowns shared with the
    /// hierarchy's own entry of the same model on the store.
    pub fn pinned(store: Arc<dyn Store>, config: &Config, id: &str) -> Arc<Hierarchy> {
        Hierarchy::over(store, config, Catalog::pinned(config, id))
    }

    fn over(store: Arc<dyn Store>, config: &Config, catalog: Catalog) -> Arc<Hierarchy> {
        Arc::new(Hierarchy { store, catalog, config: config.clone(), max_wait: config.max_wait() })
    }

    /// Reads every model's and group's window in namespace `ns`. Blocking.
    pub fn read(&self, ns: &str) -> Result<Picture, StoreError> {
        let now = wall_ms();
        let mut queries: Vec<StandingQuery> = (self.catalog.models.iter())
            .map(|m| StandingQuery { key: m.id.clone(), limits: model_limits(m, now, None) })
            .collect();
        queries.extend(self.catalog.groups.iter().map(|g| {
            let limits = ModelLimits {
                rpm: g.rpm,
                rpd: g.rpd,
                tpm: g.tpm,
                day: Some(day_window(g.day_reset.window(now))),
            };
            StandingQuery { key: g.key(), limits }
        }));
        let mut models = self.store.model_standings(ns, &queries)?;
        let groups = models.split_off(self.catalog.models.len());
        Ok(Picture { models, groups })
    }

    /// What a request to model `i` must fit, beside its own window: its groups' shared windows.
    pub fn buckets(&self, i: usize, now_ms: u64) -> Vec<Bucket> {
        let groups = self.catalog.models[i].groups.iter().map(|&g| &self.catalog.groups[g]);
        groups
            .map(|g| Bucket {
                key: g.key(),
                limits: ModelLimits {
                    rpm: g.rpm,
                    rpd: g.rpd,
                    tpm: g.tpm,
                    day: Some(day_window(g.day_reset.window(now_ms))),
                },
            })
            .collect()
    }

    /// The limits a request to model `i` is held to: the provider's own when it said them.
    pub fn limits(&self, i: usize, now_ms: u64, learned: Option<&Learned>) -> ModelLimits {
        model_limits(&self.catalog.models[i], now_ms, learned)
    }

    /// The store's picture as the router takes it, with the run's own disabled set (index →
    /// why); the store's clock.
    pub fn standings(&self, picture: &Picture, disabled: &HashMap<usize, String>) -> (u64, Vec<Standing>) {
        let now_ms = picture.now_ms();
        let standings = (self.catalog.models.iter().zip(&picture.models).enumerate())
            .map(|(i, (m, s))| Standing {
                cooldown: s.cooldown.clone().filter(|c| c.lasts(now_ms)),
                disabled: disabled.get(&i).cloned(),
                minute_requests: s.minute_requests,
                minute_tokens: s.minute_tokens,
                day_requests: s.day_requests,
                // When the store says a full minute window frees (not a day's, which is the day's end).
                minute_frees_at_ms: s.frees_at_ms.filter(|&t| t <= now_ms + swarm_store::MINUTE_MS),
                learned_rpm: s.learned.as_ref().and_then(|l| l.rpm),
                learned_rpd: s.learned.as_ref().and_then(|l| l.rpd),
                day_resets_at_ms: Some(m.day_reset.next_reset(now_ms)),
                group_full: self.group_full(m, picture, now_ms),
            })
            .collect();
        (now_ms, standings)
    }

    /// The first of model `m`'s groups that has no room now, if any.
    fn group_full(&self, m: &ModelEntry, picture: &Picture, now_ms: u64) -> Option<GroupFull> {
        m.groups.iter().find_map(|&g| {
            let (entry, s) = (&self.catalog.groups[g], picture.groups.get(g)?);
            let frees = s.frees_at_ms.filter(|&t| t > now_ms)?;
            let per_day = entry.rpd.is_some_and(|rpd| s.day_requests >= u64::from(rpd));
            Some(GroupFull { group: entry.name.clone(), per_day, frees_at_ms: Some(frees) })
        })
    }

    /// The policy for a failure of `class` on model `i`, on the store's clock `now_ms`: a spent
    /// daily quota cools it until its provider's next midnight.
    pub fn policy_for(
        &self,
        i: usize,
        class: FailureClass,
        retry_after: Option<Duration>,
        repeats: u32,
        now_ms: u64,
    ) -> Policy {
        let retry_after_ms = retry_after.map(|d| d.as_millis() as u64);
        let day_ends = self.catalog.models[i].day_reset.next_reset(now_ms);
        router::policy(class, retry_after_ms, repeats, now_ms, fastrand::f64(), Some(day_ends))
    }

    /// What a provider's quota answer says of model `i`'s limit, to keep for everyone: `limit:
    /// 20` per day or per minute. `limit: 0` is kept too: the model has no free tier.
    pub fn learned_from(&self, i: usize, body: &str) -> Option<Learned> {
        let hint = failure::quota_hint(body)?;
        let limit = u32::try_from(hint.limit?).ok()?;
        let id = &self.catalog.models[i].id;
        let per = if hint.per_day { "day" } else { "minute" };
        let source = format!("a 429 from {id} said `limit: {limit}` per {per}");
        Some(if hint.per_day {
            Learned { rpm: None, rpd: Some(limit), source }
        } else {
            Learned { rpm: Some(limit), rpd: None, source }
        })
    }
}

fn model_limits(m: &ModelEntry, now_ms: u64, learned: Option<&Learned>) -> ModelLimits {
    ModelLimits {
        rpm: learned.and_then(|l| l.rpm).or(m.rpm),
        rpd: learned.and_then(|l| l.rpd).or(m.rpd),
        tpm: m.tpm,
        day: Some(day_window(m.day_reset.window(now_ms))),
    }
}

fn day_window((start_ms, end_ms): (u64, u64)) -> DayWindow {
    DayWindow { start_ms, end_ms }
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
