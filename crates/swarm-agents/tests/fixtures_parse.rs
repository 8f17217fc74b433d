//! The claude, codex, gemini and aider parsers against the output fixtures in `tests/fixtures`
//! (see the README there for where each shape comes from).

use std::time::Duration;
use swarm_agents::{Adapter, AgentOutput, AiderAdapter, ClaudeAdapter, CodexAdapter, GeminiAdapter};
use swarm_core::event::Stream;
use swarm_core::failure::FailureClass;
use FailureClass::*;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn all(a: &dyn Adapter, name: &str) -> Vec<AgentOutput> {
    fixture(name).lines().flat_map(|l| a.parse_line(Stream::Stdout, l)).collect()
}

fn usage(outs: &[AgentOutput]) -> (u64, u64, f64) {
    outs.iter().fold((0, 0, 0.0), |(i, o, c), x| match x {
        AgentOutput::Usage { tokens_in, tokens_out, cost_usd } => {
            (i + tokens_in, o + tokens_out, c + cost_usd)
        }
        _ => (i, o, c),
    })
}

/// Each line of an errors fixture is one failure: its class and retry-after, in order.
fn errors_per_line(a: &dyn Adapter, name: &str) -> Vec<Option<(FailureClass, Option<Duration>)>> {
    fixture(name)
        .lines()
        .map(|l| {
            let errors: Vec<AgentOutput> = a
                .parse_line(Stream::Stdout, l)
                .into_iter()
                .filter(|o| matches!(o, AgentOutput::Error { .. }))
                .collect();
            if errors.is_empty() {
                None
            } else {
                a.classify(Some(1), &errors, &[])
            }
        })
        .collect()
}

fn secs(s: f64) -> Option<Duration> {
    Some(Duration::from_millis((s * 1000.0) as u64))
}

/// Garbage, truncated JSON, wrong types: never a panic, never lost.
fn robust(a: &dyn Adapter, fixture_name: &str) {
    let lines = [
        "not json",
        "{\"type\":\"result\",\"usage\":{\"input_tok",
        "[1,2]",
        "42",
        "null",
        "\u{0}\u{1}\u{fffd}",
        "{\"type\":\"result\",\"usage\":\"x\",\"stats\":7,\"is_error\":\"yes\"}",
        "{\"type\":\"assistant\",\"message\":{\"content\":\"not a list\"}}",
        "{\"type\":\"assistant\",\"message\":{\"content\":[42,{\"type\":\"tool_use\"}]}}",
        "{\"type\":\"item.completed\",\"item\":{\"type\":\"file_change\",\"changes\":7}}",
        "{\"type\":\"tool_use\",\"parameters\":[]}",
        "{\"type\":\"error\",\"message\":7}",
        "{\"type\":\"turn.failed\"}",
        "Tokens: k sent, received. Cost: $x message",
        "Tokens: 99999999999999999999999k sent, 1e400 received.",
        "litellm.",
        "litellm.Error",
        "",
        "   ",
    ];
    for line in lines {
        let outs = a.parse_line(Stream::Stdout, line);
        assert!(!outs.is_empty() || line.trim().is_empty() || line.starts_with('{'), "{line:?}");
        let _ = a.parse_line(Stream::Stderr, line);
    }
    // Every prefix of every fixture line (a line cut anywhere) is fine too.
    for line in fixture(fixture_name).lines() {
        for cut in (0..line.len()).filter(|i| line.is_char_boundary(*i)).step_by(7) {
            let _ = a.parse_line(Stream::Stdout, &line[..cut]);
        }
    }
}

// ---- claude ----

