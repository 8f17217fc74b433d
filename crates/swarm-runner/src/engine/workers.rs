//! Who runs a namespace's queued attempts (docs/contract.md §11): its workers as each last said
//! of itself, alive or not, for `swarm workers`, the MCP face and the JSON API alike.

use super::{Engine, EngineError};
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// A worker not heard of for this long is dead (it says it is alive every second).
const ALIVE_WITHIN: Duration = Duration::from_secs(10);

/// One worker of a namespace.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerView {
    pub name: String,
    pub host: Value,
    pub pid: Value,
    /// `running`, `draining`, `stopped` (or `unknown`).
    pub state: String,
    /// Heard of within [`ALIVE_WITHIN`] and not stopped.
    pub alive: bool,
    /// The agent CLIs it runs, each `{name, version}`.
    pub agents: Value,
    pub labels: Value,
    pub capacity: Value,
    pub running: Value,
    pub last_heartbeat: Option<DateTime<Utc>>,
    pub seen_ago_ms: u64,
    /// The worker's swarm version.
    pub swarm: Value,
}

impl Engine {
    /// The workers of namespace `ns`; an error for a store that has none (only Redis does).
    pub fn workers(&self, ns: &str) -> Result<Vec<WorkerView>, EngineError> {
        let queue = self.store.clone().work_queue().ok_or_else(|| {
            EngineError::Invalid(format!(
                "workers use a Redis store (--store redis://…); {} is not one",
                self.store.describe()
            ))
        })?;
        Ok(queue.workers(ns)?.iter().map(view).collect())
    }
}

fn view(w: &swarm_store::WorkerRow) -> WorkerView {
    let info: Value = serde_json::from_str(&w.info).unwrap_or(Value::Null);
    let ago = w.now_ms.saturating_sub(w.seen_ms);
    let state = info["state"].as_str().unwrap_or("unknown").to_string();
    WorkerView {
        name: w.name.clone(),
        host: info["host"].clone(),
        pid: info["pid"].clone(),
        alive: state != "stopped" && ago <= ALIVE_WITHIN.as_millis() as u64,
        state,
        agents: info["agents"].clone(),
        labels: info["labels"].clone(),
        capacity: info["capacity"].clone(),
        running: info["running"].clone(),
        last_heartbeat: Utc.timestamp_millis_opt(w.seen_ms as i64).single(),
        seen_ago_ms: ago,
        swarm: info["swarm"].clone(),
    }
}
