//! Anthropic Messages (Claude Code): requests to and from Chat, whole messages, streams.

mod from_chat;
mod request;
mod response;
pub(crate) mod stream;

pub use from_chat::request_from_chat;
pub use request::request_to_chat;
pub use response::{turn_from_anthropic, turn_to_anthropic};

/// Anthropic requires `max_tokens`; a Chat request without one gets this.
pub const DEFAULT_MAX_TOKENS: u64 = 8192;

pub(crate) fn stop_reason(finish: crate::Finish) -> &'static str {
    match finish {
        crate::Finish::Stop => "end_turn",
        crate::Finish::Length => "max_tokens",
        crate::Finish::ToolCalls => "tool_use",
        crate::Finish::Filtered => "refusal",
    }
}

pub(crate) fn finish_from(stop_reason: &str) -> crate::Finish {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => crate::Finish::Length,
        "tool_use" => crate::Finish::ToolCalls,
        "refusal" => crate::Finish::Filtered,
        _ => crate::Finish::Stop,
    }
}
