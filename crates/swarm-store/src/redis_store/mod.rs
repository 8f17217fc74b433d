//! The Redis store. Every key of a namespace shares the hash tag `{<namespace>}` so the
//! multi-key scripts below also run on Redis Cluster, and an ACL user confined to
//! `~swarm:{<ns>}:*` can use its namespace; `docs/state-schema.md` lists each key. Every write
//! of a run is one Lua script: it checks the run's lease token (a stale orchestrator is
//! rejected and the rejection recorded), then writes documents and appends events atomically.

mod conn;
mod errors;
mod health;
mod index;
mod keys;
mod models;
mod queue;
mod queue_names;
mod queue_run;
mod runs;
mod state;
mod workers;

pub use models::RunSpend;
pub use queue::{FeedEntry, Fenced, Lease, Said, WorkItem};
pub use queue_names::queue_name;
pub use queue_run::Stopped;
pub use workers::WorkerRow;

use crate::address::mask;

use crate::models::{Bucket, Learned, ModelLimits, ModelStanding, Reservation, StandingQuery};
use crate::store::{Batch, Store, StoreError};
use conn::{Client, Conn};
use errors::{is_auth_error, password_from_query};
use redis::RedisResult;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Mutex;
use std::time::Duration;
use swarm_core::event::Event;
use swarm_core::report::{RunRecord, TaskReport};
use swarm_core::router::Cooldown;
use swarm_core::state_doc::{Actor, StateChange, StateEntry};

/// Major version of the key schema; a store with a newer major is refused.
pub const SCHEMA_VERSION: u32 = 1;
/// Events kept per run stream (approximate cap).
pub const EVENTS_MAXLEN: usize = 100_000;

/// A Lua script and its SHA1, computed once (`EVALSHA`, loading it when the server lacks it).
pub(super) struct Lua {
    text: &'static str,
    script: std::sync::OnceLock<redis::Script>,
}

impl Lua {
    pub(super) const fn new(text: &'static str) -> Lua {
        Lua { text, script: std::sync::OnceLock::new() }
    }

    pub(super) fn get(&self) -> &redis::Script {
        self.script.get_or_init(|| redis::Script::new(self.text))
    }
}

pub struct RedisStore {
    address: String,
    client: Client,
    conn: Mutex<Option<Conn>>,
    /// A second connection for blocking reads (a worker waiting for work), so they hold up
    /// nothing else.
    blocking: Mutex<Option<Conn>>,
    index: index::Index,
    retention: usize,
}

impl RedisStore {
    /// Connects to the server at `url`, marking it as a swarm store if it is not yet.
    pub fn open(url: &str) -> Result<RedisStore, StoreError> {
        RedisStore::connect(url, true)
    }

    /// Connects to the server at `url`. Without `create`, nothing is written (a reader never
    /// marks a server as a swarm store, and an ACL user that may only read can read).
    pub fn connect(url: &str, create: bool) -> Result<RedisStore, StoreError> {
        RedisStore::connect_in(url, create, &[])
    }

    /// Like [`RedisStore::connect`], looking for runs in `namespaces` besides those the global
    /// index names (a user confined to its namespaces may not read that index).
    pub fn connect_in(url: &str, create: bool, namespaces: &[String]) -> Result<RedisStore, StoreError> {
        let address = mask(url);
        let normalized = password_from_query(url);
        let client = Client::new(&normalized, &address)?;
        let store = RedisStore {
            address,
            client,
            conn: Mutex::new(None),
            blocking: Mutex::new(None),
            index: index::Index::new(namespaces),
            retention: EVENTS_MAXLEN,
        };
        store.with(|c| redis::cmd("PING").query::<String>(c))?;
        store.check_schema(create)?;
        if create {
            store.migrate()?;
        }
        Ok(store)
    }

    /// The same store on connections of its own: the work queue of a run keeps its round trips
    /// out of the way of the run's writer (a batch of task documents holds a connection).
    pub fn sibling(&self) -> RedisStore {
        RedisStore {
            address: self.address.clone(),
            client: self.client.clone(),
            conn: Mutex::new(None),
            blocking: Mutex::new(None),
            index: index::Index::default(),
            retention: self.retention,
        }
    }

    /// Caps each run's event stream at about `entries` entries.
    pub fn with_retention(mut self, entries: usize) -> RedisStore {
        self.retention = entries.max(1);
        self
    }

    /// Whether the store is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.client.is_cluster()
    }

    /// Runs `f` on the connection, reconnecting once if the connection broke.
    fn with<T>(&self, f: impl FnMut(&mut Conn) -> RedisResult<T>) -> Result<T, StoreError> {
        self.on(&self.conn, f)
    }

    /// Like [`RedisStore::with`], on the connection kept for blocking reads.
    fn with_blocking<T>(&self, f: impl FnMut(&mut Conn) -> RedisResult<T>) -> Result<T, StoreError> {
        self.on(&self.blocking, f)
    }

    fn on<T>(
        &self,
        slot: &Mutex<Option<Conn>>,
        mut f: impl FnMut(&mut Conn) -> RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut guard = slot.lock().unwrap();
        for attempt in 0..2 {
            if guard.is_none() {
                match self.client.connect() {
                    Ok(c) => *guard = Some(c),
                    Err(e) => return Err(self.unreachable(e)),
                }
            }
            let conn = guard.as_mut().expect("connected above");
            match f(conn) {
                Ok(v) => return Ok(v),
                Err(e)
                    if (e.is_io_error() || e.is_connection_dropped() || e.is_timeout()) && attempt == 0 =>
                {
                    *guard = None;
                }
                Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
                    *guard = None;
                    return Err(self.unreachable(e));
                }
                Err(e) => return Err(self.backend(e)),
            }
        }
        unreachable!("the loop returns")
    }

    fn unreachable(&self, e: redis::RedisError) -> StoreError {
        if is_auth_error(&e) {
            return StoreError::Auth { address: self.address.clone(), message: e.to_string() };
        }
        StoreError::Unreachable { address: self.address.clone(), message: e.to_string() }
    }

    fn backend(&self, e: redis::RedisError) -> StoreError {
        if is_auth_error(&e) {
            return StoreError::Auth { address: self.address.clone(), message: e.to_string() };
        }
        StoreError::Backend { address: self.address.clone(), message: e.to_string() }
    }
}

fn decode<T: DeserializeOwned>(key: &str, doc: &str) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt { key: key.into(), message: e.to_string() })
}

fn encode<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("store documents always serialize")
}

impl Store for RedisStore {
    fn describe(&self) -> String {
        self.address.clone()
    }

    fn work_queue(self: std::sync::Arc<Self>) -> Option<std::sync::Arc<RedisStore>> {
        Some(self)
    }

    fn create_run(&self, run: &RunRecord, tasks: &[TaskReport]) -> Result<(), StoreError> {
        self.create(run, tasks)
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
        self.set_cancel(run_id, true)
    }

    fn cancel_requested(&self, run_id: &str) -> Result<bool, StoreError> {
        self.read_cancel(run_id)
    }

    fn lease_holder(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        self.read_lease_holder(run_id)
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
        self.report_health()
    }

    fn clear_cancel(&self, run_id: &str) -> Result<(), StoreError> {
        self.set_cancel(run_id, false)
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
        self.server_now_ms()
    }

    fn state_last_seq(&self, ns: &str) -> Result<u64, StoreError> {
        self.read_last_seq(ns)
    }
}
