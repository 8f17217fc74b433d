//! Anthropic Messages (Claude Code) against a Chat upstream, and Chat agents against an
//! Anthropic upstream: requests, whole answers and streams.

mod common;

use common::*;
use serde_json::{json, Value};
use swarm_wire::{anthropic, Format, WireError};

fn fixture_request() -> Value {
    serde_json::from_str(include_str!("fixtures/anthropic_request.json")).unwrap()
}

#[test]
fn claude_code_request_becomes_an_acceptable_chat_request() {
    let (chat, ctx) = request(Format::Anthropic, Format::Chat, &fixture_request());
    assert_chat_acceptable(&chat);
    assert_eq!((ctx.model.as_str(), ctx.stream), ("claude-sonnet-4-5", true));
    let m = chat["messages"].as_array().unwrap();
    assert_eq!(
        m[0],
        json!({ "role": "system", "content": "You are Claude Code, Anthropic's official CLI for Claude.\nFollow the project's instructions." })
    );
    // Two text blocks stay two parts: the prompt reaches the model byte for byte.
    assert_eq!(m[1]["content"][1], json!({ "type": "text", "text": "Write hello.txt saying \"hi\"" }));
    assert_eq!(m[2]["content"], "Writing it.");
    assert_eq!(m[2]["tool_calls"][0]["id"], "toolu_01A");
    assert_eq!(m[2]["tool_calls"][0]["function"]["arguments"], r#"{"content":"hi","file_path":"hello.txt"}"#);
    assert_eq!(m[3], json!({ "role": "tool", "tool_call_id": "toolu_01A", "content": "File created" }));
    assert_eq!(m[4], json!({ "role": "tool", "tool_call_id": "toolu_01B", "content": "hi" }));
    // The tool result's image and the user's text follow the results in one user message.
    assert_eq!(m[5]["content"][0]["image_url"]["url"], "data:image/png;base64,iVBORw0KGgo=");
    assert_eq!(m[5]["content"][1]["text"], "Thanks");
    assert_eq!(chat["tools"].as_array().unwrap().len(), 2, "the server tool is dropped");
    assert_eq!(chat["tools"][0]["function"]["parameters"]["required"], json!(["command"]));
    assert_eq!(
        (&chat["tool_choice"], &chat["max_tokens"], &chat["temperature"]),
        (&json!("auto"), &json!(32000), &json!(1))
    );
    assert_eq!(chat["stream_options"], json!({ "include_usage": true }));
    assert!(chat.get("thinking").is_none() && chat.get("metadata").is_none());
}

#[test]
fn tool_choice_stop_sequences_and_strings() {
    let body = json!({
        "model": "m", "max_tokens": 10, "system": "be brief", "stop_sequences": ["END"], "top_p": 0.5,
        "messages": [{ "role": "user", "content": "hi" }],
        "tools": [{ "name": "t", "input_schema": { "type": "object" } }],
        "tool_choice": { "type": "tool", "name": "t", "disable_parallel_tool_use": true },
    });
    let (chat, ctx) = request(Format::Anthropic, Format::Chat, &body);
    assert!(!ctx.stream && chat.get("stream").is_none());
    assert_eq!(chat["messages"][0], json!({ "role": "system", "content": "be brief" }));
    assert_eq!(chat["messages"][1], json!({ "role": "user", "content": "hi" }));
    assert_eq!(chat["tool_choice"], json!({ "type": "function", "function": { "name": "t" } }));
    assert_eq!(
        (&chat["parallel_tool_calls"], &chat["stop"], &chat["top_p"]),
        (&json!(false), &json!(["END"]), &json!(0.5))
    );
    let any = json!({ "model": "m", "max_tokens": 1, "messages": [], "tools": [{ "name": "t" }], "tool_choice": { "type": "any" } });
    assert_eq!(request(Format::Anthropic, Format::Chat, &any).0["tool_choice"], "required");
}

#[test]
fn malformed_anthropic_requests_are_typed_errors() {
    let t = translator(Format::Anthropic, Format::Chat);
    let bad = [
        json!("not an object"),
        json!({ "messages": "x" }),
        json!({ "messages": [{ "role": "robot", "content": "x" }] }),
        json!({ "messages": [{ "role": "user", "content": 5 }] }),
        json!({ "messages": [{ "role": "user", "content": [{ "type": "tool_result" }] }] }),
        json!({ "messages": [{ "role": "assistant", "content": [{ "type": "tool_use", "id": "a" }] }] }),
        json!({ "messages": [], "system": 3 }),
        json!({ "messages": [], "tool_choice": { "type": "sometimes" }, "tools": [{ "name": "t" }] }),
        json!({ "messages": [], "stream": "yes" }),
    ];
    for body in bad {
        let err = t.request(&body, call("x")).unwrap_err();
        assert!(matches!(err, WireError::Malformed { .. }), "{body}: {err}");
    }
}

#[test]
fn chat_answer_becomes_an_anthropic_message_with_usage_and_tool_use() {
    let (_, ctx) = request(Format::Anthropic, Format::Chat, &fixture_request());
    let answer = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "qwen",
        "choices": [{ "index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Let me look.",
            "tool_calls": [{ "id": "call_9", "type": "function", "function": { "name": "Bash", "arguments": "{\"command\":\"ls\"}" } }],
        } }],
        "usage": { "prompt_tokens": 100, "completion_tokens": 20, "prompt_tokens_details": { "cached_tokens": 40 } },
    });
    let out = translator(Format::Anthropic, Format::Chat).response(&answer, &ctx).unwrap();
    assert_eq!(out["type"], "message");
    assert_eq!(out["model"], "claude-sonnet-4-5");
    assert_eq!(out["stop_reason"], "tool_use");
    assert_eq!(out["content"][0], json!({ "type": "text", "text": "Let me look." }));
    assert_eq!(
        out["content"][1],
        json!({ "type": "tool_use", "id": "call_9", "name": "Bash", "input": { "command": "ls" } })
    );
    assert_eq!(out["usage"]["input_tokens"], 60);
    assert_eq!(out["usage"]["cache_read_input_tokens"], 40);
    assert_eq!(out["usage"]["output_tokens"], 20);
    for (finish, stop) in [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal")] {
        let mut a = answer.clone();
        a["choices"][0]["finish_reason"] = json!(finish);
        a["choices"][0]["message"]["tool_calls"] = Value::Null;
        let out = translator(Format::Anthropic, Format::Chat).response(&a, &ctx).unwrap();
        assert_eq!(out["stop_reason"], stop);
    }
}

