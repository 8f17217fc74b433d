//! An OpenAI Chat request as an Anthropic Messages request (a Chat agent on an Anthropic upstream).

use super::DEFAULT_MAX_TOKENS;
use crate::chat::data_url;
use crate::json::{self, obj, opt_array, opt_str, Obj};
use crate::{Format, WireError};
use serde_json::{json, Value};

const F: Format = Format::Chat;

/// Translates a `/v1/chat/completions` body. System and developer messages become `system`;
/// `tool` messages become `tool_result` blocks of one user turn; consecutive turns of one role
/// merge, since Anthropic wants them alternating.
pub fn request_from_chat(body: &Value) -> Result<Value, WireError> {
    let o = obj(F, body, "request")?;
    let mut out = Obj::new();
    json::copy(o, "model", &mut out, "model");
    let mut system = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    for m in opt_array(F, o, "messages")? {
        let m = obj(F, m, "message")?;
        let (role, blocks) = match json::req_str(F, m, "role")? {
            "system" | "developer" => {
                system.push(crate::chat::content_text(m.get("content"))?);
                continue;
            }
            "user" => ("user", user_blocks(m.get("content"))?),
            "assistant" => ("assistant", assistant_blocks(m)?),
            "tool" => ("user", vec![tool_result(m)?]),
            other => return Err(WireError::malformed(F, "message role", format!("unknown role {other:?}"))),
        };
        push(&mut messages, role, blocks);
    }
    if !system.is_empty() {
        out.insert("system".into(), json!(system.join("\n\n")));
    }
    out.insert("messages".into(), Value::Array(messages));
    let max = json::opt_u64(F, o, "max_completion_tokens")?.or(json::opt_u64(F, o, "max_tokens")?);
    out.insert("max_tokens".into(), json!(max.unwrap_or(DEFAULT_MAX_TOKENS)));
    json::copy(o, "temperature", &mut out, "temperature");
    json::copy(o, "top_p", &mut out, "top_p");
    if let Some(stop) = o.get("stop") {
        let stop = json::strings(F, stop, "stop")?;
        if !stop.is_empty() {
            out.insert("stop_sequences".into(), json!(stop));
        }
    }
    tools(o, &mut out)?;
    if json::opt_bool(F, o, "stream")? == Some(true) {
        out.insert("stream".into(), json!(true));
    }
    Ok(Value::Object(out))
}

fn push(messages: &mut Vec<Value>, role: &str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    if let Some(last) = messages.last_mut().filter(|l| l["role"] == role) {
        if let Some(content) = last["content"].as_array_mut() {
            // Tool results must lead a user turn: they answer the assistant's calls.
            for b in blocks {
                if b["type"] == "tool_result" {
                    let at = content.iter().take_while(|x| x["type"] == "tool_result").count();
                    content.insert(at, b);
                } else {
                    content.push(b);
                }
            }
            return;
        }
    }
    messages.push(json!({ "role": role, "content": blocks }));
}

fn user_blocks(content: Option<&Value>) -> Result<Vec<Value>, WireError> {
    let parts = match content {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(vec![json!({ "type": "text", "text": s })]),
        Some(Value::Array(parts)) => parts,
        Some(_) => return Err(WireError::malformed(F, "content", "expected a string or parts")),
    };
    let mut blocks = Vec::new();
    for p in parts {
        let p = obj(F, p, "content part")?;
        match json::req_str(F, p, "type")? {
            "text" => blocks.push(json!({ "type": "text", "text": json::req_str(F, p, "text")? })),
            "image_url" => {
                let url = match p.get("image_url") {
                    Some(Value::String(s)) => s.as_str(),
                    Some(Value::Object(i)) => json::req_str(F, i, "url")?,
                    _ => return Err(WireError::malformed(F, "image_url", "missing")),
                };
                blocks.push(image_block(url));
            }
            other => {
                return Err(WireError::unsupported(
                    F,
                    "content part",
                    format!("{other:?} has no Anthropic block"),
                ))
            }
        }
    }
    Ok(blocks)
}

pub(crate) fn image_block(url: &str) -> Value {
    match data_url(url) {
        Some((media_type, data)) => {
            json!({ "type": "image", "source": { "type": "base64", "media_type": media_type, "data": data } })
        }
        None => json!({ "type": "image", "source": { "type": "url", "url": url } }),
    }
}

fn assistant_blocks(m: &Obj) -> Result<Vec<Value>, WireError> {
    let mut blocks = Vec::new();
    let text = crate::chat::content_text(m.get("content"))?;
    if !text.is_empty() {
        blocks.push(json!({ "type": "text", "text": text }));
    }
    for call in opt_array(F, m, "tool_calls")? {
        let call = obj(F, call, "tool call")?;
        let function = obj(F, call.get("function").unwrap_or(&Value::Null), "tool call function")?;
        let arguments = json::arguments_text(function.get("arguments"));
        blocks.push(json!({
            "type": "tool_use",
            "id": json::req_str(F, call, "id")?,
            "name": json::req_str(F, function, "name")?,
            "input": json::arguments_object(F, &arguments)?,
        }));
    }
    Ok(blocks)
}

fn tool_result(m: &Obj) -> Result<Value, WireError> {
    Ok(json!({
        "type": "tool_result",
        "tool_use_id": json::req_str(F, m, "tool_call_id")?,
        "content": crate::chat::content_text(m.get("content"))?,
    }))
}

fn tools(o: &Obj, out: &mut Obj) -> Result<(), WireError> {
    let mut tools = Vec::new();
    for t in opt_array(F, o, "tools")? {
        let t = obj(F, t, "tool")?;
        let function = obj(F, t.get("function").unwrap_or(&Value::Null), "tool function")?;
        let mut tool = json!({
            "name": json::req_str(F, function, "name")?,
            "input_schema": function.get("parameters").cloned().unwrap_or_else(|| json!({ "type": "object", "properties": {} })),
        });
        if let Some(d) = opt_str(F, function, "description")? {
            tool["description"] = json!(d);
        }
        tools.push(tool);
    }
    if tools.is_empty() {
        return Ok(());
    }
    out.insert("tools".into(), Value::Array(tools));
    let mut choice = match o.get("tool_choice") {
        None | Some(Value::Null) => json!({ "type": "auto" }),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => json!({ "type": "auto" }),
            "required" => json!({ "type": "any" }),
            "none" => json!({ "type": "none" }),
            other => return Err(WireError::malformed(F, "tool_choice", format!("unknown value {other:?}"))),
        },
        Some(c) => {
            let name = c.pointer("/function/name").and_then(Value::as_str);
            let name =
                name.ok_or_else(|| WireError::malformed(F, "tool_choice", "expected a function name"))?;
            json!({ "type": "tool", "name": name })
        }
    };
    if json::opt_bool(F, o, "parallel_tool_calls")? == Some(false) && choice["type"] != "none" {
        choice["disable_parallel_tool_use"] = json!(true);
    }
    out.insert("tool_choice".into(), choice);
    Ok(())
}
