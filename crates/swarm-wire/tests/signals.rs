//! Failures in each agent's format, and the answers that make each agent wait or give up, checked
//! against the rules their clients' sources apply (see `swarm_wire::signal`).

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;
use swarm_wire::signal::{self, Signal, GEMINI_MAX_RETRY_DELAY};
use swarm_wire::{Failure, FailureKind, Format, Reply};

fn reply(s: Signal) -> Reply {
    match s {
        Signal::Reply(r) => r,
        Signal::Stream(_) => panic!("expected a reply"),
    }
}

fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Gemini CLI's classification (googleQuotaErrors.ts), reduced to what the gateway sends:
/// `Some(delay)` retried after at least `delay`, `None` terminal.
fn gemini_cli_waits(r: &Reply) -> Option<f64> {
    let e = &r.body["error"];
    let message = e["message"].as_str().unwrap_or_default().to_lowercase();
    if message.contains("limit: 0") {
        return None;
    }
    let details = e["details"].as_array().cloned().unwrap_or_default();
    let ids: Vec<String> = details
        .iter()
        .flat_map(|d| d["violations"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v["quotaId"].as_str().map(str::to_string))
        .collect();
    if ids.iter().any(|q| q.contains("PerDay") || q.contains("Daily")) {
        return None;
    }
    let delay = details
        .iter()
        .find_map(|d| d["retryDelay"].as_str())
        .map(|d| d.trim_end_matches('s').parse::<f64>().unwrap());
    match delay {
        Some(d) if d > 300.0 => None,
        Some(d) => Some(d),
        None if ids.iter().any(|q| q.contains("PerMinute")) => Some(60.0),
        None => Some(0.0),
    }
}

/// Codex's reading of a streamed `response.failed` (sse/responses.rs): `Some(delay)` retried.
fn codex_waits(bytes: &[u8]) -> Option<f64> {
    let failed = datas(bytes).into_iter().find(|e| e["type"] == "response.failed")?;
    let error = &failed["response"]["error"];
    if error["code"] != "rate_limit_exceeded" {
        return None;
    }
    let message = error["message"].as_str()?.to_lowercase();
    let at = message.find("try again in")? + "try again in".len();
    let rest = message[at..].trim_start();
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    rest[end..].starts_with('s').then(|| rest[..end].parse().ok()).flatten()
}

#[test]
fn codex_waits_on_a_streamed_rate_limit_and_stops_on_a_plain_429() {
    let ctx = ctx(Format::Responses, Format::Chat, "m", true);
    let Signal::Stream(bytes) = signal::wait(&ctx, Duration::from_millis(12_500), "Rate limit reached.")
    else {
        panic!("a stream")
    };
    assert_eq!(names(&bytes), ["response.created", "response.in_progress", "response.failed"]);
    assert_eq!(codex_waits(&bytes), Some(12.5));
    let r = reply(signal::give_up(&ctx, "every model is exhausted"));
    assert_eq!(r.status, 429, "Codex does not retry a plain 429 (retry_429: false)");
    assert!(header(&r, "retry-after").is_none(), "Codex 0.171 retries a 429 with retry-after");
    assert_eq!(r.body["error"]["code"], "insufficient_quota");
}

#[test]
fn gemini_cli_waits_per_minute_up_to_300s_and_stops_per_day() {
    let ctx = ctx(Format::Gemini, Format::Chat, "m", true);
    let r = reply(signal::wait(&ctx, Duration::from_secs(30), "Quota exceeded, wait."));
    assert_eq!((r.status, &r.body["error"]["status"]), (429, &json!("RESOURCE_EXHAUSTED")));
    assert_eq!(gemini_cli_waits(&r), Some(30.0));
    let r = reply(signal::wait(&ctx, Duration::from_secs(3600), "long"));
    assert_eq!(
        gemini_cli_waits(&r),
        Some(GEMINI_MAX_RETRY_DELAY.as_secs_f64()),
        "capped so it stays retryable"
    );
    assert_eq!(gemini_cli_waits(&reply(signal::give_up(&ctx, "done for today"))), None);
}

#[test]
fn claude_code_waits_on_retry_after_and_stops_when_told() {
    let ctx = ctx(Format::Anthropic, Format::Chat, "m", true);
    let r = reply(signal::wait(&ctx, Duration::from_millis(2500), "slow down"));
    assert_eq!(r.status, 429);
    assert_eq!(
        r.body,
        json!({ "type": "error", "error": { "type": "rate_limit_error", "message": "slow down" } })
    );
    assert_eq!(
        (header(&r, "retry-after"), header(&r, "retry-after-ms"), header(&r, "x-should-retry")),
        (Some("3"), Some("2500"), Some("true"))
    );
    let r = reply(signal::wait(&ctx, Duration::from_secs(600), "long"));
    assert_eq!(header(&r, "retry-after"), Some("60"), "Claude Code gives up past 60 s");
    let r = reply(signal::give_up(&ctx, "exhausted"));
    assert_eq!(header(&r, "x-should-retry"), Some("false"));
}

#[test]
fn chat_agents_get_retry_after() {
    let ctx = ctx(Format::Chat, Format::Chat, "m", true);
    let r = reply(signal::wait(&ctx, Duration::from_secs(1), "busy"));
    assert_eq!((r.status, header(&r, "retry-after")), (429, Some("1")));
    assert_eq!(r.body["error"]["code"], "rate_limit_exceeded");
}

#[test]
fn upstream_failures_in_every_agent_format() {
    let body = br#"{"error":{"code":429,"message":"Resource exhausted. Please retry in 4s.","status":"RESOURCE_EXHAUSTED"}}"#;
    let f = Failure::from_upstream(429, body, None);
    assert_eq!((f.kind, f.retry_after), (FailureKind::RateLimited, Some(Duration::from_secs(4))));
    let shapes: [(Format, u16, Value); 4] = [
        (
            Format::Chat,
            429,
            json!({ "error": { "message": f.message, "type": "rate_limit_exceeded", "code": "rate_limit_exceeded", "param": null } }),
        ),
        (
            Format::Responses,
            429,
            json!({ "error": { "message": f.message, "type": "rate_limit_exceeded", "code": "rate_limit_exceeded", "param": null } }),
        ),
        (
            Format::Anthropic,
            429,
            json!({ "type": "error", "error": { "type": "rate_limit_error", "message": f.message } }),
        ),
        (Format::Gemini, 429, Value::Null),
    ];
    for (agent, status, expected) in shapes {
        let r = translator(agent, Format::Gemini).error(&f);
        assert_eq!(r.status, status, "{agent}");
        assert_eq!(header(&r, "retry-after"), Some("4"), "{agent}");
        if !expected.is_null() {
            assert_eq!(r.body, expected, "{agent}");
        }
    }
    let overloaded = Failure::from_upstream(503, b"upstream connect error", None);
    assert_eq!(overloaded.kind, FailureKind::Overloaded);
    assert_eq!(overloaded.reply(Format::Anthropic).status, 529);
    assert_eq!(overloaded.reply(Format::Gemini).body["error"]["status"], "UNAVAILABLE");
    let auth = Failure::from_upstream(
        401,
        br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        None,
    );
    assert_eq!((auth.kind, auth.message.as_str()), (FailureKind::Auth, "invalid x-api-key"));
    let day = Failure::from_upstream(
        429,
        br#"{"error":{"message":"You exceeded your current quota","code":"insufficient_quota"}}"#,
        None,
    );
    assert_eq!(day.kind, FailureKind::QuotaExhausted);
    assert_eq!(gemini_cli_waits(&day.reply(Format::Gemini)), None);
}
