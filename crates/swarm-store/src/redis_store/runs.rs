//! Runs on Redis: creating one (a script on the namespace's keys), applying the orchestrator's
//! fenced batches (`lua/apply.lua`), reading runs, tasks and events back, the cancel flag and
//! the run's lease.

use super::errors::fenced;
use super::keys::{ns_keys, run_keys, RunKeys};
use super::{decode, encode, Lua, RedisStore, SCHEMA_VERSION};
use crate::store::{rejection, Batch, StoreError};
use redis::Commands;
use std::collections::HashMap;
use std::time::Duration;
use swarm_core::event::Event;
use swarm_core::report::{RunRecord, TaskReport};

static CREATE: Lua = Lua::new(include_str!("lua/create_run.lua"));
static APPLY: Lua = Lua::new(include_str!("lua/apply.lua"));
static ACQUIRE: Lua = Lua::new(include_str!("lua/acquire.lua"));

/// A script's `NORUN` as the store's `NoSuchRun`, its `FENCED`/`CONFLICT` as theirs.
fn run_error(e: StoreError, run_id: &str) -> StoreError {
    match &e {
        StoreError::Backend { message, .. } if message.contains("NORUN") => {
            StoreError::NoSuchRun(run_id.into())
        }
        _ => fenced(e, run_id),
    }
}

impl RedisStore {
    pub(super) fn keys(&self, run_id: &str) -> Result<RunKeys, StoreError> {
        let ns = self.namespace_of(run_id)?.ok_or_else(|| StoreError::NoSuchRun(run_id.into()))?;
        Ok(run_keys(&ns, run_id))
    }

    pub(super) fn create(&self, run: &RunRecord, tasks: &[TaskReport]) -> Result<(), StoreError> {
        let keys = run_keys(&run.namespace, &run.run_id);
        let ns = ns_keys(&run.namespace);
        let script = CREATE.get();
        let mut inv = script.key(&keys.run);
        inv.key(&keys.tasks).key(&ns.runs).key(&ns.meta);
        inv.arg(&run.run_id)
            .arg(encode(run))
            .arg(run.state.as_str())
            .arg(run.started_at.timestamp_millis())
            .arg(SCHEMA_VERSION);
        for t in tasks {
            inv.arg(&t.id).arg(encode(t));
        }
        self.with(|c| inv.invoke::<i64>(c)).map_err(|e| match &e {
            StoreError::Backend { message, .. } if message.contains("EXISTS") => StoreError::Backend {
                address: self.address.clone(),
                message: format!("run {} already exists", run.run_id),
            },
            StoreError::Backend { message, .. } if message.contains("SCHEMA") => {
                let found = message.split("SCHEMA").nth(1).unwrap_or("").trim_start_matches([' ', ':', '"']);
                let major = found.split(|c: char| !c.is_ascii_digit()).next().and_then(|m| m.parse().ok());
                StoreError::SchemaTooNew { found: major.unwrap_or(0), known: SCHEMA_VERSION }
            }
            _ => e,
        })?;
        self.index.remember(&run.run_id, &run.namespace);
        self.index_globally(run)
    }

    pub(super) fn apply_batch(&self, run_id: &str, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let keys = self.keys(run_id)?;
        let script = APPLY.get();
        let mut inv = script.key(&keys.run);
        inv.key(&keys.tasks).key(&keys.events).key(&keys.channel);
        inv.arg(batch.lease.as_deref().unwrap_or(""));
        match &batch.run {
            Some(r) => inv.arg(encode(r)).arg(r.state.as_str()),
            None => inv.arg("").arg(""),
        };
        inv.arg(self.retention).arg(batch.tasks.len()).arg(encode(&rejection(run_id, batch)));
        inv.arg(batch.expect.len()).arg(batch.id.as_deref().unwrap_or(""));
        for (task, state) in &batch.expect {
            inv.arg(task).arg(state.as_str());
        }
        for t in &batch.tasks {
            inv.arg(&t.id).arg(encode(t));
        }
        for e in &batch.events {
            inv.arg(encode(e));
        }
        self.with(|c| inv.invoke::<i64>(c)).map(|_| ()).map_err(|e| run_error(e, run_id))
    }

