//! Whole Responses answers for Codex, and the items its stream repeats.

use super::CUSTOM_INPUT;
use crate::ids;
use crate::model::{Finish, ToolCall, Turn};
use crate::usage::Usage;
use crate::Context;
use serde_json::{json, Value};

/// Writes a `response` body for Codex.
pub fn turn_to_responses(turn: &Turn, ctx: &Context) -> Value {
    let mut output = Vec::new();
    if !turn.text.is_empty() {
        output.push(message_item(&format!("msg_{}", ctx.id), &turn.text, "completed"));
    }
    for (i, call) in turn.tool_calls.iter().enumerate() {
        output.push(call_item(ctx, i, call, "completed"));
    }
    let status = if turn.finish == Finish::Length { "incomplete" } else { "completed" };
    response_object(ctx, status, output, turn.usage)
}

/// The `response` object, as `response.created` (in progress, no output) and
/// `response.completed` carry it.
pub(crate) fn response_object(
    ctx: &Context,
    status: &str,
    output: Vec<Value>,
    usage: Option<Usage>,
) -> Value {
    let incomplete = (status == "incomplete").then(|| json!({ "reason": "max_output_tokens" }));
    json!({
        "id": response_id(&ctx.id),
        "object": "response",
        "created_at": ctx.created,
        "status": status,
        "model": ctx.model,
        "output": output,
        "usage": usage.map(Usage::to_responses),
        "error": null,
        "incomplete_details": incomplete,
        "parallel_tool_calls": true,
        "tool_choice": "auto",
        "tools": [],
    })
}

pub(crate) fn response_id(id: &str) -> String {
    if id.starts_with("resp_") {
        id.to_string()
    } else {
        format!("resp_{id}")
    }
}

pub(crate) fn message_item(id: &str, text: &str, status: &str) -> Value {
    let content: Vec<Value> = if status == "in_progress" { Vec::new() } else { vec![output_text(text)] };
    json!({ "type": "message", "id": id, "status": status, "role": "assistant", "content": content })
}

pub(crate) fn output_text(text: &str) -> Value {
    json!({ "type": "output_text", "text": text, "annotations": [] })
}

/// A function call item (with its namespace when it has one), or a custom tool call when the
/// tool was offered as freeform.
pub(crate) fn call_item(ctx: &Context, index: usize, call: &ToolCall, status: &str) -> Value {
    let call_id = ids::to_agent(&call.id, call.extra.as_ref(), false);
    let alias = ctx.tool_aliases.iter().find(|a| a.chat_name == call.name);
    let name = alias.map_or(call.name.as_str(), |a| a.name.as_str());
    let mut item = if alias.is_some_and(|a| a.freeform) {
        let input = serde_json::from_str::<Value>(&call.arguments)
            .ok()
            .and_then(|v| v[CUSTOM_INPUT].as_str().map(str::to_string))
            .unwrap_or_else(|| call.arguments.clone());
        json!({
            "type": "custom_tool_call", "id": format!("ctc_{}_{index}", ctx.id), "status": status,
            "call_id": call_id, "name": name, "input": input,
        })
    } else {
        json!({
            "type": "function_call", "id": format!("fc_{}_{index}", ctx.id), "status": status,
            "call_id": call_id, "name": name, "arguments": call.arguments,
        })
    };
    if let Some(ns) = alias.and_then(|a| a.namespace.as_ref()) {
        item["namespace"] = json!(ns);
    }
    item
}

/// Whether the Chat function `chat_name` stands for a freeform tool.
pub(crate) fn is_freeform(ctx: &Context, chat_name: &str) -> bool {
    ctx.tool_aliases.iter().any(|a| a.chat_name == chat_name && a.freeform)
}
