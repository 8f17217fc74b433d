//! The store trait every backend implements, and its error type.

use std::time::Duration;
use swarm_core::event::Event;
use swarm_core::report::{RunRecord, TaskReport};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store `{address}` is unreachable: {message}")]
    Unreachable { address: String, message: String },
    #[error("store `{address}`: {message}")]
    Backend { address: String, message: String },
    #[error("corrupt document at {key}: {message}")]
    Corrupt { key: String, message: String },
    #[error("no run `{0}` in the store")]
    NoSuchRun(String),
    #[error("run id `{prefix}` is ambiguous: {candidates}")]
    Ambiguous { prefix: String, candidates: String },
    #[error("unsupported store address `{0}`: use sqlite:PATH or redis://host:port")]
    BadAddress(String),
    #[error("write to run `{run_id}` rejected: its lease is held by another orchestrator ({holder})")]
    Fenced { run_id: String, holder: String },
    #[error("store schema version {found} is newer than this swarm understands ({known}); upgrade swarm")]
    SchemaTooNew { found: u32, known: u32 },
}

/// Writes that land together: one transaction, all or nothing.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// The writer's lease token: the write is rejected if another orchestrator holds the run.
    pub lease: Option<String>,
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
    /// `Fenced` while another token's lease is unexpired, unless `force` (the caller verified the
    /// holder is dead). Writes carrying another token are rejected from then on.
    fn acquire_lease(&self, run_id: &str, token: &str, ttl: Duration, force: bool) -> Result<(), StoreError>;

    /// Clears a cancel request (when a cancelled run is resumed).
    fn clear_cancel(&self, run_id: &str) -> Result<(), StoreError>;

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
