//! OpenAI Responses (Codex) against Chat, Anthropic and Gemini upstreams.

mod common;

use common::*;
use serde_json::{json, Value};
use swarm_wire::{Format, WireError};

fn fixture_request() -> Value {
    serde_json::from_str(include_str!("fixtures/responses_request.json")).unwrap()
}

#[test]
fn codex_request_becomes_an_acceptable_chat_request() {
    let (chat, ctx) = request(Format::Responses, Format::Chat, &fixture_request());
    assert_chat_acceptable(&chat);
    assert_eq!(ctx.tool_aliases.len(), 1);
    assert_eq!((ctx.tool_aliases[0].name.as_str(), ctx.tool_aliases[0].freeform), ("apply_patch", true));
    let m = chat["messages"].as_array().unwrap();
    // Instructions and developer messages make one leading system message.
    assert_eq!(
        m[0],
        json!({ "role": "system", "content": "You are Codex, a coding agent.\n\n<permissions instructions>never ask</permissions instructions>" })
    );
    assert_eq!(m[2], json!({ "role": "user", "content": "Write hello.txt saying \"hi\"" }));
    // The assistant's text and both calls are one turn; the reasoning item is gone.
    assert_eq!(m[3]["content"], "Creating the file.");
    assert_eq!(m[3]["tool_calls"][0]["function"]["name"], "shell");
    assert_eq!(
        m[3]["tool_calls"][1]["function"]["arguments"],
        json!({ "input": "*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch" }).to_string()
    );
    assert_eq!(m[4], json!({ "role": "tool", "tool_call_id": "call_1", "content": "README.md\n" }));
    assert_eq!(m[5]["tool_call_id"], "call_2");
    let tools = chat["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 2, "web_search is OpenAI's own");
    assert_eq!(tools[0]["function"]["strict"], false);
    assert_eq!(tools[1]["function"]["parameters"]["required"], json!(["input"]));
    assert_eq!(tools[1]["function"]["description"], "Use the apply_patch tool to edit files.");
    assert_eq!((&chat["parallel_tool_calls"], &chat["tool_choice"]), (&json!(false), &json!("auto")));
    assert!(chat.get("reasoning").is_none() && chat.get("store").is_none() && chat.get("include").is_none());
}

#[test]
fn plain_input_text_format_and_strictness() {
    let body = json!({ "model": "m", "input": "hello", "max_output_tokens": 50, "text": { "format": { "type": "json_schema", "name": "x", "schema": { "type": "object" }, "strict": true } } });
    let (chat, _) = request(Format::Responses, Format::Chat, &body);
    assert_eq!(chat["messages"], json!([{ "role": "user", "content": "hello" }]));
    assert_eq!(chat["max_tokens"], 50);
    assert_eq!(
        chat["response_format"],
        json!({ "type": "json_schema", "json_schema": { "name": "x", "schema": { "type": "object" }, "strict": true } })
    );
    let t = translator(Format::Responses, Format::Chat);
    let err = t.request(&json!({ "input": "x", "previous_response_id": "resp_1" }), call("x")).unwrap_err();
    assert!(matches!(err, WireError::Unsupported { .. }), "{err}");
    for bad in [
        json!({ "input": 3 }),
        json!({ "input": [{ "type": "function_call", "name": "f", "call_id": "c" }] }),
        json!({ "input": [{ "type": "message", "role": "wizard", "content": "x" }] }),
        json!({ "input": [{ "type": "function_call_output", "call_id": "c", "output": 7 }] }),
        json!({ "input": [], "tools": [{ "type": "function" }] }),
    ] {
        assert!(matches!(t.request(&bad, call("x")), Err(WireError::Malformed { .. })), "{bad}");
    }
}

#[test]
fn chat_answer_becomes_a_response_with_custom_and_function_calls() {
    let (_, ctx) = request(Format::Responses, Format::Chat, &fixture_request());
    let answer = json!({
        "id": "x", "choices": [{ "finish_reason": "tool_calls", "message": { "role": "assistant", "content": "Patching.",
            "tool_calls": [
                { "id": "call_p", "type": "function", "function": { "name": "apply_patch", "arguments": "{\"input\":\"*** Begin Patch\"}" } },
                { "id": "call_s", "type": "function", "function": { "name": "shell", "arguments": "{\"command\":[\"ls\"]}" } } ] } }],
        "usage": { "prompt_tokens": 1000, "completion_tokens": 50, "prompt_tokens_details": { "cached_tokens": 800 }, "completion_tokens_details": { "reasoning_tokens": 10 } },
    });
    let out = translator(Format::Responses, Format::Chat).response(&answer, &ctx).unwrap();
    assert_eq!(
        (&out["object"], &out["status"], &out["model"]),
        (&json!("response"), &json!("completed"), &json!("gpt-5-codex"))
    );
    let o = out["output"].as_array().unwrap();
    assert_eq!(o[0]["content"][0], json!({ "type": "output_text", "text": "Patching.", "annotations": [] }));
    assert_eq!(
        (&o[1]["type"], &o[1]["call_id"], &o[1]["input"]),
        (&json!("custom_tool_call"), &json!("call_p"), &json!("*** Begin Patch"))
    );
    assert_eq!(
        (&o[2]["type"], &o[2]["arguments"]),
        (&json!("function_call"), &json!("{\"command\":[\"ls\"]}"))
    );
    assert_eq!(
        out["usage"],
        json!({ "input_tokens": 1000, "input_tokens_details": { "cached_tokens": 800 }, "output_tokens": 50, "output_tokens_details": { "reasoning_tokens": 10 }, "total_tokens": 1050 })
    );
}

#[test]
fn chat_stream_becomes_codex_events_in_order() {
    let (_, ctx) = request(Format::Responses, Format::Chat, &fixture_request());
    let upstream = sse_data(
        &[
            chunk(json!({ "role": "assistant", "content": "Hel" }), None),
            chunk(json!({ "content": "lo" }), None),
            chunk(
                json!({ "tool_calls": [{ "index": 0, "id": "call_s", "type": "function", "function": { "name": "shell", "arguments": "{\"comm" } }] }),
                None,
            ),
            chunk(
                json!({ "tool_calls": [{ "index": 0, "function": { "arguments": "and\":[\"ls\"]}" } }] }),
                None,
            ),
            chunk(
                json!({ "tool_calls": [{ "index": 1, "id": "call_p", "type": "function", "function": { "name": "apply_patch", "arguments": "{\"input\":\"*** Begin" } }] }),
                None,
            ),
            chunk(json!({ "tool_calls": [{ "index": 1, "function": { "arguments": " Patch\"}" } }] }), None),
            chunk(json!({}), Some("tool_calls")),
            usage_chunk(30, 12),
        ],
        true,
    );
    let out = run_every_way(&translator(Format::Responses, Format::Chat), &ctx, &upstream);
    let expected = [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.output_item.done",
        "response.completed",
    ];
    assert_eq!(names(&out), expected);
    let d = datas(&out);
    for (i, e) in d.iter().enumerate() {
        assert_eq!(e["type"], expected[i]);
        assert_eq!(e["sequence_number"], i, "sequence numbers count up");
    }
    assert_eq!(d[0]["response"]["status"], "in_progress");
    assert_eq!(d[6]["text"], "Hello");
    assert_eq!(d[8]["item"]["content"][0]["text"], "Hello");
    assert_eq!(d[9]["item"]["type"], "function_call");
    assert_eq!(d[12]["arguments"], "{\"command\":[\"ls\"]}");
    assert_eq!(d[13]["item"]["status"], "completed");
    assert_eq!(
        d[15]["item"],
        json!({ "type": "custom_tool_call", "id": "ctc_t1_1", "status": "completed", "call_id": "call_p", "name": "apply_patch", "input": "*** Begin Patch" })
    );
    let done = &d[16]["response"];
    assert_eq!((&done["status"], done["output"].as_array().unwrap().len()), (&json!("completed"), 3));
    assert_eq!(done["usage"]["total_tokens"], 42);
    assert!(done["id"].as_str().unwrap().starts_with("resp_"));
}

#[test]
fn length_ends_as_completed_incomplete_and_failures_as_response_failed() {
    let (_, ctx) = request(Format::Responses, Format::Chat, &fixture_request());
    let t = translator(Format::Responses, Format::Chat);
    let upstream =
        sse_data(&[chunk(json!({ "content": "cut" }), None), chunk(json!({}), Some("length"))], true);
    let out = run_every_way(&t, &ctx, &upstream);
    let last = datas(&out).pop().unwrap();
    assert_eq!(
        (&last["type"], &last["response"]["status"]),
        (&json!("response.completed"), &json!("incomplete"))
    );
    assert_eq!(last["response"]["incomplete_details"]["reason"], "max_output_tokens");

    let mut conv = t.stream(&ctx);
    conv.feed(&sse_data(&[chunk(json!({ "content": "x" }), None)], false)).unwrap();
    assert!(matches!(conv.finish(), Err(WireError::Truncated { .. })));
    let failure =
        t.read_failure(429, br#"{"error":{"message":"slow down"}}"#, Some(std::time::Duration::from_secs(7)));
    let out = conv.fail(&failure);
    let failed = datas(&out).pop().unwrap();
    assert_eq!(failed["type"], "response.failed");
    assert_eq!(
        failed["response"]["error"],
        json!({ "code": "rate_limit_exceeded", "message": "slow down Please try again in 7.000s." })
    );
}

#[test]
fn codex_on_anthropic_and_gemini_upstreams() {
    let body = fixture_request();
    let (a, ctx) = request(Format::Responses, Format::Anthropic, &body);
    assert_anthropic_acceptable(&a);
    assert_eq!(
        a["system"],
        "You are Codex, a coding agent.\n\n<permissions instructions>never ask</permissions instructions>"
    );
    let (g, _) = request(Format::Responses, Format::Gemini, &body);
    assert_gemini_acceptable(&g);
    assert_eq!(g["tools"][0]["functionDeclarations"][1]["name"], "apply_patch");
    // An Anthropic stream straight into Codex events.
    let upstream = sse_named(&[
        json!({ "type": "message_start", "message": { "id": "m", "usage": { "input_tokens": 9, "output_tokens": 1 } } }),
        json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "tool_use", "id": "toolu_1", "name": "apply_patch", "input": {} } }),
        json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "input_json_delta", "partial_json": "{\"input\": \"P\"}" } }),
        json!({ "type": "content_block_stop", "index": 0 }),
        json!({ "type": "message_delta", "delta": { "stop_reason": "tool_use" }, "usage": { "output_tokens": 4 } }),
        json!({ "type": "message_stop" }),
    ]);
    let out = run_every_way(&translator(Format::Responses, Format::Anthropic), &ctx, &upstream);
    let d = datas(&out);
    let done = &d.last().unwrap()["response"];
    assert_eq!(done["output"][0]["type"], "custom_tool_call");
    assert_eq!(done["output"][0]["input"], "P");
    assert_eq!(done["usage"]["input_tokens"], 9);
    assert_eq!(done["usage"]["output_tokens"], 4);
}