#[test]
fn chat_stream_becomes_claude_code_events_in_order() {
    let (_, ctx) = request(Format::Anthropic, Format::Chat, &fixture_request());
    let upstream = sse_data(
        &[
            chunk(json!({ "role": "assistant", "content": "" }), None),
            chunk(json!({ "content": "Writing" }), None),
            chunk(json!({ "content": " now." }), None),
            chunk(
                json!({ "tool_calls": [{ "index": 0, "id": "call_a", "type": "function", "function": { "name": "Write", "arguments": "" } }] }),
                None,
            ),
            chunk(
                json!({ "tool_calls": [{ "index": 0, "function": { "arguments": "{\"file_path\":" } }] }),
                None,
            ),
            chunk(
                json!({ "tool_calls": [{ "index": 0, "function": { "arguments": "\"a.txt\",\"content\":\"é\"}" } }] }),
                None,
            ),
            chunk(
                json!({ "tool_calls": [{ "index": 1, "id": "call_b", "type": "function", "function": { "name": "Bash", "arguments": "{\"command\":\"ls\"}" } }] }),
                None,
            ),
            chunk(json!({}), Some("tool_calls")),
            usage_chunk(500, 42),
        ],
        true,
    );
    let out = run_every_way(&translator(Format::Anthropic, Format::Chat), &ctx, &upstream);
    let expected = [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ];
    assert_eq!(names(&out), expected);
    let d = datas(&out);
    assert_eq!(d[0]["message"]["role"], "assistant");
    assert_eq!(d[1]["content_block"], json!({ "type": "text", "text": "" }));
    assert_eq!(d[2]["delta"], json!({ "type": "text_delta", "text": "Writing" }));
    assert_eq!(
        d[5],
        json!({ "type": "content_block_start", "index": 1, "content_block": { "type": "tool_use", "id": "call_a", "name": "Write", "input": {} } })
    );
    let json_text: String =
        [&d[6], &d[7]].iter().map(|e| e["delta"]["partial_json"].as_str().unwrap()).collect();
    assert_eq!(
        serde_json::from_str::<Value>(&json_text).unwrap(),
        json!({ "file_path": "a.txt", "content": "é" })
    );
    assert_eq!(d[9]["index"], 2);
    assert_eq!(d[12]["delta"]["stop_reason"], "tool_use");
    assert_eq!(d[12]["usage"]["input_tokens"], 500);
    assert_eq!(d[12]["usage"]["output_tokens"], 42);
}

