//! Shared state on Redis: a namespace's entries, versions and change feed, each write one
//! script (version check, write, feed entry and run event together or not at all).

use super::keys::{ns_key, run_keys};
use super::{decode, encode, Lua, RedisStore, EVENTS_MAXLEN};
use crate::store::{state_event, StoreError, STATE_CHANGES_MAXLEN};
use redis::Commands;
use serde_json::Value;
use std::collections::HashMap;
use swarm_core::state_doc::{Actor, StateChange, StateEntry, StateOp};

/// Keys of one namespace's shared state.
pub(super) struct StateKeys {
    /// HASH: key -> entry document.
    pub(super) entries: String,
    /// STREAM: the change feed, entry ids `0-<seq>`.
    pub(super) changes: String,
    /// STRING: the last `seq` handed out (kept when the stream is trimmed).
    pub(super) seq: String,
}

pub(super) fn state_keys(ns: &str) -> StateKeys {
    StateKeys {
        entries: ns_key(ns, "shared_state"),
        changes: ns_key(ns, "shared_state:changes"),
        seq: ns_key(ns, "shared_state:seq"),
    }
}

/// Stands for a number only the script knows (the new version, the change's seq) in documents
/// serialized in Rust; the script puts the number in its place. `key` (a JSON string, which
/// cannot contain `"version":`) precedes these fields and the user's value follows them, so the
/// first `"field":<placeholder>` is always the document's own field.
pub(super) const PLACEHOLDER: u64 = u64::MAX;

static STATE_WRITE: Lua = Lua::new(include_str!("lua/state_write.lua"));
static STATE_REFUSE: Lua = Lua::new(include_str!("lua/state_refuse.lua"));

impl RedisStore {
    /// One shared-state write (`value: None` deletes) as one script: the version check, the
    /// write, the change feed entry and the run event happen together or not at all. Returns
    /// the new entry (`None` after a delete) and whether the key existed.
    pub(super) fn write_entry(
        &self,
        ns: &str,
        key: &str,
        value: Option<&Value>,
        if_version: Option<u64>,
        by: Option<&Actor>,
    ) -> Result<(Option<StateEntry>, bool), StoreError> {
        let keys = state_keys(ns);
        let now = chrono::Utc::now();
        let op = if value.is_some() { StateOp::Set } else { StateOp::Delete };
        let entry = value.map(|v| StateEntry {
            key: key.into(),
            version: PLACEHOLDER,
            value: v.clone(),
            updated_at: now,
            updated_by: by.cloned(),
        });
        let change = StateChange {
            seq: PLACEHOLDER,
            namespace: ns.into(),
            key: key.into(),
            op,
            version: PLACEHOLDER,
            value: value.cloned(),
            at: now,
            by: by.cloned(),
            reason: None,
        };
        // The writer's run, if it is of `ns` (the script looks): a run of another namespace has
        // its keys under another hash tag (on a Cluster in another slot, for an ACL user maybe
        // out of reach), so it is not told; the change feed of `ns` still records who wrote.
        let run = by.and_then(|b| b.run_id.as_deref().map(|r| (b, r))).map(|(by, run_id)| {
            (run_keys(ns, run_id), encode(&state_event(run_id, key, op, PLACEHOLDER, by)))
        });
        let script = STATE_WRITE.get();
        let mut inv = script.key(&keys.entries);
        inv.key(&keys.changes).key(&keys.seq);
        if let Some((rk, _)) = &run {
            inv.key(&rk.run).key(&rk.events);
        }
        inv.arg(key)
            .arg(if_version.map(|v| v.to_string()).unwrap_or_default())
            .arg(entry.as_ref().map(encode).unwrap_or_default())
            .arg(encode(&change))
            .arg(PLACEHOLDER)
            .arg(STATE_CHANGES_MAXLEN)
            .arg(run.as_ref().map(|(_, ev)| ev.as_str()).unwrap_or(""))
            .arg(EVENTS_MAXLEN);
        let version = self.with(|c| inv.invoke::<u64>(c)).map_err(|e| match &e {
            StoreError::Backend { message, .. } if message.contains("CONFLICT") => {
                let found = message
                    .split("CONFLICT")
                    .nth(1)
                    .and_then(|rest| {
                        let digits: String = rest
                            .trim_start_matches(|c: char| !c.is_ascii_digit())
                            .chars()
                            .take_while(char::is_ascii_digit)
                            .collect();
                        digits.parse().ok()
                    })
                    .unwrap_or(0);
                StoreError::VersionConflict { key: key.into(), expected: if_version.unwrap_or(0), found }
            }
            _ => e,
        })?;
        Ok((entry.map(|e| StateEntry { version, ..e }), version > 0))
    }
}

impl RedisStore {
    /// Records a refused write in the change feed: one script takes the next `seq` and appends.
    pub(super) fn refuse_write(
        &self,
        ns: &str,
        key: &str,
        reason: &str,
        by: Option<&Actor>,
    ) -> Result<StateChange, StoreError> {
        let keys = state_keys(ns);
        let change = crate::store::refusal(ns, key, reason, by, PLACEHOLDER);
        let script = STATE_REFUSE.get();
        let mut inv = script.key(&keys.changes);
        inv.key(&keys.seq).arg(encode(&change)).arg(PLACEHOLDER).arg(STATE_CHANGES_MAXLEN);
        let seq = self.with(|c| inv.invoke::<u64>(c))?;
        Ok(StateChange { seq, ..change })
    }

    pub(super) fn read_entry(&self, ns: &str, key: &str) -> Result<Option<StateEntry>, StoreError> {
        let keys = state_keys(ns);
        let doc: Option<String> = self.with(|c| c.hget(&keys.entries, key))?;
        doc.map(|d| decode(&format!("{} {key}", keys.entries), &d)).transpose()
    }

    pub(super) fn list_entries(&self, ns: &str, prefix: &str) -> Result<Vec<StateEntry>, StoreError> {
        let keys = state_keys(ns);
        let docs: HashMap<String, String> = self.with(|c| c.hgetall(&keys.entries))?;
        let mut hits: Vec<(&String, &String)> = docs.iter().filter(|(k, _)| k.starts_with(prefix)).collect();
        hits.sort_by(|a, b| a.0.cmp(b.0));
        hits.into_iter().map(|(k, doc)| decode(&format!("{} {k}", keys.entries), doc)).collect()
    }

    pub(super) fn read_changes(
        &self,
        ns: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StateChange>, StoreError> {
        let keys = state_keys(ns);
        let count = limit.min(1_000_000);
        let reply: redis::streams::StreamRangeReply = self
            .with(|c| c.xrange_count(&keys.changes, format!("0-{}", after.saturating_add(1)), "+", count))?;
        let mut out = Vec::with_capacity(reply.ids.len());
        for entry in reply.ids {
            let Some(doc) = entry.get::<String>("doc") else { continue };
            out.push(decode(&format!("{} {}", keys.changes, entry.id), &doc)?);
        }
        Ok(out)
    }

    pub(super) fn read_last_seq(&self, ns: &str) -> Result<u64, StoreError> {
        let keys = state_keys(ns);
        let seq: Option<u64> = self.with(|c| c.get(&keys.seq))?;
        Ok(seq.unwrap_or(0))
    }
}
