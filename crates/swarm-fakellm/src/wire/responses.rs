//! OpenAI Responses (`/v1/responses`): reading requests (input items with their required fields,
//! every tool call answered by its output and no output without its call, as the API insists),
//! writing responses, their event stream and `response.failed` rate limits.

use serde_json::{json, Value};

use super::chat::rate_limit_body;
use super::{named_event, pieces, Failure, Meta, Tokens};
use crate::request::{content_text, json_len, Entry, Request};
use crate::tools::OfferedTool;
use crate::turn::Answer;

/// Reads a Responses body.
pub fn parse(value: &Value) -> Result<Request, String> {
    let model = value.get("model").and_then(Value::as_str).ok_or("Missing required parameter: 'model'.")?;
    let items = match value.get("input") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => vec![json!({ "type": "message", "role": "user", "content": text })],
        Some(Value::Array(items)) => items.clone(),
        Some(_) => {
            return Err(
                "Invalid type for 'input': expected one of a string or an array of input items.".to_string()
            )
        }
    };
    let mut entries = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let entry = check_item(i, item)?;
        // Items of one model turn (reasoning, message, calls) come together: one turn.
        if !(entry == Entry::Model && entries.last() == Some(&Entry::Model)) {
            entries.push(entry);
        }
    }
    check_tool_pairing(&items)?;
    let mut tools = offered(value.get("tools"))?;
    for item in items.iter().filter(|item| item["type"] == "additional_tools") {
        tools.extend(offered(item.get("tools"))?);
    }
    let request = Request {
        model: model.to_string(),
        stream: value.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: true,
        tools,
        prompt_bytes: json_len([value.get("input"), value.get("instructions")]),
        ..Request::default()
    };
    Ok(request.with_conversation(&entries))
}

/// An item's type: explicit, or `message` for the `{role, content}` shorthand.
fn item_type(item: &Value) -> &str {
    item.get("type").and_then(Value::as_str).unwrap_or(if item.get("role").is_some() {
        "message"
    } else {
        ""
    })
}

/// Checks the fields an item type requires, and classifies it. Types not listed pass unchecked.
fn check_item(i: usize, item: &Value) -> Result<Entry, String> {
    let kind = item_type(item);
    let required: &[&str] = match kind {
        "message" => &["role", "content"],
        "function_call" => &["call_id", "name", "arguments"],
        "custom_tool_call" => &["call_id", "name", "input"],
        "function_call_output" | "custom_tool_call_output" => &["call_id", "output"],
        "" => return Err(format!("Missing required parameter: 'input[{i}].type'.")),
        _ => &[],
    };
    if let Some(missing) = required.iter().find(|field| item.get(**field).is_none_or(Value::is_null)) {
        return Err(format!("Missing required parameter: 'input[{i}].{missing}'."));
    }
    if kind == "function_call" && !item["arguments"].is_string() {
        return Err(format!("Invalid type for 'input[{i}].arguments': expected a string."));
    }
    Ok(match (kind, item.get("role").and_then(Value::as_str)) {
        ("message", Some("user")) => Entry::User(content_text(&item["content"])),
        ("message", Some("assistant")) => Entry::Model,
        ("message", Some("system" | "developer")) => Entry::Other,
        ("message", Some(role)) => {
            return Err(format!(
            "Invalid value: '{role}'. Supported values are: 'assistant', 'system', 'developer', and 'user'."
        ))
        }
        ("function_call" | "custom_tool_call" | "reasoning" | "web_search_call" | "local_shell_call", _) => {
            Entry::Model
        }
        _ => Entry::Other,
    })
}

/// Every call has its output and every output its earlier call (OpenAI's own error texts).
fn check_tool_pairing(items: &[Value]) -> Result<(), String> {
    let id = |item: &Value| item.get("call_id").and_then(Value::as_str).unwrap_or_default().to_string();
    let mut calls: Vec<(String, &str)> = Vec::new();
    for item in items {
        match item_type(item) {
            "function_call" => calls.push((id(item), "function call")),
            "custom_tool_call" => calls.push((id(item), "custom tool call")),
            kind @ ("function_call_output" | "custom_tool_call_output") => {
                let call = id(item);
                if !calls.iter().any(|(c, _)| *c == call) {
                    let what =
                        if kind == "function_call_output" { "function call" } else { "custom tool call" };
                    return Err(format!("No tool call found for {what} output with call_id {call}."));
                }
            }
            _ => {}
        }
    }
    let answered = |call: &str| {
        items.iter().any(|item| {
            item_type(item).ends_with("_output") && item.get("call_id").and_then(Value::as_str) == Some(call)
        })
    };
    match calls.iter().find(|(call, _)| !answered(call)) {
        Some((call, what)) => Err(format!("No tool output found for {what} {call}.")),
        None => Ok(()),
    }
}