    pub(super) fn read_run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let Some(ns) = self.namespace_of(run_id)? else { return Ok(None) };
        let keys = run_keys(&ns, run_id);
        let doc: Option<String> = self.in_namespace(&ns, |c| c.hget(&keys.run, "doc"))?.flatten();
        doc.map(|d| decode(&format!("{} doc", keys.run), &d)).transpose()
    }

    pub(super) fn read_tasks(&self, run_id: &str) -> Result<Vec<TaskReport>, StoreError> {
        let Some(run) = self.read_run(run_id)? else { return Err(StoreError::NoSuchRun(run_id.into())) };
        let keys = run_keys(&run.namespace, run_id);
        let docs: HashMap<String, String> = self.with(|c| c.hgetall(&keys.tasks))?;
        let mut out = Vec::with_capacity(docs.len());
        for t in &run.spec.tasks {
            if let Some(doc) = docs.get(&t.id) {
                out.push(decode(&format!("{} {}", keys.tasks, t.id), doc)?);
            }
        }
        Ok(out)
    }

    pub(super) fn read_runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let mut out = Vec::new();
        for id in self.run_ids(limit)? {
            if let Some(r) = self.read_run(&id)? {
                out.push(r);
            }
        }
        // Same start time: newest id first, as the SQLite store orders them.
        out.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.run_id.cmp(&a.run_id)));
        Ok(out)
    }

    pub(super) fn read_events(
        &self,
        run_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Event)>, StoreError> {
        let keys = self.keys(run_id)?;
        let count = limit.min(1_000_000);
        let reply: redis::streams::StreamRangeReply =
            self.with(|c| c.xrange_count(&keys.events, format!("0-{}", after + 1), "+", count))?;
        // One entry holds a batch of events, keyed by their sequence numbers.
        let mut out = Vec::new();
        for entry in reply.ids {
            let mut batch: Vec<(u64, Event)> = Vec::with_capacity(entry.map.len());
            for (field, value) in &entry.map {
                let Ok(seq) = field.parse::<u64>() else { continue };
                if seq <= after {
                    continue;
                }
                let key = format!("{} {} field {seq}", keys.events, entry.id);
                let doc: String = redis::from_redis_value(value.clone())
                    .map_err(|e| StoreError::Corrupt { key: key.clone(), message: e.to_string() })?;
                let ev = serde_json::from_str::<Event>(&doc)
                    .map_err(|e| StoreError::Corrupt { key, message: e.to_string() })?;
                batch.push((seq, ev));
            }
            batch.sort_by_key(|(seq, _)| *seq);
            out.extend(batch);
            if out.len() >= limit {
                out.truncate(limit);
                break;
            }
        }
        Ok(out)
    }

    pub(super) fn set_cancel(&self, run_id: &str, on: bool) -> Result<(), StoreError> {
        let keys = self.keys(run_id)?;
        self.with(|c| c.hset::<_, _, _, ()>(&keys.run, "cancel", if on { "1" } else { "0" }))
    }

    pub(super) fn read_cancel(&self, run_id: &str) -> Result<bool, StoreError> {
        let keys = self.keys(run_id)?;
        let v: Option<String> = self.with(|c| c.hget(&keys.run, "cancel"))?;
        Ok(v.as_deref() == Some("1"))
    }

    pub(super) fn read_lease_holder(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        let keys = self.keys(run_id)?;
        self.with(|c| c.hget(&keys.run, "lease"))
    }

    pub(super) fn take_lease(
        &self,
        run_id: &str,
        token: &str,
        ttl: Duration,
        take_over: Option<&str>,
    ) -> Result<(), StoreError> {
        let keys = self.keys(run_id)?;
        let script = ACQUIRE.get();
        self.with(|c| {
            script
                .key(&keys.run)
                .arg(token)
                .arg(ttl.as_millis() as u64)
                .arg(take_over.unwrap_or(""))
                .invoke::<i64>(c)
        })
        .map(|_| ())
        .map_err(|e| run_error(e, run_id))
    }
}
