//! OpenAI Chat Completions: reading requests (tool results must answer the tool calls before
//! them, as OpenAI insists), writing completions, stream chunks and OpenAI error bodies (also
//! used by the Responses format).

use serde_json::{json, Value};

use super::{pieces, Failure, Meta, Tokens};
use crate::request::{content_text, json_len, Entry, Request};
use crate::scenario::LimitKind;
use crate::tools::{OfferedTool, ToolCall};
use crate::turn::Answer;

/// Reads a `/v1/chat/completions` body.
pub fn parse(value: &Value) -> Result<Request, String> {
    let model = value.get("model").and_then(Value::as_str).ok_or("you must provide a model parameter")?;
    let messages = match value.get("messages") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(messages)) => messages.as_slice(),
        Some(_) => return Err("Invalid type for 'messages': expected an array.".to_string()),
    };
    check_tool_pairing(messages)?;
    let entries: Vec<Entry> = messages
        .iter()
        .map(|m| match m.get("role").and_then(Value::as_str) {
            Some("user") => Entry::User(content_text(m.get("content").unwrap_or(&Value::Null))),
            Some("assistant") => Entry::Model,
            _ => Entry::Other,
        })
        .collect();
    let unsigned_call = unsigned_call(messages, &entries);
    let request = Request {
        unsigned_call,
        model: model.to_string(),
        stream: value.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: value
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        tools: OfferedTool::from_request(value.get("tools").unwrap_or(&Value::Null)),
        prompt_bytes: json_len([value.get("messages")]),
        ..Request::default()
    };
    Ok(request.with_conversation(&entries))
}

/// Gemini 3 on its OpenAI-compatible endpoint: in the current turn (after the last user text),
/// each assistant message's first tool call must carry back its
/// `extra_content.google.thought_signature` (Google's "thought signatures" guide). The 400's
/// message when one does not.
fn unsigned_call(messages: &[Value], entries: &[Entry]) -> Option<String> {
    let current = entries.iter().rposition(|e| matches!(e, Entry::User(_))).map_or(0, |at| at + 1);
    let assistants =
        messages[current..].iter().filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"));
    let first_calls = assistants.filter_map(|m| m.get("tool_calls")?.as_array()?.first());
    let unsigned = first_calls
        .filter(|c| {
            c.pointer("/extra_content/google/thought_signature")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        })
        .find_map(|c| c.pointer("/function/name").and_then(Value::as_str))?;
    Some(format!(
        "Function call is missing a thought_signature in functionCall parts. This is required for tools to \
         work correctly, and missing thought_signature may lead to degraded model performance. Additional \
         data, function call `default_api:{unsigned}` , position 1. Please refer to \
         https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
    ))
}

/// What Gemini 3 attaches to a tool call on its OpenAI-compatible endpoint.
fn signature(meta: &Meta) -> Option<Value> {
    meta.signed.then(|| json!({ "google": { "thought_signature": format!("fake-signature-{}", meta.seq) } }))
}

/// Every `tool` message answers a tool call of the assistant message before it, and every tool
/// call is answered before the conversation goes on (OpenAI's own error texts).
fn check_tool_pairing(messages: &[Value]) -> Result<(), String> {
    let mut pending: Vec<&str> = Vec::new();
    let mut after_calls = false;
    for (i, message) in messages.iter().enumerate() {
        match message.get("role").and_then(Value::as_str) {
            Some("tool") => {
                let id = message
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("Missing required parameter: 'messages[{i}].tool_call_id'."))?;
                if !after_calls || !pending.contains(&id) {
                    return Err("Invalid parameter: messages with role 'tool' must be a response to a \
                                preceeding message with 'tool_calls'."
                        .to_string());
                }
                pending.retain(|p| *p != id);
            }
            _ => {
                unanswered(&pending)?;
                let calls = message.get("tool_calls").and_then(Value::as_array);
                pending = calls.into_iter().flatten().filter_map(|c| c.get("id")?.as_str()).collect();
                after_calls = !pending.is_empty();
            }
        }
    }
    unanswered(&pending)
}

