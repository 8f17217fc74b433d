//! Token counting answers (`/v1/messages/count_tokens`, `:countTokens`) for upstreams that
//! cannot count in the agent's format: an estimate of about four bytes of request JSON a token,
//! which overestimates a little (JSON punctuation counts too) rather than under.

use crate::json::{either, obj};
use crate::route::Translator;
use crate::{Format, WireError};
use serde_json::{json, Value};

pub const BYTES_PER_TOKEN: usize = 4;

pub fn estimate(bytes: usize) -> u64 {
    bytes.div_ceil(BYTES_PER_TOKEN) as u64
}

/// The upstream answers the agent's count request itself (same format, and one that counts).
pub fn upstream_counts(t: &Translator) -> bool {
    t.passthrough() && matches!(t.upstream, Format::Anthropic | Format::Gemini)
}

/// The count answer in `agent`'s format for a count request `body`.
pub fn count_answer(agent: Format, body: &Value) -> Result<Value, WireError> {
    let o = obj(agent, body, "count request")?;
    match agent {
        Format::Anthropic => {
            if !o.get("messages").is_some_and(Value::is_array) {
                return Err(WireError::malformed(agent, "messages", "expected an array"));
            }
            let size = ["system", "messages", "tools"]
                .iter()
                .filter_map(|k| o.get(*k))
                .map(|v| v.to_string().len())
                .sum();
            Ok(json!({ "input_tokens": estimate(size) }))
        }
        Format::Gemini => {
            // Either `{contents}` or `{generateContentRequest: {contents, systemInstruction, tools}}`.
            let inner = either(o, "generateContentRequest", "generate_content_request")
                .and_then(Value::as_object)
                .unwrap_or(o);
            let keys =
                [("contents", "contents"), ("systemInstruction", "system_instruction"), ("tools", "tools")];
            let size =
                keys.iter().filter_map(|(c, s)| either(inner, c, s)).map(|v| v.to_string().len()).sum();
            Ok(json!({ "totalTokens": estimate(size) }))
        }
        Format::Chat | Format::Responses => {
            Err(WireError::unsupported(agent, "token counting", "the format has no count endpoint"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_bytes_a_token() {
        let body = json!({ "model": "m", "messages": [{ "role": "user", "content": "x".repeat(400) }] });
        let n = count_answer(Format::Anthropic, &body).unwrap()["input_tokens"].as_u64().unwrap();
        assert!((100..=110).contains(&n), "{n}");
        let body = json!({ "contents": [{ "parts": [{ "text": "y".repeat(800) }] }] });
        let n = count_answer(Format::Gemini, &body).unwrap()["totalTokens"].as_u64().unwrap();
        assert!((200..=210).contains(&n), "{n}");
        let wrapped = json!({ "generateContentRequest": body });
        assert_eq!(count_answer(Format::Gemini, &wrapped).unwrap()["totalTokens"].as_u64().unwrap(), n);
        assert!(count_answer(Format::Anthropic, &json!({})).is_err());
        assert!(count_answer(Format::Gemini, &json!([])).is_err());
    }
}
