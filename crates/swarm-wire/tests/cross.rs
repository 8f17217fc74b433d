//! Every (agent, upstream) pair, passthrough, and tool-call → tool-result round trips through
//! the hub with ids paired and Gemini's thought signatures kept.

mod common;

use common::*;
use serde_json::{json, Value};
use swarm_wire::{Call, Format};

const AGENTS: [Format; 4] = [Format::Chat, Format::Anthropic, Format::Responses, Format::Gemini];
const UPSTREAMS: [Format; 3] = [Format::Chat, Format::Anthropic, Format::Gemini];

fn hello_request(agent: Format) -> Value {
    match agent {
        Format::Chat => {
            json!({ "model": "m", "stream": true, "stream_options": { "include_usage": true }, "messages": [{ "role": "user", "content": "hi" }] })
        }
        Format::Anthropic => {
            json!({ "model": "m", "max_tokens": 5, "stream": true, "messages": [{ "role": "user", "content": "hi" }] })
        }
        Format::Responses => json!({ "model": "m", "stream": true, "input": "hi" }),
        Format::Gemini => json!({ "contents": [{ "role": "user", "parts": [{ "text": "hi" }] }] }),
    }
}

/// The same answer, "hello" and 3 + 2 tokens, as each upstream streams it.
fn hello_stream(upstream: Format) -> Vec<u8> {
    match upstream {
        Format::Chat => sse_data(
            &[
                chunk(json!({ "content": "hel" }), None),
                chunk(json!({ "content": "lo" }), Some("stop")),
                usage_chunk(3, 2),
            ],
            true,
        ),
        Format::Anthropic => sse_named(&[
            json!({ "type": "message_start", "message": { "id": "m", "usage": { "input_tokens": 3, "output_tokens": 1 } } }),
            json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } }),
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": "hel" } }),
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": "lo" } }),
            json!({ "type": "content_block_stop", "index": 0 }),
            json!({ "type": "message_delta", "delta": { "stop_reason": "end_turn" }, "usage": { "output_tokens": 2 } }),
            json!({ "type": "message_stop" }),
        ]),
        _ => sse_data(
            &[
                json!({ "candidates": [{ "content": { "role": "model", "parts": [{ "text": "hel" }] } }] }),
                json!({ "candidates": [{ "content": { "role": "model", "parts": [{ "text": "lo" }] }, "finishReason": "STOP" }], "usageMetadata": { "promptTokenCount": 3, "candidatesTokenCount": 2 } }),
            ],
            false,
        ),
    }
}

fn hello_answer(upstream: Format) -> Value {
    match upstream {
        Format::Chat => {
            json!({ "choices": [{ "message": { "role": "assistant", "content": "hello" }, "finish_reason": "stop" }], "usage": { "prompt_tokens": 3, "completion_tokens": 2 } })
        }
        Format::Anthropic => {
            json!({ "type": "message", "content": [{ "type": "text", "text": "hello" }], "stop_reason": "end_turn", "usage": { "input_tokens": 3, "output_tokens": 2 } })
        }
        _ => {
            json!({ "candidates": [{ "content": { "role": "model", "parts": [{ "text": "hello" }] }, "finishReason": "STOP" }], "usageMetadata": { "promptTokenCount": 3, "candidatesTokenCount": 2 } })
        }
    }
}

/// The text and usage an agent reads from its own stream or answer.
fn agent_reads(agent: Format, bytes: &[u8]) -> (String, u64, u64) {
    let d = datas(bytes);
    let text: String = d
        .iter()
        .filter_map(|e| match agent {
            Format::Chat => e["choices"][0]["delta"]["content"].as_str(),
            Format::Anthropic => e["delta"]["text"].as_str(),
            Format::Responses => {
                (e["type"] == "response.output_text.delta").then(|| e["delta"].as_str()).flatten()
            }
            Format::Gemini => e["candidates"][0]["content"]["parts"][0]["text"].as_str(),
        })
        .collect();
    let last = d.last().unwrap();
    let usage = match agent {
        Format::Chat => (&last["usage"]["prompt_tokens"], &last["usage"]["completion_tokens"]),
        Format::Anthropic => {
            (&d[d.len() - 2]["usage"]["input_tokens"], &d[d.len() - 2]["usage"]["output_tokens"])
        }
        Format::Responses => {
            (&last["response"]["usage"]["input_tokens"], &last["response"]["usage"]["output_tokens"])
        }
        Format::Gemini => {
            (&last["usageMetadata"]["promptTokenCount"], &last["usageMetadata"]["candidatesTokenCount"])
        }
    };
    (text, usage.0.as_u64().unwrap(), usage.1.as_u64().unwrap())
}