#[test]
fn chat_stream_cut_short_is_truncated_and_failure_is_an_error_event() {
    let (_, ctx) = request(Format::Anthropic, Format::Chat, &fixture_request());
    let t = translator(Format::Anthropic, Format::Chat);
    let mut conv = t.stream(&ctx);
    conv.feed(&sse_data(&[chunk(json!({ "content": "par" }), None)], false)).unwrap();
    assert!(matches!(conv.finish(), Err(WireError::Truncated { .. })));
    let failure = t.read_failure(529, br#"{"error":{"message":"Overloaded"}}"#, None);
    let out = conv.fail(&failure);
    assert_eq!(names(&out), ["error"]);
    assert_eq!(
        datas(&out)[0],
        json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } })
    );
}

#[test]
fn chat_agent_on_anthropic_upstream_request() {
    let body = json!({
        "model": "claude", "stream": true, "stop": "X", "parallel_tool_calls": false,
        "messages": [
            { "role": "system", "content": "sys" },
            { "role": "user", "content": [{ "type": "text", "text": "look" }, { "type": "image_url", "image_url": { "url": "data:image/png;base64,AAAA" } }] },
            { "role": "assistant", "content": null, "tool_calls": [
                { "id": "c1", "type": "function", "function": { "name": "read", "arguments": "{\"p\":1}" } },
                { "id": "c2", "type": "function", "function": { "name": "read", "arguments": "{\"p\":2}" } } ] },
            { "role": "tool", "tool_call_id": "c1", "content": "one" },
            { "role": "tool", "tool_call_id": "c2", "content": "two" },
            { "role": "user", "content": "go on" },
        ],
        "tools": [{ "type": "function", "function": { "name": "read", "description": "d", "parameters": { "type": "object" } } }],
        "tool_choice": "required",
    });
    let (a, _) = request(Format::Chat, Format::Anthropic, &body);
    assert_anthropic_acceptable(&a);
    assert_eq!(
        (&a["system"], &a["max_tokens"], &a["stop_sequences"]),
        (&json!("sys"), &json!(anthropic::DEFAULT_MAX_TOKENS), &json!(["X"]))
    );
    assert_eq!(
        a["messages"][0]["content"][1]["source"],
        json!({ "type": "base64", "media_type": "image/png", "data": "AAAA" })
    );
    assert_eq!(
        a["messages"][1]["content"][1],
        json!({ "type": "tool_use", "id": "c2", "name": "read", "input": { "p": 2 } })
    );
    let results = &a["messages"][2]["content"];
    assert_eq!(results[0], json!({ "type": "tool_result", "tool_use_id": "c1", "content": "one" }));
    assert_eq!(results[2], json!({ "type": "text", "text": "go on" }));
    assert_eq!(a["tool_choice"], json!({ "type": "any", "disable_parallel_tool_use": true }));
    assert_eq!(
        a["tools"][0],
        json!({ "name": "read", "description": "d", "input_schema": { "type": "object" } })
    );
    let mut bad = body.clone();
    bad["messages"][2]["tool_calls"][0]["function"]["arguments"] = json!("{not json");
    assert!(translator(Format::Chat, Format::Anthropic).request(&bad, call("x")).is_err());
}

#[test]
fn anthropic_answer_and_stream_become_chat() {
    let ctx = ctx(Format::Chat, Format::Anthropic, "claude", true);
    let t = translator(Format::Chat, Format::Anthropic);
    let message = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "stop_reason": "tool_use",
        "content": [{ "type": "thinking", "thinking": "hmm", "signature": "s" }, { "type": "text", "text": "ok" },
                    { "type": "tool_use", "id": "toolu_1", "name": "read", "input": { "p": 1 } }],
        "usage": { "input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 7 },
    });
    let out = t.response(&message, &ctx).unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "ok");
    assert_eq!(out["choices"][0]["message"]["reasoning_content"], "hmm");
    assert_eq!(out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"], "{\"p\":1}");
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(out["usage"]["prompt_tokens"], 15);
    assert_eq!(out["usage"]["prompt_tokens_details"]["cached_tokens"], 5);

    let upstream = include_bytes!("fixtures/anthropic_stream_tool_use.sse");
    let out = run_every_way(&t, &ctx, upstream);
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let d = datas(&out);
    let content: String = d.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(content, "Okay, let's check the weather.");
    let args: String = d
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&args).unwrap(), json!({ "location": "San Francisco, CA" }));
    assert!(d
        .iter()
        .any(|c| c["choices"][0]["delta"]["tool_calls"][0]["id"] == "toolu_01T1x1fJ34qAmk2tNTrN7Up6"));
    assert!(d.iter().any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
    let usage = &d.last().unwrap()["usage"];
    assert_eq!((&usage["prompt_tokens"], &usage["completion_tokens"]), (&json!(572), &json!(89)));
    let mut conv = t.stream(&ctx);
    run_split(&mut conv, upstream, &[100, 900]);
    assert_eq!(conv.usage().map(|u| (u.input, u.output, u.cached)), Some((572, 89, 100)));
}

