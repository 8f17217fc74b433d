//! The store trait every backend implements, and its error type.

use serde_json::Value;
use std::time::Duration;
use swarm_core::event::Event;
use swarm_core::report::{RunRecord, TaskReport};
use swarm_core::state_doc::{Actor, StateChange, StateEntry, StateOp};

use crate::models::{Bucket, Learned, ModelLimits, ModelStanding, Reservation, StandingQuery};
use swarm_core::router::Cooldown;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store `{address}` is unreachable: {message}")]
    Unreachable { address: String, message: String },
    /// An embedded store that does not exist yet; only commands that write create one.
    #[error("no swarm state here ({address} does not exist); start a run with `swarm run`")]
    Missing { address: String },
    /// The file is no database, or a damaged one.
    #[error(
        "store `{address}` is not a usable swarm store ({message}); move it away or choose another --store"
    )]
    Unusable { address: String, message: String },
    /// The server refused the credentials (wrong or missing password, or an ACL that forbids
    /// the command).
    #[error("store `{address}` refused the credentials: {message}")]
    Auth { address: String, message: String },
    /// The embedded store's file was deleted, or another file took its place, while it was open:
    /// whatever is written now would be lost.
    #[error("store `{address}` was deleted or replaced while swarm had it open")]
    Replaced { address: String },
    #[error("store `{address}`: {message}")]
    Backend { address: String, message: String },
    #[error("corrupt document at {key}: {message}")]
    Corrupt { key: String, message: String },
    #[error("no run `{0}` in the store")]
    NoSuchRun(String),
    #[error("run id `{prefix}` is ambiguous: {candidates}")]
    Ambiguous { prefix: String, candidates: String },
    #[error("unsupported store address `{0}`: use sqlite:PATH, redis://host:port or redis+cluster://host:port,host:port")]
    BadAddress(String),
    #[error(
        "write to run `{run_id}` rejected: task `{task}` is {found}, not {expected} as the writer expected"
    )]
    Conflict { run_id: String, task: String, expected: String, found: String },
    #[error("write to run `{run_id}` rejected: its lease is held by another orchestrator ({holder})")]
    Fenced { run_id: String, holder: String },
    #[error("store schema version {found} is newer than this swarm understands ({known}); upgrade swarm")]
    SchemaTooNew { found: u32, known: u32 },
    /// A compare-and-set on shared state lost: the key is not at the expected version
    /// (0 = absent) any more.
    #[error("version conflict on key `{key}`: expected {}, found {}", version_text(*.expected), version_text(*.found))]
    VersionConflict { key: String, expected: u64, found: u64 },
}

fn version_text(v: u64) -> String {
    if v == 0 {
        "no entry (version 0)".into()
    } else {
        format!("version {v}")
    }
}

/// The store's own account of itself.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Health {
    pub backend: &'static str,
    pub address: String,
    pub server_version: String,
    pub schema_version: u32,
    /// How the data survives a crash, in the backend's terms.
    pub persistence: String,
    /// Problems that make the store unfit (e.g. a Redis older than 6.2).
    pub errors: Vec<String>,
    /// Things worth fixing (e.g. Redis with neither AOF nor RDB).
    pub warnings: Vec<String>,
}

/// Changes kept per namespace in the shared-state change feed (approximate cap).
pub const STATE_CHANGES_MAXLEN: u64 = 100_000;

/// Writes that land together: one transaction, all or nothing.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// The writer's lease token: the write is rejected if another orchestrator holds the run.
    pub lease: Option<String>,
    /// Unique id of this batch: applying the same batch again (a retry after a lost answer) is
    /// a no-op instead of a conflict.
    pub id: Option<String>,
    /// States tasks must be in before this batch; if one is not, nothing is written.
    pub expect: Vec<(String, swarm_core::state::TaskState)>,
    pub run: Option<RunRecord>,
    pub tasks: Vec<TaskReport>,
    pub events: Vec<Event>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.run.is_none() && self.tasks.is_empty() && self.events.is_empty()
    }
}

pub trait Store: Send + Sync {
    /// The address with any secret masked, for messages.
    fn describe(&self) -> String;

