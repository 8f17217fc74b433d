//! An Anthropic Messages request as an OpenAI Chat request.

use crate::chat::{hoist_system, set_stream};
use crate::ids;
use crate::json::{self, obj, opt_array, opt_str, Obj};
use crate::{Format, WireError};
use serde_json::{json, Value};

const F: Format = Format::Anthropic;

/// Translates a `/v1/messages` body. Tool results become `tool` messages right after the
/// assistant turn that called them (ids unchanged, or decoded from [`ids`]); thinking blocks,
/// cache control, server tools and `top_k` have no Chat equivalent and are dropped.
pub fn request_to_chat(body: &Value) -> Result<Value, WireError> {
    let o = obj(F, body, "request")?;
    let mut out = Obj::new();
    json::copy(o, "model", &mut out, "model");
    let mut messages = Vec::new();
    if let Some(system) = o.get("system").filter(|s| !s.is_null()) {
        messages.push(json!({ "role": "system", "content": system_text(system)? }));
    }
    for m in opt_array(F, o, "messages")? {
        message(m, &mut messages)?;
    }
    out.insert("messages".into(), Value::Array(hoist_system(messages)));
    if let Some(n) = json::opt_u64(F, o, "max_tokens")? {
        out.insert("max_tokens".into(), json!(n));
    }
    json::copy(o, "temperature", &mut out, "temperature");
    json::copy(o, "top_p", &mut out, "top_p");
    if let Some(stop) = o.get("stop_sequences") {
        let stop = json::strings(F, stop, "stop_sequences")?;
        if !stop.is_empty() {
            out.insert("stop".into(), json!(stop));
        }
    }
    tools(o, &mut out)?;
    set_stream(&mut out, json::opt_bool(F, o, "stream")?.unwrap_or(false));
    Ok(Value::Object(out))
}

fn system_text(system: &Value) -> Result<String, WireError> {
    match system {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let texts: Result<Vec<&str>, WireError> = blocks
                .iter()
                .map(|b| obj(F, b, "system block").and_then(|b| json::req_str(F, b, "text")))
                .collect();
            Ok(texts?.join("\n"))
        }
        _ => Err(WireError::malformed(F, "system", "expected a string or text blocks")),
    }
}

fn message(m: &Value, out: &mut Vec<Value>) -> Result<(), WireError> {
    let m = obj(F, m, "message")?;
    let role = json::req_str(F, m, "role")?;
    if role == "system" {
        // Claude Code's mid-conversation system turns (its environment, say).
        let text = system_text(m.get("content").unwrap_or(&Value::Null))?;
        out.push(json!({ "role": "system", "content": text }));
        return Ok(());
    }
    if role != "user" && role != "assistant" {
        return Err(WireError::malformed(F, "message role", format!("unknown role {role:?}")));
    }
    let blocks = match m.get("content") {
        Some(Value::String(s)) => {
            out.push(json!({ "role": role, "content": s }));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks,
        _ => return Err(WireError::malformed(F, "message content", "expected a string or blocks")),
    };
    if role == "user" {
        user(blocks, out)
    } else {
        assistant(blocks, out)
    }
}

/// Tool results first (they answer the previous assistant turn), then the user's own parts.
fn user(blocks: &[Value], out: &mut Vec<Value>) -> Result<(), WireError> {
    let mut parts = Vec::new();
    for b in blocks {
        let b = obj(F, b, "content block")?;
        match json::req_str(F, b, "type")? {
            "tool_result" => tool_result(b, out, &mut parts)?,
            _ => {
                if let Some(p) = part(b)? {
                    parts.push(p);
                }
            }
        }
    }
    if !parts.is_empty() {
        out.push(json!({ "role": "user", "content": simplify(parts) }));
    }
    Ok(())
}

fn tool_result(b: &Obj, out: &mut Vec<Value>, images: &mut Vec<Value>) -> Result<(), WireError> {
    let (id, _) = ids::from_agent(json::req_str(F, b, "tool_use_id")?);
    let text = match b.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(inner)) => {
            let mut text = String::new();
            for p in inner {
                let p = obj(F, p, "tool result block")?;
                match json::req_str(F, p, "type")? {
                    "text" => text.push_str(json::req_str(F, p, "text")?),
                    // Chat tool messages hold text only: images follow in a user message.
                    _ => images.extend(part(p)?),
                }
            }
            text
        }
        Some(_) => return Err(WireError::malformed(F, "tool_result content", "expected a string or blocks")),
    };
    out.push(json!({ "role": "tool", "tool_call_id": id, "content": text }));
    Ok(())
}

