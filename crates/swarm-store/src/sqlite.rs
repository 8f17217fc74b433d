//! The embedded store: one SQLite file in WAL mode. Documents are kept as JSON next to the
//! columns that are queried (ids, state, order), so every backend stores the same documents.

mod leases;
mod models;
mod runs;
mod schema;
mod state;

use crate::models::{Bucket, Learned, ModelLimits, ModelStanding, Reservation, StandingQuery};
use crate::store::{Batch, Store, StoreError};
use rusqlite::{Connection, OpenFlags};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use swarm_core::event::Event;
use swarm_core::report::{RunRecord, TaskReport};
use swarm_core::router::Cooldown;
use swarm_core::state_doc::{Actor, StateChange, StateEntry};

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
}

/// A few milliseconds of jitter so retrying openers do not collide again.
fn fastrand_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos() % 20))
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
        self.insert_run(run, tasks)
    }

    fn apply(&self, run_id: &str, batch: &Batch) -> Result<(), StoreError> {
        self.apply_batch(run_id, batch)
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.read_run(run_id)
    }

    fn tasks(&self, run_id: &str) -> Result<Vec<TaskReport>, StoreError> {
        self.read_tasks(run_id)
    }

    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        self.read_runs(limit)
    }

    fn events(&self, run_id: &str, after: u64, limit: usize) -> Result<Vec<(u64, Event)>, StoreError> {
        self.read_events(run_id, after, limit)
    }

    fn request_cancel(&self, run_id: &str) -> Result<(), StoreError> {
        self.mark_cancel(run_id)
    }

    fn cancel_requested(&self, run_id: &str) -> Result<bool, StoreError> {
        self.read_cancel(run_id)
    }

    fn lease_holder(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        self.read_lease(run_id)
    }

    fn acquire_lease(
        &self,
        run_id: &str,
        token: &str,
        ttl: Duration,
        take_over: Option<&str>,
    ) -> Result<(), StoreError> {
        self.take_lease(run_id, token, ttl, take_over)
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
        self.unmark_cancel(run_id)
    }

    fn state_get(&self, ns: &str, key: &str) -> Result<Option<StateEntry>, StoreError> {
        self.read_entry(ns, key)
    }

    fn state_write(
        &self,
        ns: &str,
        key: &str,
        value: Option<&Value>,
        if_version: Option<u64>,
        by: Option<&Actor>,
    ) -> Result<(Option<StateEntry>, bool), StoreError> {
        self.write_entry(ns, key, value, if_version, by)
    }

    fn state_refuse(
        &self,
        ns: &str,
        key: &str,
        reason: &str,
        by: Option<&Actor>,
    ) -> Result<StateChange, StoreError> {
        self.refuse_write(ns, key, reason, by)
    }

    fn state_list(&self, ns: &str, prefix: &str) -> Result<Vec<StateEntry>, StoreError> {
        self.list_entries(ns, prefix)
    }

    fn state_changes(&self, ns: &str, after: u64, limit: usize) -> Result<Vec<StateChange>, StoreError> {
        self.read_changes(ns, after, limit)
    }

    fn model_reserve(
        &self,
        ns: &str,
        model: &str,
        tokens: u64,
        limits: &ModelLimits,
        groups: &[Bucket],
    ) -> Result<Reservation, StoreError> {
        self.reserve(ns, model, tokens, limits, groups)
    }

    fn model_cool(&self, ns: &str, model: &str, cooldown: &Cooldown) -> Result<(), StoreError> {
        self.cool(ns, model, cooldown)
    }

    fn model_standings(&self, ns: &str, queries: &[StandingQuery]) -> Result<Vec<ModelStanding>, StoreError> {
        self.standings(ns, queries)
    }

    fn model_learn(&self, ns: &str, model: &str, learned: &Learned) -> Result<(), StoreError> {
        self.learn(ns, model, learned)
    }

    fn now_ms(&self) -> Result<u64, StoreError> {
        let conn = self.conn.lock().unwrap();
        let now: i64 = conn.query_row(SELECT_NOW_MS, [], |r| r.get(0)).map_err(|e| self.err(e))?;
        Ok(now.max(0) as u64)
    }

    fn state_last_seq(&self, ns: &str) -> Result<u64, StoreError> {
        self.read_last_seq(ns)
    }
}
