//! The four wire formats the server speaks. Each module reads its request bodies into a
//! [`Request`] — refusing, with a 400 worded like the provider's, what the provider refuses —
//! and writes answers, event streams and error bodies the way that provider does.

mod anthropic;
mod chat;
mod gemini;
mod responses;

use serde_json::Value;

use crate::request::{Format, Request};
use crate::scenario::{LimitKind, Usage};
use crate::turn::Answer;

/// Identity of one answer, shared by all its events.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The request's sequence number in the log; ids are derived from it.
    pub seq: u64,
    pub model: String,
    /// Unix seconds.
    pub created: u64,
    /// Chat: tool calls carry a Gemini 3 thought signature (`thought_signatures = true`).
    pub signed: bool,
}

/// Token counts of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
}

impl Tokens {
    /// The scripted usage, or an estimate at 4 bytes a token.
    pub fn of(scripted: Option<Usage>, request: &Request, answer: &Answer) -> Tokens {
        if let Some(Usage { prompt_tokens, completion_tokens }) = scripted {
            return Tokens { input: prompt_tokens, output: completion_tokens };
        }
        let out = match answer {
            Answer::Text(text) => text.len(),
            Answer::ToolCall(call) => call.name.len() + call.arguments.to_string().len(),
        };
        Tokens { input: estimate(request.prompt_bytes), output: estimate(out) }
    }
}

/// Tokens for `bytes` of text at 4 bytes a token (at least 1).
pub fn estimate(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4).max(1)
}

/// Why a request is not answered normally.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// 400: the body breaks the provider's rules.
    BadRequest(String),
    /// The model is not in the scenario.
    ModelNotFound(String),
    /// 429; `message: None` means the provider's own wording.
    RateLimited { model: String, retry_after: u64, message: Option<String>, kind: LimitKind },
    /// A scripted HTTP error.
    Error { status: u16, message: String },
    /// 503: the server is shutting down (a hanging request is released).
    Unavailable,
}

/// An answer body: one JSON document, or server-sent event frames (each a complete
/// `[event: …\n]data: …\n\n` string).
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Json(Value),
    Events(Vec<String>),
}

impl Format {
    /// Reads a request body (`model` comes from the path for Gemini, and `stream` from its
    /// method); the error is the message of a 400.
    pub fn parse(self, body: &Value, path_model: Option<&str>, stream: bool) -> Result<Request, String> {
        if !body.is_object() {
            return Err(match self {
                Format::Gemini => gemini::invalid("the request body must be a JSON object"),
                _ => "the request body must be a JSON object".to_string(),
            });
        }
        match self {
            Format::Chat => chat::parse(body),
            Format::Anthropic => anthropic::parse(body, true),
            Format::Responses => responses::parse(body),
            Format::Gemini => gemini::parse(body, path_model.unwrap_or_default(), stream),
        }
    }

    /// Reads a token-counting request (Anthropic `count_tokens`, Gemini `countTokens`).
    pub fn parse_count(self, body: &Value, path_model: Option<&str>) -> Result<Request, String> {
        match self {
            Format::Anthropic if body.is_object() => anthropic::parse(body, false),
            Format::Gemini if body.is_object() => gemini::parse_count(body, path_model.unwrap_or_default()),
            _ => Err("the request body must be a JSON object".to_string()),
        }
    }

    /// The answer to a request: streamed as events when `events`, else one JSON document.
    pub fn answer(
        self,
        meta: &Meta,
        answer: &Answer,
        tokens: Tokens,
        request: &Request,
        events: bool,
    ) -> Body {
        match (self, events) {
            (Format::Chat, false) => Body::Json(chat::completion(meta, answer, tokens)),
            (Format::Chat, true) => {
                Body::Events(chat::frames(meta, answer, request.include_usage.then_some(tokens)))
            }
            (Format::Anthropic, false) => Body::Json(anthropic::message(meta, answer, tokens)),
            (Format::Anthropic, true) => Body::Events(anthropic::frames(meta, answer, tokens)),
            (Format::Responses, false) => Body::Json(responses::response(meta, answer, tokens)),
            (Format::Responses, true) => Body::Events(responses::frames(meta, answer, tokens)),
            (Format::Gemini, false) => Body::Json(gemini::response(meta, answer, tokens)),
            (Format::Gemini, true) => Body::Events(gemini::frames(meta, answer, tokens)),
        }
    }

    /// The answer to a token-counting request.
    pub fn token_count(self, tokens: u64) -> Value {
        match self {
            Format::Gemini => serde_json::json!({ "totalTokens": tokens }),
            _ => serde_json::json!({ "input_tokens": tokens }),
        }
    }

    /// The HTTP status and error body the provider sends for `failure`.
    pub fn error(self, failure: &Failure) -> (u16, Value) {
        match self {
            Format::Chat | Format::Responses => chat::error(failure),
            Format::Anthropic => anthropic::error(failure),
            Format::Gemini => gemini::error(failure),
        }
    }

    /// Whether the provider fails inside a 200 event stream (OpenAI Responses `response.failed`,
    /// Anthropic's `error` event).
    pub fn fails_in_stream(self) -> bool {
        matches!(self, Format::Responses | Format::Anthropic)
    }

    /// The events of a rate limit inside the stream (empty where [`Format::fails_in_stream`] is
    /// false).
    pub fn stream_failure(self, meta: &Meta, failure: &Failure) -> Vec<String> {
        match self {
            Format::Responses => responses::failed_frames(meta, failure),
            Format::Anthropic => anthropic::error_frames(meta, failure),
            Format::Chat | Format::Gemini => Vec::new(),
        }
    }
}

/// Splits `text` into pieces of about `size` bytes, on character boundaries.
pub fn pieces(text: &str, size: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = size.min(rest.len());
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// A server-sent event with a name (Anthropic, OpenAI Responses).
pub fn named_event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_respect_char_boundaries() {
        let text = "héllo wörld ünïcode";
        let joined: String = pieces(text, 3).collect();
        assert_eq!(joined, text);
        assert!(pieces(text, 3).count() > 3);
        assert_eq!(pieces("", 3).count(), 0);
    }
}
