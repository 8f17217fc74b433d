//! The embedded store: one SQLite file in WAL mode. Documents are kept as JSON next to the
//! columns that are queried (ids, state, order), so every backend stores the same documents.

mod models;

use crate::models::{ModelLimits, ModelStanding, Reservation};
use crate::store::{state_event, Batch, Store, StoreError, STATE_CHANGES_MAXLEN};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use swarm_core::event::Event;
use swarm_core::report::{RunRecord, TaskReport};
use swarm_core::router::Cooldown;
use swarm_core::state_doc::{Actor, StateChange, StateEntry, StateOp};

/// Version of the table layout; bump the major on incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// The store's clock (ms since the Unix epoch) for leases and model pacing: every process on
/// the file asks SQLite, never its own arithmetic.
const SELECT_NOW_MS: &str = "SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Device and inode of the file when it was opened: writes check the path still names that
    /// file, because SQLite happily goes on writing to a file that was deleted or replaced.
    identity: Option<(u64, u64)>,
}

/// Device and inode of the file at `path`.
fn file_identity(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map(|m| (m.dev(), m.ino()))
}

impl SqliteStore {
    /// Opens the store at `path`, creating the file (and its directory) if needed.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Unreachable {
                address: describe(path),
                message: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        SqliteStore::open_with(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)
    }

    /// Opens the store at `path` only if it exists (`Missing` otherwise): reading never creates
    /// a store.
    pub fn open_existing(path: &Path) -> Result<SqliteStore, StoreError> {
        let missing = || StoreError::Missing { address: describe(path) };
        if !path.exists() {
            return Err(missing());
        }
        SqliteStore::open_with(path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(|e| match e {
            StoreError::Unreachable { .. } if !path.exists() => missing(),
            e => e,
        })
    }

    /// What [`Store::health`] will say of a store at `path` that does not exist yet.
    pub fn health_if_created(path: &Path) -> crate::Health {
        crate::Health {
            backend: "sqlite",
            address: describe(path),
            server_version: rusqlite::version().to_string(),
            schema_version: SCHEMA_VERSION,
            persistence: "file, not created yet (`swarm run` creates it)".into(),
            errors: vec![],
            warnings: vec![],
        }
    }

    fn open_with(path: &Path, flags: OpenFlags) -> Result<SqliteStore, StoreError> {
        let address = describe(path);
        let failed = |e: rusqlite::Error| match classify(&e) {
            Some(message) => StoreError::Unusable { address: address.clone(), message },
            None => StoreError::Unreachable { address: address.clone(), message: e.to_string() },
        };
        let conn =
            Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(failed)?;
        let identity = file_identity(path).ok();
        conn.busy_timeout(Duration::from_secs(10)).map_err(failed)?;
        // Switching to WAL takes an exclusive lock and ignores the busy timeout, so processes
        // opening a new store at the same moment retry here for a while.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10 + fastrand_ms()));
                }
                Err(e) => return Err(failed(e)),
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(failed)?;
        let store = SqliteStore { path: path.into(), conn: Mutex::new(conn), identity };
        store.migrate()?;
        Ok(store)
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        match classify(&e) {
            Some(message) => StoreError::Unusable { address: self.describe(), message },
            None => StoreError::Backend { address: self.describe(), message: e.to_string() },
        }
    }

    /// Fails with `Replaced` when the store's path no longer names the file opened: a write
    /// now would go to a file nobody will ever read.
    fn check_file(&self) -> Result<(), StoreError> {
        let Some(opened) = self.identity else { return Ok(()) };
        match file_identity(&self.path) {
            Ok(now) if now == opened => Ok(()),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Ok(()), // cannot tell
            _ => Err(StoreError::Replaced { address: self.describe() }),
        }
    }

    fn migrate(&self) -> Result<(), StoreError> {
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
             CREATE INDEX IF NOT EXISTS model_requests_at ON model_requests(namespace, model, at_ms);",
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

impl SqliteStore {
    /// One shared-state write (`value: None` deletes) as one IMMEDIATE transaction: the version
    /// check, the write, the change feed entry and the run event commit together or not at all.
    /// Returns the new entry (`None` after a delete) and whether the key existed.
    fn state_write(
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
        let seq: u64 = tx
            .query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM state_changes WHERE namespace=?1", [ns], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(|e| self.err(e))? as u64;
        let change = StateChange {
            seq,
            namespace: ns.into(),
            key: key.into(),
            op,
            version,
            value: value.cloned(),
            at: now,
            by: by.cloned(),
        };
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
        if let Some((by, run_id)) = by.and_then(|b| b.run_id.as_deref().map(|r| (b, r))) {
            // Only a run of this namespace hears about it, as on Redis (see `redis_store`).
            let run_ns: Option<Option<String>> = tx
                .query_row(
                    "SELECT json_extract(doc, '$.namespace') FROM runs WHERE run_id=?1",
                    [run_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.err(e))?;
            if run_ns.flatten().as_deref() == Some(ns) {
                let last: u64 = tx
                    .query_row("SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id=?1", [run_id], |r| {
                        r.get(0)
                    })
                    .map_err(|e| self.err(e))?;
                tx.execute(
                    "INSERT INTO events(run_id, seq, doc) VALUES(?1, ?2, ?3)",
                    params![run_id, last + 1, encode(&state_event(run_id, key, op, version, by))],
                )
                .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok((entry, true))
    }
}

/// A few milliseconds of jitter so retrying openers do not collide again.
fn fastrand_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos() % 20))
}

impl SqliteStore {
    /// Records why a batch was refused (as a `write_rejected` event), commits that alone, and
    /// returns `err`.
    fn refuse(
        &self,
        tx: rusqlite::Transaction<'_>,
        run_id: &str,
        batch: &Batch,
        err: StoreError,
    ) -> Result<(), StoreError> {
        let last: u64 = tx
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id=?1", [run_id], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let note = encode(&crate::redis_store::rejection(run_id, batch));
        tx.execute(
            "INSERT INTO events(run_id, seq, doc) VALUES(?1, ?2, ?3)",
            params![run_id, last + 1, note],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Err(err)
    }
}

fn describe(path: &Path) -> String {
    format!("sqlite:{}", path.display())
}

/// What makes an SQLite error mean "this file is no (intact) database", if it does.
fn classify(e: &rusqlite::Error) -> Option<String> {
    match e {
        rusqlite::Error::SqliteFailure(f, message)
            if matches!(f.code, rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) =>
        {
            Some(message.clone().unwrap_or_else(|| f.to_string()))
        }
        _ => None,
    }
}

fn decode<T: DeserializeOwned>(key: impl FnOnce() -> String, doc: &str) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt { key: key(), message: e.to_string() })
}

