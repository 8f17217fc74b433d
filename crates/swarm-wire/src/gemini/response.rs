//! Whole Gemini answers: read from a Gemini upstream, written for Gemini CLI.

use super::{extra_signature, finish_from, finish_reason, signature_extra};
use crate::json::{self, either, obj, Obj};
use crate::model::{ToolCall, Turn};
use crate::usage::Usage;
use crate::{Context, Finish, Format, WireError};
use serde_json::{json, Value};

const F: Format = Format::Gemini;

/// Reads a `GenerateContentResponse` (its first candidate). A call's `thoughtSignature` becomes
/// the tool call's `extra_content`; thought parts become reasoning.
pub fn turn_from_gemini(body: &Value) -> Result<Turn, WireError> {
    let o = obj(F, body, "response")?;
    let mut turn = Turn {
        id: either(o, "responseId", "response_id").and_then(Value::as_str).map(str::to_string),
        model: either(o, "modelVersion", "model_version").and_then(Value::as_str).map(str::to_string),
        usage: either(o, "usageMetadata", "usage_metadata").and_then(Usage::from_gemini),
        ..Turn::default()
    };
    let candidate = match o.get("candidates") {
        Some(Value::Array(c)) => c.first(),
        None | Some(Value::Null) => None,
        Some(_) => return Err(WireError::malformed(F, "candidates", "expected an array")),
    };
    let Some(candidate) = candidate else {
        // No candidate: the prompt itself was blocked (`promptFeedback.blockReason`).
        turn.finish = Finish::Filtered;
        return Ok(turn);
    };
    let c = obj(F, candidate, "candidate")?;
    let parts = c.get("content").and_then(|content| content.get("parts")).and_then(Value::as_array);
    for p in parts.map(Vec::as_slice).unwrap_or(&[]) {
        read_part(obj(F, p, "part")?, &mut turn, 0)?;
    }
    let reason = either(c, "finishReason", "finish_reason").and_then(Value::as_str).unwrap_or("STOP");
    turn.finish = finish_from(reason).with_tools(!turn.tool_calls.is_empty());
    Ok(turn)
}

/// One part of an answer: text, thought or function call (`calls_before`: calls of earlier
/// chunks, for the ids of calls that come without one).
pub(crate) fn read_part(p: &Obj, turn: &mut Turn, calls_before: usize) -> Result<(), WireError> {
    if let Some(call) = either(p, "functionCall", "function_call") {
        let call = obj(F, call, "functionCall")?;
        let index = calls_before + turn.tool_calls.len();
        turn.tool_calls.push(ToolCall {
            id: json::opt_str(F, call, "id")?.map(str::to_string).unwrap_or_else(|| format!("call_{index}")),
            name: json::req_str(F, call, "name")?.to_string(),
            arguments: json::arguments_text(call.get("args")),
            extra: either(p, "thoughtSignature", "thought_signature")
                .and_then(Value::as_str)
                .map(signature_extra),
        });
    } else if let Some(t) = p.get("text") {
        let t = t.as_str().ok_or_else(|| WireError::malformed(F, "part text", "expected a string"))?;
        if p.get("thought") == Some(&Value::Bool(true)) {
            turn.reasoning.push_str(t);
        } else {
            turn.text.push_str(t);
        }
    }
    Ok(())
}

/// Writes a `GenerateContentResponse` for Gemini CLI.
pub fn turn_to_gemini(turn: &Turn, ctx: &Context) -> Value {
    let mut parts = Vec::new();
    if !turn.reasoning.is_empty() {
        parts.push(json!({ "text": turn.reasoning, "thought": true }));
    }
    if !turn.text.is_empty() {
        parts.push(json!({ "text": turn.text }));
    }
    parts.extend(turn.tool_calls.iter().map(call_part));
    let mut body = json!({
        "candidates": [{ "content": { "role": "model", "parts": parts }, "finishReason": finish_reason(turn.finish), "index": 0 }],
        "modelVersion": ctx.model,
        "responseId": turn.id.clone().unwrap_or_else(|| ctx.id.clone()),
    });
    if let Some(u) = turn.usage {
        body["usageMetadata"] = u.to_gemini();
    }
    body
}

/// A tool call as a `functionCall` part, arguments whole (Gemini never streams them).
pub(crate) fn call_part(call: &ToolCall) -> Value {
    let args = json::arguments_object(F, &call.arguments).unwrap_or_else(|_| json!({}));
    let mut part = json!({ "functionCall": { "id": call.id, "name": call.name, "args": args } });
    if let Some(sig) = extra_signature(call.extra.as_ref()) {
        part["thoughtSignature"] = json!(sig);
    }
    part
}