fn unanswered(pending: &[&str]) -> Result<(), String> {
    if pending.is_empty() {
        return Ok(());
    }
    Err(format!(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each \
         'tool_call_id'. The following tool_call_ids did not have response messages: {}",
        pending.join(", ")
    ))
}

fn usage(tokens: Tokens) -> Value {
    json!({ "prompt_tokens": tokens.input, "completion_tokens": tokens.output, "total_tokens": tokens.input + tokens.output })
}

fn call_id(meta: &Meta) -> String {
    format!("call_fake_{}", meta.seq)
}

/// A non-streaming `chat.completion`.
pub fn completion(meta: &Meta, answer: &Answer, tokens: Tokens) -> Value {
    let (message, finish_reason) = match answer {
        Answer::Text(text) => (json!({ "role": "assistant", "content": text }), "stop"),
        Answer::ToolCall(call) => {
            let mut tool_call = json!({
                "id": call_id(meta), "type": "function",
                "function": { "name": call.name, "arguments": call.arguments.to_string() },
            });
            if let Some(signature) = signature(meta) {
                tool_call["extra_content"] = signature;
            }
            (json!({ "role": "assistant", "content": null, "tool_calls": [tool_call] }), "tool_calls")
        }
    };
    json!({
        "id": format!("chatcmpl-fake-{}", meta.seq),
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason }],
        "usage": usage(tokens),
    })
}

/// The `data:` frames of a streamed answer: the role, the content or tool call in pieces, the
/// finish reason, the usage if asked for, then `[DONE]`.
pub fn frames(meta: &Meta, answer: &Answer, tokens: Option<Tokens>) -> Vec<String> {
    let chunk = |choices: Value| {
        json!({ "id": format!("chatcmpl-fake-{}", meta.seq), "object": "chat.completion.chunk",
                "created": meta.created, "model": meta.model, "choices": choices })
    };
    let delta = |delta: Value, finish_reason: Value| {
        chunk(json!([{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason }]))
    };
    let mut out = vec![delta(json!({ "role": "assistant", "content": "" }), Value::Null)];
    let finish_reason = match answer {
        Answer::Text(text) => {
            out.extend(pieces(text, 16).map(|piece| delta(json!({ "content": piece }), Value::Null)));
            "stop"
        }
        Answer::ToolCall(ToolCall { name, arguments, .. }) => {
            let mut first = json!({ "index": 0, "id": call_id(meta), "type": "function",
                                    "function": { "name": name, "arguments": "" } });
            if let Some(signature) = signature(meta) {
                first["extra_content"] = signature;
            }
            out.push(delta(json!({ "tool_calls": [first] }), Value::Null));
            let arguments = arguments.to_string();
            out.extend(pieces(&arguments, 24).map(|piece| {
                delta(
                    json!({ "tool_calls": [{ "index": 0, "function": { "arguments": piece } }] }),
                    Value::Null,
                )
            }));
            "tool_calls"
        }
    };
    out.push(delta(json!({}), json!(finish_reason)));
    if let Some(tokens) = tokens {
        let mut last = chunk(json!([]));
        last["usage"] = usage(tokens);
        out.push(last);
    }
    let mut frames: Vec<String> = out.iter().map(|chunk| format!("data: {chunk}\n\n")).collect();
    frames.push("data: [DONE]\n\n".to_string());
    frames
}

/// An OpenAI-style error body.
pub fn error_body(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({ "error": { "message": message, "type": kind, "param": null, "code": code } })
}

/// The HTTP status and OpenAI error body for a failure.
pub fn error(failure: &Failure) -> (u16, Value) {
    match failure {
        Failure::BadRequest(message) => (400, error_body(message, "invalid_request_error", None)),
        Failure::ModelNotFound(model) => (
            404,
            error_body(
                &format!("The model `{model}` does not exist or you do not have access to it."),
                "invalid_request_error",
                Some("model_not_found"),
            ),
        ),
        Failure::RateLimited { model, retry_after, message, kind } => {
            (429, rate_limit_body(model, *retry_after, message.as_deref(), *kind))
        }
        Failure::Error { status, message } => (*status, error_body(message, error_type(*status), None)),
        Failure::Unavailable => (503, error_body("fake-llm is shutting down", "server_error", None)),
    }
}

