//! Helpers shared by the integration tests: contexts, stream drivers and the checks a real
//! provider would make of a translated request.
#![allow(dead_code)]

use serde_json::{json, Value};
use swarm_wire::sse::{SseDecoder, SseEvent};
use swarm_wire::{Call, Context, Format, StreamConverter, Translator};

pub fn call(id: &str) -> Call {
    Call { model: None, stream: None, id: id.to_string(), created: 1_700_000_000 }
}

pub fn translator(agent: Format, upstream: Format) -> Translator {
    Translator::new(agent, upstream).unwrap()
}

/// Translates `body` and returns the upstream body and context.
pub fn request(agent: Format, upstream: Format, body: &Value) -> (Value, Context) {
    let t = translator(agent, upstream).request(body, call("t1")).unwrap();
    (t.body, t.ctx)
}

pub fn ctx(agent: Format, upstream: Format, model: &str, stream: bool) -> Context {
    Context {
        agent,
        upstream,
        model: model.to_string(),
        stream,
        include_usage: true,
        id: "t1".to_string(),
        created: 1_700_000_000,
        tool_aliases: Vec::new(),
    }
}

/// Feeds `bytes` to `conv` cut at `cuts` (byte offsets), then finishes.
pub fn run_split(conv: &mut StreamConverter, bytes: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        let cut = cut.clamp(at, bytes.len());
        out.extend(conv.feed(&bytes[at..cut]).unwrap());
        at = cut;
    }
    out.extend(conv.finish().unwrap());
    out
}

/// Runs a stream through a fresh converter whole, one byte at a time, and cut at every third
/// byte; asserts the three outputs are identical and returns it.
pub fn run_every_way(t: &Translator, ctx: &Context, bytes: &[u8]) -> Vec<u8> {
    let whole = run_split(&mut t.stream(ctx), bytes, &[]);
    let singles: Vec<usize> = (1..bytes.len()).collect();
    assert_eq!(run_split(&mut t.stream(ctx), bytes, &singles), whole, "byte-by-byte differs");
    let thirds: Vec<usize> = (1..bytes.len()).step_by(3).collect();
    assert_eq!(run_split(&mut t.stream(ctx), bytes, &thirds), whole, "every-third differs");
    whole
}

pub fn events(bytes: &[u8]) -> Vec<SseEvent> {
    let mut d = SseDecoder::new(Format::Chat);
    let mut out = d.feed(bytes).unwrap();
    out.extend(d.finish().unwrap());
    out
}

/// The JSON of every event (skipping `[DONE]`).
pub fn datas(bytes: &[u8]) -> Vec<Value> {
    events(bytes)
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect()
}

/// Event names (`event:` lines) in order.
pub fn names(bytes: &[u8]) -> Vec<String> {
    events(bytes).iter().map(|e| e.event.clone().unwrap_or_default()).collect()
}

/// `data:` SSE body from JSON values (OpenAI Chat and Gemini upstreams).
pub fn sse_data(values: &[Value], done: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        out.extend_from_slice(format!("data: {v}\n\n").as_bytes());
    }
    if done {
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
    out
}

/// `event:`+`data:` SSE body (Anthropic upstreams); the event name is the value's `type`.
pub fn sse_named(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        out.extend_from_slice(format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap()).as_bytes());
    }
    out
}

/// A chat chunk with `delta` and an optional finish reason.
pub fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({ "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "up", "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
}

pub fn usage_chunk(prompt: u64, completion: u64) -> Value {
    json!({ "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "up", "choices": [], "usage": { "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion } })
}

/// What an OpenAI-compatible server refuses: unknown roles, a tool message that answers no call
/// of the assistant turn before it, a call left unanswered before the conversation goes on,
/// arguments that are not JSON.
pub fn assert_chat_acceptable(body: &Value) {
    let messages = body["messages"].as_array().expect("messages");
    let mut open: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().expect("role");
        match role {
            "tool" => {
                let id = m["tool_call_id"].as_str().expect("tool_call_id");
                let at = open
                    .iter()
                    .position(|o| o == id)
                    .unwrap_or_else(|| panic!("message {i}: tool result {id} answers no open call"));
                open.remove(at);
                assert!(m["content"].is_string(), "message {i}: tool content must be text");
            }
            _ => {
                assert!(open.is_empty(), "message {i}: calls {open:?} left unanswered");
                assert!(["system", "user", "assistant"].contains(&role), "message {i}: role {role}");
            }
        }
        if role == "assistant" {
            for c in m["tool_calls"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                let args = c["function"]["arguments"].as_str().expect("arguments are a string");
                serde_json::from_str::<Value>(args)
                    .unwrap_or_else(|e| panic!("message {i}: arguments not JSON: {e}"));
                open.push(c["id"].as_str().expect("call id").to_string());
            }
        }
    }
}

/// What Anthropic refuses: a first message not from the user, two turns of one role in a row,
/// a `tool_use` not answered by a `tool_result` at the start of the next user turn, ids outside
/// `[A-Za-z0-9_-]`, a missing `max_tokens`.
pub fn assert_anthropic_acceptable(body: &Value) {
    assert!(body["max_tokens"].as_u64().is_some(), "max_tokens");
    let messages = body["messages"].as_array().expect("messages");
    assert_eq!(messages.first().map(|m| &m["role"]), Some(&json!("user")), "first turn");
    for (i, pair) in messages.windows(2).enumerate() {
        assert_ne!(pair[0]["role"], pair[1]["role"], "turns {i} and {} share a role", i + 1);
        let (first, second) = (blocks(&pair[0]), blocks(&pair[1]));
        let uses: Vec<&str> =
            first.iter().filter(|b| b["type"] == "tool_use").map(|b| b["id"].as_str().unwrap()).collect();
        let results: Vec<&str> = second
            .iter()
            .take_while(|b| b["type"] == "tool_result")
            .map(|b| b["tool_use_id"].as_str().unwrap())
            .collect();
        let mut sorted_uses = uses.clone();
        sorted_uses.sort();
        let mut sorted_results = results.clone();
        sorted_results.sort();
        assert_eq!(sorted_uses, sorted_results, "turn {} must answer the calls of turn {i} first", i + 1);
        for id in uses {
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "id {id}");
        }
    }
}

fn blocks(m: &Value) -> Vec<Value> {
    match &m["content"] {
        Value::Array(b) => b.clone(),
        Value::String(s) => vec![json!({ "type": "text", "text": s })],
        _ => Vec::new(),
    }
}

/// What Gemini refuses: a turn of function responses that does not answer, by name and count,
/// the function calls of the model turn just before it; roles other than user and model.
pub fn assert_gemini_acceptable(body: &Value) {
    assert!(body.get("model").is_none() && body.get("stream").is_none(), "model and stream go in the URL");
    let contents = body["contents"].as_array().expect("contents");
    for (i, c) in contents.iter().enumerate() {
        assert!(["user", "model"].contains(&c["role"].as_str().unwrap()), "content {i} role");
        let parts = c["parts"].as_array().expect("parts");
        let responses: Vec<&str> =
            parts.iter().filter_map(|p| p["functionResponse"]["name"].as_str()).collect();
        if responses.is_empty() {
            continue;
        }
        let calls: Vec<&str> = contents[i - 1]["parts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["functionCall"]["name"].as_str())
            .collect();
        assert_eq!(calls.len(), responses.len(), "content {i} answers every call of content {}", i - 1);
    }
}