/// A text or image block as a Chat content part; other blocks (documents, thinking) have none.
fn part(b: &Obj) -> Result<Option<Value>, WireError> {
    Ok(match json::req_str(F, b, "type")? {
        "text" => Some(json!({ "type": "text", "text": json::req_str(F, b, "text")? })),
        "image" => {
            let source = obj(F, b.get("source").unwrap_or(&Value::Null), "image source")?;
            let url = match json::req_str(F, source, "type")? {
                "base64" => format!(
                    "data:{};base64,{}",
                    json::req_str(F, source, "media_type")?,
                    json::req_str(F, source, "data")?
                ),
                "url" => json::req_str(F, source, "url")?.to_string(),
                other => return Err(WireError::unsupported(F, "image source", other.to_string())),
            };
            Some(json!({ "type": "image_url", "image_url": { "url": url } }))
        }
        _ => None,
    })
}

/// One text part is sent as a plain string, the form every Chat server accepts.
fn simplify(mut parts: Vec<Value>) -> Value {
    if parts.len() == 1 && parts[0]["type"] == "text" {
        return parts.remove(0)["text"].take();
    }
    Value::Array(parts)
}

fn assistant(blocks: &[Value], out: &mut Vec<Value>) -> Result<(), WireError> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for b in blocks {
        let b = obj(F, b, "content block")?;
        match json::req_str(F, b, "type")? {
            "text" => text.push_str(json::req_str(F, b, "text")?),
            "tool_use" => {
                let (id, extra) = ids::from_agent(json::req_str(F, b, "id")?);
                let mut call = json!({
                    "id": id, "type": "function",
                    "function": { "name": json::req_str(F, b, "name")?, "arguments": json::arguments_text(b.get("input")) },
                });
                if let Some(x) = extra {
                    call["extra_content"] = x;
                }
                calls.push(call);
            }
            _ => {} // thinking, redacted_thinking, server tool blocks: Chat has no place for them
        }
    }
    let mut m = json!({ "role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) } });
    if !calls.is_empty() {
        m["tool_calls"] = Value::Array(calls);
    }
    out.push(m);
    Ok(())
}

fn tools(o: &Obj, out: &mut Obj) -> Result<(), WireError> {
    let mut tools = Vec::new();
    for t in opt_array(F, o, "tools")? {
        let t = obj(F, t, "tool")?;
        // Server tools (web search, code execution, …) run at Anthropic: no upstream can.
        if opt_str(F, t, "type")?.is_some_and(|ty| ty != "custom") {
            continue;
        }
        let mut function = json!({ "name": json::req_str(F, t, "name")? });
        if let Some(d) = opt_str(F, t, "description")? {
            function["description"] = json!(d);
        }
        function["parameters"] =
            t.get("input_schema").cloned().unwrap_or_else(|| json!({ "type": "object" }));
        tools.push(json!({ "type": "function", "function": function }));
    }
    let has_tools = !tools.is_empty();
    if has_tools {
        out.insert("tools".into(), Value::Array(tools));
    }
    let Some(choice) = o.get("tool_choice").filter(|c| !c.is_null()) else { return Ok(()) };
    let choice = obj(F, choice, "tool_choice")?;
    let mapped = match json::req_str(F, choice, "type")? {
        "auto" => json!("auto"),
        "any" => json!("required"),
        "none" => json!("none"),
        "tool" => json!({ "type": "function", "function": { "name": json::req_str(F, choice, "name")? } }),
        other => return Err(WireError::malformed(F, "tool_choice", format!("unknown type {other:?}"))),
    };
    if has_tools {
        out.insert("tool_choice".into(), mapped);
        if json::opt_bool(F, choice, "disable_parallel_tool_use")? == Some(true) {
            out.insert("parallel_tool_calls".into(), json!(false));
        }
    }
    Ok(())
}
