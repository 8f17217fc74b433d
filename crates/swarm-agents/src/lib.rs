//! swarm-agents: one adapter per agent. An adapter is mostly data: how to build the command line
//! and environment for an attempt, and how to read the agent's output lines. Adapters never
//! touch the scheduler.

mod adapter;
pub mod catalog;
mod custom;
mod exec;
mod registry;

pub use adapter::{Adapter, AdapterError, AttemptSpec, Launch, OutputLine};
pub use custom::CustomAdapter;
pub use exec::ExecAdapter;
pub use registry::Registry;