/// Requests Codex 0.171.0 sent to a fake server (captured for issue 19): an unknown model gets
/// plain and namespaced function tools; a known OpenAI model gets its tools in an
/// `additional_tools` input item, freeform `exec` included.
#[test]
fn captured_codex_requests_with_namespaced_tools() {
    let body: Value = serde_json::from_str(include_str!("fixtures/codex-0.171.0-request.json")).unwrap();
    let t = translator(Format::Responses, Format::Chat);
    let out = t.request(&body, call("t1")).unwrap();
    let chat = &out.body;
    assert_chat_acceptable(chat);
    let names: Vec<&str> =
        chat["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"exec_command") && names.contains(&"multi_agent_v1__spawn_agent"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("web_search")));
    let spawn = chat["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["function"]["name"] == "multi_agent_v1__spawn_agent")
        .unwrap();
    assert!(spawn["function"]["description"]
        .as_str()
        .unwrap()
        .starts_with("Tools for spawning and managing sub-agents.\n\n"));
    let m = chat["messages"].as_array().unwrap();
    assert_eq!(m.iter().filter(|m| m["role"] == "system").count(), 1);
    assert_eq!(m[m.len() - 2]["tool_calls"][0]["function"]["name"], "exec_command");
    assert_eq!(m[m.len() - 1]["tool_call_id"], "call_fake1");
    // A namespaced call comes back with its namespace, as Codex routes it.
    let answer = json!({ "choices": [{ "finish_reason": "tool_calls", "message": { "role": "assistant", "content": null,
        "tool_calls": [{ "id": "c9", "type": "function", "function": { "name": "multi_agent_v1__spawn_agent", "arguments": "{}" } }] } }] });
    let item = &t.response(&answer, &out.ctx).unwrap()["output"][0];
    assert_eq!(
        (&item["name"], &item["namespace"], &item["type"]),
        (&json!("spawn_agent"), &json!("multi_agent_v1"), &json!("function_call"))
    );
    // …and returns in the next request under its Chat name.
    let mut next = body.clone();
    next["input"].as_array_mut().unwrap().extend([
        item.clone(),
        json!({ "type": "function_call_output", "call_id": "c9", "output": "spawned" }),
    ]);
    let chat = t.request(&next, call("t2")).unwrap().body;
    assert_chat_acceptable(&chat);
    let m = chat["messages"].as_array().unwrap();
    assert_eq!(m[m.len() - 2]["tool_calls"][0]["function"]["name"], "multi_agent_v1__spawn_agent");

    let known: Value =
        serde_json::from_str(include_str!("fixtures/codex-0.171.0-known-model-request.json")).unwrap();
    let out = t.request(&known, call("t3")).unwrap();
    let names: Vec<&str> = out.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"exec")
            && names.contains(&"clock__sleep")
            && names.contains(&"collaboration__spawn_agent"),
        "{names:?}"
    );
    let exec = out.ctx.tool_aliases.iter().find(|a| a.chat_name == "exec").unwrap();
    assert!(exec.freeform && exec.namespace.is_none(), "the default namespace is no namespace");
    assert!(out.body["messages"].as_array().unwrap().iter().all(|m| m["role"] != "developer"));
}