    /// The work queue workers on many hosts read (Redis only; docs/contract.md §11).
    fn work_queue(self: std::sync::Arc<Self>) -> Option<std::sync::Arc<crate::RedisStore>> {
        None
    }

    /// Records a new run with its tasks (in plan order). Fails if the id exists.
    fn create_run(&self, run: &RunRecord, tasks: &[TaskReport]) -> Result<(), StoreError>;

    /// Applies a batch of run/task updates and appends its events, atomically.
    fn apply(&self, run_id: &str, batch: &Batch) -> Result<(), StoreError>;

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError>;

    /// Tasks of a run in plan order.
    fn tasks(&self, run_id: &str) -> Result<Vec<TaskReport>, StoreError>;

    /// Runs, newest first.
    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError>;

    /// Events with sequence number greater than `after`, oldest first.
    fn events(&self, run_id: &str, after: u64, limit: usize) -> Result<Vec<(u64, Event)>, StoreError>;

    /// Asks the run's orchestrator (wherever it is) to cancel.
    fn request_cancel(&self, run_id: &str) -> Result<(), StoreError>;

    fn cancel_requested(&self, run_id: &str) -> Result<bool, StoreError>;

    /// Takes (or renews) the run's lease for `token` for `ttl`, by the store's clock. Fails with
    /// `Fenced` while another token's lease is unexpired, unless that token is `take_over` (a
    /// holder the caller verified dead, as [`Store::lease_holder`] named it): of two callers
    /// taking over the same dead holder, exactly one wins. Writes carrying another token are
    /// rejected from then on.
    fn acquire_lease(
        &self,
        run_id: &str,
        token: &str,
        ttl: Duration,
        take_over: Option<&str>,
    ) -> Result<(), StoreError>;

    /// The token holding the run's lease now (expired or not), if any.
    fn lease_holder(&self, run_id: &str) -> Result<Option<String>, StoreError>;

    /// Clears a cancel request (when a cancelled run is resumed).
    fn clear_cancel(&self, run_id: &str) -> Result<(), StoreError>;

    /// The shared-state entry `key` of namespace `ns`, if any.
    fn state_get(&self, ns: &str, key: &str) -> Result<Option<StateEntry>, StoreError>;

    /// One shared-state write in one atomic step, which `state_set` and `state_delete` are made
    /// of: `Some(value)` writes `key`, `None` deletes it. Returns the new entry (`None` after a
    /// delete) and whether the key existed.
    fn state_write(
        &self,
        ns: &str,
        key: &str,
        value: Option<&Value>,
        if_version: Option<u64>,
        by: Option<&Actor>,
    ) -> Result<(Option<StateEntry>, bool), StoreError>;

    /// Writes `key` and returns the new entry: version 1 when created, +1 on every write. With
    /// `if_version`, only if the key is at that version now (`Some(0)`: only if it is absent),
    /// else `VersionConflict`. The change is appended to the namespace's change feed, and, when
    /// `by` names a run of the same namespace, a `state_changed` event to that run's events —
    /// all in one atomic step.
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

    /// Deletes `key` (with `if_version`, only at that version); returns whether it existed.
    /// A key created again after a delete starts at version 1. Recorded like `state_set`.
    fn state_delete(
        &self,
        ns: &str,
        key: &str,
        if_version: Option<u64>,
        by: Option<&Actor>,
    ) -> Result<bool, StoreError> {
        self.state_write(ns, key, None, if_version, by).map(|(_, existed)| existed)
    }

    /// Records in the change feed that a write to `key` by `by` was refused (`op: refused`,
    /// version 0, no value) and why; writes nothing else. Returns the change.
    fn state_refuse(
        &self,
        ns: &str,
        key: &str,
        reason: &str,
        by: Option<&Actor>,
    ) -> Result<StateChange, StoreError>;

    /// Entries whose key starts with `prefix`, sorted by key.
    fn state_list(&self, ns: &str, prefix: &str) -> Result<Vec<StateEntry>, StoreError>;