fn encode<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("store documents always serialize")
}

impl Store for SqliteStore {
    fn describe(&self) -> String {
        describe(&self.path)
    }

    fn create_run(&self, run: &RunRecord, tasks: &[TaskReport]) -> Result<(), StoreError> {
        self.check_file()?;
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO runs(run_id, started_at, state, doc) VALUES(?1, ?2, ?3, ?4)",
            params![run.run_id, run.started_at.to_rfc3339(), run.state.as_str(), encode(run)],
        )
        .map_err(|e| self.err(e))?;
        {
            let mut stmt = tx
                .prepare("INSERT INTO tasks(run_id, task_id, ord, state, doc) VALUES(?1, ?2, ?3, ?4, ?5)")
                .map_err(|e| self.err(e))?;
            for (i, t) in tasks.iter().enumerate() {
                stmt.execute(params![run.run_id, t.id, i as i64, t.state.as_str(), encode(t)])
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn apply(&self, run_id: &str, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.check_file()?;
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        if let Some(id) = &batch.id {
            let last: Option<Option<String>> = tx
                .query_row("SELECT last_batch FROM runs WHERE run_id=?1", [run_id], |r| r.get(0))
                .optional()
                .map_err(|e| self.err(e))?;
            if last.flatten().as_deref() == Some(id.as_str()) {
                return Ok(()); // a replay of the batch applied last
            }
        }
        if let Some(token) = &batch.lease {
            let held: Option<Option<String>> = tx
                .query_row("SELECT lease FROM runs WHERE run_id=?1", [run_id], |r| r.get(0))
                .optional()
                .map_err(|e| self.err(e))?;
            let Some(held) = held else { return Err(StoreError::NoSuchRun(run_id.into())) };
            if let Some(holder) = held.filter(|h| h != token) {
                return self.refuse(tx, run_id, batch, StoreError::Fenced { run_id: run_id.into(), holder });
            }
        }
        for (task, expected) in &batch.expect {
            let found: Option<String> = tx
                .query_row(
                    "SELECT state FROM tasks WHERE run_id=?1 AND task_id=?2",
                    params![run_id, task],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.err(e))?;
            let found = found.unwrap_or_else(|| "absent".into());
            if found != expected.as_str() {
                return self.refuse(
                    tx,
                    run_id,
                    batch,
                    StoreError::Conflict {
                        run_id: run_id.into(),
                        task: task.clone(),
                        expected: expected.as_str().into(),
                        found,
                    },
                );
            }
        }
        if let Some(id) = &batch.id {
            tx.execute("UPDATE runs SET last_batch=?2 WHERE run_id=?1", params![run_id, id])
                .map_err(|e| self.err(e))?;
        }
        if let Some(run) = &batch.run {
            tx.execute(
                "UPDATE runs SET state=?2, doc=?3 WHERE run_id=?1",
                params![run_id, run.state.as_str(), encode(run)],
            )
            .map_err(|e| self.err(e))?;
        }
        if !batch.tasks.is_empty() {
            let mut stmt = tx
                .prepare_cached("UPDATE tasks SET state=?3, doc=?4 WHERE run_id=?1 AND task_id=?2")
                .map_err(|e| self.err(e))?;
            for t in &batch.tasks {
                stmt.execute(params![run_id, t.id, t.state.as_str(), encode(t)]).map_err(|e| self.err(e))?;
            }
        }
        if !batch.events.is_empty() {
            let last: u64 = tx
                .query_row("SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id=?1", [run_id], |r| r.get(0))
                .map_err(|e| self.err(e))?;
            let mut stmt = tx
                .prepare_cached("INSERT INTO events(run_id, seq, doc) VALUES(?1, ?2, ?3)")
                .map_err(|e| self.err(e))?;
            for (i, ev) in batch.events.iter().enumerate() {
                stmt.execute(params![run_id, last + 1 + i as u64, encode(ev)]).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let doc: Option<String> = conn
            .query_row("SELECT doc FROM runs WHERE run_id=?1", [run_id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        doc.map(|d| decode(|| format!("runs[{run_id}]"), &d)).transpose()
    }

    fn tasks(&self, run_id: &str) -> Result<Vec<TaskReport>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached("SELECT task_id, doc FROM tasks WHERE run_id=?1 ORDER BY ord")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([run_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, doc) = row.map_err(|e| self.err(e))?;
            out.push(decode(|| format!("tasks[{run_id}/{id}]"), &doc)?);
        }
        Ok(out)
    }

    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached("SELECT run_id, doc FROM runs ORDER BY started_at DESC, run_id DESC LIMIT ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([limit.min(i64::MAX as usize) as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, doc) = row.map_err(|e| self.err(e))?;
            out.push(decode(|| format!("runs[{id}]"), &doc)?);
        }
        Ok(out)
    }

    fn events(&self, run_id: &str, after: u64, limit: usize) -> Result<Vec<(u64, Event)>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached("SELECT seq, doc FROM events WHERE run_id=?1 AND seq>?2 ORDER BY seq LIMIT ?3")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![run_id, after as i64, limit.min(i64::MAX as usize) as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, doc) = row.map_err(|e| self.err(e))?;
            out.push((seq as u64, decode(|| format!("events[{run_id}/{seq}]"), &doc)?));
        }
        Ok(out)
    }

    fn request_cancel(&self, run_id: &str) -> Result<(), StoreError> {
        let conn = self.conn.lock().unwrap();
        let n = conn
            .execute("UPDATE runs SET cancel_requested=1 WHERE run_id=?1", [run_id])
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(StoreError::NoSuchRun(run_id.into()));
        }
        Ok(())
    }

    fn cancel_requested(&self, run_id: &str) -> Result<bool, StoreError> {
        let conn = self.conn.lock().unwrap();
        let v: Option<i64> = conn
            .query_row("SELECT cancel_requested FROM runs WHERE run_id=?1", [run_id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(v.unwrap_or(0) != 0)
    }

    fn lease_holder(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let row: Option<Option<String>> = conn
            .query_row("SELECT lease FROM runs WHERE run_id=?1", [run_id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        row.ok_or_else(|| StoreError::NoSuchRun(run_id.into()))
    }

    fn acquire_lease(
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

    fn health(&self) -> Result<crate::Health, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mode: String =
            conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).map_err(|e| self.err(e))?;
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).map_err(|e| self.err(e))?;
        let mut warnings = Vec::new();
        if !mode.eq_ignore_ascii_case("wal") {
            warnings.push(format!("journal mode is {mode}, not WAL: readers may block the orchestrator"));
        }
        Ok(crate::Health {
            backend: "sqlite",
            address: self.describe(),
            server_version: rusqlite::version().to_string(),
            schema_version: SCHEMA_VERSION,
            persistence: format!("file, journal_mode={mode}, synchronous={sync}"),
            errors: vec![],
            warnings,
        })
    }

    fn clear_cancel(&self, run_id: &str) -> Result<(), StoreError> {
        let conn = self.conn.lock().unwrap();
        conn.execute("UPDATE runs SET cancel_requested=0 WHERE run_id=?1", [run_id])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn state_get(&self, ns: &str, key: &str) -> Result<Option<StateEntry>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let doc: Option<String> = conn
            .query_row("SELECT doc FROM shared_state WHERE namespace=?1 AND key=?2", [ns, key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        doc.map(|d| decode(|| format!("shared_state[{ns}/{key}]"), &d)).transpose()
    }

    fn state_set(
        &self,
        ns: &str,
        key: &str,
        value: &Value,
        if_version: Option<u64>,
        by: Option<&Actor>,
    ) -> Result<StateEntry, StoreError> {
        let (entry, _) = self.state_write(ns, key, Some(value), if_version, by)?;
        Ok(entry.expect("a set returns its entry"))
    }

    fn state_delete(
        &self,
        ns: &str,
        key: &str,
        if_version: Option<u64>,
        by: Option<&Actor>,
    ) -> Result<bool, StoreError> {
        self.state_write(ns, key, None, if_version, by).map(|(_, existed)| existed)
    }

    fn state_list(&self, ns: &str, prefix: &str) -> Result<Vec<StateEntry>, StoreError> {
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

    fn state_changes(&self, ns: &str, after: u64, limit: usize) -> Result<Vec<StateChange>, StoreError> {
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

    fn model_reserve(
        &self,
        ns: &str,
        model: &str,
        tokens: u64,
        limits: &ModelLimits,
    ) -> Result<Reservation, StoreError> {
        self.reserve(ns, model, tokens, limits)
    }

    fn model_cool(&self, ns: &str, model: &str, cooldown: &Cooldown) -> Result<(), StoreError> {
        self.cool(ns, model, cooldown)
    }

    fn model_standings(&self, ns: &str, models: &[String]) -> Result<Vec<ModelStanding>, StoreError> {
        self.standings(ns, models)
    }

    fn now_ms(&self) -> Result<u64, StoreError> {
        let conn = self.conn.lock().unwrap();
        let now: i64 = conn.query_row(SELECT_NOW_MS, [], |r| r.get(0)).map_err(|e| self.err(e))?;
        Ok(now.max(0) as u64)
    }

    fn state_last_seq(&self, ns: &str) -> Result<u64, StoreError> {
        let conn = self.conn.lock().unwrap();
        let seq: i64 = conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM state_changes WHERE namespace=?1", [ns], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))?;
        Ok(seq as u64)
    }
}
