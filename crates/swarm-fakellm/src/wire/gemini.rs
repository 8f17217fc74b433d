//! Gemini (`/v1beta/models/{model}:generateContent`, `:streamGenerateContent`, `:countTokens`):
//! reading requests with the API's checks (contents and parts, function responses right after
//! their calls and as many, thought signatures kept on this turn's function calls), writing
//! candidates, `alt=sse` streams and `google.rpc.Status` errors (429s with `QuotaFailure` and
//! `RetryInfo` details, as Google sends them).

use serde_json::{json, Value};

use super::{pieces, Failure, Meta, Tokens};
use crate::request::{json_len, Entry, Request};
use crate::scenario::LimitKind;
use crate::tools::OfferedTool;
use crate::turn::Answer;

/// Google's 400 message layout for a field violation.
pub fn invalid(message: &str) -> String {
    format!("* GenerateContentRequest.{message}\n")
}

/// The data fields a part must have exactly one of.
const PART_DATA: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
];

/// Reads a generateContent body for `model` (from the path).
pub fn parse(value: &Value, model: &str, stream: bool) -> Result<Request, String> {
    let contents = contents(value)?;
    let mut entries = Vec::with_capacity(contents.len());
    for (i, content) in contents.iter().enumerate() {
        entries.push(check_content(i, content)?);
    }
    check_function_turns(contents)?;
    check_thought_signatures(contents, &entries)?;
    let config = value.get("generationConfig");
    let wants_json = config.and_then(|c| c.get("responseMimeType")).is_some_and(|m| m == "application/json");
    let schema = config.and_then(|c| c.get("responseJsonSchema").or_else(|| c.get("responseSchema")));
    let request = Request {
        model: model.to_string(),
        stream,
        include_usage: true,
        tools: declarations(value.get("tools"))?,
        prompt_bytes: json_len([value.get("contents"), value.get("systemInstruction")]),
        json_schema: if wants_json {
            Some(schema.cloned().unwrap_or(json!({ "type": "object" })))
        } else {
            None
        },
        ..Request::default()
    };
    Ok(request.with_conversation(&entries))
}

/// Reads a countTokens body: `contents`, or a whole `generateContentRequest`.
pub fn parse_count(value: &Value, model: &str) -> Result<Request, String> {
    match value.get("generateContentRequest") {
        Some(inner) => parse(inner, model, false),
        None => parse(value, model, false),
    }
}

fn contents(value: &Value) -> Result<&[Value], String> {
    match value.get("contents").and_then(Value::as_array) {
        Some(contents) if !contents.is_empty() => Ok(contents),
        _ => Err(invalid("contents: contents is not specified")),
    }
}

