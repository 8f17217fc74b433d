//! Helpers shared by the wire-format tests: a server per test, a client, SSE parsing.
#![allow(dead_code)] // each test file uses its own subset

use std::time::Duration;

use serde_json::Value;
use swarm_fakellm::{serve, FakeLlm, Scenario};

/// Every scenario kind, for any wire format.
pub const SCENARIO: &str = r#"
[models.ok]
steps = [ { write = { path = "hello.txt", content = "hi\n" } }, { say = "DONE" } ]

[models.r429]
rate_limit = { first = 1, retry_after = 7 }
steps = [ { say = "finally" } ]

[models.quota]
rate_limit = { first = 1000, kind = "quota", header = false }

[models.streamed]
rate_limit = { first = 1, retry_after = 3, stream = true }
steps = [ { say = "finally" } ]

[models.broken]
error = { status = 500, message = "upstream exploded" }

[models.overloaded]
error = { status = 529, message = "Overloaded", retry_after = 2 }

[models.hang]
hang = true

[models.slow]
usage = { prompt_tokens = 1200, completion_tokens = 300 }
steps = [ { say = "slow and steady wins" } ]
"#;

/// A test's patience for anything that should be quick.
pub const QUICK: Duration = Duration::from_secs(10);

pub async fn start() -> FakeLlm {
    serve(Scenario::from_toml(SCENARIO).unwrap(), "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(QUICK).build().unwrap()
}

/// POSTs `body` to `path` (e.g. `/v1/messages`) on the server.
pub async fn post(server: &FakeLlm, path: &str, body: &Value) -> reqwest::Response {
    client().post(format!("http://{}{path}", server.addr())).json(body).send().await.unwrap()
}

/// The status and JSON body of a POST.
pub async fn post_json(server: &FakeLlm, path: &str, body: &Value) -> (u16, Value) {
    let response = post(server, path, body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The events of an SSE body: `(event name, data)`; frames may end in `\n\n` or `\r\n\r\n`.
pub fn events(body: &str) -> Vec<(Option<String>, Value)> {
    body.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|frame| !frame.trim().is_empty())
        .map(|frame| {
            let mut name = None;
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (name, serde_json::from_str(&data).unwrap_or_else(|e| panic!("bad data {data:?}: {e}")))
        })
        .collect()
}

/// A streamed POST: checks the content type and returns its events.
pub async fn stream(server: &FakeLlm, path: &str, body: &Value) -> Vec<(Option<String>, Value)> {
    let response = post(server, path, body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    events(&response.text().await.unwrap())
}

/// The request lines of a captured fake-llm request log.
pub fn fixture(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}
