//! The run lease: which orchestrator may write a run, timed on SQLite's clock.

use super::{SqliteStore, SELECT_NOW_MS};
use crate::store::StoreError;
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use std::time::Duration;

impl SqliteStore {
    pub(super) fn read_lease(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let row: Option<Option<String>> = conn
            .query_row("SELECT lease FROM runs WHERE run_id=?1", [run_id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        row.ok_or_else(|| StoreError::NoSuchRun(run_id.into()))
    }

    pub(super) fn take_lease(
        &self,
        run_id: &str,
        token: &str,
        ttl: Duration,
        take_over: Option<&str>,
    ) -> Result<(), StoreError> {
        self.check_file()?;
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let now: i64 = tx.query_row(SELECT_NOW_MS, [], |r| r.get(0)).map_err(|e| self.err(e))?;
        let row: Option<(Option<String>, i64)> = tx
            .query_row("SELECT lease, lease_until FROM runs WHERE run_id=?1", [run_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((held, until)) = row else { return Err(StoreError::NoSuchRun(run_id.into())) };
        if let Some(holder) = held.filter(|h| h != token && until > now && Some(h.as_str()) != take_over) {
            return Err(StoreError::Fenced { run_id: run_id.into(), holder });
        }
        tx.execute(
            "UPDATE runs SET lease=?2, lease_until=?3 WHERE run_id=?1",
            params![run_id, token, now + ttl.as_millis() as i64],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }
}