/// Function and custom tools, and the tools inside namespaces, by name.
fn offered(tools: Option<&Value>) -> Result<Vec<OfferedTool>, String> {
    let mut out = Vec::new();
    for (i, tool) in tools.and_then(Value::as_array).into_iter().flatten().enumerate() {
        let kind = tool.get("type").and_then(Value::as_str).unwrap_or("function");
        if kind == "namespace" {
            out.extend(offered(tool.get("tools"))?);
            continue;
        }
        if !["function", "custom"].contains(&kind) {
            continue; // web_search and other built-in tools: nothing to call by name
        }
        let name = tool
            .get("name")
            .and_then(Value::as_str)
            .ok_or(format!("Missing required parameter: 'tools[{i}].name'."))?;
        let parameters = tool.get("parameters").cloned().unwrap_or(Value::Null);
        out.push(OfferedTool { name: name.to_string(), parameters, custom: kind == "custom" });
    }
    Ok(out)
}

fn usage(tokens: Tokens) -> Value {
    json!({ "input_tokens": tokens.input, "input_tokens_details": { "cached_tokens": 0 },
            "output_tokens": tokens.output, "output_tokens_details": { "reasoning_tokens": 0 },
            "total_tokens": tokens.input + tokens.output })
}

/// The output item of an answer, complete.
fn item(meta: &Meta, answer: &Answer) -> Value {
    let seq = meta.seq;
    match answer {
        Answer::Text(text) => {
            json!({ "id": format!("msg_fake_{seq}"), "type": "message", "status": "completed",
            "role": "assistant", "content": [{ "type": "output_text", "text": text, "annotations": [] }] })
        }
        Answer::ToolCall(call) if call.custom => {
            json!({ "id": format!("ctc_fake_{seq}"), "type": "custom_tool_call",
            "status": "completed", "call_id": format!("call_fake_{seq}"), "name": call.name,
            "input": call.arguments.as_str().unwrap_or_default() })
        }
        Answer::ToolCall(call) => {
            json!({ "id": format!("fc_fake_{seq}"), "type": "function_call", "status": "completed",
            "call_id": format!("call_fake_{seq}"), "name": call.name, "arguments": call.arguments.to_string() })
        }
    }
}

fn envelope(meta: &Meta, status: &str, output: Value) -> Value {
    json!({ "id": format!("resp_fake_{}", meta.seq), "object": "response", "created_at": meta.created,
            "status": status, "model": meta.model, "output": output, "error": null, "incomplete_details": null })
}

/// A non-streamed response.
pub fn response(meta: &Meta, answer: &Answer, tokens: Tokens) -> Value {
    let mut done = envelope(meta, "completed", json!([item(meta, answer)]));
    done["usage"] = usage(tokens);
    done
}

/// The event stream: `response.created`, `response.in_progress`, the item added, its deltas
/// (text, function arguments or custom input), the item done, `response.completed` with usage.
pub fn frames(meta: &Meta, answer: &Answer, tokens: Tokens) -> Vec<String> {
    let full = item(meta, answer);
    let mut events = vec![
        ("response.created", json!({ "response": envelope(meta, "in_progress", json!([])) })),
        ("response.in_progress", json!({ "response": envelope(meta, "in_progress", json!([])) })),
    ];
    events.extend(item_events(answer, &full));
    events.push(("response.output_item.done", json!({ "output_index": 0, "item": full })));
    events.push(("response.completed", json!({ "response": response(meta, answer, tokens) })));
    sequenced(events)
}

