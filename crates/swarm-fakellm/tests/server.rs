//! The fake model server over real loopback HTTP: every scenario kind, streaming and not.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use swarm_fakellm::{serve, FakeLlm, ResponseKind, Scenario};

const SCENARIO: &str = r#"
[models.ok]
steps = [ { write = { path = "hello.txt", content = "hi\n" } }, { say = "DONE" } ]

[models.r429]
rate_limit = { first = 2, retry_after = 7 }
steps = [ { say = "finally" } ]

[models.broken]
error = { status = 500, message = "upstream exploded" }

[models.hang]
hang = true

[models.slow]
delay_ms = 300
chunk_delay_ms = 50
steps = [ { say = "slow and steady wins" } ]
usage = { prompt_tokens = 1200, completion_tokens = 300 }
"#;

/// A test's patience for anything that should be quick.
const QUICK: Duration = Duration::from_secs(10);

async fn start(scenario: &str) -> FakeLlm {
    serve(Scenario::from_toml(scenario).unwrap(), "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(QUICK).build().unwrap()
}

async fn post(server: &FakeLlm, body: Value) -> reqwest::Response {
    client().post(format!("{}/chat/completions", server.base_url())).json(&body).send().await.unwrap()
}

fn opencode_tools() -> Value {
    json!([
        { "type": "function", "function": { "name": "bash", "parameters": { "type": "object",
            "properties": { "command": { "type": "string" }, "description": { "type": "string" } } } } },
        { "type": "function", "function": { "name": "write", "parameters": { "type": "object",
            "properties": { "content": { "type": "string" }, "filePath": { "type": "string" } },
            "required": ["content", "filePath"] } } },
    ])
}

fn cline_tools() -> Value {
    json!([
        { "type": "function", "function": { "name": "read_files", "parameters": { "type": "object",
            "properties": { "files": { "type": "array" } } } } },
        { "type": "function", "function": { "name": "editor", "parameters": { "type": "object",
            "properties": { "path": { "type": "string" }, "old_text": { "type": ["string", "null"] },
                "new_text": { "type": "string" }, "insert_line": { "type": ["integer", "null"] } },
            "required": ["path", "new_text"] } } },
        { "type": "function", "function": { "name": "submit_and_exit", "parameters": { "type": "object",
            "properties": { "summary": { "type": "string" } } } } },
    ])
}

fn user(text: &str) -> Value {
    json!({ "role": "user", "content": text })
}

/// The conversation after the first tool call was answered.
fn after_tool_call() -> Vec<Value> {
    vec![
        user("write hello.txt"),
        json!({ "role": "assistant", "content": null, "tool_calls": [{ "id": "call_1", "type": "function",
            "function": { "name": "write", "arguments": "{\"filePath\":\"hello.txt\",\"content\":\"hi\\n\"}" } }] }),
        json!({ "role": "tool", "tool_call_id": "call_1", "content": "Wrote file successfully." }),
    ]
}

/// The `data:` payloads of an SSE body; asserts it ends with `[DONE]`, which is not returned.
fn sse_events(body: &str) -> Vec<Value> {
    let payloads: Vec<&str> = body
        .split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| event.strip_prefix("data: ").unwrap())
        .collect();
    assert_eq!(payloads.last(), Some(&"[DONE]"), "stream must end with [DONE]: {body}");
    payloads[..payloads.len() - 1].iter().map(|payload| serde_json::from_str(payload).unwrap()).collect()
}

/// Reassembles a streamed message: (content, tool call name, tool call id, arguments, finish reason).
fn reassemble(events: &[Value]) -> (String, Option<String>, Option<String>, String, String) {
    let (mut content, mut name, mut id, mut arguments, mut finish) =
        (String::new(), None, None, String::new(), None);
    for event in events {
        assert_eq!(event["object"], "chat.completion.chunk");
        let Some(choice) = event["choices"].get(0) else { continue };
        if let Some(text) = choice["delta"]["content"].as_str() {
            content.push_str(text);
        }
        if let Some(call) = choice["delta"]["tool_calls"].get(0) {
            assert_eq!(call["index"], 0);
            if let Some(n) = call["function"]["name"].as_str() {
                name = Some(n.to_string());
            }
            if let Some(i) = call["id"].as_str() {
                id = Some(i.to_string());
            }
            arguments.push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            assert!(finish.is_none(), "one finish_reason per stream");
            finish = Some(reason.to_string());
        }
    }
    (content, name, id, arguments, finish.expect("a finish_reason"))
}

