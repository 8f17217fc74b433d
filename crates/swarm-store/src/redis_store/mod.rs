//! The Redis store. Every key of a namespace shares the hash tag `{<namespace>}` so the
//! multi-key scripts below also run on Redis Cluster; `docs/state-schema.md` lists each key.
//! Every write is one Lua script: it checks the run's lease token (a stale orchestrator is
//! rejected and the rejection recorded), then writes documents and appends events atomically.

mod errors;
mod health;
mod models;
mod state;

use crate::address::mask;

use crate::models::{Bucket, Learned, ModelLimits, ModelStanding, Reservation, StandingQuery};
use crate::store::{Batch, Store, StoreError};
use errors::{fenced, is_auth_error, password_from_query, scrub};
use redis::{Commands, Connection, RedisResult, Script};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
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

const META: &str = "swarm:meta";
const RUNS: &str = "swarm:runs";
const RUN_NS: &str = "swarm:run_ns";

pub struct RedisStore {
    address: String,
    client: redis::Client,
    conn: Mutex<Option<Connection>>,
    namespaces: Mutex<HashMap<String, String>>,
    retention: usize,
}

/// Keys of one run.
struct RunKeys {
    run: String,
    tasks: String,
    events: String,
    /// Pub/sub channel announcing new events of the namespace's runs.
    channel: String,
}

fn run_keys(ns: &str, run_id: &str) -> RunKeys {
    RunKeys {
        run: format!("swarm:{{{ns}}}:run:{run_id}"),
        tasks: format!("swarm:{{{ns}}}:run:{run_id}:tasks"),
        events: format!("swarm:{{{ns}}}:run:{run_id}:events"),
        channel: format!("swarm:{{{ns}}}:events"),
    }
}

const APPLY: &str = include_str!("lua/apply.lua");

const ACQUIRE: &str = include_str!("lua/acquire.lua");

impl RedisStore {
    /// Connects to the server at `url`, marking it as a swarm store if it is not yet.
    pub fn open(url: &str) -> Result<RedisStore, StoreError> {
        RedisStore::connect(url, true)
    }

