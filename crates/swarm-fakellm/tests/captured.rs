//! The requests the real Claude Code, Codex, Gemini CLI and aider sent to fake-llm while writing
//! hello.txt (tests/fixtures/*-write-hello.requests.jsonl, recorded with the pinned versions):
//! replayed, each must be accepted — nothing a real CLI sends may be refused — and answered the
//! way it was then (the CLI's own file tool, then DONE).

mod support;

use serde_json::Value;
use support::{fixture, post, start};
use swarm_fakellm::{RequestRecord, ResponseKind};

/// Replays a captured log; returns what the server logged for each request.
async fn replay(name: &str) -> Vec<RequestRecord> {
    let captured = fixture(name);
    let server = start().await;
    for line in &captured {
        let path = match line["query"].as_str() {
            Some(query) => format!("{}?{query}", line["path"].as_str().unwrap()),
            None => line["path"].as_str().unwrap().to_string(),
        };
        let response = post(&server, &path, &line["body"]).await;
        assert_eq!(response.status(), 200, "{name} seq {}: {}", line["seq"], response.text().await.unwrap());
        response.bytes().await.unwrap();
    }
    let records = server.log().records();
    server.shutdown().await.unwrap();
    assert_eq!(records.len(), captured.len());
    for (record, line) in records.iter().zip(&captured) {
        let recorded: ResponseKind = serde_json::from_value(line["response"].clone()).unwrap();
        assert_eq!(record.response, recorded, "{name} seq {}", line["seq"]);
        assert_eq!(record.body, line["body"], "the log holds the request as sent");
        assert_eq!(serde_json::to_value(record.format).unwrap(), line["format"]);
    }
    records
}

/// The text parts of the last user message of a Messages or Gemini body (the prompt's message).
fn last_user_parts(body: &Value, messages: &str, parts: &str) -> Vec<String> {
    let last = body[messages].as_array().unwrap().iter().rev().find(|m| m["role"] == "user").unwrap();
    last[parts].as_array().unwrap().iter().filter_map(|p| p["text"].as_str().map(String::from)).collect()
}

#[tokio::test]
async fn claude_code_2_1_332() {
    let records = replay("claude-code-2.1.332-write-hello.requests.jsonl").await;
    assert!(matches!(&records[0].response, ResponseKind::ToolCall { tool, .. } if tool == "Write"));
    assert_eq!(records[1].response, ResponseKind::Text { text: "DONE".into() });
    // The prompt is a text block of its own, exactly as it was given on stdin.
    assert!(
        last_user_parts(&records[0].body, "messages", "content").contains(&"write hello.txt\n".to_string())
    );
    assert!(records[0].body["messages"].as_array().unwrap().iter().any(|m| m["role"] == "system"));
}

#[tokio::test]
async fn codex_0_171_0() {
    let records = replay("codex-0.171.0-write-hello.requests.jsonl").await;
    assert!(matches!(&records[0].response, ResponseKind::ToolCall { tool, .. } if tool == "exec_command"));
    assert_eq!(records[1].turn, Some(1));
    assert_eq!(records[0].user.last().map(String::as_str), Some("write hello.txt\n"));
}

#[tokio::test]
async fn gemini_cli_0_61_0() {
    let records = replay("gemini-cli-0.61.0-write-hello.requests.jsonl").await;
    assert!(matches!(&records[0].response, ResponseKind::ToolCall { tool, .. } if tool == "write_file"));
    assert_eq!(records[1].response, ResponseKind::Text { text: "DONE".into() });
    assert_eq!(
        last_user_parts(&records[0].body, "contents", "parts").last().map(String::as_str),
        Some("write hello.txt\n")
    );
    // It sent back the signature the fake gave its call.
    let model_turn = &records[1].body["contents"][1];
    assert!(model_turn["parts"][0]["thoughtSignature"].is_string(), "{model_turn}");
}

#[tokio::test]
async fn aider_0_86_2() {
    let records = replay("aider-0.86.2-write-hello.requests.jsonl").await;
    // Three few-shot assistant answers precede the task: still the first turn, answered with a
    // whole-file listing that aider applies.
    assert_eq!(records[0].turn, Some(0));
    assert_eq!(records[0].response, ResponseKind::Text { text: "hello.txt\n```\nhi\n```\n".into() });
    assert!(records[0].user.last().unwrap().starts_with("write hello.txt\n\nTo suggest changes to a file"));
}
