//! One module per command family.

pub mod agents;
pub mod cancel;
pub mod doctor;
pub mod events;
pub mod fake_llm;
pub mod logs;
pub mod models;
pub mod plan;
pub mod report;
pub mod run;
pub mod schema;
pub mod state;
pub mod status;
pub mod worker;
pub mod worktree;
