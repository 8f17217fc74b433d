//! The OpenAI chat-completions wire format: reading requests, writing completions, stream chunks
//! and error bodies.

use serde_json::{json, Value};

use crate::scenario::Usage;
use crate::tools::{OfferedTool, ToolCall};
use crate::turn::Answer;

/// What the server reads from a `/v1/chat/completions` body; everything else is ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    pub tools: Vec<OfferedTool>,
    /// Assistant messages already in the conversation: the index of the next step.
    pub assistant_turns: usize,
    /// Size of `messages` as JSON, for estimating prompt tokens.
    pub prompt_bytes: usize,
    /// Where swarm's report footer (the last one in the conversation) asks for completion.json.
    pub report_target: Option<ReportTarget>,
    /// The text of every user message, exactly as received (nothing unquoted or trimmed), so
    /// tests can assert on what a model really reads.
    pub user_messages: Vec<String>,
}

/// The completion file swarm asked the agent to write, read from the prompt's report footer:
/// "write `PATH` (also in $SWARM_COMPLETION_FILE) as JSON: {"schema_version": 1, "run_id": "R",
/// "task_id": "T", …".
#[derive(Debug, Clone, PartialEq)]
pub struct ReportTarget {
    pub path: String,
    pub run_id: String,
    pub task_id: String,
}

impl ReportTarget {
    /// The last footer in `text`, if any.
    pub fn find(text: &str) -> Option<ReportTarget> {
        let marker = "(also in $SWARM_COMPLETION_FILE)";
        let at = text.rfind(marker)?;
        let before = text[..at].trim_end().strip_suffix('`')?;
        let path = &before[before.rfind('`')? + 1..];
        let rest = &text[at..];
        // Only the footer as swarm wrote it: a prompt the agent CLI mangled (JSON-quoted, say)
        // must fail the rehearsal, not be forgiven.
        let field = |name: &str| {
            let key = format!("\"{name}\": \"");
            let start = rest.find(key.as_str())? + key.len();
            let len = rest[start..].find('"')?;
            Some(rest[start..start + len].to_string())
        };
        Some(ReportTarget { path: path.to_string(), run_id: field("run_id")?, task_id: field("task_id")? })
    }
}

/// The text of a message's `content`: a string, or the `text` of its parts.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
        }
        _ => String::new(),
    }
}

impl ChatRequest {
    /// Parses a request body; the error is the message for a 400 answer.
    pub fn parse(body: &[u8]) -> Result<ChatRequest, String> {
        let value: Value =
            serde_json::from_slice(body).map_err(|err| format!("request body is not valid JSON: {err}"))?;
        let model = value
            .get("model")
            .and_then(Value::as_str)
            .ok_or("you must provide a model parameter")?
            .to_string();
        let messages = value.get("messages").and_then(Value::as_array);
        let assistant_turns = messages
            .map(|messages| {
                messages.iter().filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant")).count()
            })
            .unwrap_or(0);
        let prompt_bytes = value.get("messages").map(|m| m.to_string().len()).unwrap_or(0);
        let report_target = messages.and_then(|messages| {
            messages
                .iter()
                .rev()
                .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
                .find_map(|m| ReportTarget::find(&content_text(m.get("content").unwrap_or(&Value::Null))))
        });
        let user_messages = messages
            .map(|messages| {
                messages
                    .iter()
                    .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
                    .map(|m| content_text(m.get("content").unwrap_or(&Value::Null)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(ChatRequest {
            model,
            stream: value.get("stream").and_then(Value::as_bool).unwrap_or(false),
            include_usage: value
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            tools: OfferedTool::from_request(value.get("tools").unwrap_or(&Value::Null)),
            assistant_turns,
            prompt_bytes,
            report_target,
            user_messages,
        })
    }
}

/// Identity of one completion, shared by all its chunks.
#[derive(Debug, Clone)]
pub struct Meta {
    pub id: String,
    pub tool_call_id: String,
    pub model: String,
    pub created: u64,
}

/// The usage to report: the scripted one, or an estimate at 4 bytes a token.
pub fn usage(scripted: Option<Usage>, request: &ChatRequest, answer: &Answer) -> Value {
    let Usage { prompt_tokens, completion_tokens } = scripted.unwrap_or_else(|| {
        let out = match answer {
            Answer::Text(text) => text.len(),
            Answer::ToolCall(call) => call.name.len() + call.arguments.to_string().len(),
        };
        Usage { prompt_tokens: tokens(request.prompt_bytes), completion_tokens: tokens(out) }
    });
    json!({ "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens })
}

fn tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4).max(1)
}

/// A non-streaming `chat.completion`.
pub fn completion(meta: &Meta, answer: &Answer, usage: Value) -> Value {
    let (message, finish_reason) = match answer {
        Answer::Text(text) => (json!({ "role": "assistant", "content": text }), "stop"),
        Answer::ToolCall(call) => (
            json!({ "role": "assistant", "content": null, "tool_calls": [{
                "id": meta.tool_call_id, "type": "function",
                "function": { "name": call.name, "arguments": call.arguments.to_string() },
            }] }),
            "tool_calls",
        ),
    };
    json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason }],
        "usage": usage,
    })
}

