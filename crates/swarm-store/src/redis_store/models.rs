//! Model pacing on Redis: per model a cooldown hash and a sorted set of the last day's
//! requests, both under the namespace's hash tag; a reservation or a cooldown is one script on
//! the server's clock (`lua/model_*.lua`).

use super::RedisStore;
use crate::models::{stored_cooldown, ModelLimits, ModelStanding, Reservation, MAX_EXACT, NEVER};
use crate::store::StoreError;
use redis::Script;
use swarm_core::router::Cooldown;

/// Keys of one model in one namespace. The model id (slashes, colons, dots) goes in as it is:
/// the fixed suffixes keep two models' keys apart, and the namespace's `{…}` comes first, so it
/// stays the hash tag.
pub(super) struct ModelKeys {
    /// HASH `until` (ms, server clock), `kind`, `reason`; expires with the cooldown.
    pub(super) cool: String,
    /// SORTED SET of requests `<at_ms>-<n>:<tokens>` scored by `at_ms`, the last 24 h.
    pub(super) requests: String,
}

pub(super) fn model_keys(ns: &str, model: &str) -> ModelKeys {
    ModelKeys {
        cool: format!("swarm:{{{ns}}}:model:{model}:cool"),
        requests: format!("swarm:{{{ns}}}:model:{model}:req"),
    }
}

const RESERVE: &str = include_str!("lua/model_reserve.lua");
const COOL: &str = include_str!("lua/model_cool.lua");
const STANDINGS: &str = include_str!("lua/model_standings.lua");
/// Fields per model in `model_standings.lua`'s answer.
const FIELDS: usize = 7;

fn limit_arg<T: Into<u64>>(limit: Option<T>) -> String {
    limit.map(|l| l.into().min(MAX_EXACT).to_string()).unwrap_or_default()
}

impl RedisStore {
    pub(super) fn reserve(
        &self,
        ns: &str,
        model: &str,
        tokens: u64,
        limits: &ModelLimits,
    ) -> Result<Reservation, StoreError> {
        let keys = model_keys(ns, model);
        let script = Script::new(RESERVE);
        let mut inv = script.key(&keys.cool);
        inv.key(&keys.requests)
            .arg(tokens.min(MAX_EXACT))
            .arg(limit_arg(limits.rpm))
            .arg(limit_arg(limits.rpd))
            .arg(limit_arg(limits.tpm));
        let (answer, at, text, kind): (String, i64, String, String) = self.with(|c| inv.invoke(c))?;
        match answer.as_str() {
            "granted" => Ok(Reservation::Granted { at_ms: at as u64 }),
            "cooling" => Ok(Reservation::Cooling(stored_cooldown(
                at as u64,
                Some(&kind).filter(|k| !k.is_empty()).map(String::as_str),
                &text,
            ))),
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
        let script = Script::new(COOL);
        let mut inv = script.key(&keys.cool);
        inv.arg(cooldown.until_ms.min(MAX_EXACT)).arg(&cooldown.reason).arg(cooldown.kind.as_str());
        self.with(|c| inv.invoke::<i64>(c)).map(|_| ())
    }

    pub(super) fn standings(&self, ns: &str, models: &[String]) -> Result<Vec<ModelStanding>, StoreError> {
        if models.is_empty() {
            return Ok(vec![]);
        }
        let script = Script::new(STANDINGS);
        let mut inv = script.prepare_invoke();
        for model in models {
            let keys = model_keys(ns, model);
            inv.key(keys.cool).key(keys.requests);
        }
        let reply: Vec<String> = self.with(|c| inv.invoke(c))?;
        let bad = || StoreError::Backend {
            address: self.address.clone(),
            message: format!("model_standings answered {} fields for {} models", reply.len(), models.len()),
        };
        if reply.len() != 1 + FIELDS * models.len() {
            return Err(bad());
        }
        let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
        let now_ms = num(&reply[0])?;
        models
            .iter()
            .zip(reply[1..].chunks(FIELDS))
            .map(|(model, f)| {
                let until = num(&f[0])?;
                let kind = Some(f[6].as_str()).filter(|k| !k.is_empty());
                Ok(ModelStanding {
                    model: model.clone(),
                    cooldown: (until > 0).then(|| stored_cooldown(until, kind, &f[1])),
                    minute_requests: num(&f[2])?,
                    minute_tokens: num(&f[3])?,
                    day_requests: num(&f[4])?,
                    day_tokens: num(&f[5])?,
                    now_ms,
                })
            })
            .collect()
    }

    pub(super) fn server_now_ms(&self) -> Result<u64, StoreError> {
        let (secs, micros): (u64, u64) = self.with(|c| redis::cmd("TIME").query(c))?;
        Ok(secs * 1000 + micros / 1000)
    }
}
