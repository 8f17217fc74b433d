//! Shared state: versioned entries per namespace, their change feed, and the run event a
//! run's agent's write leaves.

use super::{decode, encode, SqliteStore};
use crate::store::{refusal, state_event, StoreError, STATE_CHANGES_MAXLEN};
use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::Value;
use swarm_core::state_doc::{Actor, StateChange, StateEntry, StateOp};

impl SqliteStore {
    /// One shared-state write (`value: None` deletes) as one IMMEDIATE transaction: the version
    /// check, the write, the change feed entry and the run event commit together or not at all.
    /// Returns the new entry (`None` after a delete) and whether the key existed.
    pub(super) fn write_entry(
        &self,
        ns: &str,
        key: &str,
        value: Option<&Value>,
        if_version: Option<u64>,
        by: Option<&Actor>,
    ) -> Result<(Option<StateEntry>, bool), StoreError> {
        self.check_file()?;
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let found: u64 = tx
            .query_row("SELECT version FROM shared_state WHERE namespace=?1 AND key=?2", [ns, key], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .map_err(|e| self.err(e))?
            .map_or(0, |v| v as u64);
        if let Some(expected) = if_version.filter(|v| *v != found) {
            return Err(StoreError::VersionConflict { key: key.into(), expected, found });
        }
        let now = chrono::Utc::now();
        let (op, version, entry) = match value {
            Some(value) => {
                let entry = StateEntry {
                    key: key.into(),
                    version: found + 1,
                    value: value.clone(),
                    updated_at: now,
                    updated_by: by.cloned(),
                };
                tx.execute(
                    "INSERT OR REPLACE INTO shared_state(namespace, key, doc, version) VALUES(?1, ?2, ?3, ?4)",
                    params![ns, key, encode(&entry), entry.version as i64],
                )
                .map_err(|e| self.err(e))?;
                (StateOp::Set, entry.version, Some(entry))
            }
            None if found == 0 => return Ok((None, false)),
            None => {
                tx.execute("DELETE FROM shared_state WHERE namespace=?1 AND key=?2", [ns, key])
                    .map_err(|e| self.err(e))?;
                (StateOp::Delete, found, None)
            }
        };
        let change = StateChange {
            seq: 0, // the feed's next, given in `append_change`
            namespace: ns.into(),
            key: key.into(),
            op,
            version,
            value: value.cloned(),
            at: now,
            by: by.cloned(),
            reason: None,
        };
        self.append_change(&tx, change)?;
        if let Some(by) = by {
            self.tell_run(&tx, ns, key, op, version, by)?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok((entry, true))
    }

    /// Records a refused write in the change feed, in its own transaction.
    pub(super) fn refuse_write(
        &self,
        ns: &str,
        key: &str,
        reason: &str,
        by: Option<&Actor>,
    ) -> Result<StateChange, StoreError> {
        self.check_file()?;
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let change = self.append_change(&tx, refusal(ns, key, reason, by, 0))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(change)
    }

    /// Appends `change` to its namespace's feed as the next `seq`, and trims the feed.
    fn append_change(
        &self,
        tx: &Transaction<'_>,
        mut change: StateChange,
    ) -> Result<StateChange, StoreError> {
        let ns = change.namespace.as_str();
        let seq: u64 = tx
            .query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM state_changes WHERE namespace=?1", [ns], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(|e| self.err(e))? as u64;
        change.seq = seq;
        tx.execute(
            "INSERT INTO state_changes(namespace, seq, doc) VALUES(?1, ?2, ?3)",
            params![ns, seq as i64, encode(&change)],
        )
        .map_err(|e| self.err(e))?;
        tx.execute(
            "DELETE FROM state_changes WHERE namespace=?1 AND seq<=?2",
            params![ns, seq as i64 - STATE_CHANGES_MAXLEN as i64],
        )
        .map_err(|e| self.err(e))?;
        Ok(change)
    }

    /// A `state_changed` event for the run whose agent `by` wrote: only a run of this namespace
    /// hears about it, as on Redis (see `redis_store`).
    fn tell_run(
        &self,
        tx: &Transaction<'_>,
        ns: &str,
        key: &str,
        op: StateOp,
        version: u64,
        by: &Actor,
    ) -> Result<(), StoreError> {
        let Some(run_id) = by.run_id.as_deref() else { return Ok(()) };
        let run_ns: Option<Option<String>> = tx
            .query_row("SELECT json_extract(doc, '$.namespace') FROM runs WHERE run_id=?1", [run_id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        if run_ns.flatten().as_deref() == Some(ns) {
            self.append_events(tx, run_id, &[state_event(run_id, key, op, version, by)])?;
        }
        Ok(())
    }

    pub(super) fn read_entry(&self, ns: &str, key: &str) -> Result<Option<StateEntry>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let doc: Option<String> = conn
            .query_row("SELECT doc FROM shared_state WHERE namespace=?1 AND key=?2", [ns, key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        doc.map(|d| decode(|| format!("shared_state[{ns}/{key}]"), &d)).transpose()
    }

    pub(super) fn list_entries(&self, ns: &str, prefix: &str) -> Result<Vec<StateEntry>, StoreError> {
        let conn = self.conn.lock().unwrap();
        // substr() rather than LIKE: keys may hold `%` and `_`, and LIKE ignores case.
        let mut stmt = conn
            .prepare_cached(
                "SELECT key, doc FROM shared_state WHERE namespace=?1 AND substr(key, 1, length(?2))=?2
                 ORDER BY key",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([ns, prefix], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (key, doc) = row.map_err(|e| self.err(e))?;
            out.push(decode(|| format!("shared_state[{ns}/{key}]"), &doc)?);
        }
        Ok(out)
    }

    pub(super) fn read_changes(
        &self,
        ns: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StateChange>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, doc FROM state_changes WHERE namespace=?1 AND seq>?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(
                params![ns, after.min(i64::MAX as u64) as i64, limit.min(i64::MAX as usize) as i64],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, doc) = row.map_err(|e| self.err(e))?;
            out.push(decode(|| format!("state_changes[{ns}/{seq}]"), &doc)?);
        }
        Ok(out)
    }

    pub(super) fn read_last_seq(&self, ns: &str) -> Result<u64, StoreError> {
        let conn = self.conn.lock().unwrap();
        let seq: i64 = conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM state_changes WHERE namespace=?1", [ns], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))?;
        Ok(seq as u64)
    }
}