#[test]
fn anthropic_stream_error_event_reaches_a_chat_agent() {
    let ctx = ctx(Format::Chat, Format::Anthropic, "claude", true);
    let upstream = sse_named(&[
        json!({ "type": "message_start", "message": { "id": "m", "usage": { "input_tokens": 3, "output_tokens": 0 } } }),
        json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } }),
    ]);
    let mut conv = translator(Format::Chat, Format::Anthropic).stream(&ctx);
    let out = conv.feed(&upstream).unwrap();
    assert_eq!(datas(&out).last().unwrap()["error"]["message"], "Overloaded");
    assert_eq!(conv.upstream_failure().map(|f| f.status), Some(529));
}

#[test]
fn a_stream_ended_on_purpose_without_a_reason_is_a_stop_and_one_cut_off_is_not() {
    let ctx = ctx(Format::Anthropic, Format::Chat, "m", true);
    let t = translator(Format::Anthropic, Format::Chat);
    let out = run_every_way(&t, &ctx, &sse_data(&[chunk(json!({ "content": "hi" }), None)], true));
    let delta = datas(&out).into_iter().find(|e| e["type"] == "message_delta").unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    let mut conv = t.stream(&ctx);
    conv.feed(&sse_data(&[chunk(json!({ "content": "hi" }), None)], false)).unwrap();
    assert!(matches!(conv.finish(), Err(WireError::Truncated { .. })));
}

/// A request Claude Code 2.1.332 sent to a fake server (captured for issue 19; the device id in
/// `metadata` zeroed): system blocks, a mid-conversation `system` turn, adaptive thinking,
/// context management and a Write call answered by its result.
#[test]
fn captured_claude_code_request_becomes_an_acceptable_chat_request() {
    let body: Value =
        serde_json::from_str(include_str!("fixtures/claude-code-2.1.332-request.json")).unwrap();
    let (chat, ctx) = request(Format::Anthropic, Format::Chat, &body);
    assert_chat_acceptable(&chat);
    assert_eq!((ctx.model.as_str(), ctx.stream), ("claude-opus-5-5", true));
    let m = chat["messages"].as_array().unwrap();
    let system: Vec<&Value> = m.iter().filter(|m| m["role"] == "system").collect();
    assert_eq!(system.len(), 1, "one leading system message");
    assert_eq!(m[0]["role"], "system");
    let text = m[0]["content"].as_str().unwrap();
    assert!(text.starts_with("x-anthropic-billing-header: cc_version=2.1.332"), "{}", &text[..80]);
    assert!(
        text.contains("\n\n# Environment\nYou have been invoked"),
        "the system turn joins the system prompt"
    );
    assert_eq!(m[1]["role"], "user");
    let call = &m[2]["tool_calls"][0];
    assert_eq!((&call["id"], &call["function"]["name"]), (&json!("toolu_fake3"), &json!("Write")));
    assert_eq!(m[3]["tool_call_id"], "toolu_fake3");
    assert_eq!(chat["tools"].as_array().unwrap().len(), 12);
    assert_eq!(chat["max_tokens"], 128000);
    for dropped in ["thinking", "context_management", "output_config", "metadata"] {
        assert!(chat.get(dropped).is_none(), "{dropped}");
    }
    let (a, _) = request(Format::Anthropic, Format::Anthropic, &body);
    assert_eq!(a, body, "passed through untouched to an Anthropic upstream");
    let (g, _) = request(Format::Anthropic, Format::Gemini, &body);
    assert_gemini_acceptable(&g);
    assert!(g["systemInstruction"]["parts"][0]["text"].as_str().unwrap().contains("# Environment"));
}
