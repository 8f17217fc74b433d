//! OpenAI Responses over real loopback HTTP: responses and their event stream, function and
//! custom tool calls with their outputs, usage, `response.failed` and HTTP 429s, and the API's
//! refusals.

mod support;

use serde_json::{json, Value};
use support::{post, post_json, start, stream};
use swarm_fakellm::{Format, ResponseKind};

/// What Codex 0.171.0 offers a model it has no metadata for: no file tool, a shell.
fn codex_tools() -> Value {
    json!([
        { "type": "function", "name": "exec_command", "strict": false, "parameters": { "type": "object",
            "properties": { "cmd": { "type": "string" }, "workdir": { "type": "string" } }, "required": ["cmd"] } },
        { "type": "namespace", "name": "multi_agent_v1", "tools": [
            { "type": "function", "name": "close_agent", "parameters": { "type": "object", "properties": {} } }] },
        { "type": "web_search", "external_web_access": true },
    ])
}

fn message(role: &str, text: &str) -> Value {
    let kind = if role == "assistant" { "output_text" } else { "input_text" };
    json!({ "type": "message", "role": role, "content": [{ "type": kind, "text": text }] })
}

fn ask(model: &str, stream: bool, input: Value) -> Value {
    json!({ "model": model, "stream": stream, "store": false, "tools": codex_tools(), "tool_choice": "auto", "input": input })
}

fn first_turn() -> Value {
    json!([message("developer", "You are Codex."), message("user", "write hello.txt\n")])
}

/// The input after the call was run (the item echoed as answered, then its output).
fn after(call: &Value, output: &str) -> Value {
    let mut input = first_turn();
    input.as_array_mut().unwrap().push(call.clone());
    let kind =
        if call["type"] == "custom_tool_call" { "custom_tool_call_output" } else { "function_call_output" };
    input.as_array_mut().unwrap().push(json!({ "type": kind, "call_id": call["call_id"], "output": output }));
    input
}

