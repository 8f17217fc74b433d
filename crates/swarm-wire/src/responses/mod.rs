//! OpenAI Responses (Codex): requests to Chat, whole responses and streams from the hub. No
//! upstream kind speaks Responses, so there is no reader.

mod request;
mod response;
pub(crate) mod stream;
mod tools;

pub use request::{request_to_chat, tool_aliases};
pub use response::turn_to_responses;
pub use tools::ToolAlias;

/// The one parameter a freeform (`custom`) tool gets when offered to a Chat model.
pub const CUSTOM_INPUT: &str = "input";
