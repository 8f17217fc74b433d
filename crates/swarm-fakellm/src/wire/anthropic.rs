//! Anthropic Messages (`/v1/messages`, `/v1/messages/count_tokens`): reading requests with the
//! API's own checks (required fields, content blocks, every `tool_use` answered by a
//! `tool_result` in the next message and no `tool_result` without its `tool_use`), writing
//! messages, their event stream and `{"type":"error",…}` bodies.

use serde_json::{json, Value};

use super::{named_event, pieces, Failure, Meta, Tokens};
use crate::request::{json_len, Entry, Request};
use crate::scenario::LimitKind;
use crate::tools::OfferedTool;
use crate::turn::Answer;

/// Reads a Messages body; `max_tokens` is required except for `count_tokens`.
pub fn parse(value: &Value, needs_max_tokens: bool) -> Result<Request, String> {
    let model = value.get("model").and_then(Value::as_str).ok_or("model: Field required")?;
    if needs_max_tokens && !value.get("max_tokens").is_some_and(Value::is_u64) {
        return Err("max_tokens: Field required".to_string());
    }
    let messages = value.get("messages").and_then(Value::as_array).ok_or("messages: Field required")?;
    let mut entries = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        entries.push(check_message(i, message)?);
    }
    check_tool_pairing(messages)?;
    let request = Request {
        model: model.to_string(),
        stream: value.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: true,
        tools: tools(value.get("tools"))?,
        prompt_bytes: json_len([value.get("messages"), value.get("system")]),
        ..Request::default()
    };
    Ok(request.with_conversation(&entries))
}

/// The content blocks of a message (a string content is one text block).
fn blocks(message: &Value) -> Vec<Value> {
    match message.get("content") {
        Some(Value::String(text)) => vec![json!({ "type": "text", "text": text })],
        Some(Value::Array(blocks)) => blocks.clone(),
        _ => Vec::new(),
    }
}

/// Checks one message and classifies it. `system` messages inside `messages` are accepted:
/// Claude Code 2.1.332 sends them (its mid-conversation system turns).
fn check_message(i: usize, message: &Value) -> Result<Entry, String> {
    let role =
        message.get("role").and_then(Value::as_str).ok_or(format!("messages.{i}.role: Field required"))?;
    if !["user", "assistant", "system"].contains(&role) {
        return Err(format!("messages.{i}.role: Input should be 'user' or 'assistant'"));
    }
    let content = message.get("content").ok_or(format!("messages.{i}.content: Field required"))?;
    if !content.is_string() && !content.is_array() {
        return Err(format!("messages.{i}.content: Input should be a valid list"));
    }
    let blocks = blocks(message);
    for (j, block) in blocks.iter().enumerate() {
        check_block(block).map_err(|field| format!("messages.{i}.content.{j}.{field}"))?;
    }
    let has = |kind: &str| blocks.iter().any(|b| b["type"] == kind);
    Ok(match role {
        "assistant" => Entry::Model,
        "user" if !has("tool_result") => {
            let texts: Vec<&str> =
                blocks.iter().filter(|b| b["type"] == "text").filter_map(|b| b["text"].as_str()).collect();
            Entry::User(texts.join("\n"))
        }
        _ => Entry::Other,
    })
}