#[tokio::test]
async fn non_streaming_write_then_done_with_opencode_tools() {
    let server = start(SCENARIO).await;
    let response = post(
        &server,
        json!({ "model": "ok", "messages": [user("write hello.txt")], "tools": opencode_tools() }),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "ok");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["function"]["name"], "write");
    let arguments: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({ "filePath": "hello.txt", "content": "hi\n" }));
    let usage = &body["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0);

    let body: Value =
        post(&server, json!({ "model": "ok", "messages": after_tool_call(), "tools": opencode_tools() }))
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["choices"][0]["message"]["content"], "DONE");
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn streaming_write_with_cline_tools_and_usage_chunk() {
    let server = start(SCENARIO).await;
    let response = post(
        &server,
        json!({ "model": "ok", "stream": true, "stream_options": { "include_usage": true },
                "messages": [user("write hello.txt")], "tools": cline_tools() }),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = sse_events(&response.text().await.unwrap());
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    let (content, name, id, arguments, finish) = reassemble(&events);
    assert_eq!(content, "");
    assert_eq!(name.as_deref(), Some("editor"));
    assert!(id.is_some());
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({ "path": "hello.txt", "new_text": "hi\n" })
    );
    assert_eq!(finish, "tool_calls");
    let last = events.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert!(last["usage"]["total_tokens"].as_u64().unwrap() > 0);

    // Second turn, streamed text; no usage chunk unless asked for.
    let response = post(
        &server,
        json!({ "model": "ok", "stream": true, "messages": after_tool_call(), "tools": cline_tools() }),
    )
    .await;
    let events = sse_events(&response.text().await.unwrap());
    let (content, name, _, _, finish) = reassemble(&events);
    assert_eq!((content.as_str(), name, finish.as_str()), ("DONE", None, "stop"));
    assert!(events.iter().all(|event| event.get("usage").is_none()));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn write_without_file_tool_answers_with_the_content() {
    let server = start(SCENARIO).await;
    let body: Value =
        post(&server, json!({ "model": "ok", "messages": [user("hi")] })).await.json().await.unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.contains("hello.txt") && text.contains("hi\n"), "{text}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn models_lists_the_scenario() {
    let server = start(SCENARIO).await;
    let body: Value =
        client().get(format!("{}/models", server.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["broken", "hang", "ok", "r429", "slow"]);
    assert_eq!(body["data"][0]["object"], "model");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_model_is_404_model_not_found() {
    let server = start(SCENARIO).await;
    let response = post(&server, json!({ "model": "nope", "messages": [user("hi")] })).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "model_not_found");
    assert!(body["error"]["message"].as_str().unwrap().contains("nope"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn rate_limited_for_the_first_k_requests_then_answers() {
    let server = start(SCENARIO).await;
    for stream in [false, true] {
        let response =
            post(&server, json!({ "model": "r429", "stream": stream, "messages": [user("hi")] })).await;
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "7");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert!(body["error"]["message"].as_str().unwrap().contains("Rate limit"));
    }
    let response = post(&server, json!({ "model": "r429", "messages": [user("hi")] })).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "finally");
    // Other models have their own counters.
    assert_eq!(post(&server, json!({ "model": "ok", "messages": [] })).await.status(), 200);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn scripted_error_status_and_message() {
    let server = start(SCENARIO).await;
    for _ in 0..2 {
        let response = post(&server, json!({ "model": "broken", "messages": [user("hi")] })).await;
        assert_eq!(response.status(), 500);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["message"], "upstream exploded");
        assert_eq!(body["error"]["type"], "server_error");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn error_for_the_first_n_only() {
    let server =
        start("[models.flaky]\nerror = { status = 503, message = \"overloaded\", first = 1 }\n").await;
    assert_eq!(post(&server, json!({ "model": "flaky", "messages": [] })).await.status(), 503);
    assert_eq!(post(&server, json!({ "model": "flaky", "messages": [] })).await.status(), 200);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn hang_never_answers_and_shutdown_releases_it() {
    let server = start(SCENARIO).await;
    let url = format!("{}/chat/completions", server.base_url());
    let pending = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(&json!({ "model": "hang", "messages": [user("hi")] }))
            .send()
            .await
    });
    tokio::time::timeout(QUICK, server.log().wait_for(1)).await.expect("the request reaches the server");
    assert_eq!(server.log().records()[0].response, ResponseKind::Hang);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!pending.is_finished(), "a hanging model must not answer");
    tokio::time::timeout(QUICK, server.shutdown())
        .await
        .expect("shutdown does not wait for the hang")
        .unwrap();
    let response = tokio::time::timeout(QUICK, pending).await.expect("released by shutdown").unwrap();
    if let Ok(response) = response {
        assert_eq!(response.status(), 503);
    }
}

#[tokio::test]
async fn hang_times_out_on_the_client_side() {
    let server = start(SCENARIO).await;
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(1),
        post(&server, json!({ "model": "hang", "stream": true, "messages": [user("hi")] })),
    )
    .await;
    assert!(result.is_err(), "the request must not complete within 1 s");
    assert!(started.elapsed() >= Duration::from_secs(1));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn slow_model_delays_and_reports_scripted_usage() {
    let server = start(SCENARIO).await;
    let started = Instant::now();
    let body: Value =
        post(&server, json!({ "model": "slow", "messages": [user("hi")] })).await.json().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(body["choices"][0]["message"]["content"], "slow and steady wins");
    assert_eq!(
        body["usage"],
        json!({ "prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500 })
    );

    let started = Instant::now();
    let response = post(
        &server,
        json!({ "model": "slow", "stream": true, "stream_options": { "include_usage": true }, "messages": [user("hi")] }),
    )
    .await;
    let events = sse_events(&response.text().await.unwrap());
    // 300 ms before the first chunk, then 50 ms between each of the others.
    let gaps = events.len() as u64; // chunks after the first, plus [DONE]
    assert!(started.elapsed() >= Duration::from_millis(300 + 50 * gaps), "{:?}", started.elapsed());
    assert_eq!(reassemble(&events).0, "slow and steady wins");
    assert_eq!(events.last().unwrap()["usage"]["total_tokens"], 1500);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_request_body_is_400() {
    let server = start(SCENARIO).await;
    let response = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn paths_without_v1_prefix_work_too() {
    let server = start(SCENARIO).await;
    let url = format!("http://{}/chat/completions", server.addr());
    let response = client().post(url).json(&json!({ "model": "ok", "messages": [] })).send().await.unwrap();
    assert_eq!(response.status(), 200);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn request_log_in_memory_and_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scenario.toml");
    std::fs::write(&file, format!("log = \"requests.jsonl\"\n{SCENARIO}")).unwrap();
    let server = serve(Scenario::from_file(&file).unwrap(), "127.0.0.1:0".parse().unwrap()).await.unwrap();

    post(
        &server,
        json!({ "model": "ok", "stream": true, "messages": [user("go")], "tools": opencode_tools() }),
    )
    .await
    .text()
    .await
    .unwrap();
    post(&server, json!({ "model": "ok", "messages": after_tool_call(), "tools": opencode_tools() })).await;
    post(&server, json!({ "model": "r429", "messages": [] })).await;
    post(&server, json!({ "model": "missing", "messages": [] })).await;
    client().get(format!("{}/models", server.base_url())).send().await.unwrap();

    let records = server.log().records();
    assert_eq!(records.len(), 5);
    assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    let first = &records[0];
    assert_eq!((first.model.as_deref(), first.stream, first.turn), (Some("ok"), true, Some(0)));
    assert_eq!(first.tools, ["bash", "write"]);
    assert_eq!(first.path, "/v1/chat/completions");
    let ResponseKind::ToolCall { tool, arguments } = &first.response else { panic!("{:?}", first.response) };
    assert_eq!(tool, "write");
    assert!(arguments.contains("hello.txt"));
    assert_eq!(records[1].response, ResponseKind::Text { text: "DONE".into() });
    assert_eq!(records[1].turn, Some(1));
    assert!(!records[1].stream);
    assert_eq!(records[2].response, ResponseKind::RateLimited { retry_after: 7 });
    assert_eq!(records[3].response, ResponseKind::ModelNotFound);
    assert_eq!(records[4].response, ResponseKind::Models);
    server.shutdown().await.unwrap();

    let lines: Vec<Value> = std::fs::read_to_string(dir.path().join("requests.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["response"]["kind"], "tool_call");
    assert_eq!(lines[0]["tools"], json!(["bash", "write"]));
    assert_eq!(lines[0]["stream"], true);
    assert_eq!(lines[2]["response"], json!({ "kind": "rate_limited", "retry_after": 7 }));
    assert_eq!(lines[3]["response"]["kind"], "model_not_found");
}

#[tokio::test]
async fn concurrent_conversations_are_independent() {
    // Stateless turns: interleaved conversations each get the step their own history asks for.
    let server = start(SCENARIO).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let url = format!("{}/chat/completions", server.base_url());
        let messages = if i % 2 == 0 { vec![user("go")] } else { after_tool_call() };
        tasks.push(tokio::spawn(async move {
            let body: Value = client()
                .post(url)
                .json(&json!({ "model": "ok", "messages": messages, "tools": opencode_tools() }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (i, body["choices"][0]["finish_reason"].as_str().unwrap().to_string())
        }));
    }
    for task in tasks {
        let (i, finish) = task.await.unwrap();
        assert_eq!(finish, if i % 2 == 0 { "tool_calls" } else { "stop" });
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn declared_limits_are_enforced_with_retry_after() {
    let server = start("[models.paced]\nlimits = { rpm = 2 }\nsteps = [ { say = \"ok\" } ]\n[models.tokens]\nlimits = { tpm = 100 }\nsteps = [ { say = \"ok\" } ]\n").await;
    let ask = |model: &str, text: &str| json!({ "model": model, "messages": [user(text)] });
    for _ in 0..2 {
        assert_eq!(post(&server, ask("paced", "hi")).await.status(), 200);
    }
    let third = post(&server, ask("paced", "hi")).await;
    assert_eq!(third.status(), 429);
    let retry: u64 = third.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    let body: Value = third.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("limit 2 requests per minute"), "{body}");
    // Tokens: a prompt of ~400 bytes is ~100 tokens; the second one does not fit the minute.
    let long = "x".repeat(300);
    assert_eq!(post(&server, ask("tokens", &long)).await.status(), 200);
    assert_eq!(post(&server, ask("tokens", &long)).await.status(), 429);
    let kinds: Vec<_> = server.log().records().into_iter().map(|r| r.response).collect();
    assert_eq!(kinds.iter().filter(|k| matches!(k, ResponseKind::RateLimited { .. })).count(), 2);
}

#[tokio::test]
async fn tool_messages_must_answer_the_tool_calls() {
    let server = start(SCENARIO).await;
    let mut stray = after_tool_call();
    stray.remove(1); // the tool result no longer follows its call
    let response =
        post(&server, json!({ "model": "ok", "messages": stray, "tools": opencode_tools() })).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("must be a response to a preceeding message"),
        "{body}"
    );
    let mut unanswered = after_tool_call();
    unanswered[2] = user("never mind");
    let body: Value =
        post(&server, json!({ "model": "ok", "messages": unanswered })).await.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().ends_with("did not have response messages: call_1"),
        "{body}"
    );
    assert!(matches!(server.log().records()[0].response, ResponseKind::BadRequest { .. }));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_log_keeps_the_format_the_body_and_the_key_however_it_came() {
    let server = start(SCENARIO).await;
    let body = json!({ "model": "ok", "messages": [user("go")] });
    let url = |path: &str| format!("http://{}{path}", server.addr());
    client().post(url("/v1/chat/completions")).bearer_auth("k-bearer").json(&body).send().await.unwrap();
    let anthropic = json!({ "model": "ok", "max_tokens": 5, "messages": [user("go")] });
    client()
        .post(url("/v1/messages"))
        .header("x-api-key", "k-anthropic")
        .json(&anthropic)
        .send()
        .await
        .unwrap();
    let gemini = json!({ "contents": [{ "role": "user", "parts": [{ "text": "go" }] }] });
    client()
        .post(url("/v1beta/models/ok:generateContent"))
        .header("x-goog-api-key", "k-goog")
        .json(&gemini)
        .send()
        .await
        .unwrap();
    client().post(url("/v1beta/models/ok:generateContent?key=k-query")).json(&gemini).send().await.unwrap();
    let records = server.log().records();
    let keys: Vec<_> = records.iter().map(|r| r.bearer.as_deref().unwrap()).collect();
    assert_eq!(keys, ["k-bearer", "k-anthropic", "k-goog", "k-query"]);
    let formats: Vec<_> = records.iter().map(|r| r.format).collect();
    use swarm_fakellm::Format::{Anthropic, Chat, Gemini};
    assert_eq!(formats, [Chat, Anthropic, Gemini, Gemini]);
    assert_eq!((records[0].body.clone(), records[1].body.clone()), (body, anthropic));
    assert_eq!(records[3].query.as_deref(), Some("key=k-query"));
    server.shutdown().await.unwrap();
}
