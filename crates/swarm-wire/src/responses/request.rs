//! An OpenAI Responses request as an OpenAI Chat request.

use super::tools::{self, ToolAlias};
use super::CUSTOM_INPUT;
use crate::chat::{hoist_system, set_stream};
use crate::ids;
use crate::json::{self, obj, opt_str, Obj};
use crate::{Format, WireError};
use serde_json::{json, Value};

const F: Format = Format::Responses;

/// Translates a `/v1/responses` body. `instructions` become the system message; input items
/// become messages (consecutive function calls merge into one assistant turn, each output
/// becomes a `tool` message); freeform and namespaced tools are offered as flat functions, and
/// [`tool_aliases`] says how the answer calls them back.
/// Reasoning items, built-in tools and `previous_response_id` cannot be served by a Chat upstream.
pub fn request_to_chat(body: &Value) -> Result<Value, WireError> {
    let o = obj(F, body, "request")?;
    if o.get("previous_response_id").is_some_and(|v| !v.is_null()) {
        return Err(WireError::unsupported(
            F,
            "previous_response_id",
            "the gateway keeps no conversation state",
        ));
    }
    let mut out = Obj::new();
    json::copy(o, "model", &mut out, "model");
    let mut messages = Vec::new();
    if let Some(i) = opt_str(F, o, "instructions")? {
        messages.push(json!({ "role": "system", "content": i }));
    }
    let (tools, aliases) = tools::offered(o)?;
    match o.get("input") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => messages.push(json!({ "role": "user", "content": s })),
        Some(Value::Array(items)) => {
            for item in items {
                input_item(item, &aliases, &mut messages)?;
            }
        }
        Some(_) => return Err(WireError::malformed(F, "input", "expected a string or items")),
    }
    out.insert("messages".into(), Value::Array(hoist_system(messages)));
    if let Some(n) = json::opt_u64(F, o, "max_output_tokens")? {
        out.insert("max_tokens".into(), json!(n));
    }
    json::copy(o, "temperature", &mut out, "temperature");
    json::copy(o, "top_p", &mut out, "top_p");
    json::copy(o, "parallel_tool_calls", &mut out, "parallel_tool_calls");
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = tools::choice(o, &aliases)? {
            out.insert("tool_choice".into(), choice);
        }
    }
    text_format(o, &mut out)?;
    set_stream(&mut out, json::opt_bool(F, o, "stream")?.unwrap_or(false));
    Ok(Value::Object(out))
}

/// How the request's freeform and namespaced tools are offered to a Chat model (see
/// [`ToolAlias`]); a request that cannot be read has none.
pub fn tool_aliases(body: &Value) -> Vec<ToolAlias> {
    body.as_object().and_then(|o| tools::offered(o).ok()).map(|(_, aliases)| aliases).unwrap_or_default()
}

fn input_item(item: &Value, aliases: &[ToolAlias], out: &mut Vec<Value>) -> Result<(), WireError> {
    let o = obj(F, item, "input item")?;
    let kind = opt_str(F, o, "type")?.unwrap_or("message");
    match kind {
        "message" => message(o, out),
        "function_call" | "custom_tool_call" => {
            let arguments = match kind {
                "function_call" => json::req_str(F, o, "arguments")?.to_string(),
                _ => json!({ CUSTOM_INPUT: json::req_str(F, o, "input")? }).to_string(),
            };
            let name = tools::chat_name(aliases, opt_str(F, o, "namespace")?, json::req_str(F, o, "name")?);
            call(out, json::req_str(F, o, "call_id")?, &name, arguments);
            Ok(())
        }
        "function_call_output" | "custom_tool_call_output" => {
            let (id, _) = ids::from_agent(json::req_str(F, o, "call_id")?);
            let content = output_text(o.get("output"))?;
            out.push(json!({ "role": "tool", "tool_call_id": id, "content": content }));
            Ok(())
        }
        // Reasoning (encrypted for OpenAI only), web searches and the like: nothing a Chat
        // upstream could read.
        _ => Ok(()),
    }
}

fn message(o: &Obj, out: &mut Vec<Value>) -> Result<(), WireError> {
    let role = match json::req_str(F, o, "role")? {
        "developer" | "system" => "system",
        r @ ("user" | "assistant") => r,
        other => return Err(WireError::malformed(F, "message role", format!("unknown role {other:?}"))),
    };
    let parts = match o.get("content") {
        Some(Value::String(s)) => {
            out.push(json!({ "role": role, "content": s }));
            return Ok(());
        }
        Some(Value::Array(parts)) => parts,
        _ => return Err(WireError::malformed(F, "message content", "expected a string or parts")),
    };
    let mut chat_parts = Vec::new();
    for p in parts {
        let p = obj(F, p, "content part")?;
        match json::req_str(F, p, "type")? {
            "input_text" | "output_text" | "text" => {
                chat_parts.push(json!({ "type": "text", "text": json::req_str(F, p, "text")? }))
            }
            "refusal" => chat_parts.push(json!({ "type": "text", "text": json::req_str(F, p, "refusal")? })),
            "input_image" => {
                let url = json::req_str(F, p, "image_url")?;
                chat_parts.push(json!({ "type": "image_url", "image_url": { "url": url } }));
            }
            _ => {} // files and audio have no Chat part every server takes
        }
    }
    let all_text = chat_parts.iter().all(|p| p["type"] == "text");
    let content = if all_text && (role != "user" || chat_parts.len() == 1) {
        json!(chat_parts.iter().filter_map(|p| p["text"].as_str()).collect::<String>())
    } else {
        Value::Array(chat_parts)
    };
    out.push(json!({ "role": role, "content": content }));
    Ok(())
}

/// Appends a tool call to the assistant turn in progress, or starts one.
fn call(out: &mut Vec<Value>, call_id: &str, name: &str, arguments: String) {
    let (id, extra) = ids::from_agent(call_id);
    let mut c = json!({ "id": id, "type": "function", "function": { "name": name, "arguments": arguments } });
    if let Some(x) = extra {
        c["extra_content"] = x;
    }
    match out.last_mut().filter(|m| m["role"] == "assistant") {
        Some(m) => match m["tool_calls"].as_array_mut() {
            Some(calls) => calls.push(c),
            None => m["tool_calls"] = json!([c]),
        },
        None => out.push(json!({ "role": "assistant", "content": null, "tool_calls": [c] })),
    }
}

/// A function call's output: a string, or content items whose text is joined.
fn output_text(output: Option<&Value>) -> Result<String, WireError> {
    match output {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(items)) => {
            Ok(items.iter().filter_map(|i| i["text"].as_str()).collect::<Vec<_>>().join("\n"))
        }
        _ => Err(WireError::malformed(F, "output", "expected a string or content items")),
    }
}

/// `text.format` (structured output) as Chat's `response_format`.
fn text_format(o: &Obj, out: &mut Obj) -> Result<(), WireError> {
    let Some(format) = o.get("text").and_then(|t| t.get("format")).filter(|f| !f.is_null()) else {
        return Ok(());
    };
    let f = obj(F, format, "text.format")?;
    let mapped = match json::req_str(F, f, "type")? {
        "json_schema" => {
            let mut schema = json!({ "name": opt_str(F, f, "name")?.unwrap_or("output"), "schema": f.get("schema").cloned().unwrap_or(json!({})) });
            json::copy(f, "strict", schema.as_object_mut().expect("object"), "strict");
            json!({ "type": "json_schema", "json_schema": schema })
        }
        "json_object" => json!({ "type": "json_object" }),
        _ => return Ok(()),
    };
    out.insert("response_format".into(), mapped);
    Ok(())
}
