//! swarm-runner: the run engine. [`Engine`] starts, resumes, cancels and reports on runs for
//! every face (the CLI, the MCP server, the HTTP API, workers). Inside a run, the dispatcher
//! owns all run state, feeds the pure scheduler and is the only writer of run state to the
//! store; executors (one per attempt, each given a serializable [`job::AttemptJob`]) run
//! attempts and report back through [`job::AttemptEvent`]s. ARCHITECTURE.md maps the folders.
//!
//! - `engine/`: the face API (start, resume, cancel, queries, live runs, merge-back).
//! - `dispatcher/`: one run's owner: the scheduler's actions carried out, the store writer,
//!   the mirror, the report files.
//! - `executor/`: one attempt from job to events: workspace, launch, supervision, evidence.
//! - `gateway/`: the model gateway agents talk to.
//! - `hooks/`: on_task_end, on_failure, on_run_end.
//! - `os/`: process groups, the reaper, the per-run file layout, git.
//! - `remote/`: attempts on many hosts: the queue's side of a run (`--workers`), `swarm worker`.
//! - `job.rs`: the seam between dispatcher and executor.

mod dispatcher;
mod engine;
mod executor;
pub mod gateway;
mod hierarchy;
pub mod hooks;
pub mod job;
mod os;
pub mod remote;
pub mod util;

pub use engine::handle::{Canceller, RunHandle};
pub use engine::integration::{CleanResult, MergeResult, TaskDiff};
pub use engine::{
    CancelOutcome, Engine, EngineError, ErrorKind, Follow, Followed, ModelRow, ModelState, ResumeInfo,
    SharedState, StartRequest, TaskLog, WorkerView,
};
pub use os::lease::LEASE_TTL;
pub use os::secrets;