fn parts(content: &Value) -> &[Value] {
    content.get("parts").and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn has(content: &Value, field: &str) -> usize {
    parts(content).iter().filter(|part| part.get(field).is_some()).count()
}

/// Checks one content and classifies it (a user content of function responses is a tool result).
fn check_content(i: usize, content: &Value) -> Result<Entry, String> {
    let role = content.get("role").and_then(Value::as_str).unwrap_or("user");
    if role != "user" && role != "model" {
        return Err("Please use a valid role: user, model.".to_string());
    }
    if parts(content).is_empty() {
        return Err(invalid(&format!("contents[{i}].parts: contents.parts must not be empty.")));
    }
    for (j, part) in parts(content).iter().enumerate() {
        let at = format!("contents[{i}].parts[{j}]");
        if PART_DATA.iter().filter(|field| part.get(**field).is_some()).count() != 1 {
            return Err(invalid(&format!(
                "{at}.data: required oneof field 'data' must have one initialized field"
            )));
        }
        for (field, name) in [("functionCall", "function_call"), ("functionResponse", "function_response")] {
            if part
                .get(field)
                .is_some_and(|f| f.get("name").and_then(Value::as_str).is_none_or(str::is_empty))
            {
                return Err(invalid(&format!("{at}.{name}.name: Name cannot be empty.")));
            }
        }
    }
    Ok(match role {
        "model" => Entry::Model,
        _ if has(content, "functionResponse") > 0 => Entry::Other,
        _ => {
            let texts: Vec<&str> = parts(content).iter().filter_map(|p| p.get("text")?.as_str()).collect();
            Entry::User(texts.join("\n"))
        }
    })
}

/// Function responses come right after the model turn that called, one per call.
fn check_function_turns(contents: &[Value]) -> Result<(), String> {
    for (i, content) in contents.iter().enumerate() {
        let responses = has(content, "functionResponse");
        if responses == 0 {
            continue;
        }
        let calls = i.checked_sub(1).map_or(0, |p| has(&contents[p], "functionCall"));
        if calls == 0 {
            return Err(
                "Please ensure that function response turn comes immediately after a function call turn."
                    .to_string(),
            );
        }
        if calls != responses {
            return Err(
                "Please ensure that the number of function response parts is equal to the number of \
                        function call parts of the function call turn."
                    .to_string(),
            );
        }
    }
    Ok(())
}

/// In the current turn (after the last user text), each model step's first function call must
/// carry the `thoughtSignature` the model sent (Gemini 3 refuses it otherwise; clients that never
/// got one send `skip_thought_signature_validator`).
fn check_thought_signatures(contents: &[Value], entries: &[Entry]) -> Result<(), String> {
    let current = entries.iter().rposition(|e| matches!(e, Entry::User(_))).map_or(0, |at| at + 1);
    for content in &contents[current..] {
        if content.get("role").and_then(Value::as_str) != Some("model") {
            continue;
        }
        let first_call =
            parts(content).iter().enumerate().find(|(_, part)| part.get("functionCall").is_some());
        if let Some((j, part)) = first_call {
            if part.get("thoughtSignature").and_then(Value::as_str).is_none_or(str::is_empty) {
                let name = part["functionCall"]["name"].as_str().unwrap_or_default();
                return Err(format!(
                    "Function call is missing a thought_signature in functionCall parts. This is required for \
                     tools to work correctly, and missing thought_signature may lead to degraded model \
                     performance. Additional data, function call `default_api:{name}` , position {}. Please \
                     refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
                    j + 1
                ));
            }
        }
    }
    Ok(())
}

/// The function declarations of `tools` (schemas in `parametersJsonSchema` or `parameters`).
fn declarations(tools: Option<&Value>) -> Result<Vec<OfferedTool>, String> {
    let mut out = Vec::new();
    for (i, tool) in tools.and_then(Value::as_array).into_iter().flatten().enumerate() {
        let decls = tool.get("functionDeclarations").and_then(Value::as_array);
        for (j, decl) in decls.into_iter().flatten().enumerate() {
            let name =
                decl.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).ok_or_else(|| {
                    invalid(&format!("tools[{i}].function_declarations[{j}].name: Name cannot be empty."))
                })?;
            let schema = decl.get("parametersJsonSchema").or_else(|| decl.get("parameters"));
            out.push(OfferedTool::function(name, schema.cloned().unwrap_or(Value::Null)));
        }
    }
    Ok(out)
}

/// The signature the fake puts on its function calls (base64, like Google's).
fn signature(meta: &Meta) -> String {
    base64(format!("fake-llm thought {}", meta.seq).as_bytes())
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            let c = if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' };
            out.push(c);
        }
    }
    out
}

/// One streamed (or the whole) response object.
fn chunk(meta: &Meta, parts: Value, finish: bool, tokens: Option<Tokens>) -> Value {
    let mut candidate = json!({ "content": { "role": "model", "parts": parts }, "index": 0 });
    if finish {
        candidate["finishReason"] = json!("STOP");
    }
    let mut out = json!({ "candidates": [candidate], "modelVersion": meta.model, "responseId": format!("fake-{}", meta.seq) });
    if let Some(t) = tokens {
        out["usageMetadata"] = json!({ "promptTokenCount": t.input, "candidatesTokenCount": t.output, "totalTokenCount": t.input + t.output });
    }
    out
}

fn call_part(meta: &Meta, answer: &Answer) -> Option<Value> {
    let Answer::ToolCall(call) = answer else { return None };
    Some(
        json!({ "functionCall": { "name": call.name, "args": call.arguments }, "thoughtSignature": signature(meta) }),
    )
}

/// A non-streamed response.
pub fn response(meta: &Meta, answer: &Answer, tokens: Tokens) -> Value {
    let part = match answer {
        Answer::Text(text) => json!({ "text": text }),
        Answer::ToolCall(_) => call_part(meta, answer).unwrap_or_default(),
    };
    chunk(meta, json!([part]), true, Some(tokens))
}

/// The `alt=sse` stream: text in pieces (the last chunk with `finishReason` and usage), or the
/// function call whole in one chunk.
pub fn frames(meta: &Meta, answer: &Answer, tokens: Tokens) -> Vec<String> {
    let chunks = match answer {
        Answer::Text(text) => {
            let texts: Vec<&str> = pieces(text, 16).collect();
            let last = texts.len().saturating_sub(1);
            texts
                .iter()
                .enumerate()
                .map(|(n, t)| chunk(meta, json!([{ "text": t }]), n == last, (n == last).then_some(tokens)))
                .collect()
        }
        Answer::ToolCall(_) => vec![response(meta, answer, tokens)],
    };
    let chunks = if chunks.is_empty() { vec![response(meta, answer, tokens)] } else { chunks };
    chunks.iter().map(|c| format!("data: {c}\r\n\r\n")).collect()
}

