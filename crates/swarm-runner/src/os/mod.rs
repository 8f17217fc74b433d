//! The operating system's side: process groups and their supervision, the reaper of what
//! attempts leave behind, the per-run file layout, git, and the URLs swarm is given.

pub mod bounded;
pub mod checkout;
pub mod git;
mod git_error;
pub mod git_remote;
pub mod git_resolve;
pub mod include;
pub mod lease;
pub mod net;
pub mod paths;
pub mod process;
pub mod reaper;
mod repo_lock;
pub mod secrets;
