//! OpenAI Chat Completions, the hub: whole answers read and written here; streams in the
//! `stream` submodule.

pub(crate) mod stream;

use crate::json::{self, obj, opt_array, opt_str};
use crate::model::{Finish, ToolCall, Turn};
use crate::usage::Usage;
use crate::{Context, Format, WireError};
use serde_json::{json, Map, Value};

const F: Format = Format::Chat;

/// Reads a `chat.completion` body.
pub fn turn_from_chat(body: &Value) -> Result<Turn, WireError> {
    let o = obj(F, body, "completion")?;
    let choice =
        opt_array(F, o, "choices")?.first().ok_or_else(|| WireError::malformed(F, "choices", "no choice"))?;
    let choice = obj(F, choice, "choice")?;
    let message = obj(F, choice.get("message").unwrap_or(&Value::Null), "message")?;
    let mut turn = Turn {
        id: opt_str(F, o, "id")?.map(str::to_string),
        model: opt_str(F, o, "model")?.map(str::to_string),
        text: content_text(message.get("content"))?,
        reasoning: reasoning_text(message),
        usage: o.get("usage").and_then(Usage::from_chat),
        ..Turn::default()
    };
    for call in opt_array(F, message, "tool_calls")? {
        turn.tool_calls.push(tool_call(call)?);
    }
    let finish = opt_str(F, choice, "finish_reason")?.unwrap_or("stop");
    turn.finish = Finish::from_chat(finish).with_tools(!turn.tool_calls.is_empty());
    Ok(turn)
}

/// Writes a `chat.completion` body for a chat agent.
pub fn turn_to_chat(turn: &Turn, ctx: &Context) -> Value {
    let mut message = json!({ "role": "assistant", "content": if turn.text.is_empty() { Value::Null } else { json!(turn.text) } });
    if !turn.reasoning.is_empty() {
        message["reasoning_content"] = json!(turn.reasoning);
    }
    if !turn.tool_calls.is_empty() {
        message["tool_calls"] = turn.tool_calls.iter().map(tool_call_json).collect();
    }
    let mut body = json!({
        "id": turn.id.clone().unwrap_or_else(|| ctx.id.clone()),
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.model,
        "choices": [{ "index": 0, "message": message, "finish_reason": turn.finish.chat() }],
    });
    if let Some(u) = turn.usage {
        body["usage"] = u.to_chat();
    }
    body
}

pub(crate) fn tool_call_json(call: &ToolCall) -> Value {
    let mut v = json!({
        "id": call.id,
        "type": "function",
        "function": { "name": call.name, "arguments": call.arguments },
    });
    if let Some(x) = &call.extra {
        v["extra_content"] = x.clone();
    }
    v
}

fn tool_call(v: &Value) -> Result<ToolCall, WireError> {
    let o = obj(F, v, "tool call")?;
    let function = obj(F, o.get("function").unwrap_or(&Value::Null), "tool call function")?;
    Ok(ToolCall {
        id: opt_str(F, o, "id")?.unwrap_or_default().to_string(),
        name: json::req_str(F, function, "name")?.to_string(),
        arguments: json::arguments_text(function.get("arguments")),
        extra: o.get("extra_content").filter(|x| !x.is_null()).cloned(),
    })
}

/// A message's text: a string, or its text parts joined.
pub(crate) fn content_text(content: Option<&Value>) -> Result<String, WireError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => Ok(parts
            .iter()
            .filter_map(|p| {
                p.get("text").and_then(Value::as_str).or_else(|| p.get("refusal").and_then(Value::as_str))
            })
            .collect()),
        Some(_) => Err(WireError::malformed(F, "content", "expected a string or parts")),
    }
}

/// `reasoning_content` (DeepSeek, vLLM, llama.cpp) or `reasoning` (OpenRouter).
pub(crate) fn reasoning_text(o: &Map<String, Value>) -> String {
    o.get("reasoning_content")
        .or_else(|| o.get("reasoning"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Sets `stream` and, for streams, asks for the usage chunk.
pub(crate) fn set_stream(out: &mut Map<String, Value>, stream: bool) {
    if stream {
        out.insert("stream".into(), json!(true));
        out.insert("stream_options".into(), json!({ "include_usage": true }));
    }
}

/// `data:image/png;base64,AAAA` → (`image/png`, `AAAA`).
pub(crate) fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    Some((meta.strip_suffix(";base64")?, data))
}

/// Moves every system message into one leading system message (texts joined by a blank line):
/// many chat templates of local models refuse a system message anywhere but first, and some
/// refuse two. Claude Code sends mid-conversation system turns, Codex developer messages.
pub(crate) fn hoist_system(messages: Vec<Value>) -> Vec<Value> {
    let (system, rest): (Vec<Value>, Vec<Value>) = messages.into_iter().partition(|m| m["role"] == "system");
    if system.len() <= 1 {
        return system.into_iter().chain(rest).collect();
    }
    let texts: Vec<String> =
        system.iter().map(|m| content_text(m.get("content")).unwrap_or_default()).collect();
    let mut out = vec![json!({ "role": "system", "content": texts.join("\n\n") })];
    out.extend(rest);
    out
}