#[test]
fn every_pair_serves_a_streamed_and_a_whole_turn_with_usage() {
    for agent in AGENTS {
        for upstream in UPSTREAMS {
            let t = translator(agent, upstream);
            let call = Call { model: Some("m".into()), stream: Some(true), id: "t1".into(), created: 1 };
            let tr = t
                .request(&hello_request(agent), call)
                .unwrap_or_else(|e| panic!("{agent} on {upstream}: {e}"));
            match upstream {
                Format::Chat => assert_chat_acceptable(&tr.body),
                Format::Anthropic => assert_anthropic_acceptable(&tr.body),
                _ => assert_gemini_acceptable(&tr.body),
            }
            let out = run_every_way(&t, &tr.ctx, &hello_stream(upstream));
            let mut conv = t.stream(&tr.ctx);
            run_split(&mut conv, &hello_stream(upstream), &[7]);
            assert_eq!(
                conv.usage().map(|u| (u.input, u.output)),
                Some((3, 2)),
                "{agent} on {upstream}: metered usage"
            );
            if t.passthrough() {
                assert_eq!(out, hello_stream(upstream), "{agent} on {upstream}: passthrough");
                continue;
            }
            assert_eq!(agent_reads(agent, &out), ("hello".to_string(), 3, 2), "{agent} on {upstream}");
            let whole = t.response(&hello_answer(upstream), &tr.ctx).unwrap();
            let text = [
                &whole["choices"][0]["message"]["content"],
                &whole["content"][0]["text"],
                &whole["output"][0]["content"][0]["text"],
                &whole["candidates"][0]["content"]["parts"][0]["text"],
            ];
            assert!(text.iter().any(|t| **t == json!("hello")), "{agent} on {upstream}: {whole}");
        }
    }
    assert!(swarm_wire::Translator::new(Format::Chat, Format::Responses).is_err());
}

/// A Gemini upstream's tool call, as an OpenAI-compatible Gemini endpoint streams it: an id
/// outside Anthropic's alphabet and a thought signature.
fn gemini_style_tool_stream() -> Vec<u8> {
    let call = json!({ "index": 0, "id": "function-call-1.x", "type": "function", "function": { "name": "read", "arguments": "{\"path\":\"a\"}" },
                       "extra_content": { "google": { "thought_signature": "SIG+/=" } } });
    sse_data(
        &[
            chunk(json!({ "tool_calls": [call] }), None),
            chunk(json!({}), Some("tool_calls")),
            usage_chunk(5, 5),
        ],
        true,
    )
}

fn assert_next_request_restores(chat: &Value) {
    assert_chat_acceptable(chat);
    let m = chat["messages"].as_array().unwrap();
    let call = &m[m.len() - 2]["tool_calls"][0];
    assert_eq!(call["id"], "function-call-1.x");
    assert_eq!(call["extra_content"]["google"]["thought_signature"], "SIG+/=");
    assert_eq!(
        m[m.len() - 1],
        json!({ "role": "tool", "tool_call_id": "function-call-1.x", "content": "file a" })
    );
}

#[test]
fn claude_code_round_trip_keeps_ids_paired_and_the_signature() {
    let t = translator(Format::Anthropic, Format::Chat);
    let first = json!({ "model": "m", "max_tokens": 9, "stream": true, "messages": [{ "role": "user", "content": "read a" }], "tools": [{ "name": "read", "input_schema": { "type": "object" } }] });
    let tr = t.request(&first, call("t1")).unwrap();
    let out = run_every_way(&t, &tr.ctx, &gemini_style_tool_stream());
    let start = datas(&out).into_iter().find(|e| e["type"] == "content_block_start").unwrap();
    let id = start["content_block"]["id"].as_str().unwrap().to_string();
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "{id}");
    // Claude Code sends the call back with its result.
    let mut next = first.clone();
    next["messages"].as_array_mut().unwrap().extend([
        json!({ "role": "assistant", "content": [{ "type": "tool_use", "id": id, "name": "read", "input": { "path": "a" } }] }),
        json!({ "role": "user", "content": [{ "type": "tool_result", "tool_use_id": id, "content": "file a" }] }),
    ]);
    assert_anthropic_acceptable(&next);
    assert_next_request_restores(&t.request(&next, call("t2")).unwrap().body);
}

#[test]
fn codex_round_trip_keeps_ids_paired_and_the_signature() {
    let t = translator(Format::Responses, Format::Chat);
    let first = json!({ "model": "m", "stream": true, "input": [{ "type": "message", "role": "user", "content": [{ "type": "input_text", "text": "read a" }] }],
                        "tools": [{ "type": "function", "name": "read", "parameters": { "type": "object" } }] });
    let tr = t.request(&first, call("t1")).unwrap();
    let out = run_every_way(&t, &tr.ctx, &gemini_style_tool_stream());
    let items: Vec<Value> = datas(&out)
        .into_iter()
        .filter(|e| e["type"] == "response.output_item.done")
        .map(|e| e["item"].clone())
        .collect();
    let call_id = items[0]["call_id"].as_str().unwrap().to_string();
    let mut next = first.clone();
    next["input"].as_array_mut().unwrap().extend([
        items[0].clone(),
        json!({ "type": "function_call_output", "call_id": call_id, "output": "file a" }),
    ]);
    assert_next_request_restores(&t.request(&next, call("t2")).unwrap().body);
}

