//! Gemini `generateContent` (Gemini CLI, and `kind = "gemini"` upstreams): requests to and from
//! Chat, whole answers, streams. Field names are read in camelCase or snake_case (the REST API
//! takes both) and written in camelCase, as the Gemini SDKs send them.

mod from_chat;
mod request;
mod response;
pub(crate) mod stream;

pub use from_chat::{request_from_chat, SYNTHETIC_SIGNATURE};
pub use request::request_to_chat;
pub use response::{turn_from_gemini, turn_to_gemini};

use crate::Finish;
use serde_json::{json, Value};

/// What a Gemini path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Generate,
    StreamGenerate,
    CountTokens,
}

/// The model and method of an agent's Gemini path, e.g.
/// `/v1beta/models/gemini-3.1-pro-preview:streamGenerateContent?alt=sse`.
pub fn parse_path(path: &str) -> Option<(String, Method)> {
    let path = path.split('?').next()?;
    let (model, method) = path.rsplit_once("/models/")?.1.rsplit_once(':')?;
    let method = match method {
        "generateContent" => Method::Generate,
        "streamGenerateContent" => Method::StreamGenerate,
        "countTokens" => Method::CountTokens,
        _ => return None,
    };
    (!model.is_empty() && !model.contains('/')).then(|| (model.to_string(), method))
}

/// The path of an upstream call, relative to a Gemini base URL ending in `/v1beta`.
pub fn upstream_path(model: &str, stream: bool) -> String {
    let model = model.strip_prefix("models/").unwrap_or(model);
    if stream {
        format!("/models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("/models/{model}:generateContent")
    }
}

pub(crate) fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop | Finish::ToolCalls => "STOP",
        Finish::Length => "MAX_TOKENS",
        Finish::Filtered => "SAFETY",
    }
}

pub(crate) fn finish_from(reason: &str) -> Finish {
    match reason {
        "MAX_TOKENS" => Finish::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            Finish::Filtered
        }
        _ => Finish::Stop,
    }
}

/// Chat's `extra_content` for a part's thought signature, and back.
pub(crate) fn signature_extra(signature: &str) -> Value {
    json!({ "google": { "thought_signature": signature } })
}

pub(crate) fn extra_signature(extra: Option<&Value>) -> Option<&str> {
    extra?.pointer("/google/thought_signature")?.as_str()
}