/// OpenAI's 429 bodies: `rate_limit_exceeded` ("… Please try again in Ns.") or
/// `insufficient_quota`.
pub fn rate_limit_body(model: &str, retry_after: u64, message: Option<&str>, kind: LimitKind) -> Value {
    match kind {
        LimitKind::Rate => {
            let default = format!(
                "Rate limit reached for model `{model}` (fake-llm): 429 Too Many Requests. \
                 Please try again in {retry_after}s."
            );
            error_body(message.unwrap_or(&default), "requests", Some("rate_limit_exceeded"))
        }
        LimitKind::Quota => error_body(
            message.unwrap_or("You exceeded your current quota, please check your plan and billing details."),
            "insufficient_quota",
            Some("insufficient_quota"),
        ),
    }
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
        Meta { seq: 1, model: "m".into(), created: 7, signed: false }
    }

    fn data(frames: &[String]) -> Vec<Value> {
        frames
            .iter()
            .filter_map(|f| serde_json::from_str(f.strip_prefix("data: ")?.trim_end()).ok())
            .collect()
    }

    #[test]
    fn streamed_tool_arguments_reassemble() {
        let call = ToolCall {
            name: "write".into(),
            arguments: json!({ "filePath": "a.txt", "content": "x".repeat(100) }),
            custom: false,
        };
        let frames = frames(&meta(), &Answer::ToolCall(call.clone()), Some(Tokens { input: 1, output: 1 }));
        assert_eq!(frames.last().unwrap(), "data: [DONE]\n\n");
        let chunks = data(&frames);
        let arguments: String = chunks
            .iter()
            .filter_map(|c| c.pointer("/choices/0/delta/tool_calls/0/function/arguments")?.as_str())
            .collect();
        assert_eq!(serde_json::from_str::<Value>(&arguments).unwrap(), call.arguments);
        assert_eq!(chunks[chunks.len() - 2]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks.last().unwrap()["choices"], json!([]));
    }

    #[test]
    fn request_fields() {
        let request = parse(&json!({"model":"m","stream":true,"stream_options":{"include_usage":true},
                 "messages":[{"role":"system","content":"s"},{"role":"user","content":"u"},{"role":"assistant","content":"a"}],
                 "tools":[{"type":"function","function":{"name":"write"}}]}))
        .unwrap();
        assert!(request.stream && request.include_usage);
        assert_eq!(request.turn, 1);
        assert_eq!(request.tools[0].name, "write");
        assert!(parse(&json!({})).unwrap_err().contains("model"));
    }

    #[test]
    fn tool_messages_must_answer_the_calls_before_them() {
        let call = |id: &str| json!({ "role": "assistant", "content": null, "tool_calls": [{ "id": id, "type": "function", "function": { "name": "w", "arguments": "{}" } }] });
        let result = |id: &str| json!({ "role": "tool", "tool_call_id": id, "content": "ok" });
        let user = json!({ "role": "user", "content": "go" });
        let ask = |messages: Value| parse(&json!({ "model": "m", "messages": messages }));
        assert!(
            ask(json!([user, call("a"), result("a"), { "role": "assistant", "content": "done" }])).is_ok()
        );
        let stray = ask(json!([user, result("a")])).unwrap_err();
        assert!(stray.contains("must be a response to a preceeding message with 'tool_calls'"), "{stray}");
        let wrong = ask(json!([user, call("a"), result("b")])).unwrap_err();
        assert!(wrong.contains("preceeding"), "{wrong}");
        let missing = ask(json!([user, call("a"), user])).unwrap_err();
        assert!(missing.ends_with("did not have response messages: a"), "{missing}");
        assert!(ask(json!([user, call("a")])).unwrap_err().contains("did not have response messages: a"));
    }
}
