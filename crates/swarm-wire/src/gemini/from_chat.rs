//! An OpenAI Chat request as a Gemini request (a Chat agent on a Gemini upstream).

use super::extra_signature;
use crate::chat::data_url;
use crate::json::{self, obj, opt_array, opt_str, Obj};
use crate::{Format, WireError};
use serde_json::{json, Value};

const F: Format = Format::Chat;

/// The signature Gemini accepts in place of a lost one.
pub const SYNTHETIC_SIGNATURE: &str = "skip_thought_signature_validator";

/// Translates a `/v1/chat/completions` body. The model and streaming go in the URL (see
/// [`super::upstream_path`]), not the body. System messages become `systemInstruction`; tool
/// messages become `functionResponse` parts named after the call they answer (a result for an
/// unknown call is an error: Gemini would refuse it); a tool call's
/// `extra_content.google.thought_signature` goes back on its part.
pub fn request_from_chat(body: &Value) -> Result<Value, WireError> {
    let o = obj(F, body, "request")?;
    let mut system = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    let mut names: Vec<(String, String)> = Vec::new();
    for m in opt_array(F, o, "messages")? {
        let m = obj(F, m, "message")?;
        let (role, parts) = match json::req_str(F, m, "role")? {
            "system" | "developer" => {
                system.push(json!({ "text": crate::chat::content_text(m.get("content"))? }));
                continue;
            }
            "user" => ("user", user_parts(m.get("content"))?),
            "assistant" => ("model", model_parts(m, &mut names)?),
            "tool" => ("user", vec![function_response(m, &names)?]),
            other => return Err(WireError::malformed(F, "message role", format!("unknown role {other:?}"))),
        };
        if parts.is_empty() {
            continue;
        }
        match contents.last_mut().filter(|c| c["role"] == role) {
            Some(last) => last["parts"].as_array_mut().expect("parts").extend(parts),
            None => contents.push(json!({ "role": role, "parts": parts })),
        }
    }
    sign_active_loop(&mut contents);
    let mut out = Obj::new();
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    out.insert("contents".into(), Value::Array(contents));
    tools(o, &mut out)?;
    let config = generation_config(o)?;
    if !config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(config));
    }
    Ok(Value::Object(out))
}

/// Gemini 3 refuses a turn whose model steps since the last prompt start with an unsigned
/// function call; Chat agents that drop `extra_content` lose the signature. Such calls get the
/// placeholder Google documents for this case, as Gemini CLI does
/// (`ensureActiveLoopHasThoughtSignatures` in `packages/core/src/core/geminiChat.ts`).
fn sign_active_loop(contents: &mut [Value]) {
    let is_prompt = |c: &Value| {
        let parts = c["parts"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        c["role"] == "user"
            && parts.iter().any(|p| p.get("text").is_some())
            && !parts.iter().any(|p| p.get("functionResponse").is_some())
    };
    let Some(start) = contents.iter().rposition(is_prompt) else { return };
    for c in contents[start..].iter_mut().filter(|c| c["role"] == "model") {
        let parts = c["parts"].as_array_mut().map(Vec::as_mut_slice).unwrap_or(&mut []);
        if let Some(first) = parts.iter_mut().find(|p| p.get("functionCall").is_some()) {
            if first.get("thoughtSignature").is_none() {
                first["thoughtSignature"] = json!(SYNTHETIC_SIGNATURE);
            }
        }
    }
}

fn user_parts(content: Option<&Value>) -> Result<Vec<Value>, WireError> {
    let parts = match content {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(vec![json!({ "text": s })]),
        Some(Value::Array(parts)) => parts,
        Some(_) => return Err(WireError::malformed(F, "content", "expected a string or parts")),
    };
    let mut out = Vec::new();
    for p in parts {
        let p = obj(F, p, "content part")?;
        match json::req_str(F, p, "type")? {
            "text" => out.push(json!({ "text": json::req_str(F, p, "text")? })),
            "image_url" => {
                let url = match p.get("image_url") {
                    Some(Value::String(s)) => s.as_str(),
                    Some(Value::Object(i)) => json::req_str(F, i, "url")?,
                    _ => return Err(WireError::malformed(F, "image_url", "missing")),
                };
                out.push(match data_url(url) {
                    Some((mime, data)) => json!({ "inlineData": { "mimeType": mime, "data": data } }),
                    None => json!({ "fileData": { "mimeType": guess_mime(url), "fileUri": url } }),
                });
            }
            other => {
                return Err(WireError::unsupported(
                    F,
                    "content part",
                    format!("{other:?} has no Gemini part"),
                ))
            }
        }
    }
    Ok(out)
}

fn guess_mime(url: &str) -> &'static str {
    let lower = url.to_ascii_lowercase();
    let path = lower.split(['?', '#']).next().unwrap_or_default();
    match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        _ => "image/jpeg",
    }
}

