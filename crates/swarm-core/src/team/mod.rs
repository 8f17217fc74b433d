//! A team of agents: declared shared state (schemas and writers), the markdown agents read
//! about it, and the hand-offs a task's prompt carries from its dependencies (docs/contract.md §12).

mod decl;
mod doc;
mod handoff;

pub use decl::{compile, glob, KeyDecl, Refusal, StateDecl};
pub use doc::{render_doc, render_for_task};
pub use handoff::{fill_state_keys, render_handoff, state_keys_token, Handoff, HandoffSource};
