//! Gemini over real loopback HTTP: generateContent, streamGenerateContent (`alt=sse` and the JSON
//! array), countTokens, function calls with thought signatures and their responses, usage,
//! RESOURCE_EXHAUSTED bodies as Google sends them, and the API's refusals.

mod support;

use serde_json::{json, Value};
use support::{client, post, post_json, start, stream};
use swarm_fakellm::{Format, ResponseKind};

/// Gemini CLI's file tool, as it declares it (schema in `parametersJsonSchema`).
fn gemini_tools() -> Value {
    json!([{ "functionDeclarations": [
        { "name": "run_shell_command", "parametersJsonSchema": { "type": "object", "properties": { "command": { "type": "string" } } } },
        { "name": "write_file", "parametersJsonSchema": { "type": "object",
            "properties": { "file_path": { "type": "string" }, "content": { "type": "string" } }, "required": ["file_path", "content"] } },
    ] }])
}

fn user() -> Value {
    json!({ "role": "user", "parts": [{ "text": "<session_context>…</session_context>" }, { "text": "write hello.txt\n" }] })
}

fn ask(contents: Value) -> Value {
    json!({ "contents": contents, "systemInstruction": { "role": "user", "parts": [{ "text": "be brief" }] },
            "tools": gemini_tools(), "generationConfig": { "temperature": 1 } })
}

/// The model's call echoed as the CLI does (with its own id), then the function's response.
fn after(call_part: &Value) -> Value {
    let mut part = call_part.clone();
    part["functionCall"]["id"] = json!("write_file_1_0");
    json!([user(), { "role": "model", "parts": [part] },
        { "role": "user", "parts": [{ "functionResponse": { "id": "write_file_1_0", "name": "write_file",
            "response": { "output": "Successfully created and wrote to new file" } } }] }])
}

const GENERATE: &str = "/v1beta/models/ok:generateContent";
const STREAM: &str = "/v1beta/models/ok:streamGenerateContent?alt=sse";

