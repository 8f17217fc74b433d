//! A Gemini request as an OpenAI Chat request.

use super::signature_extra;
use crate::chat::set_stream;
use crate::json::{self, either, obj, Obj};
use crate::{Format, WireError};
use serde_json::{json, Value};

const F: Format = Format::Gemini;

/// Translates a `generateContent` body; `model` and `stream` come from the URL
/// (`models/{model}:streamGenerateContent`). Function calls keep their ids (ids are made from
/// positions when absent, and responses without ids pair with the oldest open call of their
/// name); a part's `thoughtSignature` travels as the tool call's
/// `extra_content.google.thought_signature`. Thought parts, code execution, non-image files and
/// built-in tools (search, code execution) have no Chat equivalent and are dropped.
pub fn request_to_chat(body: &Value, model: Option<&str>, stream: bool) -> Result<Value, WireError> {
    let o = obj(F, body, "request")?;
    let mut out = Obj::new();
    if let Some(m) = model.or_else(|| o.get("model").and_then(Value::as_str)) {
        out.insert("model".into(), json!(m.strip_prefix("models/").unwrap_or(m)));
    }
    let mut messages = Vec::new();
    if let Some(system) = either(o, "systemInstruction", "system_instruction") {
        let text = match system {
            Value::String(s) => s.clone(),
            v => texts(parts(v, "systemInstruction")?)?,
        };
        messages.push(json!({ "role": "system", "content": text }));
    }
    let contents = match o.get("contents") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(c)) => c,
        Some(_) => return Err(WireError::malformed(F, "contents", "expected an array")),
    };
    let mut open: Vec<(String, String)> = Vec::new();
    for (turn, content) in contents.iter().enumerate() {
        let c = obj(F, content, "content")?;
        match json::opt_str(F, c, "role")?.unwrap_or("user") {
            "model" => model_turn(turn, parts(content, "content")?, &mut open, &mut messages)?,
            _ => user_turn(parts(content, "content")?, &mut open, &mut messages)?,
        }
    }
    out.insert("messages".into(), Value::Array(messages));
    tools(o, &mut out)?;
    if let Some(config) = either(o, "generationConfig", "generation_config") {
        generation_config(obj(F, config, "generationConfig")?, &mut out)?;
    }
    set_stream(&mut out, stream);
    Ok(Value::Object(out))
}

fn parts<'a>(content: &'a Value, what: &str) -> Result<&'a [Value], WireError> {
    match content.get("parts") {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(p)) => Ok(p),
        Some(_) => Err(WireError::malformed(F, what, "parts is not an array")),
    }
}

fn texts(parts: &[Value]) -> Result<String, WireError> {
    let mut text = String::new();
    for p in parts {
        if let Some(t) = obj(F, p, "part")?.get("text") {
            text.push_str(
                t.as_str().ok_or_else(|| WireError::malformed(F, "part text", "expected a string"))?,
            );
        }
    }
    Ok(text)
}

