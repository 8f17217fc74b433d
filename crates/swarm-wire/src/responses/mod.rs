//! OpenAI Responses (Codex): requests to Chat, whole responses and streams from the hub. No
//! upstream kind speaks Responses, so there is no reader.

mod request;
mod response;
pub(crate) mod stream;

pub use request::{custom_tools, request_to_chat};
pub use response::turn_to_responses;

/// The one parameter a freeform (`custom`) tool gets when offered to a Chat model.
pub const CUSTOM_INPUT: &str = "input";