#[test]
fn gemini_cli_round_trip_keeps_the_signature_on_its_part() {
    let t = translator(Format::Gemini, Format::Chat);
    let first = json!({ "contents": [{ "role": "user", "parts": [{ "text": "read a" }] }], "tools": [{ "functionDeclarations": [{ "name": "read" }] }] });
    let call =
        Call { model: Some("gemini-3-pro-preview".into()), stream: Some(true), id: "t1".into(), created: 1 };
    let tr = t.request(&first, call.clone()).unwrap();
    let out = run_every_way(&t, &tr.ctx, &gemini_style_tool_stream());
    let part = datas(&out)[0]["candidates"][0]["content"]["parts"][0].clone();
    assert_eq!(part["thoughtSignature"], "SIG+/=");
    // Gemini CLI prefixes the call's name to its id and answers with the same id.
    let id = format!("read__{}", part["functionCall"]["id"].as_str().unwrap());
    let mut model_part = part.clone();
    model_part["functionCall"]["id"] = json!(id);
    let mut next = first.clone();
    next["contents"].as_array_mut().unwrap().extend([
        json!({ "role": "model", "parts": [model_part] }),
        json!({ "role": "user", "parts": [{ "functionResponse": { "id": id, "name": "read", "response": { "output": "file a" } } }] }),
    ]);
    let chat = t.request(&next, call).unwrap().body;
    assert_chat_acceptable(&chat);
    let m = chat["messages"].as_array().unwrap();
    assert_eq!(m[1]["tool_calls"][0]["extra_content"]["google"]["thought_signature"], "SIG+/=");
    assert_eq!(m[2]["tool_call_id"], json!(id));
}

#[test]
fn claude_code_on_a_native_gemini_upstream_gets_its_signature_back() {
    let t = translator(Format::Anthropic, Format::Gemini);
    let first = json!({ "model": "gemini-3-pro-preview", "max_tokens": 9, "stream": true, "messages": [{ "role": "user", "content": "read a" }], "tools": [{ "name": "read", "input_schema": { "type": "object" } }] });
    let tr = t.request(&first, call("t1")).unwrap();
    assert_gemini_acceptable(&tr.body);
    let upstream = sse_data(
        &[
            json!({ "candidates": [{ "content": { "role": "model", "parts": [{ "functionCall": { "name": "read", "args": { "path": "a" } }, "thoughtSignature": "NATIVE" }] }, "finishReason": "STOP" }] }),
        ],
        false,
    );
    let out = run_every_way(&t, &tr.ctx, &upstream);
    let d = datas(&out);
    let block = &d.iter().find(|e| e["type"] == "content_block_start").unwrap()["content_block"];
    assert_eq!(d.iter().find(|e| e["type"] == "message_delta").unwrap()["delta"]["stop_reason"], "tool_use");
    let mut next = first.clone();
    next["messages"].as_array_mut().unwrap().extend([
        json!({ "role": "assistant", "content": [{ "type": "tool_use", "id": block["id"], "name": "read", "input": { "path": "a" } }] }),
        json!({ "role": "user", "content": [{ "type": "tool_result", "tool_use_id": block["id"], "content": "file a" }] }),
    ]);
    let g = t.request(&next, call("t2")).unwrap().body;
    assert_gemini_acceptable(&g);
    assert_eq!(g["contents"][1]["parts"][0]["thoughtSignature"], "NATIVE");
    assert_eq!(g["contents"][2]["parts"][0]["functionResponse"]["name"], "read");
}

/// A request aider 0.86.2 sent to a fake server (captured for issue 19): system, alternating
/// example turns, the prompt; no tools. Anthropic and Gemini upstreams take it.
#[test]
fn captured_aider_request_on_anthropic_and_gemini_upstreams() {
    let body: Value = serde_json::from_str(include_str!("fixtures/aider-0.86.2-request.json")).unwrap();
    let (a, ctx) = request(Format::Chat, Format::Anthropic, &body);
    assert_anthropic_acceptable(&a);
    assert!(!ctx.stream);
    assert!(a["system"].as_str().unwrap().starts_with("Act as an expert software developer."));
    assert_eq!(a["temperature"], 0);
    let last = a["messages"].as_array().unwrap().last().unwrap();
    assert!(last["content"][0]["text"].as_str().unwrap().starts_with("write hello.txt\n"));
    let (g, _) = request(Format::Chat, Format::Gemini, &body);
    assert_gemini_acceptable(&g);
    assert_eq!(g["contents"].as_array().unwrap().len(), a["messages"].as_array().unwrap().len());
}
