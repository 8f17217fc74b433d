//! Whole Anthropic messages: read from an Anthropic upstream, written for Claude Code.

use super::{finish_from, stop_reason};
use crate::ids;
use crate::json::{self, obj, opt_array, opt_str};
use crate::model::{ToolCall, Turn};
use crate::usage::Usage;
use crate::{Context, Format, WireError};
use serde_json::{json, Value};

const F: Format = Format::Anthropic;

/// Reads a `message` body. Thinking becomes reasoning text; its signature is dropped, which is
/// why a Chat agent's history cannot carry Anthropic thinking back.
pub fn turn_from_anthropic(body: &Value) -> Result<Turn, WireError> {
    let o = obj(F, body, "message")?;
    let mut turn = Turn {
        id: opt_str(F, o, "id")?.map(str::to_string),
        model: opt_str(F, o, "model")?.map(str::to_string),
        usage: o.get("usage").and_then(Usage::from_anthropic),
        ..Turn::default()
    };
    for b in opt_array(F, o, "content")? {
        let b = obj(F, b, "content block")?;
        match json::req_str(F, b, "type")? {
            "text" => turn.text.push_str(json::req_str(F, b, "text")?),
            "thinking" => turn.reasoning.push_str(opt_str(F, b, "thinking")?.unwrap_or_default()),
            "tool_use" => turn.tool_calls.push(ToolCall {
                id: json::req_str(F, b, "id")?.to_string(),
                name: json::req_str(F, b, "name")?.to_string(),
                arguments: json::arguments_text(b.get("input")),
                extra: None,
            }),
            _ => {}
        }
    }
    let reason = opt_str(F, o, "stop_reason")?.unwrap_or("end_turn");
    turn.finish = finish_from(reason).with_tools(!turn.tool_calls.is_empty());
    Ok(turn)
}

/// Writes a `message` body for Claude Code. Reasoning is not written: a thinking block without
/// Anthropic's signature would be refused when the history later reaches an Anthropic upstream.
pub fn turn_to_anthropic(turn: &Turn, ctx: &Context) -> Value {
    let mut content = Vec::new();
    if !turn.text.is_empty() || turn.tool_calls.is_empty() {
        content.push(json!({ "type": "text", "text": turn.text }));
    }
    for call in &turn.tool_calls {
        content.push(tool_use(call));
    }
    json!({
        "id": message_id(turn.id.as_deref().unwrap_or(&ctx.id)),
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": content,
        "stop_reason": stop_reason(turn.finish.with_tools(!turn.tool_calls.is_empty())),
        "stop_sequence": null,
        "usage": turn.usage.unwrap_or_default().to_anthropic(),
    })
}

pub(crate) fn tool_use(call: &ToolCall) -> Value {
    // A model's malformed arguments become an empty input: Claude Code then tells the model
    // which parameters are missing, which is how it recovers anyway.
    let input = json::arguments_object(F, &call.arguments).unwrap_or_else(|_| json!({}));
    json!({ "type": "tool_use", "id": ids::to_agent(&call.id, call.extra.as_ref(), true), "name": call.name, "input": input })
}

pub(crate) fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_string()
    } else {
        format!("msg_{id}")
    }
}
