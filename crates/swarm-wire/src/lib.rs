//! Translation between the model wire formats coding agents speak, with OpenAI Chat as the hub.
//!
//! swarm's model gateway accepts an agent's request in its own format, serves it from any
//! upstream of the model hierarchy and answers in the agent's format again. This crate is the
//! pure part of that: JSON and bytes in, JSON and bytes out; no IO, no clock, no randomness
//! (ids and timestamps come from the caller through [`Call`]).
//!
//! | format | agents | endpoints |
//! |---|---|---|
//! | [`Format::Chat`] | opencode, kilo, cline, aider | `/v1/chat/completions` |
//! | [`Format::Anthropic`] | Claude Code | `/v1/messages`, `/v1/messages/count_tokens` |
//! | [`Format::Responses`] | Codex | `/v1/responses` |
//! | [`Format::Gemini`] | Gemini CLI | `/v1beta/models/{m}:generateContent`, `:streamGenerateContent?alt=sse`, `:countTokens` |
//!
//! Upstreams speak Chat, Anthropic or Gemini. [`Translator`] is what the gateway calls: for an
//! (agent, upstream) pair it translates the request, the whole answer, the stream and errors,
//! passing bodies through untouched when both speak the same format.
//!
//! How the gateway uses it, for Claude Code served by an OpenAI-compatible upstream:
//!
//! ```
//! use swarm_wire::{Call, Format, Translator};
//! # fn main() -> Result<(), swarm_wire::WireError> {
//! let t = Translator::new(Format::Anthropic, Format::Chat)?;
//! let agent_body = br#"{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,
//!     "messages":[{"role":"user","content":"hi"}]}"#;
//! let body = swarm_wire::parse_body(t.agent, agent_body)?;
//! let call = Call { id: "att1-7".into(), created: 1_765_000_000, ..Call::default() };
//! let out = t.request(&body, call)?;           // out.body goes to /chat/completions
//! let mut stream = t.stream(&out.ctx);
//! let mut to_agent = stream.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"hel")?;
//! to_agent.extend(stream.feed(b"lo\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")?);
//! to_agent.extend(stream.finish()?);           // on Err: send stream.fail(&failure)
//! let text = String::from_utf8(to_agent).unwrap();
//! assert!(text.starts_with("event: message_start") && text.contains("\"text\":\"hello\""));
//! assert!(text.trim_end().ends_with("{\"type\":\"message_stop\"}"));
//! # Ok(()) }
//! ```
//!
//! Module layout:
//! - [`route`]: [`Translator`], [`Context`], [`Call`]: the pair-level API.
//! - `chat`, `anthropic`, `responses`, `gemini`: one module per format, each with its request
//!   translation to or from Chat, its whole-answer reader/writer and its stream reader/writer.
//! - [`model`]: the hub's answer shapes ([`Turn`], [`Delta`]) every format reads into and writes from.
//! - [`stream`]: [`StreamConverter`], a reader of upstream bytes joined to a writer of agent bytes.
//! - [`failure`]: upstream error bodies read ([`Failure`]) and written in an agent's format.
//! - [`signal`]: how to make each agent wait or give up, with the agent sources that say so.
//! - [`tokens`]: token counting answers estimated when the upstream cannot count.
//! - [`ids`]: tool-call ids that carry what an agent's format has no field for.
//! - [`sse`], [`usage`]: event-stream decoding/encoding and token usage in every format.
//! - `json`, `error`: typed reads of untyped JSON and the crate's [`WireError`].

pub mod anthropic;
pub mod chat;
mod error;
pub mod failure;
pub mod gemini;
pub mod ids;
mod json;
pub mod model;
pub mod responses;
pub mod route;
pub mod signal;
pub mod sse;
pub mod stream;
pub mod tokens;
pub mod usage;

pub use error::WireError;
pub use failure::{Failure, FailureKind, Reply};
pub use model::{Delta, Finish, ToolCall, Turn};
pub use route::{Call, Context, Translated, Translator};
pub use signal::Signal;
pub use stream::StreamConverter;
pub use usage::Usage;

/// Parses a request or answer body of `format`, naming the format when it is not JSON.
pub fn parse_body(format: Format, bytes: &[u8]) -> Result<serde_json::Value, WireError> {
    json::parse(format, bytes)
}

/// A wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// OpenAI Chat Completions.
    Chat,
    /// Anthropic Messages.
    Anthropic,
    /// OpenAI Responses (agents only: no upstream kind speaks it).
    Responses,
    /// Gemini `generateContent`.
    Gemini,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Chat => "openai chat",
            Format::Anthropic => "anthropic messages",
            Format::Responses => "openai responses",
            Format::Gemini => "gemini",
        })
    }
}