/// A required field and the check its value must pass.
type Required = (&'static str, fn(&Value) -> bool);

/// The required fields of the block types the API documents; `Err` names the missing field.
fn check_block(block: &Value) -> Result<(), String> {
    let Some(kind) = block.get("type").and_then(Value::as_str) else {
        return Err("type: Field required".to_string());
    };
    let required: &[Required] = match kind {
        "text" => &[("text", Value::is_string)],
        "tool_use" => &[("id", Value::is_string), ("name", Value::is_string), ("input", Value::is_object)],
        "tool_result" => &[("tool_use_id", Value::is_string)],
        "image" | "document" => &[("source", Value::is_object)],
        "thinking" => &[("thinking", Value::is_string), ("signature", Value::is_string)],
        "redacted_thinking" => &[("data", Value::is_string)],
        _ => &[],
    };
    for (field, valid) in required {
        if !block.get(*field).is_some_and(valid) {
            return Err(format!("{kind}.{field}: Field required"));
        }
    }
    Ok(())
}

/// Every `tool_result` answers a `tool_use` of the previous (assistant) message, and every
/// `tool_use` has its `tool_result` in the next (user) message; `system` messages are skipped.
fn check_tool_pairing(messages: &[Value]) -> Result<(), String> {
    let turns: Vec<(usize, &Value)> =
        messages.iter().enumerate().filter(|(_, m)| m["role"] != "system").collect();
    for (n, (i, message)) in turns.iter().enumerate() {
        let previous = n.checked_sub(1).map(|p| turns[p].1).filter(|p| p["role"] == "assistant");
        let uses = previous.map(|p| ids(p, "tool_use", "id")).unwrap_or_default();
        let results = blocks(message);
        let stray = results
            .iter()
            .enumerate()
            .filter(|(_, b)| b["type"] == "tool_result")
            .find(|(_, b)| !uses.iter().any(|u| b["tool_use_id"].as_str() == Some(u.as_str())));
        if let (Some((j, block)), true) = (stray, message["role"] == "user") {
            return Err(format!(
                "messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {}. \
                 Each `tool_result` block must have a corresponding `tool_use` block in the previous message.",
                block["tool_use_id"].as_str().unwrap_or_default()
            ));
        }
    }
    for (n, (i, message)) in turns.iter().enumerate().filter(|(_, (_, m))| m["role"] == "assistant") {
        let answered =
            turns.get(n + 1).map(|(_, next)| ids(next, "tool_result", "tool_use_id")).unwrap_or_default();
        let missing: Vec<String> =
            ids(message, "tool_use", "id").into_iter().filter(|u| !answered.contains(u)).collect();
        if !missing.is_empty() {
            return Err(format!(
                "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. \
                 Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
                missing.join(", ")
            ));
        }
    }
    Ok(())
}

/// The `field` of every block of type `kind` in a message.
fn ids(message: &Value, kind: &str, field: &str) -> Vec<String> {
    blocks(message)
        .iter()
        .filter(|b| b["type"] == kind)
        .filter_map(|b| Some(b[field].as_str()?.to_string()))
        .collect()
}

/// The tools offered: custom tools need `name` and `input_schema`; server tools (with a `type`
/// other than `custom`) only a name.
fn tools(tools: Option<&Value>) -> Result<Vec<OfferedTool>, String> {
    let mut offered = Vec::new();
    for (i, tool) in tools.and_then(Value::as_array).into_iter().flatten().enumerate() {
        let name =
            tool.get("name").and_then(Value::as_str).ok_or(format!("tools.{i}.name: Field required"))?;
        let custom = tool.get("type").is_none_or(|t| t == "custom");
        let schema = tool.get("input_schema");
        if custom && !schema.is_some_and(Value::is_object) {
            return Err(format!("tools.{i}.custom.input_schema: Field required"));
        }
        offered.push(OfferedTool::function(name, schema.cloned().unwrap_or(Value::Null)));
    }
    Ok(offered)
}

fn usage(input: u64, output: u64) -> Value {
    json!({ "input_tokens": input, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": output })
}

/// The content block and stop reason of an answer.
fn block(meta: &Meta, answer: &Answer) -> (Value, &'static str) {
    match answer {
        Answer::Text(text) => (json!({ "type": "text", "text": text }), "end_turn"),
        Answer::ToolCall(call) => (
            json!({ "type": "tool_use", "id": format!("toolu_fake_{}", meta.seq), "name": call.name, "input": call.arguments }),
            "tool_use",
        ),
    }
}

fn envelope(meta: &Meta, content: Value, stop_reason: Value, usage: Value) -> Value {
    json!({ "id": format!("msg_fake_{}", meta.seq), "type": "message", "role": "assistant", "model": meta.model,
            "content": content, "stop_reason": stop_reason, "stop_sequence": null, "usage": usage })
}

/// A non-streamed message.
pub fn message(meta: &Meta, answer: &Answer, tokens: Tokens) -> Value {
    let (block, stop) = block(meta, answer);
    envelope(meta, json!([block]), json!(stop), usage(tokens.input, tokens.output))
}

/// The event stream of a message: `message_start`, one content block (text deltas or
/// `input_json_delta` pieces), `message_delta` with the stop reason and output tokens,
/// `message_stop`.
pub fn frames(meta: &Meta, answer: &Answer, tokens: Tokens) -> Vec<String> {
    let (full, stop) = block(meta, answer);
    let start = envelope(meta, json!([]), Value::Null, usage(tokens.input, 1));
    let mut out = vec![named_event("message_start", &json!({ "type": "message_start", "message": start }))];
    let (opening, deltas): (Value, Vec<Value>) = match answer {
        Answer::Text(text) => (
            json!({ "type": "text", "text": "" }),
            pieces(text, 16).map(|p| json!({ "type": "text_delta", "text": p })).collect(),
        ),
        Answer::ToolCall(call) => {
            let mut opening = full.clone();
            opening["input"] = json!({});
            let arguments = call.arguments.to_string();
            (
                opening,
                pieces(&arguments, 24)
                    .map(|p| json!({ "type": "input_json_delta", "partial_json": p }))
                    .collect(),
            )
        }
    };
    out.push(named_event(
        "content_block_start",
        &json!({ "type": "content_block_start", "index": 0, "content_block": opening }),
    ));
    out.push(named_event("ping", &json!({ "type": "ping" })));
    for delta in deltas {
        out.push(named_event(
            "content_block_delta",
            &json!({ "type": "content_block_delta", "index": 0, "delta": delta }),
        ));
    }
    out.push(named_event("content_block_stop", &json!({ "type": "content_block_stop", "index": 0 })));
    out.push(named_event(
        "message_delta",
        &json!({ "type": "message_delta", "delta": { "stop_reason": stop, "stop_sequence": null },
                 "usage": { "output_tokens": tokens.output } }),
    ));
    out.push(named_event("message_stop", &json!({ "type": "message_stop" })));
    out
}

fn error_body(kind: &str, message: &str) -> Value {
    json!({ "type": "error", "error": { "type": kind, "message": message }, "request_id": "req_fakellm" })
}

/// The Anthropic error `type` for an HTTP status.
fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        _ if status < 500 => "invalid_request_error",
        _ => "api_error",
    }
}

fn rate_limit_message(failure: &Failure) -> String {
    match failure {
        Failure::RateLimited { message: Some(message), .. } => message.clone(),
        Failure::RateLimited { kind: LimitKind::Quota, .. } => {
            "You have reached your specified API usage limits (fake-llm).".to_string()
        }
        Failure::RateLimited { model, .. } => format!(
            "This request would exceed the rate limit for your organization of 50 requests per minute \
             (fake-llm, model: {model})."
        ),
        _ => String::new(),
    }
}

/// The HTTP status and Anthropic error body for a failure.
pub fn error(failure: &Failure) -> (u16, Value) {
    match failure {
        Failure::BadRequest(message) => (400, error_body("invalid_request_error", message)),
        Failure::ModelNotFound(model) => (404, error_body("not_found_error", &format!("model: {model}"))),
        Failure::RateLimited { .. } => (429, error_body("rate_limit_error", &rate_limit_message(failure))),
        Failure::Error { status, message } => (*status, error_body(error_type(*status), message)),
        Failure::Unavailable => (529, error_body("overloaded_error", "fake-llm is shutting down")),
    }
}

/// A rate limit inside the stream: `message_start`, then an `error` event.
pub fn error_frames(meta: &Meta, failure: &Failure) -> Vec<String> {
    let start = envelope(meta, json!([]), Value::Null, usage(0, 0));
    vec![
        named_event("message_start", &json!({ "type": "message_start", "message": start })),
        named_event("error", &error_body("rate_limit_error", &rate_limit_message(failure))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(messages: Value) -> Value {
        json!({ "model": "m", "max_tokens": 100, "messages": messages })
    }

    #[test]
    fn system_messages_and_tool_results_are_not_user_turns() {
        let request = parse(
            &body(json!([
                { "role": "user", "content": [{ "type": "text", "text": "<reminder>" }, { "type": "text", "text": "go\n" }] },
                { "role": "system", "content": "# Environment" },
                { "role": "assistant", "content": [{ "type": "tool_use", "id": "t1", "name": "Write", "input": {} }] },
                { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "t1", "content": "ok" }] },
            ])),
            true,
        )
        .unwrap();
        assert_eq!(request.turn, 1);
        assert_eq!(request.user_messages, ["<reminder>\ngo\n"]);
    }

    #[test]
    fn required_fields_and_blocks() {
        assert_eq!(
            parse(&json!({ "max_tokens": 1, "messages": [] }), true).unwrap_err(),
            "model: Field required"
        );
        assert_eq!(
            parse(&json!({ "model": "m", "messages": [] }), true).unwrap_err(),
            "max_tokens: Field required"
        );
        assert!(parse(&json!({ "model": "m", "messages": [] }), false).is_ok());
        let err =
            parse(&body(json!([{ "role": "user", "content": [{ "type": "text" }] }])), true).unwrap_err();
        assert_eq!(err, "messages.0.content.0.text.text: Field required");
        let err = parse(&body(json!([{ "role": "tool", "content": "x" }])), true).unwrap_err();
        assert!(err.starts_with("messages.0.role"), "{err}");
    }
}
