//! Model pacing on Redis: per model a cooldown hash and a sorted set of the last day's
//! requests, both under the namespace's hash tag; a reservation or a cooldown is one script on
//! the server's clock (`lua/model_*.lua`).

use super::keys::ns_key;
use super::{Lua, RedisStore};
use crate::models::{
    stored_cooldown, Bucket, Learned, ModelLimits, ModelStanding, Reservation, StandingQuery, MAX_EXACT,
    NEVER,
};
use crate::store::StoreError;
use swarm_core::router::Cooldown;

/// Keys of one model in one namespace. The model id (slashes, colons, dots) goes in as it is:
/// the fixed suffixes keep two models' keys apart, and the namespace's `{…}` comes first, so it
/// stays the hash tag.
pub(super) struct ModelKeys {
    /// HASH `until` (ms, server clock), `kind`, `reason`; expires with the cooldown.
    pub(super) cool: String,
    /// SORTED SET of requests `<at_ms>-<n>:<tokens>` scored by `at_ms`, the last 26 h.
    pub(super) requests: String,
    /// HASH `rpm`, `rpd`, `source`, `at`: limits the provider said.
    pub(super) learned: String,
}

pub(super) fn model_keys(ns: &str, model: &str) -> ModelKeys {
    ModelKeys {
        cool: ns_key(ns, &format!("model:{model}:cool")),
        requests: ns_key(ns, &format!("model:{model}:req")),
        learned: ns_key(ns, &format!("model:{model}:learned")),
    }
}

static RESERVE: Lua =
    Lua::new(concat!(include_str!("lua/model_window.lua"), include_str!("lua/model_reserve.lua")));
static COOL: Lua = Lua::new(include_str!("lua/model_cool.lua"));
static STANDINGS: Lua =
    Lua::new(concat!(include_str!("lua/model_window.lua"), include_str!("lua/model_standings.lua")));
static LEARN: Lua =
    Lua::new(concat!(include_str!("lua/model_window.lua"), include_str!("lua/model_learn.lua")));
/// Fields per window in `model_standings.lua`'s answer.
const FIELDS: usize = 11;

fn limit_arg<T: Into<u64>>(limit: Option<T>) -> String {
    limit.map(|l| l.into().min(MAX_EXACT).to_string()).unwrap_or_default()
}

/// A window's limits as the scripts take them: rpm, rpd, tpm, day_start, day_end.
fn limit_args(l: &ModelLimits) -> [String; 5] {
    [
        limit_arg(l.rpm),
        limit_arg(l.rpd),
        limit_arg(l.tpm),
        limit_arg(l.day.map(|d| d.start_ms)),
        limit_arg(l.day.map(|d| d.end_ms)),
    ]
}

impl RedisStore {
    pub(super) fn reserve(
        &self,
        ns: &str,
        model: &str,
        tokens: u64,
        limits: &ModelLimits,
        groups: &[Bucket],
    ) -> Result<Reservation, StoreError> {
        let keys = model_keys(ns, model);
        let script = RESERVE.get();
        let mut inv = script.key(&keys.cool);
        inv.key(&keys.requests).arg(tokens.min(MAX_EXACT)).arg(&limit_args(limits)[..]);
        for g in groups {
            inv.key(model_keys(ns, &g.key).requests).arg(&limit_args(&g.limits)[..]);
        }
        let (answer, at, text, kind): (String, i64, String, String) = self.with(|c| inv.invoke(c))?;
        match answer.as_str() {
            "granted" => Ok(Reservation::Granted { at_ms: at as u64 }),
            "cooling" => {
                let kind = Some(kind.as_str()).filter(|k| !k.is_empty());
                Ok(Reservation::Cooling(stored_cooldown(at as u64, kind, &text)))
            }
            "full" => Ok(Reservation::Full {
                limit: match text.as_str() {
                    "rpm" => "rpm",
                    "rpd" => "rpd",
                    _ => "tpm",
                },
                free_at_ms: if at < 0 { NEVER } else { at as u64 },
            }),
            other => Err(StoreError::Backend {
                address: self.address.clone(),
                message: format!("model_reserve answered {other:?}"),
            }),
        }
    }

    pub(super) fn cool(&self, ns: &str, model: &str, cooldown: &Cooldown) -> Result<(), StoreError> {
        let keys = model_keys(ns, model);
        let script = COOL.get();
        let mut inv = script.key(&keys.cool);
        inv.arg(cooldown.until_ms.min(MAX_EXACT)).arg(&cooldown.reason).arg(cooldown.kind.as_str());
        self.with(|c| inv.invoke::<i64>(c)).map(|_| ())
    }

    pub(super) fn learn(&self, ns: &str, model: &str, learned: &Learned) -> Result<(), StoreError> {
        let script = LEARN.get();
        let mut inv = script.key(model_keys(ns, model).learned);
        inv.arg(limit_arg(learned.rpm)).arg(limit_arg(learned.rpd)).arg(&learned.source);
        self.with(|c| inv.invoke::<i64>(c)).map(|_| ())
    }

