//! The workers of a namespace as they say themselves: each one's info (JSON: host, agents and
//! versions, labels, capacity, running attempts, state) and when it last said it, on the
//! server's clock, so every host judges alive and dead alike.

use super::keys::ns_key;
use super::{Lua, RedisStore};
use crate::store::StoreError;
use std::time::Duration;

static BEAT: Lua = Lua::new(include_str!("lua/worker_beat.lua"));
/// The server's TIME on the node of KEYS[1].
static NOW: Lua = Lua::new("local t = redis.call('TIME') return {tonumber(t[1]), tonumber(t[2])}");

/// One worker as the namespace knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRow {
    pub name: String,
    /// What it last said of itself (JSON).
    pub info: String,
    /// When it last said it (server clock, ms).
    pub seen_ms: u64,
    /// The server's clock when this was read (ms).
    pub now_ms: u64,
}

fn workers_key(ns: &str) -> String {
    ns_key(ns, "workers")
}

fn seen_key(ns: &str) -> String {
    ns_key(ns, "workers:seen")
}

impl RedisStore {
    /// Worker `name` is alive and says `info` of itself; the server's clock (ms).
    pub fn beat(&self, ns: &str, name: &str, info: &str) -> Result<u64, StoreError> {
        let script = BEAT.get();
        let mut inv = script.key(workers_key(ns));
        inv.key(seen_key(ns)).arg(name).arg(info);
        self.with(|c| inv.invoke(c))
    }

    /// Every worker the namespace has heard of, by name.
    pub fn workers(&self, ns: &str) -> Result<Vec<WorkerRow>, StoreError> {
        // One command each: a Cluster connection takes no pipeline.
        let infos: Vec<(String, String)> =
            self.with(|c| redis::cmd("HGETALL").arg(workers_key(ns)).query(c))?;
        let seen: Vec<(String, u64)> = self.with(|c| redis::cmd("HGETALL").arg(seen_key(ns)).query(c))?;
        // The clock of the node that stamped the heartbeats (on a Cluster, the slot's).
        let now: Vec<u64> = self.with(|c| NOW.get().key(seen_key(ns)).invoke(c))?;
        let (secs, micros) = (now.first().copied().unwrap_or(0), now.get(1).copied().unwrap_or(0));
        let now_ms = secs * 1000 + micros / 1000;
        let mut rows: Vec<WorkerRow> = infos
            .into_iter()
            .map(|(name, info)| {
                let seen_ms = seen.iter().find(|(n, _)| *n == name).map_or(0, |(_, s)| *s);
                WorkerRow { name, info, seen_ms, now_ms }
            })
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }

    /// The live workers of `ns` (heard of within `alive`, running, not draining) that take
    /// from queue `queue`: they run its agent and have its labels.
    pub fn takers(&self, ns: &str, queue: &str, alive: Duration) -> Result<Vec<String>, StoreError> {
        let rows = self.workers(ns)?;
        let live = rows.iter().filter(|r| r.now_ms.saturating_sub(r.seen_ms) <= alive.as_millis() as u64);
        Ok(live.filter(|r| takes_from(&r.info, queue)).map(|r| r.name.clone()).collect())
    }

    /// Forgets the workers not heard of for `silent` (their consumers in the queue's group too,
    /// once nothing is pending on them); how many.
    pub fn forget_workers(&self, ns: &str, agents: &[String], silent: Duration) -> Result<usize, StoreError> {
        let rows = self.workers(ns)?;
        let gone: Vec<&WorkerRow> =
            rows.iter().filter(|r| r.now_ms.saturating_sub(r.seen_ms) > silent.as_millis() as u64).collect();
        for row in &gone {
            for agent in agents {
                let key = ns_key(ns, &format!("work:{agent}"));
                let mut one = redis::cmd("XPENDING");
                one.arg(&key).arg("workers").arg("-").arg("+").arg(1).arg(&row.name);
                let pending = self.with(|c| one.query::<Vec<redis::Value>>(c));
                // No group (nothing queued for the agent yet) or entries still pending: leave it.
                if pending.is_ok_and(|p| p.is_empty()) {
                    let mut del = redis::cmd("XGROUP");
                    del.arg("DELCONSUMER").arg(&key).arg("workers").arg(&row.name);
                    let _ = self.with(|c| del.query::<u64>(c));
                }
            }
            for key in [workers_key(ns), seen_key(ns)] {
                self.with(|c| redis::cmd("HDEL").arg(&key).arg(&row.name).query::<()>(c))?;
            }
        }
        Ok(gone.len())
    }
}

/// Whether a worker saying `info` of itself (running) takes from `queue`.
fn takes_from(info: &str, queue: &str) -> bool {
    let Ok(info) = serde_json::from_str::<serde_json::Value>(info) else { return false };
    if info["state"] != "running" {
        return false;
    }
    let agents: Vec<String> = info["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["name"].as_str().map(String::from))
        .collect();
    let labels: Vec<(String, String)> = info["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    super::queue_names::takes(queue, &agents, &labels)
}