fn status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "NOT_IMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ if code < 500 => "FAILED_PRECONDITION",
        _ => "INTERNAL",
    }
}

fn status(code: u16, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message, "status": status_name(code) } })
}

/// The HTTP status and `google.rpc.Status` body for a failure.
pub fn error(failure: &Failure) -> (u16, Value) {
    match failure {
        Failure::BadRequest(message) => (400, status(400, message)),
        Failure::ModelNotFound(model) => (
            404,
            status(
                404,
                &format!(
                    "models/{model} is not found for API version v1beta, or is not supported for generateContent. \
                     Call ListModels to see the list of available models and their supported methods."
                ),
            ),
        ),
        Failure::RateLimited { model, retry_after, message, kind } => (429, quota_body(model, *retry_after, message.as_deref(), *kind)),
        Failure::Error { status: code, message } => (*code, status(*code, message)),
        Failure::Unavailable => (503, status(503, "fake-llm is shutting down")),
    }
}

/// RESOURCE_EXHAUSTED with a `QuotaFailure` (per minute with `RetryInfo`, or per day without).
fn quota_body(model: &str, retry_after: u64, message: Option<&str>, kind: LimitKind) -> Value {
    let per = if kind == LimitKind::Quota { "PerDay" } else { "PerMinute" };
    let metric = "generativelanguage.googleapis.com/generate_content_free_tier_requests";
    let retry =
        if kind == LimitKind::Rate { format!("\nPlease retry in {retry_after}s.") } else { String::new() };
    let default = format!(
        "You exceeded your current quota, please check your plan and billing details. For more information on \
         this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. \n* Quota exceeded for metric: \
         {metric}, limit: 10, model: {model}{retry}"
    );
    let mut body = status(429, message.unwrap_or(&default));
    let mut details = vec![
        json!({ "@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
            "quotaMetric": metric, "quotaId": format!("GenerateRequests{per}PerProjectPerModel-FreeTier"),
            "quotaDimensions": { "location": "global", "model": model }, "quotaValue": "10" }] }),
        json!({ "@type": "type.googleapis.com/google.rpc.Help", "links": [{
            "description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits" }] }),
    ];
    if kind == LimitKind::Rate {
        details.push(json!({ "@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{retry_after}s") }));
    }
    body["error"]["details"] = json!(details);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(contents: Value) -> Result<Request, String> {
        parse(&json!({ "contents": contents }), "m", true)
    }

    fn call(signature: Option<&str>) -> Value {
        let mut part = json!({ "functionCall": { "name": "write_file", "args": {} } });
        if let Some(s) = signature {
            part["thoughtSignature"] = json!(s);
        }
        json!({ "role": "model", "parts": [part] })
    }

    fn response() -> Value {
        json!({ "role": "user", "parts": [{ "functionResponse": { "name": "write_file", "response": { "output": "ok" } } }] })
    }

    #[test]
    fn function_turns_and_signatures() {
        let user = json!({ "role": "user", "parts": [{ "text": "ctx" }, { "text": "go\n" }] });
        let ok = ask(json!([user, call(Some("c2ln")), response()])).unwrap();
        assert_eq!((ok.turn, ok.user_messages.clone()), (1, vec!["ctx\ngo\n".to_string()]));
        let unsigned = ask(json!([user, call(None), response()])).unwrap_err();
        assert!(
            unsigned.contains("missing a thought_signature") && unsigned.contains("write_file"),
            "{unsigned}"
        );
        assert!(ask(json!([user, call(Some("skip_thought_signature_validator")), response()])).is_ok());
        // Earlier turns (before the last user text) are not checked.
        assert!(ask(json!([user, call(None), response(), user])).is_ok());
        let stray = ask(json!([user, response()])).unwrap_err();
        assert!(stray.contains("immediately after a function call turn"), "{stray}");
    }

    #[test]
    fn parts_and_contents() {
        assert_eq!(
            ask(json!([])).unwrap_err(),
            "* GenerateContentRequest.contents: contents is not specified\n"
        );
        let empty = ask(json!([{ "role": "user", "parts": [] }])).unwrap_err();
        assert!(empty.contains("contents[0].parts: contents.parts must not be empty"), "{empty}");
        let no_data = ask(json!([{ "role": "user", "parts": [{ "thought": true }] }])).unwrap_err();
        assert!(no_data.contains("required oneof field 'data'"), "{no_data}");
        assert!(ask(json!([{ "role": "tool", "parts": [{ "text": "x" }] }])).is_err());
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b"fake-llm"), "ZmFrZS1sbG0=");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
