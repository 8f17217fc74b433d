//! swarm-agents: one adapter per agent. An adapter is mostly data: how to build the command line
//! and environment for an attempt, and how to read the agent's output lines. Adapters never
//! touch the scheduler.

mod adapter;
pub mod aider;
pub mod catalog;
pub mod classify;
pub mod claude;
pub mod cline;
pub mod codex;
mod custom;
mod exec;
pub mod gemini;
mod launch;
pub mod opencode;
mod output;
mod registry;
pub mod roles;
#[cfg(test)]
mod test_support;

pub use adapter::{Adapter, AdapterError, AgentOutput, AttemptSpec, Launch, ProviderSpec, SetupCommand};
pub use aider::AiderAdapter;
pub use catalog::{agent_names, builtin_names};
pub use claude::ClaudeAdapter;
pub use cline::ClineAdapter;
pub use codex::CodexAdapter;
pub use custom::CustomAdapter;
pub use exec::ExecAdapter;
pub use gemini::GeminiAdapter;
pub use opencode::OpencodeAdapter;
pub use registry::Registry;