    /// Changes of namespace `ns` with `seq` greater than `after`, oldest first. The feed keeps
    /// roughly the last [`STATE_CHANGES_MAXLEN`] changes.
    fn state_changes(&self, ns: &str, after: u64, limit: usize) -> Result<Vec<StateChange>, StoreError>;

    /// The `seq` of the namespace's latest change (0 if none): where a live watch starts.
    fn state_last_seq(&self, ns: &str) -> Result<u64, StoreError>;

    /// In one atomic step: refuse if `model` is cooling (`Cooling`), or if one more request of
    /// `tokens` would pass rpm (requests in the last 60 s), rpd (requests in the last 24 h) or
    /// tpm (tokens in the last 60 s) (`Full`, with the time enough of the window frees) — of
    /// the model or of any of the `groups` it shares a bucket with; else record the request (in
    /// the model's window and every group's) and grant it. Sliding windows, store clock; a day
    /// window is the provider's day when the limits give one. Requests older than [`crate::TRIM_MS`]
    /// are trimmed on every call, refused or not.
    fn model_reserve(
        &self,
        ns: &str,
        model: &str,
        tokens: u64,
        limits: &ModelLimits,
        groups: &[Bucket],
    ) -> Result<Reservation, StoreError>;

    /// Cools `model` down until `until_ms` (store clock) with `reason`; a longer cooldown
    /// already in place is kept (and a time already past changes nothing).
    fn model_cool(&self, ns: &str, model: &str, cooldown: &Cooldown) -> Result<(), StoreError>;

    /// Each window's standing (a model's cooldown if still in the future, usage in the windows,
    /// when it frees up if the query's limits say it is full, the limits learned for it), with
    /// the store's `now_ms`, in the order asked. Writes nothing.
    fn model_standings(&self, ns: &str, queries: &[StandingQuery]) -> Result<Vec<ModelStanding>, StoreError>;

    /// Keeps limits a provider said for `model` (merged with what was learned before) for every
    /// process on the store.
    fn model_learn(&self, ns: &str, model: &str, learned: &Learned) -> Result<(), StoreError>;

    /// The store's clock, in ms since the Unix epoch.
    fn now_ms(&self) -> Result<u64, StoreError>;

    /// What `swarm doctor` reports about the store.
    fn health(&self) -> Result<Health, StoreError>;

    /// Resolves `latest`, an exact id, or a unique id prefix.
    fn resolve(&self, run: Option<&str>) -> Result<String, StoreError> {
        let runs = self.runs(usize::MAX)?;
        match run {
            None | Some("latest") => {
                runs.first().map(|r| r.run_id.clone()).ok_or_else(|| StoreError::NoSuchRun("latest".into()))
            }
            Some(p) => {
                if runs.iter().any(|r| r.run_id == p) {
                    return Ok(p.to_string());
                }
                let hits: Vec<&str> = runs
                    .iter()
                    .map(|r| r.run_id.as_str())
                    .filter(|id| id.starts_with(p) || id.ends_with(p))
                    .collect();
                match hits.as_slice() {
                    [one] => Ok(one.to_string()),
                    [] => Err(StoreError::NoSuchRun(p.into())),
                    many => Err(StoreError::Ambiguous { prefix: p.into(), candidates: many.join(", ") }),
                }
            }
        }
    }
}

/// The change-feed entry of a refused write; `seq` is the backend's to fill.
pub(crate) fn refusal(ns: &str, key: &str, reason: &str, by: Option<&Actor>, seq: u64) -> StateChange {
    StateChange {
        seq,
        namespace: ns.into(),
        key: key.into(),
        op: StateOp::Refused,
        version: 0,
        value: None,
        at: chrono::Utc::now(),
        by: by.cloned(),
        reason: Some(reason.into()),
    }
}

/// The run event recording a shared-state change made by one of the run's agents.
pub(crate) fn state_event(run_id: &str, key: &str, op: StateOp, version: u64, by: &Actor) -> Event {
    Event {
        run_id: run_id.into(),
        timestamp: chrono::Utc::now(),
        elapsed_ms: 0,
        kind: swarm_core::event::EventKind::StateChanged {
            key: key.into(),
            op: op.as_str().into(),
            version,
            task: by.task_id.clone(),
            attempt: by.attempt,
        },
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