fn model_turn(
    turn: usize,
    parts: &[Value],
    open: &mut Vec<(String, String)>,
    out: &mut Vec<Value>,
) -> Result<(), WireError> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let p = obj(F, p, "part")?;
        if let Some(call) = either(p, "functionCall", "function_call") {
            let call = obj(F, call, "functionCall")?;
            let name = json::req_str(F, call, "name")?;
            let id = json::opt_str(F, call, "id")?
                .map(str::to_string)
                .unwrap_or_else(|| format!("call_{turn}_{i}"));
            let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
            let mut c = json!({ "id": id, "type": "function", "function": { "name": name, "arguments": args.to_string() } });
            if let Some(sig) = either(p, "thoughtSignature", "thought_signature").and_then(Value::as_str) {
                c["extra_content"] = signature_extra(sig);
            }
            open.push((name.to_string(), id));
            calls.push(c);
        } else if let Some(t) = p.get("text").filter(|_| p.get("thought") != Some(&Value::Bool(true))) {
            text.push_str(
                t.as_str().ok_or_else(|| WireError::malformed(F, "part text", "expected a string"))?,
            );
        }
    }
    let mut m = json!({ "role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) } });
    if !calls.is_empty() {
        m["tool_calls"] = Value::Array(calls);
    }
    out.push(m);
    Ok(())
}

fn user_turn(
    parts: &[Value],
    open: &mut Vec<(String, String)>,
    out: &mut Vec<Value>,
) -> Result<(), WireError> {
    let mut chat_parts = Vec::new();
    for p in parts {
        let p = obj(F, p, "part")?;
        if let Some(r) = either(p, "functionResponse", "function_response") {
            out.push(function_response(obj(F, r, "functionResponse")?, open)?);
        } else if let Some(t) = p.get("text") {
            let t = t.as_str().ok_or_else(|| WireError::malformed(F, "part text", "expected a string"))?;
            chat_parts.push(json!({ "type": "text", "text": t }));
        } else if let Some(d) = either(p, "inlineData", "inline_data") {
            let d = obj(F, d, "inlineData")?;
            let mime = either(d, "mimeType", "mime_type")
                .and_then(Value::as_str)
                .unwrap_or("application/octet-stream");
            if mime.starts_with("image/") {
                let data = json::req_str(F, d, "data")?;
                chat_parts.push(json!({ "type": "image_url", "image_url": { "url": format!("data:{mime};base64,{data}") } }));
            }
        } else if let Some(d) = either(p, "fileData", "file_data") {
            let d = obj(F, d, "fileData")?;
            let mime = either(d, "mimeType", "mime_type").and_then(Value::as_str).unwrap_or_default();
            if let (true, Some(uri)) =
                (mime.starts_with("image/"), either(d, "fileUri", "file_uri").and_then(Value::as_str))
            {
                chat_parts.push(json!({ "type": "image_url", "image_url": { "url": uri } }));
            }
        }
    }
    if !chat_parts.is_empty() {
        let content = if chat_parts.len() == 1 && chat_parts[0]["type"] == "text" {
            chat_parts[0]["text"].clone()
        } else {
            Value::Array(chat_parts)
        };
        out.push(json!({ "role": "user", "content": content }));
    }
    Ok(())
}

fn function_response(r: &Obj, open: &mut Vec<(String, String)>) -> Result<Value, WireError> {
    let name = json::req_str(F, r, "name")?;
    let at = match json::opt_str(F, r, "id")? {
        Some(id) => open.iter().position(|(_, i)| i == id),
        None => open.iter().position(|(n, _)| n == name),
    };
    // An answer to a call the history never showed: Chat upstreams refuse an unpaired tool message.
    let at = at.ok_or_else(|| {
        WireError::malformed(F, "functionResponse", format!("answers no open call of {name:?}"))
    })?;
    let id = open.remove(at).1;
    let response = r.get("response").cloned().unwrap_or(Value::Null);
    let content = match response.as_object() {
        Some(o) if o.len() == 1 && o.get("output").is_some_and(Value::is_string) => {
            o["output"].as_str().unwrap_or_default().to_string()
        }
        _ => response.to_string(),
    };
    Ok(json!({ "role": "tool", "tool_call_id": id, "content": content }))
}

fn tools(o: &Obj, out: &mut Obj) -> Result<(), WireError> {
    let mut tools = Vec::new();
    for t in json::opt_array(F, o, "tools")? {
        let t = obj(F, t, "tool")?;
        let decls = match either(t, "functionDeclarations", "function_declarations") {
            None => continue, // built-in tools: search, code execution, URL context
            Some(Value::Array(d)) => d,
            Some(_) => return Err(WireError::malformed(F, "functionDeclarations", "expected an array")),
        };
        for d in decls {
            let d = obj(F, d, "functionDeclaration")?;
            let schema = match either(d, "parametersJsonSchema", "parameters_json_schema") {
                Some(s) => lowercase_types(s),
                None => either(d, "parameters", "parameters")
                    .map(lowercase_types)
                    .unwrap_or_else(|| json!({ "type": "object", "properties": {} })),
            };
            let mut function = json!({ "name": json::req_str(F, d, "name")?, "parameters": schema });
            json::copy(d, "description", function.as_object_mut().expect("object"), "description");
            tools.push(json!({ "type": "function", "function": function }));
        }
    }
    if tools.is_empty() {
        return Ok(());
    }
    out.insert("tools".into(), Value::Array(tools));
    let config = either(o, "toolConfig", "tool_config")
        .and_then(|c| either(c.as_object()?, "functionCallingConfig", "function_calling_config"));
    let Some(config) = config else { return Ok(()) };
    let config = obj(F, config, "functionCallingConfig")?;
    let allowed = either(config, "allowedFunctionNames", "allowed_function_names").and_then(Value::as_array);
    let choice = match json::opt_str(F, config, "mode")?.unwrap_or("AUTO") {
        "ANY" => match allowed.map(Vec::as_slice) {
            Some([only]) => json!({ "type": "function", "function": { "name": only } }),
            _ => json!("required"),
        },
        "NONE" => json!("none"),
        _ => json!("auto"),
    };
    out.insert("tool_choice".into(), choice);
    Ok(())
}

/// Gemini's OpenAPI-style schemas spell types in capitals (`OBJECT`); JSON Schema does not.
fn lowercase_types(schema: &Value) -> Value {
    match schema {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("type", Value::String(t)) => (k.clone(), json!(t.to_ascii_lowercase())),
                    _ => (k.clone(), lowercase_types(v)),
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(lowercase_types).collect()),
        v => v.clone(),
    }
}

fn generation_config(c: &Obj, out: &mut Obj) -> Result<(), WireError> {
    let pairs = [
        ("temperature", "temperature", "temperature"),
        ("topP", "top_p", "top_p"),
        ("maxOutputTokens", "max_output_tokens", "max_tokens"),
        ("seed", "seed", "seed"),
        ("presencePenalty", "presence_penalty", "presence_penalty"),
        ("frequencyPenalty", "frequency_penalty", "frequency_penalty"),
    ];
    for (camel, snake, to) in pairs {
        if let Some(v) = either(c, camel, snake) {
            out.insert(to.into(), v.clone());
        }
    }
    if let Some(stop) = either(c, "stopSequences", "stop_sequences") {
        out.insert("stop".into(), json!(json::strings(F, stop, "stopSequences")?));
    }
    if either(c, "responseMimeType", "response_mime_type").and_then(Value::as_str) == Some("application/json")
    {
        // Gemini CLI 0.61 writes even its JSON schemas with capitalised types (`OBJECT`).
        let schema = either(c, "responseJsonSchema", "response_json_schema")
            .or_else(|| either(c, "responseSchema", "response_schema"))
            .map(lowercase_types);
        let format = match schema {
            Some(schema) => {
                json!({ "type": "json_schema", "json_schema": { "name": "response", "schema": schema } })
            }
            None => json!({ "type": "json_object" }),
        };
        out.insert("response_format".into(), format);
    }
    Ok(())
}
