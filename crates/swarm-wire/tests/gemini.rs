//! Gemini (Gemini CLI) against a Chat upstream, and Chat agents against a Gemini upstream,
//! with Gemini 3's thought signatures kept across both directions.

mod common;

use common::*;
use serde_json::{json, Value};
use swarm_wire::{gemini, Call, Format, WireError};

fn fixture_request() -> Value {
    serde_json::from_str(include_str!("fixtures/gemini_request.json")).unwrap()
}

fn gemini_call(stream: bool) -> Call {
    Call { model: Some("gemini-3-pro-preview".into()), stream: Some(stream), id: "t1".into(), created: 1 }
}

#[test]
fn gemini_cli_request_becomes_an_acceptable_chat_request() {
    let t = translator(Format::Gemini, Format::Chat).request(&fixture_request(), gemini_call(true)).unwrap();
    let chat = t.body;
    assert_chat_acceptable(&chat);
    assert_eq!(
        (&chat["model"], &chat["stream"], &chat["stream_options"]),
        (&json!("gemini-3-pro-preview"), &json!(true), &json!({ "include_usage": true }))
    );
    let m = chat["messages"].as_array().unwrap();
    assert_eq!(m[0], json!({ "role": "system", "content": "You are Gemini CLI." }));
    assert_eq!(m[2], json!({ "role": "user", "content": "Write hello.txt saying \"hi\"" }));
    assert_eq!(m[3]["content"], "I'll write it.", "the thought is not sent back");
    let calls = m[3]["tool_calls"].as_array().unwrap();
    assert_eq!(calls[0]["id"], "write_file__call_7");
    assert_eq!(calls[0]["extra_content"], json!({ "google": { "thought_signature": "CiQB0e2Kb+/sig==" } }));
    assert_eq!(calls[1]["id"], "call_2_3", "an id made from the position");
    assert!(calls[1].get("extra_content").is_none());
    assert_eq!(
        m[4],
        json!({ "role": "tool", "tool_call_id": "write_file__call_7", "content": "Wrote hello.txt" })
    );
    assert_eq!(m[5]["tool_call_id"], "call_2_3");
    assert_eq!(m[5]["content"], r#"{"extra":1,"output":"hello.txt"}"#);
    let tools = chat["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 2);
    assert_eq!(
        tools[1]["function"]["parameters"],
        json!({ "type": "object", "properties": { "path": { "type": "string" } } })
    );
    assert_eq!(
        (&chat["tool_choice"], &chat["temperature"], &chat["max_tokens"]),
        (&json!("auto"), &json!(0), &json!(2048))
    );
}

#[test]
fn function_responses_must_answer_a_call() {
    let t = translator(Format::Gemini, Format::Chat);
    let orphan = json!({ "contents": [{ "role": "user", "parts": [{ "functionResponse": { "name": "f", "response": {} } }] }] });
    assert!(matches!(t.request(&orphan, gemini_call(false)), Err(WireError::Malformed { .. })));
    for bad in [
        json!({ "contents": {} }),
        json!({ "contents": [{ "parts": "x" }] }),
        json!({ "contents": [{ "parts": [{ "text": 1 }] }] }),
        json!({ "contents": [], "tools": [{ "functionDeclarations": {} }] }),
    ] {
        assert!(matches!(t.request(&bad, gemini_call(false)), Err(WireError::Malformed { .. })), "{bad}");
    }
    let forced = json!({ "contents": [], "tools": [{ "functionDeclarations": [{ "name": "f" }] }], "toolConfig": { "functionCallingConfig": { "mode": "ANY", "allowedFunctionNames": ["f"] } } });
    let chat = t.request(&forced, gemini_call(false)).unwrap().body;
    assert_eq!(chat["tool_choice"], json!({ "type": "function", "function": { "name": "f" } }));
    assert!(chat.get("stream").is_none());
}

#[test]
fn chat_answer_becomes_gemini_with_the_signature_on_its_part() {
    let t = translator(Format::Gemini, Format::Chat);
    let ctx = t.request(&fixture_request(), gemini_call(false)).unwrap().ctx;
    let answer = json!({ "id": "c", "choices": [{ "finish_reason": "tool_calls", "message": { "role": "assistant", "content": null, "reasoning_content": "plan",
        "tool_calls": [{ "id": "fc_1", "type": "function", "function": { "name": "read_file", "arguments": "{\"path\":\"a\"}" },
                         "extra_content": { "google": { "thought_signature": "SIG" } } }] } }],
        "usage": { "prompt_tokens": 10, "completion_tokens": 6, "completion_tokens_details": { "reasoning_tokens": 2 } } });
    let out = t.response(&answer, &ctx).unwrap();
    let c = &out["candidates"][0];
    assert_eq!(c["finishReason"], "STOP");
    assert_eq!(c["content"]["parts"][0], json!({ "text": "plan", "thought": true }));
    assert_eq!(
        c["content"]["parts"][1],
        json!({ "functionCall": { "id": "fc_1", "name": "read_file", "args": { "path": "a" } }, "thoughtSignature": "SIG" })
    );
    assert_eq!(
        out["usageMetadata"],
        json!({ "promptTokenCount": 10, "candidatesTokenCount": 4, "thoughtsTokenCount": 2, "totalTokenCount": 16 })
    );
    assert_eq!(out["modelVersion"], "gemini-3-pro-preview");
}

#[test]
fn chat_stream_becomes_gemini_chunks_with_whole_function_calls() {
    let t = translator(Format::Gemini, Format::Chat);
    let ctx = t.request(&fixture_request(), gemini_call(true)).unwrap().ctx;
    let upstream = sse_data(
        &[
            chunk(json!({ "role": "assistant", "content": "Wri" }), None),
            chunk(json!({ "content": "ting." }), None),
            chunk(
                json!({ "tool_calls": [{ "index": 0, "id": "c1", "type": "function", "function": { "name": "write_file", "arguments": "{\"file_" } , "extra_content": { "google": { "thought_signature": "S1" } } }] }),
                None,
            ),
            chunk(
                json!({ "tool_calls": [{ "index": 0, "function": { "arguments": "path\":\"x\"}" } }] }),
                None,
            ),
            chunk(json!({}), Some("tool_calls")),
            usage_chunk(70, 9),
        ],
        true,
    );
    let out = run_every_way(&t, &ctx, &upstream);
    assert!(names(&out).iter().all(String::is_empty), "Gemini events have no names");
    let d = datas(&out);
    assert_eq!(d.len(), 4);
    assert_eq!(d[0]["candidates"][0]["content"], json!({ "role": "model", "parts": [{ "text": "Wri" }] }));
    assert_eq!(
        d[2]["candidates"][0]["content"]["parts"][0],
        json!({ "functionCall": { "id": "c1", "name": "write_file", "args": { "file_path": "x" } }, "thoughtSignature": "S1" })
    );
    assert_eq!(d[3]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(d[3]["usageMetadata"]["totalTokenCount"], 79);
    assert!(String::from_utf8(out).unwrap().lines().all(|l| l.is_empty() || l.starts_with("data: {")));
}

#[test]
fn chat_agent_on_gemini_upstream_keeps_the_signature_both_ways() {
    let body = json!({
        "model": "gemini-3-pro-preview", "stream": true, "stream_options": { "include_usage": true }, "max_tokens": 99, "tool_choice": { "type": "function", "function": { "name": "read" } },
        "response_format": { "type": "json_schema", "json_schema": { "name": "o", "schema": { "type": "object" } } },
        "messages": [
            { "role": "system", "content": "sys" },
            { "role": "user", "content": [{ "type": "text", "text": "see" }, { "type": "image_url", "image_url": { "url": "https://x/y.png" } }] },
            { "role": "assistant", "content": "", "tool_calls": [{ "id": "fc-1", "type": "function", "function": { "name": "read", "arguments": "{}" }, "extra_content": { "google": { "thought_signature": "SIG1" } } }] },
            { "role": "tool", "tool_call_id": "fc-1", "content": "data" },
            { "role": "user", "content": "more" },
        ],
        "tools": [{ "type": "function", "function": { "name": "read", "parameters": { "type": "object", "properties": {} } } }],
    });
    let t = translator(Format::Chat, Format::Gemini);
    let tr = t.request(&body, call("t1")).unwrap();
    let g = &tr.body;
    assert_gemini_acceptable(g);
    assert_eq!(
        gemini::upstream_path(&tr.ctx.model, tr.ctx.stream),
        "/models/gemini-3-pro-preview:streamGenerateContent?alt=sse"
    );
    assert_eq!(g["systemInstruction"], json!({ "parts": [{ "text": "sys" }] }));
    assert_eq!(
        g["contents"][0]["parts"][1],
        json!({ "fileData": { "mimeType": "image/png", "fileUri": "https://x/y.png" } })
    );
    assert_eq!(
        g["contents"][1]["parts"][0],
        json!({ "functionCall": { "id": "fc-1", "name": "read", "args": {} }, "thoughtSignature": "SIG1" })
    );
    assert_eq!(
        g["contents"][2]["parts"][0],
        json!({ "functionResponse": { "id": "fc-1", "name": "read", "response": { "output": "data" } } })
    );
    assert_eq!(g["contents"][2]["parts"][1], json!({ "text": "more" }));
    assert_eq!(
        g["toolConfig"],
        json!({ "functionCallingConfig": { "mode": "ANY", "allowedFunctionNames": ["read"] } })
    );
    assert_eq!(
        g["generationConfig"],
        json!({ "maxOutputTokens": 99, "responseMimeType": "application/json", "responseJsonSchema": { "type": "object" } })
    );
    // An unsigned call in the active loop (since the last prompt that answers no call) gets the
    // documented placeholder; calls before that loop stay bare.
    let mut unsigned = body.clone();
    unsigned["messages"][2]["tool_calls"][0]["extra_content"] = Value::Null;
    let g2 = t.request(&unsigned, call("x")).unwrap().body;
    assert_eq!(g2["contents"][1]["parts"][0]["thoughtSignature"], gemini::SYNTHETIC_SIGNATURE);
    unsigned["messages"].as_array_mut().unwrap().extend([
        json!({ "role": "assistant", "content": "ok" }),
        json!({ "role": "user", "content": "again" }),
    ]);
    let g3 = t.request(&unsigned, call("x")).unwrap().body;
    assert!(g3["contents"][1]["parts"][0].get("thoughtSignature").is_none());
    let mut orphan = body.clone();
    orphan["messages"][3]["tool_call_id"] = json!("nope");
    assert!(matches!(t.request(&orphan, call("x")), Err(WireError::Malformed { .. })));

    // The answer's signature comes back as extra_content, whole and streamed.
    let upstream = include_bytes!("fixtures/gemini_stream_tool_call.sse");
    let out = run_every_way(&t, &tr.ctx, upstream);
    let d = datas(&out);
    let start = d.iter().find(|c| c["choices"][0]["delta"]["tool_calls"][0]["id"].is_string()).unwrap();
    let call0 = &start["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(
        (&call0["id"], &call0["extra_content"]["google"]["thought_signature"]),
        (&json!("call_0"), &json!("EtQDCtED+/sig=="))
    );
    let text: String = d.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "Let me write it.");
    assert!(d.iter().any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
    assert_eq!(d.last().unwrap()["usage"]["completion_tokens"], 30);
    let whole = json!({ "candidates": [{ "content": { "role": "model", "parts": [{ "functionCall": { "name": "f", "args": { "a": 1 } }, "thoughtSignature": "S" }] }, "finishReason": "STOP" }], "usageMetadata": { "promptTokenCount": 5, "candidatesTokenCount": 2 } });
    let out = t.response(&whole, &tr.ctx).unwrap();
    let c = &out["choices"][0];
    assert_eq!(c["message"]["tool_calls"][0]["extra_content"]["google"]["thought_signature"], "S");
    assert_eq!(c["finish_reason"], "tool_calls");
    assert_eq!(out["usage"]["total_tokens"], 7);
}

#[test]
fn gemini_finish_reasons_and_blocked_prompts() {
    let ctx = ctx(Format::Chat, Format::Gemini, "g", false);
    let t = translator(Format::Chat, Format::Gemini);
    for (reason, finish) in [
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("STOP", "stop"),
        ("RECITATION", "content_filter"),
    ] {
        let body =
            json!({ "candidates": [{ "content": { "parts": [{ "text": "x" }] }, "finishReason": reason }] });
        assert_eq!(t.response(&body, &ctx).unwrap()["choices"][0]["finish_reason"], finish);
    }
    let blocked = json!({ "promptFeedback": { "blockReason": "SAFETY" } });
    assert_eq!(t.response(&blocked, &ctx).unwrap()["choices"][0]["finish_reason"], "content_filter");
    let out = run_split(&mut t.stream(&ctx), &sse_data(&[blocked], false), &[]);
    assert!(String::from_utf8(out).unwrap().contains("content_filter"));
}

fn captured(text: &str) -> (Call, Value) {
    let v: Value = serde_json::from_str(text).unwrap();
    let (model, method) = gemini::parse_path(v["path"].as_str().unwrap()).unwrap();
    let stream = method == gemini::Method::StreamGenerate;
    (Call { model: Some(model), stream: Some(stream), id: "t1".into(), created: 1 }, v["body"].clone())
}

/// Requests Gemini CLI 0.61.0 sent to a fake server (captured for issue 19): its turn after a
/// `write_file` call (synthetic thought signature, an id the CLI made), and its model router's
/// JSON classification call with capitalised schema types.
#[test]
fn captured_gemini_cli_requests() {
    let t = translator(Format::Gemini, Format::Chat);
    let (call, body) = captured(include_str!("fixtures/gemini-cli-0.61.0-request.json"));
    let out = t.request(&body, call).unwrap();
    let chat = &out.body;
    assert_chat_acceptable(chat);
    assert_eq!((&chat["model"], &chat["stream"]), (&json!("gemini-3.1-pro-preview"), &json!(true)));
    assert_eq!(chat["tools"].as_array().unwrap().len(), 15);
    let m = chat["messages"].as_array().unwrap();
    assert!(m[0]["content"].as_str().unwrap().starts_with("You are Gemini CLI"));
    let call = &m[m.len() - 2]["tool_calls"][0];
    assert_eq!(call["id"], "write_file_1796456650334_0");
    assert_eq!(call["extra_content"]["google"]["thought_signature"], gemini::SYNTHETIC_SIGNATURE);
    assert_eq!(m[m.len() - 1]["tool_call_id"], "write_file_1796456650334_0");
    assert!(chat.get("top_k").is_none() && chat.get("thinkingConfig").is_none());

    let (call, body) = captured(include_str!("fixtures/gemini-cli-0.61.0-router-request.json"));
    assert_eq!(call.model.as_deref(), Some("gemini-3.5-flash-lite"));
    let chat = t.request(&body, call).unwrap().body;
    assert!(chat.get("stream").is_none());
    let schema = &chat["response_format"]["json_schema"]["schema"];
    assert_eq!(
        (&schema["type"], &schema["properties"]["complexity_score"]["type"]),
        (&json!("object"), &json!("integer"))
    );
    assert_eq!(
        gemini::parse_path("/v1beta/models/m:countTokens"),
        Some(("m".into(), gemini::Method::CountTokens))
    );
    assert_eq!(gemini::parse_path("/v1beta/models/m:embedContent"), None);
}
