//! swarm-agents: one adapter per agent. An adapter is mostly data: how to build the command line
//! and environment for an attempt, and how to read the agent's output lines. Adapters never
//! touch the scheduler.

mod adapter;
pub mod catalog;
pub mod classify;
pub mod cline;
mod custom;
mod exec;
pub mod opencode;
mod registry;

pub use adapter::{Adapter, AdapterError, AgentOutput, AttemptSpec, Launch, ProviderSpec, SetupCommand};
pub use cline::ClineAdapter;
pub use custom::CustomAdapter;
pub use exec::ExecAdapter;
pub use opencode::OpencodeAdapter;
pub use registry::Registry;