    pub(super) fn standings(
        &self,
        ns: &str,
        queries: &[StandingQuery],
    ) -> Result<Vec<ModelStanding>, StoreError> {
        if queries.is_empty() {
            return Ok(vec![]);
        }
        let script = STANDINGS.get();
        let mut inv = script.prepare_invoke();
        for q in queries {
            let keys = model_keys(ns, &q.key);
            inv.key(keys.cool).key(keys.requests).key(keys.learned).arg(&limit_args(&q.limits)[..]);
        }
        let reply: Vec<String> = self.with(|c| inv.invoke(c))?;
        let bad = || StoreError::Backend {
            address: self.address.clone(),
            message: format!("model_standings answered {} fields for {} windows", reply.len(), queries.len()),
        };
        if reply.len() != 1 + FIELDS * queries.len() {
            return Err(bad());
        }
        let now_ms = reply[0].parse::<u64>().map_err(|_| bad())?;
        queries
            .iter()
            .zip(reply[1..].chunks(FIELDS))
            .map(|(q, f)| standing(q, f, now_ms).ok_or_else(bad))
            .collect()
    }

    pub(super) fn server_now_ms(&self) -> Result<u64, StoreError> {
        let (secs, micros): (u64, u64) = self.with(|c| redis::cmd("TIME").query(c))?;
        Ok(secs * 1000 + micros / 1000)
    }
}

/// One window's fields of `model_standings.lua`'s answer.
fn standing(q: &StandingQuery, f: &[String], now_ms: u64) -> Option<ModelStanding> {
    let num = |s: &str| s.parse::<u64>().ok();
    let limit = |s: &str| s.parse::<u32>().ok();
    let until = num(&f[0])?;
    let kind = Some(f[2].as_str()).filter(|k| !k.is_empty());
    let frees: i64 = f[7].parse().ok()?;
    let learned =
        (!f[10].is_empty()).then(|| Learned { rpm: limit(&f[8]), rpd: limit(&f[9]), source: f[10].clone() });
    Some(ModelStanding {
        model: q.key.clone(),
        cooldown: (until > 0).then(|| stored_cooldown(until, kind, &f[1])),
        minute_requests: num(&f[3])?,
        minute_tokens: num(&f[4])?,
        day_requests: num(&f[5])?,
        day_tokens: num(&f[6])?,
        frees_at_ms: match frees {
            -1 => None,
            -2 => Some(NEVER),
            at => Some(at as u64),
        },
        learned,
        now_ms,
    })
}

static SPEND: Lua = Lua::new(include_str!("lua/run_spend.lua"));
/// How long a run's spend tally is kept after its last change.
const SPEND_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

/// What a run's model gateways spent together, and the budget its orchestrator set.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunSpend {
    pub usd: f64,
    pub tokens: u64,
    pub budget_usd: Option<f64>,
    pub budget_tokens: Option<u64>,
}

fn spend_key(ns: &str, run_id: &str) -> String {
    ns_key(ns, &format!("run:{run_id}:spend"))
}

impl RedisStore {
    /// What the run's model gateways spent together, after adding `usd` and `tokens` (both 0:
    /// only read): one tally, so that a run's budget holds across the orchestrator's gateway
    /// and every worker's.
    pub fn run_spend(&self, ns: &str, run_id: &str, usd: f64, tokens: u64) -> Result<RunSpend, StoreError> {
        let usd = if usd.is_finite() && usd > 0.0 { usd } else { 0.0 };
        let script = SPEND.get();
        let mut inv = script.key(spend_key(ns, run_id));
        inv.arg(usd).arg(tokens.min(MAX_EXACT)).arg(SPEND_TTL_MS);
        let (usd, tokens, budget_usd, budget_tokens): (String, String, String, String) =
            self.with(|c| inv.invoke(c))?;
        Ok(RunSpend {
            usd: usd.parse().unwrap_or(0.0),
            tokens: tokens.parse().unwrap_or(0),
            budget_usd: budget_usd.parse().ok(),
            budget_tokens: budget_tokens.parse().ok(),
        })
    }

    /// The run's budget, for the gateways of its workers (whose own configs may say another).
    pub fn set_run_budget(
        &self,
        ns: &str,
        run_id: &str,
        usd: Option<f64>,
        tokens: Option<u64>,
    ) -> Result<(), StoreError> {
        let key = spend_key(ns, run_id);
        let text = |v: Option<String>| v.unwrap_or_default();
        self.with(|c| {
            redis::cmd("HSET")
                .arg(&key)
                .arg("budget_usd")
                .arg(text(usd.map(|u| u.to_string())))
                .arg("budget_tokens")
                .arg(text(tokens.map(|t| t.to_string())))
                .query::<()>(c)?;
            redis::cmd("PEXPIRE").arg(&key).arg(SPEND_TTL_MS).query::<()>(c)
        })
    }
}