#[tokio::test]
async fn function_call_then_text_after_its_output() {
    let server = start().await;
    let (status, body) = post_json(&server, "/v1/responses", &ask("ok", false, first_turn())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["object"].as_str(), body["status"].as_str()), (Some("response"), Some("completed")));
    let call = &body["output"][0];
    assert_eq!((call["type"].as_str(), call["name"].as_str()), (Some("function_call"), Some("exec_command")));
    let arguments: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({ "cmd": "printf '%s' 'hi\n' > 'hello.txt'" }));
    let usage = &body["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap()
    );
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], 0);

    let (status, body) = post_json(&server, "/responses", &ask("ok", false, after(call, "exit 0"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["output"][0]["content"][0],
        json!({ "type": "output_text", "text": "DONE", "annotations": [] })
    );
    let records = server.log().records();
    assert_eq!(records.iter().map(|r| r.turn).collect::<Vec<_>>(), [Some(0), Some(1)]);
    assert_eq!(records[0].format, Format::Responses);
    assert_eq!(records[0].tools, ["exec_command", "close_agent"]);
    assert_eq!(records[1].user, ["write hello.txt\n"]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn event_stream_of_a_call_and_of_text() {
    let server = start().await;
    let events = stream(&server, "/v1/responses", &ask("ok", true, first_turn())).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(&names[..3], ["response.created", "response.in_progress", "response.output_item.added"]);
    assert_eq!(
        &names[names.len() - 3..],
        ["response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    );
    for (n, (name, data)) in events.iter().enumerate() {
        assert_eq!(
            (data["type"].as_str(), data["sequence_number"].as_u64()),
            (name.as_deref(), Some(n as u64))
        );
    }
    let arguments: String = events
        .iter()
        .filter(|(n, _)| n.as_deref() == Some("response.function_call_arguments.delta"))
        .map(|(_, d)| d["delta"].as_str().unwrap().to_string())
        .collect();
    let done = &events[events.len() - 2].1["item"];
    assert_eq!(done["arguments"].as_str(), Some(arguments.as_str()));
    let completed = &events.last().unwrap().1["response"];
    assert_eq!(completed["status"], "completed");
    assert!(completed["usage"]["output_tokens"].as_u64().unwrap() > 0);

    let events = stream(&server, "/v1/responses", &ask("ok", true, after(done, "exit 0"))).await;
    let text: String = events
        .iter()
        .filter(|(n, _)| n.as_deref() == Some("response.output_text.delta"))
        .map(|(_, d)| d["delta"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(text, "DONE");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn custom_apply_patch_tool_gets_the_patch_as_input() {
    let server = start().await;
    let mut body = ask("ok", true, first_turn());
    body["tools"] = json!([{ "type": "custom", "name": "apply_patch", "format": { "type": "grammar", "syntax": "lark", "definition": "start: /.+/" } }]);
    let events = stream(&server, "/v1/responses", &body).await;
    let item =
        &events.iter().find(|(n, _)| n.as_deref() == Some("response.output_item.done")).unwrap().1["item"];
    assert_eq!(item["type"], "custom_tool_call");
    assert_eq!(item["input"], "*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch\n");
    assert!(events.iter().any(|(n, _)| n.as_deref() == Some("response.custom_tool_call_input.delta")));
    body["input"] = after(item, "Success.");
    body["stream"] = json!(false);
    let (status, answer) = post_json(&server, "/v1/responses", &body).await;
    assert_eq!((status, answer["output"][0]["content"][0]["text"].as_str()), (200, Some("DONE")), "{answer}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn rate_limits_over_http_and_inside_the_stream() {
    let server = start().await;
    let response = post(&server, "/v1/responses", &ask("r429", true, first_turn())).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(body["error"]["message"].as_str().unwrap().contains("Please try again in 7s."), "{body}");

    let response = post(&server, "/v1/responses", &ask("quota", true, first_turn())).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().get("retry-after").is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["error"]["type"].as_str(), body["error"]["code"].as_str()),
        (Some("insufficient_quota"), Some("insufficient_quota"))
    );

    // What Codex retries after exactly the delay it names: a `response.failed` in a 200 stream.
    let events = stream(&server, "/v1/responses", &ask("streamed", true, first_turn())).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(names, ["response.created", "response.failed"]);
    let failed = &events[1].1["response"];
    assert_eq!(
        (failed["status"].as_str(), failed["error"]["code"].as_str()),
        (Some("failed"), Some("rate_limit_exceeded"))
    );
    assert!(failed["error"]["message"].as_str().unwrap().contains("Please try again in 3s."));
    let last = server.log().records().pop().unwrap();
    assert_eq!(last.response, ResponseKind::RateLimitedInStream { retry_after: 3 });
    let (status, _) = post_json(&server, "/v1/responses", &ask("streamed", false, first_turn())).await;
    assert_eq!(status, 200, "first = 1: the next request is answered");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn errors_are_openai_shaped() {
    let server = start().await;
    for (model, status, kind) in [("broken", 500, "server_error"), ("nope", 404, "invalid_request_error")] {
        let (got, body) = post_json(&server, "/v1/responses", &ask(model, false, first_turn())).await;
        assert_eq!((got, body["error"]["type"].as_str()), (status, Some(kind)), "{body}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn refuses_what_the_api_refuses() {
    let server = start().await;
    let call =
        json!({ "type": "function_call", "call_id": "call_1", "name": "exec_command", "arguments": "{}" });
    let mut unanswered = first_turn();
    unanswered.as_array_mut().unwrap().push(call.clone());
    let stray = json!([message("user", "go"), { "type": "function_call_output", "call_id": "call_9", "output": "x" }]);
    let cases = [
        (ask("ok", false, unanswered), "No tool output found for function call call_1."),
        (ask("ok", false, stray), "No tool call found for function call output with call_id call_9."),
        (
            ask("ok", false, json!([{ "type": "function_call", "call_id": "c", "name": "f" }])),
            "'input[0].arguments'",
        ),
        (
            ask("ok", false, json!([{ "type": "message", "role": "robot", "content": "x" }])),
            "Invalid value: 'robot'",
        ),
        (json!({ "input": "hi" }), "Missing required parameter: 'model'."),
    ];
    for (body, expected) in cases {
        let (status, answer) = post_json(&server, "/v1/responses", &body).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["type"], "invalid_request_error");
        let text = answer["error"]["message"].as_str().unwrap();
        assert!(text.contains(expected), "{text}");
    }
    server.shutdown().await.unwrap();
}
