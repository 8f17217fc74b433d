//! swarm-runner: the run engine. [`Engine`] starts, resumes, cancels and reports on runs for
//! every face (the CLI, later the MCP server, the HTTP API and workers). Inside a run, the
//! dispatcher owns all run state, feeds the pure scheduler and is the only writer to the store;
//! executors (one per attempt, each given a serializable [`job::AttemptJob`]) run attempts and
//! report back through [`job::AttemptEvent`]s; reporters render the public event stream.

pub mod agent_files;
mod attempt_log;
mod dispatcher;
mod engine;
mod evidence;
mod executor;
pub mod gateway;
pub mod git;
mod handle;
pub mod hooks;
pub mod integration;
pub mod job;
mod launch;
pub mod mirror;
pub mod paths;
pub mod process;
pub mod prompt;
pub mod provider;
pub mod reaper;
pub mod report_files;
mod supervise;
mod sweeper;
mod workspace;
mod writer;

pub use engine::{CancelOutcome, Engine, EngineError, ResumeInfo, StartRequest};
pub use handle::{Canceller, RunHandle};
pub use integration::{CleanResult, MergeResult, TaskDiff};
pub use writer::LEASE_TTL;