fn model_parts(m: &Obj, names: &mut Vec<(String, String)>) -> Result<Vec<Value>, WireError> {
    let mut parts = Vec::new();
    let text = crate::chat::content_text(m.get("content"))?;
    if !text.is_empty() {
        parts.push(json!({ "text": text }));
    }
    for call in opt_array(F, m, "tool_calls")? {
        let call = obj(F, call, "tool call")?;
        let function = obj(F, call.get("function").unwrap_or(&Value::Null), "tool call function")?;
        let (id, name) = (json::req_str(F, call, "id")?, json::req_str(F, function, "name")?);
        let args = json::arguments_object(F, &json::arguments_text(function.get("arguments")))?;
        let mut part = json!({ "functionCall": { "id": id, "name": name, "args": args } });
        if let Some(sig) = extra_signature(call.get("extra_content")) {
            part["thoughtSignature"] = json!(sig);
        }
        names.push((id.to_string(), name.to_string()));
        parts.push(part);
    }
    Ok(parts)
}

fn function_response(m: &Obj, names: &[(String, String)]) -> Result<Value, WireError> {
    let id = json::req_str(F, m, "tool_call_id")?;
    let name = names.iter().find(|(i, _)| i == id).map(|(_, n)| n.as_str());
    let name =
        name.ok_or_else(|| WireError::malformed(F, "tool message", format!("answers no tool call {id:?}")))?;
    let output = crate::chat::content_text(m.get("content"))?;
    Ok(json!({ "functionResponse": { "id": id, "name": name, "response": { "output": output } } }))
}

fn tools(o: &Obj, out: &mut Obj) -> Result<(), WireError> {
    let mut decls = Vec::new();
    for t in opt_array(F, o, "tools")? {
        let t = obj(F, t, "tool")?;
        let function = obj(F, t.get("function").unwrap_or(&Value::Null), "tool function")?;
        let mut d = json!({ "name": json::req_str(F, function, "name")? });
        if let Some(desc) = opt_str(F, function, "description")? {
            d["description"] = json!(desc);
        }
        if let Some(p) = function.get("parameters").filter(|p| !p.is_null()) {
            d["parametersJsonSchema"] = p.clone();
        }
        decls.push(d);
    }
    if decls.is_empty() {
        return Ok(());
    }
    out.insert("tools".into(), json!([{ "functionDeclarations": decls }]));
    let config = match o.get("tool_choice") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => json!({ "mode": "AUTO" }),
            "required" => json!({ "mode": "ANY" }),
            "none" => json!({ "mode": "NONE" }),
            other => return Err(WireError::malformed(F, "tool_choice", format!("unknown value {other:?}"))),
        },
        Some(c) => {
            let name = c.pointer("/function/name").and_then(Value::as_str);
            let name =
                name.ok_or_else(|| WireError::malformed(F, "tool_choice", "expected a function name"))?;
            json!({ "mode": "ANY", "allowedFunctionNames": [name] })
        }
    };
    out.insert("toolConfig".into(), json!({ "functionCallingConfig": config }));
    Ok(())
}

fn generation_config(o: &Obj) -> Result<Obj, WireError> {
    let mut c = Obj::new();
    let max = json::opt_u64(F, o, "max_completion_tokens")?.or(json::opt_u64(F, o, "max_tokens")?);
    if let Some(n) = max {
        c.insert("maxOutputTokens".into(), json!(n));
    }
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("n", "candidateCount"),
    ] {
        json::copy(o, from, &mut c, to);
    }
    if let Some(stop) = o.get("stop") {
        let stop = json::strings(F, stop, "stop")?;
        if !stop.is_empty() {
            c.insert("stopSequences".into(), json!(stop));
        }
    }
    match o.get("response_format").and_then(|f| f["type"].as_str()) {
        Some("json_schema") => {
            c.insert("responseMimeType".into(), json!("application/json"));
            if let Some(schema) = o["response_format"].pointer("/json_schema/schema") {
                c.insert("responseJsonSchema".into(), schema.clone());
            }
        }
        Some("json_object") => {
            c.insert("responseMimeType".into(), json!("application/json"));
        }
        _ => {}
    }
    Ok(c)
}