#[tokio::test]
async fn function_call_with_signature_then_text_after_the_response() {
    let server = start().await;
    let (status, body) = post_json(&server, GENERATE, &ask(json!([user()]))).await;
    assert_eq!(status, 200, "{body}");
    let candidate = &body["candidates"][0];
    assert_eq!(
        (candidate["content"]["role"].as_str(), candidate["finishReason"].as_str()),
        (Some("model"), Some("STOP"))
    );
    let part = &candidate["content"]["parts"][0];
    assert_eq!(
        part["functionCall"],
        json!({ "name": "write_file", "args": { "file_path": "hello.txt", "content": "hi\n" } })
    );
    assert!(!part["thoughtSignature"].as_str().unwrap().is_empty(), "the call carries a thought signature");
    let usage = &body["usageMetadata"];
    assert_eq!(
        usage["totalTokenCount"].as_u64().unwrap(),
        usage["promptTokenCount"].as_u64().unwrap() + usage["candidatesTokenCount"].as_u64().unwrap()
    );

    let (status, body) = post_json(&server, GENERATE, &ask(after(part))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["candidates"][0]["content"]["parts"], json!([{ "text": "DONE" }]));
    let records = server.log().records();
    assert_eq!(records.iter().map(|r| r.turn).collect::<Vec<_>>(), [Some(0), Some(1)]);
    assert_eq!((records[1].format, records[1].model.as_deref()), (Format::Gemini, Some("ok")));
    assert_eq!(records[1].user, ["<session_context>…</session_context>\nwrite hello.txt\n"]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn sse_stream_and_json_array_stream() {
    let server = start().await;
    let events = stream(&server, STREAM, &ask(json!([user()]))).await;
    assert_eq!(events.len(), 1, "a function call comes whole in one chunk");
    let part = &events[0].1["candidates"][0]["content"]["parts"][0];
    assert_eq!(part["functionCall"]["name"], "write_file");

    let events = stream(&server, STREAM, &ask(after(part))).await;
    let text: String = events
        .iter()
        .filter_map(|(_, d)| d["candidates"][0]["content"]["parts"][0]["text"].as_str().map(String::from))
        .collect();
    assert_eq!(text, "DONE");
    let last = &events.last().unwrap().1;
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert!(last["usageMetadata"]["totalTokenCount"].as_u64().unwrap() > 0);
    // Frames end like Google's, in CRLF CRLF.
    let raw = post(&server, STREAM, &ask(json!([user()]))).await.text().await.unwrap();
    assert!(raw.starts_with("data: {") && raw.ends_with("\r\n\r\n"), "{raw:?}");

    // Without alt=sse the stream is one JSON array of chunks.
    let (status, body) =
        post_json(&server, "/v1beta/models/ok:streamGenerateContent", &ask(json!([user()]))).await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["name"], "write_file");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn count_tokens_json_mode_usage_and_model_list() {
    let server = start().await;
    let contents = json!([{ "role": "user", "parts": [{ "text": "x".repeat(400) }] }]);
    let (status, body) =
        post_json(&server, "/v1beta/models/r429:countTokens", &json!({ "contents": contents })).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["totalTokens"].as_u64().unwrap() >= 100);
    assert!(matches!(server.log().records()[0].response, ResponseKind::TokenCount { .. }));
    // Gemini CLI's router asks for JSON of a schema; the answer must parse as such.
    let router = json!({ "contents": [user()], "generationConfig": { "responseMimeType": "application/json",
        "responseJsonSchema": { "type": "OBJECT", "properties": { "complexity_reasoning": { "type": "STRING" },
            "complexity_score": { "type": "INTEGER" } } } } });
    let (_, body) = post_json(&server, GENERATE, &router).await;
    let text = body["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap();
    let routed: Value = serde_json::from_str(text).unwrap();
    assert!(routed["complexity_score"].is_u64() && routed["complexity_reasoning"].is_string(), "{routed}");
    let (_, body) = post_json(&server, "/v1beta/models/slow:generateContent", &ask(json!([user()]))).await;
    assert_eq!(
        body["usageMetadata"],
        json!({ "promptTokenCount": 1200, "candidatesTokenCount": 300, "totalTokenCount": 1500 })
    );
    let list: Value = client()
        .get(format!("http://{}/v1beta/models", server.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list["models"].as_array().unwrap().iter().any(|m| m["name"] == "models/ok"), "{list}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn resource_exhausted_per_minute_and_per_day() {
    let server = start().await;
    let response =
        post(&server, "/v1beta/models/r429:streamGenerateContent?alt=sse", &ask(json!([user()]))).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert_eq!((error["code"].as_u64(), error["status"].as_str()), (Some(429), Some("RESOURCE_EXHAUSTED")));
    let details = error["details"].as_array().unwrap();
    let of =
        |kind: &str| details.iter().find(|d| d["@type"] == format!("type.googleapis.com/google.rpc.{kind}"));
    assert_eq!(of("RetryInfo").unwrap()["retryDelay"], "7s");
    let violation = &of("QuotaFailure").unwrap()["violations"][0];
    assert_eq!(violation["quotaId"], "GenerateRequestsPerMinutePerProjectPerModel-FreeTier");
    assert_eq!(violation["quotaDimensions"]["model"], "r429");

    let response = post(&server, "/v1beta/models/quota:generateContent", &ask(json!([user()]))).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().get("retry-after").is_none());
    let body: Value = response.json().await.unwrap();
    let details = body["error"]["details"].as_array().unwrap();
    assert!(
        details.iter().all(|d| d["@type"] != "type.googleapis.com/google.rpc.RetryInfo"),
        "a spent day has no RetryInfo"
    );
    assert_eq!(details[0]["violations"][0]["quotaId"], "GenerateRequestsPerDayPerProjectPerModel-FreeTier");
    for (path, status, name) in [
        ("/v1beta/models/broken:generateContent", 500, "INTERNAL"),
        ("/v1beta/models/nope:generateContent", 404, "NOT_FOUND"),
    ] {
        let (got, body) = post_json(&server, path, &ask(json!([user()]))).await;
        assert_eq!((got, body["error"]["status"].as_str()), (status, Some(name)), "{body}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn refuses_what_the_api_refuses() {
    let server = start().await;
    let (_, body) = post_json(&server, GENERATE, &ask(json!([user()]))).await;
    let signed = body["candidates"][0]["content"]["parts"][0].clone();
    let mut unsigned = signed.clone();
    unsigned.as_object_mut().unwrap().remove("thoughtSignature");
    let response = json!({ "role": "user", "parts": [{ "functionResponse": { "name": "write_file", "response": {} } }] });
    let cases = [
        (ask(after(&unsigned)), "Function call is missing a thought_signature"),
        (
            ask(json!([user(), response])),
            "function response turn comes immediately after a function call turn",
        ),
        (
            ask(json!([user(), { "role": "model", "parts": [signed.clone(), signed] }, response])),
            "number of function response parts is equal to the number of function call parts",
        ),
        (ask(json!([])), "contents is not specified"),
        (ask(json!([{ "role": "user", "parts": [] }])), "contents.parts must not be empty"),
        (ask(json!([{ "role": "user", "parts": [{ "thought": true }] }])), "required oneof field 'data'"),
    ];
    for (body, expected) in cases {
        let (status, answer) = post_json(&server, GENERATE, &body).await;
        assert_eq!((status, answer["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")), "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
    }
    server.shutdown().await.unwrap();
}
