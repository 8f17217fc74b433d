//! Property tests: no input makes a translator panic, streams do not depend on where the bytes
//! are cut, and tool-call ids always come back.

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use swarm_wire::{ids, Call, Format, Translator};

const KEYS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "id",
    "tool_call_id",
    "tool_use_id",
    "input",
    "system",
    "tools",
    "tool_choice",
    "parts",
    "contents",
    "functionCall",
    "functionResponse",
    "args",
    "response",
    "output",
    "call_id",
    "instructions",
    "choices",
    "message",
    "delta",
    "candidates",
    "finish_reason",
    "stop_reason",
    "finishReason",
    "usage",
    "index",
    "source",
    "image_url",
    "url",
    "stream",
    "max_tokens",
    "stop",
    "generationConfig",
    "functionDeclarations",
    "parameters",
    "thoughtSignature",
    "extra_content",
    "error",
    "content_block",
    "partial_json",
    "input_schema",
];
const STRINGS: &[&str] = &[
    "user",
    "assistant",
    "model",
    "tool",
    "system",
    "developer",
    "text",
    "tool_use",
    "tool_result",
    "image",
    "function",
    "function_call",
    "function_call_output",
    "custom_tool_call",
    "message",
    "auto",
    "any",
    "required",
    "none",
    "stop",
    "tool_calls",
    "length",
    "STOP",
    "MAX_TOKENS",
    "{}",
    "{\"a\":1}",
    "{bad",
    "",
    "data:image/png;base64,AA",
    "base64",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        proptest::sample::select(STRINGS).prop_map(|s| json!(s)),
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((proptest::sample::select(KEYS), inner), 0..6).prop_map(
                |kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>())
            ),
        ]
    })
}

fn pairs() -> Vec<Translator> {
    let agents = [Format::Chat, Format::Anthropic, Format::Responses, Format::Gemini];
    let ups = [Format::Chat, Format::Anthropic, Format::Gemini];
    agents.iter().flat_map(|a| ups.iter().map(move |u| Translator::new(*a, *u).unwrap())).collect()
}

fn any_call() -> Call {
    Call { model: Some("m".into()), stream: Some(true), id: "f".into(), created: 0 }
}

/// Replaces the value at a pseudo-random place in `v` with `with`.
fn mutate(v: &mut Value, pick: usize, with: Value) {
    let descend = !pick.is_multiple_of(3);
    match v {
        Value::Object(o) if descend && !o.is_empty() => {
            let key = o.keys().nth(pick % o.len()).unwrap().clone();
            mutate(o.get_mut(&key).unwrap(), pick / 3, with);
        }
        Value::Array(a) if descend && !a.is_empty() => {
            let n = a.len();
            mutate(&mut a[pick % n], pick / 3, with);
        }
        _ => *v = with,
    }
}

fn fixtures() -> Vec<Value> {
    [
        include_str!("fixtures/anthropic_request.json"),
        include_str!("fixtures/responses_request.json"),
        include_str!("fixtures/gemini_request.json"),
        include_str!("fixtures/claude-code-2.1.332-request.json"),
        include_str!("fixtures/codex-0.171.0-request.json"),
    ]
    .iter()
    .map(|s| serde_json::from_str(s).unwrap())
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_json_makes_a_translator_panic(v in json_value()) {
        for t in pairs() {
            if let Ok(tr) = t.request(&v, any_call()) {
                let _ = t.response(&v, &tr.ctx);
            }
            let _ = t.response(&v, &ctx(t.agent, t.upstream, "m", false));
            let _ = swarm_wire::tokens::count_answer(t.agent, &v);
        }
    }

    #[test]
    fn mutated_real_requests_never_panic(which in 0usize..5, pick in any::<usize>(), with in json_value()) {
        let mut body = fixtures().swap_remove(which);
        mutate(&mut body, pick, with);
        for t in pairs() {
            let _ = t.request(&body, any_call());
        }
    }

    #[test]
    fn no_bytes_make_a_stream_panic(bytes in prop::collection::vec(any::<u8>(), 0..400), cut in any::<usize>()) {
        for t in pairs() {
            let mut conv = t.stream(&ctx(t.agent, t.upstream, "m", true));
            let cut = if bytes.is_empty() { 0 } else { cut % bytes.len() };
            let _ = conv.feed(&bytes[..cut]);
            let _ = conv.feed(&bytes[cut..]);
            let _ = conv.finish();
            let _ = conv.fail(&swarm_wire::Failure::new(500, swarm_wire::FailureKind::Server, "x"));
        }
    }

    #[test]
    fn json_events_with_random_shapes_never_panic(events in prop::collection::vec(json_value(), 0..6)) {
        let bytes = [sse_data(&events, true), sse_named(&events.iter().map(|e| { let mut e = e.clone(); if !e.is_object() { e = json!({}) } e["type"] = json!(e.get("type").and_then(Value::as_str).unwrap_or("x")); e }).collect::<Vec<_>>())];
        for t in pairs() {
            for b in &bytes {
                let mut conv = t.stream(&ctx(t.agent, t.upstream, "m", true));
                let _ = conv.feed(b);
                let _ = conv.finish();
            }
        }
    }

    #[test]
    fn streams_do_not_depend_on_the_cuts(cuts in prop::collection::vec(any::<usize>(), 0..12)) {
        let upstream = sse_data(&[
            chunk(json!({ "content": "héllo " }), None),
            chunk(json!({ "tool_calls": [{ "index": 0, "id": "c", "type": "function", "function": { "name": "f", "arguments": "{\"a\":" } }] }), None),
            chunk(json!({ "tool_calls": [{ "index": 0, "function": { "arguments": "\"ü\"}" } }] }), None),
            chunk(json!({}), Some("tool_calls")),
            usage_chunk(4, 4),
        ], true);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % upstream.len()).collect();
        cuts.sort_unstable();
        for agent in [Format::Chat, Format::Anthropic, Format::Responses, Format::Gemini] {
            let t = Translator::new(agent, Format::Chat).unwrap();
            let c = ctx(agent, Format::Chat, "m", true);
            let whole = run_split(&mut t.stream(&c), &upstream, &[]);
            prop_assert_eq!(run_split(&mut t.stream(&c), &upstream, &cuts), whole);
        }
    }

    #[test]
    fn tool_call_ids_always_come_back(id in ".{0,40}", sig in proptest::option::of(".{0,60}"), strict in any::<bool>()) {
        let extra = sig.map(|s| json!({ "google": { "thought_signature": s } }));
        let agent_id = ids::to_agent(&id, extra.as_ref(), strict);
        if strict {
            prop_assert!(agent_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        }
        prop_assert_eq!(ids::from_agent(&agent_id), (id, extra));
    }
}