#[test]
fn claude_usage_session_tool_text() {
    let outs = all(&ClaudeAdapter, "claude-write-hello.stream.jsonl");
    let (i, o, c) = usage(&outs);
    assert_eq!((i, o), (12 + 1600 + 23760, 85));
    assert!((c - 0.0123456).abs() < 1e-9);
    assert!(outs.contains(&AgentOutput::Session("9f1c2b7e-4a3d-4c55-9a0e-2f6d8b1e7c31".into())));
    assert!(outs
        .contains(&AgentOutput::Tool { name: "Write".into(), detail: "/tmp/swarm-w/t1/hello.txt".into() }));
    assert!(outs.contains(&AgentOutput::Text("DONE".into())));
    assert!(!outs.iter().any(|o| matches!(o, AgentOutput::Error { .. })));
    assert_eq!(ClaudeAdapter.classify(Some(0), &[], &[]), None);
}

#[test]
fn claude_errors_by_class() {
    assert_eq!(
        errors_per_line(&ClaudeAdapter, "claude-errors.stream.jsonl"),
        [
            Some((RateLimited, None)),
            Some((Auth, None)),
            Some((ModelNotFound, None)),
            Some((ContextTooLong, None)),
            Some((Overloaded, None)),
            Some((Billing, None)),
            Some((AgentError, None)),
        ]
    );
}

#[test]
fn claude_garbage_never_panics() {
    robust(&ClaudeAdapter, "claude-write-hello.stream.jsonl");
    robust(&ClaudeAdapter, "claude-errors.stream.jsonl");
}

// ---- codex ----

#[test]
fn codex_usage_session_tool_text() {
    let outs = all(&CodexAdapter, "codex-write-hello.jsonl");
    assert_eq!(usage(&outs), (24763, 122, 0.0));
    assert!(outs.contains(&AgentOutput::Session("0199a213-81c0-7800-8aa1-bbab2a035a53".into())));
    assert!(outs.contains(&AgentOutput::Tool { name: "shell".into(), detail: "bash -lc ls".into() }));
    assert!(outs.contains(&AgentOutput::Tool {
        name: "apply_patch".into(),
        detail: "/tmp/swarm-w/t1/hello.txt".into()
    }));
    assert!(outs.contains(&AgentOutput::Text("DONE".into())));
    // The command is reported once (item.started), not again on completion.
    assert_eq!(
        outs.iter().filter(|o| matches!(o, AgentOutput::Tool { name, .. } if name == "shell")).count(),
        1
    );
}

#[test]
fn codex_errors_by_class() {
    assert_eq!(
        errors_per_line(&CodexAdapter, "codex-errors.jsonl"),
        [
            None, // "Reconnecting... 1/5": codex retries by itself
            Some((RateLimited, None)),
            Some((RateLimited, secs(2.5))),
            Some((Auth, None)),
            Some((ModelNotFound, None)),
            Some((ContextTooLong, None)),
            Some((QuotaExhausted, None)),
            Some((QuotaExhausted, None)),
            Some((Overloaded, None)),
        ]
    );
}

#[test]
fn codex_garbage_never_panics() {
    robust(&CodexAdapter, "codex-write-hello.jsonl");
    robust(&CodexAdapter, "codex-errors.jsonl");
}

// ---- gemini ----

#[test]
fn gemini_usage_session_tool_text() {
    let outs = all(&GeminiAdapter, "gemini-write-hello.stream.jsonl");
    assert_eq!(usage(&outs), (12700, 190, 0.0));
    assert!(outs.contains(&AgentOutput::Session("c3a2f0e4-6b1d-4e8f-9a7c-5d2b1e0f3a94".into())));
    assert!(outs.contains(&AgentOutput::Tool { name: "write_file".into(), detail: "hello.txt".into() }));
    assert!(outs.contains(&AgentOutput::Text("DONE".into())));
    assert!(outs.contains(&AgentOutput::Text(
        "YOLO mode is enabled. All tool calls will be automatically approved.".into()
    )));
    // The user's own prompt echoed back is not the agent's activity.
    assert!(!outs.iter().any(|o| matches!(o, AgentOutput::Text(t) if t.starts_with("Create hello"))));
}