    /// Connects to the server at `url`. Without `create`, nothing is written (a reader never
    /// marks a server as a swarm store, and an ACL user that may only read can read).
    pub fn connect(url: &str, create: bool) -> Result<RedisStore, StoreError> {
        let address = mask(url);
        let normalized = password_from_query(url);
        let url = normalized.as_str();
        let bad = |e: &dyn std::fmt::Display| StoreError::Unreachable {
            address: address.clone(),
            message: scrub(&e.to_string(), url),
        };
        let client = if url.starts_with("rediss://") {
            // TLS with rustls (ring). The system roots are trusted; a private CA (and a client
            // certificate for mutual TLS) come from SWARM_REDIS_CA_CERT / SWARM_REDIS_CLIENT_CERT
            // and SWARM_REDIS_CLIENT_KEY, each a PEM file.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let read = |var: &str| -> Result<Option<Vec<u8>>, StoreError> {
                match std::env::var_os(var) {
                    None => Ok(None),
                    Some(path) => std::fs::read(&path).map(Some).map_err(|e| StoreError::Unreachable {
                        address: address.clone(),
                        message: format!(
                            "cannot read {var} ({}): {e}",
                            std::path::Path::new(&path).display()
                        ),
                    }),
                }
            };
            let root_cert = read("SWARM_REDIS_CA_CERT")?;
            let client_tls = match (read("SWARM_REDIS_CLIENT_CERT")?, read("SWARM_REDIS_CLIENT_KEY")?) {
                (Some(client_cert), Some(client_key)) => {
                    Some(redis::ClientTlsConfig { client_cert, client_key })
                }
                _ => None,
            };
            redis::Client::build_with_tls(url, redis::TlsCertificates { client_tls, root_cert })
                .map_err(|e| bad(&e))?
        } else {
            redis::Client::open(url).map_err(|e| bad(&e))?
        };
        let store = RedisStore {
            address,
            client,
            conn: Mutex::new(None),
            namespaces: Mutex::new(HashMap::new()),
            retention: EVENTS_MAXLEN,
        };
        store.with(|c| redis::cmd("PING").query::<String>(c))?;
        store.check_schema(create)?;
        Ok(store)
    }

    /// Caps each run's event stream at about `entries` entries.
    pub fn with_retention(mut self, entries: usize) -> RedisStore {
        self.retention = entries.max(1);
        self
    }

    /// Runs `f` on the connection, reconnecting once if the connection broke.
    fn with<T>(&self, mut f: impl FnMut(&mut Connection) -> RedisResult<T>) -> Result<T, StoreError> {
        let mut guard = self.conn.lock().unwrap();
        for attempt in 0..2 {
            if guard.is_none() {
                match self.client.get_connection_with_timeout(Duration::from_secs(3)) {
                    Ok(c) => {
                        let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
                        let _ = c.set_write_timeout(Some(Duration::from_secs(10)));
                        *guard = Some(c);
                    }
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

    fn namespace_of(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        if let Some(ns) = self.namespaces.lock().unwrap().get(run_id) {
            return Ok(Some(ns.clone()));
        }
        let ns: Option<String> = self.with(|c| c.hget(RUN_NS, run_id))?;
        if let Some(ns) = &ns {
            self.namespaces.lock().unwrap().insert(run_id.into(), ns.clone());
        }
        Ok(ns)
    }

    fn keys(&self, run_id: &str) -> Result<RunKeys, StoreError> {
        let ns = self.namespace_of(run_id)?.ok_or_else(|| StoreError::NoSuchRun(run_id.into()))?;
        Ok(run_keys(&ns, run_id))
    }
}

/// The event recorded when a write is refused because its lease is not the run's.
pub(crate) fn rejection(run_id: &str, batch: &Batch) -> Event {
    Event {
        run_id: run_id.into(),
        timestamp: chrono::Utc::now(),
        elapsed_ms: 0,
        kind: swarm_core::event::EventKind::WriteRejected {
            lease: batch.lease.clone().unwrap_or_default(),
            tasks: batch.tasks.iter().map(|t| t.id.clone()).collect(),
            events: batch.events.len(),
        },
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

    fn create_run(&self, run: &RunRecord, tasks: &[TaskReport]) -> Result<(), StoreError> {
        let keys = run_keys(&run.namespace, &run.run_id);
        let created: bool = self.with(|c| c.hset_nx(RUN_NS, &run.run_id, &run.namespace))?;
        if !created {
            return Err(StoreError::Backend {
                address: self.address.clone(),
                message: format!("run {} already exists", run.run_id),
            });
        }
        self.namespaces.lock().unwrap().insert(run.run_id.clone(), run.namespace.clone());
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.hset_multiple(
            &keys.run,
            &[
                ("doc", encode(run)),
                ("state", run.state.as_str().into()),
                ("cancel", "0".into()),
                ("seq", "0".into()),
            ],
        );
        if !tasks.is_empty() {
            let pairs: Vec<(String, String)> = tasks.iter().map(|t| (t.id.clone(), encode(t))).collect();
            pipe.hset_multiple(&keys.tasks, &pairs);
        }
        pipe.zadd(RUNS, &run.run_id, run.started_at.timestamp_millis());
        self.with(|c| pipe.query::<()>(c))
    }

    fn apply(&self, run_id: &str, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let keys = self.keys(run_id)?;
        let script = Script::new(APPLY);
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
        self.with(|c| inv.invoke::<i64>(c)).map(|_| ()).map_err(|e| match &e {
            StoreError::Backend { message, .. } if message.contains("NORUN") => {
                StoreError::NoSuchRun(run_id.into())
            }
            _ => fenced(e, run_id),
        })
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let Some(ns) = self.namespace_of(run_id)? else { return Ok(None) };
        let keys = run_keys(&ns, run_id);
        let doc: Option<String> = self.with(|c| c.hget(&keys.run, "doc"))?;
        doc.map(|d| decode(&format!("{} doc", keys.run), &d)).transpose()
    }

    fn tasks(&self, run_id: &str) -> Result<Vec<TaskReport>, StoreError> {
        let Some(run) = self.run(run_id)? else { return Err(StoreError::NoSuchRun(run_id.into())) };
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

    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let stop = if limit == usize::MAX { -1 } else { limit as isize - 1 };
        if stop == -1 && limit == 0 {
            return Ok(vec![]);
        }
        let ids: Vec<String> = self.with(|c| c.zrevrange(RUNS, 0, stop))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(r) = self.run(&id)? {
                out.push(r);
            }
        }
        // Same start time: newest id first, as the SQLite store orders them.
        out.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.run_id.cmp(&a.run_id)));
        Ok(out)
    }

    fn events(&self, run_id: &str, after: u64, limit: usize) -> Result<Vec<(u64, Event)>, StoreError> {
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

    fn request_cancel(&self, run_id: &str) -> Result<(), StoreError> {
        let keys = self.keys(run_id)?;
        self.with(|c| c.hset::<_, _, _, ()>(&keys.run, "cancel", "1"))
    }

    fn cancel_requested(&self, run_id: &str) -> Result<bool, StoreError> {
        let keys = self.keys(run_id)?;
        let v: Option<String> = self.with(|c| c.hget(&keys.run, "cancel"))?;
        Ok(v.as_deref() == Some("1"))
    }

    fn lease_holder(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        let keys = self.keys(run_id)?;
        self.with(|c| c.hget(&keys.run, "lease"))
    }

    fn acquire_lease(
        &self,
        run_id: &str,
        token: &str,
        ttl: Duration,
        take_over: Option<&str>,
    ) -> Result<(), StoreError> {
        let keys = self.keys(run_id)?;
        let script = Script::new(ACQUIRE);
        self.with(|c| {
            script
                .key(&keys.run)
                .arg(token)
                .arg(ttl.as_millis() as u64)
                .arg(take_over.unwrap_or(""))
                .invoke::<i64>(c)
        })
        .map_err(|e| match &e {
            StoreError::Backend { message, .. } if message.contains("NORUN") => {
                StoreError::NoSuchRun(run_id.into())
            }
            _ => fenced(e, run_id),
        })?;
        Ok(())
    }

    fn health(&self) -> Result<crate::Health, StoreError> {
        self.report_health()
    }

    fn clear_cancel(&self, run_id: &str) -> Result<(), StoreError> {
        let keys = self.keys(run_id)?;
        self.with(|c| c.hset::<_, _, _, ()>(&keys.run, "cancel", "0"))
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
