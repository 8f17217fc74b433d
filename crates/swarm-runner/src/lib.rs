//! swarm-runner: drives a run. Executors (one per running attempt) supervise an agent process and
//! report over a channel; the dispatcher owns all run state, feeds the pure scheduler and is the
//! only writer to the store; reporters render the public event stream.

pub mod agent_files;
mod attempt_log;
mod dispatcher;
pub mod hooks;
pub mod mirror;
pub mod paths;
pub mod process;
pub mod progress;
pub mod reaper;
pub mod report_files;
mod supervise;
mod sweeper;
mod writer;

pub use dispatcher::{run, RunSetup};
pub use progress::{OutputMode, Reporter};
pub use writer::LEASE_TTL;
