//! The table layout, created or checked when a store is opened.

use super::{SqliteStore, SCHEMA_VERSION};
use crate::store::StoreError;
use rusqlite::OptionalExtension;

impl SqliteStore {
    pub(super) fn migrate(&self) -> Result<(), StoreError> {
        let conn = self.conn.lock().unwrap();
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS runs(
                run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, state TEXT NOT NULL,
                cancel_requested INTEGER NOT NULL DEFAULT 0, doc TEXT NOT NULL,
                lease TEXT, lease_until INTEGER NOT NULL DEFAULT 0, last_batch TEXT);
             CREATE TABLE IF NOT EXISTS tasks(
                run_id TEXT NOT NULL, task_id TEXT NOT NULL, ord INTEGER NOT NULL, state TEXT NOT NULL,
                doc TEXT NOT NULL, PRIMARY KEY(run_id, task_id));
             CREATE TABLE IF NOT EXISTS events(
                run_id TEXT NOT NULL, seq INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY(run_id, seq));
             CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at);
             CREATE TABLE IF NOT EXISTS shared_state(
                namespace TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL, version INTEGER NOT NULL,
                PRIMARY KEY(namespace, key));
             CREATE TABLE IF NOT EXISTS state_changes(
                namespace TEXT NOT NULL, seq INTEGER NOT NULL, doc TEXT NOT NULL,
                PRIMARY KEY(namespace, seq));
             CREATE TABLE IF NOT EXISTS model_cooldowns(
                namespace TEXT NOT NULL, model TEXT NOT NULL, until_ms INTEGER NOT NULL,
                reason TEXT NOT NULL, kind TEXT, PRIMARY KEY(namespace, model));
             CREATE TABLE IF NOT EXISTS model_requests(
                namespace TEXT NOT NULL, model TEXT NOT NULL, at_ms INTEGER NOT NULL,
                tokens INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS model_requests_at ON model_requests(namespace, model, at_ms);
             CREATE TABLE IF NOT EXISTS model_learned(
                namespace TEXT NOT NULL, model TEXT NOT NULL, rpm INTEGER, rpd INTEGER,
                source TEXT NOT NULL, at_ms INTEGER NOT NULL, PRIMARY KEY(namespace, model));",
        )
        .map_err(|e| self.err(e))?;
        // Stores made before cooldowns had kinds: the column is added (old rows say their kind
        // in their reason; see `stored_cooldown`).
        let has_kind: bool = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('model_cooldowns') WHERE name='kind'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))?;
        if !has_kind {
            conn.execute_batch("ALTER TABLE model_cooldowns ADD COLUMN kind TEXT")
                .map_err(|e| self.err(e))?;
        }
        let found: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key='schema_version'", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        match found.map(|v| v.parse::<u32>()) {
            None => {
                conn.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )
                .map_err(|e| self.err(e))?;
            }
            Some(Ok(v)) if v > SCHEMA_VERSION => {
                return Err(StoreError::SchemaTooNew { found: v, known: SCHEMA_VERSION });
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                return Err(StoreError::Corrupt {
                    key: "meta.schema_version".into(),
                    message: e.to_string(),
                });
            }
        }
        Ok(())
    }
}