#[test]
fn gemini_errors_by_class() {
    assert_eq!(
        errors_per_line(&GeminiAdapter, "gemini-errors.stream.jsonl"),
        [
            Some((RateLimited, secs(13.0))),
            Some((QuotaExhausted, None)),
            Some((Auth, None)),
            Some((ModelNotFound, None)),
            Some((ContextTooLong, None)),
            Some((Overloaded, None)),
            None, // a warning
        ]
    );
}

#[test]
fn gemini_garbage_never_panics() {
    robust(&GeminiAdapter, "gemini-write-hello.stream.jsonl");
    robust(&GeminiAdapter, "gemini-errors.stream.jsonl");
}

// ---- aider ----

#[test]
fn aider_usage_and_text() {
    let outs = all(&AiderAdapter, "aider-write-hello.txt");
    let (i, o, c) = usage(&outs);
    assert_eq!((i, o), (2400, 45));
    assert!((c - 0.0061).abs() < 1e-9);
    assert!(outs.contains(&AgentOutput::Text("Applied edit to hello.txt".into())));
    assert!(!outs.iter().any(|o| matches!(o, AgentOutput::Error { .. })));
    // Aider has no session id.
    assert!(!outs.iter().any(|o| matches!(o, AgentOutput::Session(_))));
    // Exit 0 and no error line: success.
    assert_eq!(AiderAdapter.classify(Some(0), &[], &[]), None);
}

#[test]
fn aider_usage_line_variants() {
    let p = |l: &str| AiderAdapter.parse_line(Stream::Stdout, l);
    assert_eq!(
        p("Tokens: 15k sent, 1.1k cache write, 512 cache hit, 999 received. Cost: $0.12 message, $0.50 session."),
        [AgentOutput::Usage { tokens_in: 15000, tokens_out: 999, cost_usd: 0.12 }]
    );
    assert_eq!(
        p("Tokens: 116 sent, 30 received."),
        [AgentOutput::Usage { tokens_in: 116, tokens_out: 30, cost_usd: 0.0 }]
    );
    assert_eq!(
        p("Tokens: 15.3k sent, 2.1k cache write, 8.2k cache read; 4.5k Total (1.2k thinking, 3.3k returned)"),
        [AgentOutput::Usage { tokens_in: 15300, tokens_out: 4500, cost_usd: 0.0 }]
    );
}

#[test]
fn aider_errors_by_class_even_with_exit_zero() {
    assert_eq!(
        errors_per_line(&AiderAdapter, "aider-errors.txt"),
        [
            Some((RateLimited, secs(1.0))),
            None, // aider's own explanation of the line above
            None, // "Retrying in 0.2 seconds...": aider's backoff, not the provider's
            Some((QuotaExhausted, None)),
            Some((Auth, None)),
            None,
            Some((ModelNotFound, None)),
            Some((ContextTooLong, None)),
            Some((ContextTooLong, None)),
            Some((Overloaded, None)),
            None,
            Some((AgentError, None)),
        ]
    );
    // Aider exits 0 after giving up: the errors it printed still classify the attempt.
    let errors: Vec<_> = all(&AiderAdapter, "aider-errors.txt")
        .into_iter()
        .filter(|o| matches!(o, AgentOutput::Error { .. }))
        .collect();
    assert_eq!(AiderAdapter.classify(Some(0), &errors[..1], &[]), Some((RateLimited, secs(1.0))));
}

#[test]
fn aider_model_text_is_not_an_error() {
    // The model's own reply may mention a 429 or a rate limit: only aider's error lines count.
    for l in
        ["The server returns 429 when rate limited.", "  litellm is a library", "Error handling: see below"]
    {
        assert_eq!(AiderAdapter.parse_line(Stream::Stdout, l), [AgentOutput::Text(l.into())]);
    }
}

#[test]
fn aider_garbage_never_panics() {
    robust(&AiderAdapter, "aider-write-hello.txt");
    robust(&AiderAdapter, "aider-errors.txt");
}