/// The `chat.completion.chunk` payloads of a streamed answer, in order (without `[DONE]`):
/// the role, the content or tool call in pieces, the finish reason, then usage if asked for.
pub fn chunks(meta: &Meta, answer: &Answer, usage: Option<Value>) -> Vec<Value> {
    let chunk = |delta: Value, finish_reason: Value| {
        json!({
            "id": meta.id, "object": "chat.completion.chunk", "created": meta.created, "model": meta.model,
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason }],
        })
    };
    let mut out = vec![chunk(json!({ "role": "assistant", "content": "" }), Value::Null)];
    let finish_reason = match answer {
        Answer::Text(text) => {
            out.extend(pieces(text, 16).map(|piece| chunk(json!({ "content": piece }), Value::Null)));
            "stop"
        }
        Answer::ToolCall(ToolCall { name, arguments }) => {
            out.push(chunk(
                json!({ "tool_calls": [{ "index": 0, "id": meta.tool_call_id, "type": "function",
                        "function": { "name": name, "arguments": "" } }] }),
                Value::Null,
            ));
            let arguments = arguments.to_string();
            out.extend(pieces(&arguments, 24).map(|piece| {
                chunk(
                    json!({ "tool_calls": [{ "index": 0, "function": { "arguments": piece } }] }),
                    Value::Null,
                )
            }));
            "tool_calls"
        }
    };
    out.push(chunk(json!({}), json!(finish_reason)));
    if let Some(usage) = usage {
        out.push(json!({
            "id": meta.id, "object": "chat.completion.chunk", "created": meta.created, "model": meta.model,
            "choices": [], "usage": usage,
        }));
    }
    out
}

/// Splits `text` into pieces of about `size` bytes, on character boundaries.
fn pieces(text: &str, size: usize) -> impl Iterator<Item = &str> {
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

/// An OpenAI-style error body.
pub fn error_body(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({ "error": { "message": message, "type": kind, "param": null, "code": code } })
}

/// The OpenAI error `type` for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta { id: "chatcmpl-1".into(), tool_call_id: "call_1".into(), model: "m".into(), created: 7 }
    }

    #[test]
    fn pieces_respect_char_boundaries() {
        let text = "héllo wörld ünïcode";
        let joined: String = pieces(text, 3).collect();
        assert_eq!(joined, text);
        assert!(pieces(text, 3).count() > 3);
        assert_eq!(pieces("", 3).count(), 0);
    }

    #[test]
    fn streamed_tool_arguments_reassemble() {
        let call = ToolCall {
            name: "write".into(),
            arguments: json!({ "filePath": "a.txt", "content": "x".repeat(100) }),
        };
        let chunks = chunks(&meta(), &Answer::ToolCall(call.clone()), Some(json!({ "total_tokens": 1 })));
        let arguments: String = chunks
            .iter()
            .filter_map(|c| c.pointer("/choices/0/delta/tool_calls/0/function/arguments")?.as_str())
            .collect();
        assert_eq!(serde_json::from_str::<Value>(&arguments).unwrap(), call.arguments);
        let finish = &chunks[chunks.len() - 2];
        assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks.last().unwrap()["choices"], json!([]));
    }

    #[test]
    fn request_fields() {
        let request = ChatRequest::parse(
            br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},
                 "messages":[{"role":"system","content":"s"},{"role":"assistant","content":"a"}],
                 "tools":[{"type":"function","function":{"name":"write"}}]}"#,
        )
        .unwrap();
        assert!(request.stream && request.include_usage);
        assert_eq!(request.assistant_turns, 1);
        assert_eq!(request.tools[0].name, "write");
        assert!(ChatRequest::parse(b"{}").unwrap_err().contains("model"));
        assert!(ChatRequest::parse(b"nope").unwrap_err().contains("JSON"));
    }
}
