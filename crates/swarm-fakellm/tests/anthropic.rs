//! Anthropic Messages over real loopback HTTP: messages and their event stream, the tool round
//! trip, usage, count_tokens, error and 429 shapes, and the API's refusals.

mod support;

use serde_json::{json, Value};
use support::{post, post_json, start, stream};
use swarm_fakellm::{Format, ResponseKind};

/// Claude Code's file tool, as it declares it.
fn claude_tools() -> Value {
    json!([
        { "name": "Bash", "description": "Run a command", "input_schema": { "type": "object",
            "properties": { "command": { "type": "string" }, "description": { "type": "string" } }, "required": ["command"] } },
        { "name": "Write", "description": "Writes a file", "input_schema": { "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object", "properties": { "file_path": { "type": "string" }, "content": { "type": "string" } },
            "required": ["file_path", "content"], "additionalProperties": false } },
    ])
}

fn ask(model: &str, stream: bool, messages: Value) -> Value {
    json!({ "model": model, "max_tokens": 1024, "stream": stream, "system": [{ "type": "text", "text": "be brief" }],
            "tools": claude_tools(), "messages": messages })
}

fn user(text: &str) -> Value {
    json!({ "role": "user", "content": [{ "type": "text", "text": text }] })
}

/// The conversation after the model's `Write` call was run.
fn after_write(id: &str) -> Value {
    json!([
        user("write hello.txt\n"),
        { "role": "system", "content": "# Environment" },
        { "role": "assistant", "content": [{ "type": "tool_use", "id": id, "name": "Write",
            "input": { "file_path": "hello.txt", "content": "hi\n" } }] },
        { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": id, "content": "File created" }] },
    ])
}

#[tokio::test]
async fn message_with_tool_use_then_text_after_the_result() {
    let server = start().await;
    let (status, body) =
        post_json(&server, "/v1/messages", &ask("ok", false, json!([user("write hello.txt\n")]))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["type"].as_str(), body["role"].as_str(), body["model"].as_str()),
        (Some("message"), Some("assistant"), Some("ok"))
    );
    assert_eq!(body["stop_reason"], "tool_use");
    let block = &body["content"][0];
    assert_eq!((block["type"].as_str(), block["name"].as_str()), (Some("tool_use"), Some("Write")));
    assert_eq!(block["input"], json!({ "file_path": "hello.txt", "content": "hi\n" }));
    let usage = &body["usage"];
    assert!(
        usage["input_tokens"].as_u64().unwrap() > 0 && usage["output_tokens"].as_u64().unwrap() > 0,
        "{usage}"
    );
    assert_eq!(usage["cache_read_input_tokens"], 0);

    let id = block["id"].as_str().unwrap();
    // Claude Code's base URL has no /v1 and its path carries ?beta=true.
    let (status, body) =
        post_json(&server, "/v1/messages?beta=true", &ask("ok", false, after_write(id))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["content"], json!([{ "type": "text", "text": "DONE" }]));
    let records = server.log().records();
    assert_eq!(records.iter().map(|r| r.turn).collect::<Vec<_>>(), [Some(0), Some(1)]);
    assert_eq!(records[1].format, Format::Anthropic);
    assert_eq!(records[1].query.as_deref(), Some("beta=true"));
    assert_eq!(records[1].user, ["write hello.txt\n"]);
    assert_eq!(records[1].body, ask("ok", false, after_write(id)), "the log keeps the request as sent");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn event_stream_of_a_tool_call_and_of_text() {
    let server = start().await;
    let events = stream(&server, "/v1/messages", &ask("ok", true, json!([user("go")]))).await;
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_deref().unwrap()).collect();
    assert_eq!(&names[..3], ["message_start", "content_block_start", "ping"]);
    assert_eq!(&names[names.len() - 3..], ["content_block_stop", "message_delta", "message_stop"]);
    assert!(names[3..names.len() - 3].iter().all(|n| *n == "content_block_delta"));
    for (name, data) in &events {
        assert_eq!(data["type"].as_str(), name.as_deref(), "the data's type is the event's name");
    }
    assert_eq!(events[0].1["message"]["usage"]["output_tokens"], 1);
    let start = &events[1].1["content_block"];
    assert_eq!(
        (start["type"].as_str(), start["name"].as_str(), &start["input"]),
        (Some("tool_use"), Some("Write"), &json!({}))
    );
    let partial: String =
        events.iter().filter_map(|(_, d)| d["delta"]["partial_json"].as_str().map(String::from)).collect();
    assert_eq!(
        serde_json::from_str::<Value>(&partial).unwrap(),
        json!({ "file_path": "hello.txt", "content": "hi\n" })
    );
    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);

    let id = start["id"].as_str().unwrap();
    let events = stream(&server, "/v1/messages", &ask("ok", true, after_write(id))).await;
    let text: String =
        events.iter().filter_map(|(_, d)| d["delta"]["text"].as_str().map(String::from)).collect();
    assert_eq!(text, "DONE");
    assert_eq!(events[1].1["content_block"], json!({ "type": "text", "text": "" }));
    assert_eq!(events[events.len() - 2].1["delta"]["stop_reason"], "end_turn");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn scripted_usage_and_count_tokens() {
    let server = start().await;
    let (_, body) = post_json(&server, "/messages", &ask("slow", false, json!([user("hi")]))).await;
    assert_eq!(
        (body["usage"]["input_tokens"].as_u64(), body["usage"]["output_tokens"].as_u64()),
        (Some(1200), Some(300))
    );
    // count_tokens needs no max_tokens and is not rate limited.
    let count = json!({ "model": "r429", "messages": [user(&"x".repeat(400))] });
    let (status, body) = post_json(&server, "/v1/messages/count_tokens", &count).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["input_tokens"].as_u64().unwrap() >= 100, "{body}");
    assert!(
        matches!(server.log().records()[1].response, ResponseKind::TokenCount { tokens } if tokens >= 100)
    );
    let (status, body) =
        post_json(&server, "/v1/messages/count_tokens", &json!({ "model": "nope", "messages": [] })).await;
    assert_eq!((status, body["error"]["type"].as_str()), (404, Some("not_found_error")));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn errors_and_rate_limits_are_anthropic_shaped() {
    let server = start().await;
    let response = post(&server, "/v1/messages", &ask("r429", true, json!([user("hi")]))).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("rate limit"), "{body}");
    let (_, body) = post_json(&server, "/v1/messages", &ask("r429", false, json!([user("hi")]))).await;
    assert_eq!(body["content"][0]["text"], "finally");

    let response = post(&server, "/v1/messages", &ask("quota", false, json!([user("hi")]))).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().get("retry-after").is_none(), "header = false sends none");
    for (model, status, kind) in [
        ("broken", 500, "api_error"),
        ("overloaded", 529, "overloaded_error"),
        ("nope", 404, "not_found_error"),
    ] {
        let (got, body) = post_json(&server, "/v1/messages", &ask(model, false, json!([user("hi")]))).await;
        assert_eq!((got, body["error"]["type"].as_str()), (status, Some(kind)), "{model}: {body}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn streamed_rate_limit_is_an_error_event_and_plain_http_when_not_streaming() {
    let server = start().await;
    let events = stream(&server, "/v1/messages", &ask("streamed", true, json!([user("hi")]))).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(names, ["message_start", "error"]);
    assert_eq!(events[1].1["error"]["type"], "rate_limit_error");
    assert_eq!(server.log().records()[0].response, ResponseKind::RateLimitedInStream { retry_after: 3 });
    // Claude Code retries a failed stream without streaming: that must be JSON, never a stream.
    let (status, body) =
        post_json(&server, "/v1/messages", &ask("streamed", false, json!([user("hi")]))).await;
    assert_eq!((status, body["content"][0]["text"].as_str()), (200, Some("finally")));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn refuses_what_the_api_refuses() {
    let server = start().await;
    let bad = |messages: Value| ask("ok", false, messages);
    let cases = [
        // A tool_result that answers no tool_use of the previous message.
        (
            bad(
                json!([user("go"), { "role": "assistant", "content": [{ "type": "tool_use", "id": "t1", "name": "Write", "input": {} }] },
            { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "t2", "content": "x" }] }]),
            ),
            "unexpected `tool_use_id` found in `tool_result` blocks: t2",
        ),
        // A tool_use left unanswered.
        (
            bad(
                json!([user("go"), { "role": "assistant", "content": [{ "type": "tool_use", "id": "t1", "name": "Write", "input": {} }] }, user("next")]),
            ),
            "`tool_use` ids were found without `tool_result` blocks immediately after: t1",
        ),
        // A malformed block.
        (
            bad(
                json!([{ "role": "user", "content": [{ "type": "tool_use", "id": "t1", "name": "Write" }] }]),
            ),
            "messages.0.content.0.tool_use.input: Field required",
        ),
        (json!({ "model": "ok", "messages": [user("go")] }), "max_tokens: Field required"),
        (
            json!({ "model": "ok", "max_tokens": 5, "messages": [user("go")], "tools": [{ "name": "Write" }] }),
            "tools.0.custom.input_schema: Field required",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = post_json(&server, "/v1/messages", &body).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["type"], "invalid_request_error");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
    }
    let kinds = server.log().records().into_iter().map(|r| r.response);
    assert!(kinds.into_iter().all(|k| matches!(k, ResponseKind::BadRequest { .. })));
    server.shutdown().await.unwrap();
}