/// `response.output_item.added` and the deltas that build the item up.
fn item_events(answer: &Answer, full: &Value) -> Vec<(&'static str, Value)> {
    let at = |mut extra: Value| {
        extra["item_id"] = full["id"].clone();
        extra["output_index"] = json!(0);
        extra
    };
    let mut added = full.clone();
    added["status"] = json!("in_progress");
    let mut events = Vec::new();
    match answer {
        Answer::Text(text) => {
            added["content"] = json!([]);
            events.push(("response.output_item.added", json!({ "output_index": 0, "item": added })));
            let part = json!({ "type": "output_text", "text": "", "annotations": [] });
            events.push(("response.content_part.added", at(json!({ "content_index": 0, "part": part }))));
            for piece in pieces(text, 16) {
                events
                    .push(("response.output_text.delta", at(json!({ "content_index": 0, "delta": piece }))));
            }
            events.push(("response.output_text.done", at(json!({ "content_index": 0, "text": text }))));
            events.push((
                "response.content_part.done",
                at(json!({ "content_index": 0, "part": full["content"][0] })),
            ));
        }
        Answer::ToolCall(call) => {
            let (field, delta, done) = if call.custom {
                ("input", "response.custom_tool_call_input.delta", "response.custom_tool_call_input.done")
            } else {
                (
                    "arguments",
                    "response.function_call_arguments.delta",
                    "response.function_call_arguments.done",
                )
            };
            let whole = full[field].as_str().unwrap_or_default().to_string();
            added[field] = json!("");
            events.push(("response.output_item.added", json!({ "output_index": 0, "item": added })));
            events.extend(pieces(&whole, 24).map(|piece| (delta, at(json!({ "delta": piece })))));
            events.push((done, at(json!({ field: whole }))));
        }
    }
    events
}

/// Numbers the events (`sequence_number`) and names them by their `type`.
fn sequenced(events: Vec<(&str, Value)>) -> Vec<String> {
    events
        .into_iter()
        .enumerate()
        .map(|(n, (kind, mut data))| {
            data["type"] = json!(kind);
            data["sequence_number"] = json!(n);
            named_event(kind, &data)
        })
        .collect()
}

/// A rate limit inside the stream, as OpenAI sends it: `response.created`, then
/// `response.failed` whose error says "Please try again in Ns." (Codex waits exactly that).
pub fn failed_frames(meta: &Meta, failure: &Failure) -> Vec<String> {
    let Failure::RateLimited { model, retry_after, message, kind } = failure else { return Vec::new() };
    let body = rate_limit_body(model, *retry_after, message.as_deref(), *kind);
    let error = json!({ "code": body["error"]["code"], "message": body["error"]["message"] });
    let mut failed = envelope(meta, "failed", json!([]));
    failed["error"] = error;
    sequenced(vec![
        ("response.created", json!({ "response": envelope(meta, "in_progress", json!([])) })),
        ("response.failed", json!({ "response": failed })),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(input: Value) -> Result<Request, String> {
        parse(&json!({ "model": "m", "input": input }))
    }

    #[test]
    fn one_model_turn_per_run_of_model_items() {
        let request = ask(json!([
            { "type": "message", "role": "developer", "content": [{ "type": "input_text", "text": "sys" }] },
            { "type": "message", "role": "user", "content": [{ "type": "input_text", "text": "go\n" }] },
            { "type": "reasoning", "summary": [] },
            { "type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}" },
            { "type": "function_call_output", "call_id": "c1", "output": "done" },
        ]))
        .unwrap();
        assert_eq!(request.turn, 1);
        assert_eq!(request.user_messages, ["go\n"]);
        assert_eq!(ask(json!("hello")).unwrap().user_messages, ["hello"]);
    }

    #[test]
    fn calls_and_outputs_must_pair() {
        let call = json!({ "type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}" });
        let output = |id: &str| json!({ "type": "function_call_output", "call_id": id, "output": "x" });
        assert_eq!(
            ask(json!([output("c9")])).unwrap_err(),
            "No tool call found for function call output with call_id c9."
        );
        assert_eq!(ask(json!([call])).unwrap_err(), "No tool output found for function call c1.");
        assert!(ask(json!([call, output("c1")])).is_ok());
        let custom =
            json!({ "type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "x" });
        assert_eq!(ask(json!([custom])).unwrap_err(), "No tool output found for custom tool call c2.");
        let bad = json!([{ "type": "function_call", "call_id": "c1", "name": "f" }]);
        assert_eq!(ask(bad).unwrap_err(), "Missing required parameter: 'input[0].arguments'.");
    }
}
