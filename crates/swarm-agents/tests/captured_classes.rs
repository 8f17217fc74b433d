//! Every failure class, per agent, from the real CLI's captured output against swarm's fake
//! model server (`tests/fixtures/captured/<agent>-<class>.{stdout,stderr,exit}`; the README there
//! has the scenario and command of each). Each capture goes through the adapter's `parse_line`
//! (stdout lines as `Stdout`, stderr lines as `Stderr`) and `classify`.

use std::time::Duration;
use swarm_agents::{Adapter, AgentOutput, ClineAdapter, OpencodeAdapter};
use swarm_core::event::Stream;
use swarm_core::failure::FailureClass;
use FailureClass::*;

/// How many stderr lines the runner keeps as the tail.
const TAIL: usize = 40;

fn read(name: &str) -> String {
    let path = format!("{}/tests/fixtures/captured/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The capture's class and retry-after, as swarm would decide them.
fn classify_capture(a: &dyn Adapter, agent: &str, class: &str) -> Option<(FailureClass, Option<Duration>)> {
    let base = format!("{agent}-{class}");
    let exit: i32 = read(&format!("{base}.exit")).trim().parse().expect("exit code");
    let mut outs: Vec<AgentOutput> = Vec::new();
    for l in read(&format!("{base}.stdout")).lines() {
        outs.extend(a.parse_line(Stream::Stdout, l));
    }
    let stderr = read(&format!("{base}.stderr"));
    let stderr_lines: Vec<String> = stderr.lines().map(String::from).collect();
    for l in &stderr_lines {
        outs.extend(a.parse_line(Stream::Stderr, l));
    }
    let errors: Vec<AgentOutput> =
        outs.into_iter().filter(|o| matches!(o, AgentOutput::Error { .. })).collect();
    let tail = &stderr_lines[stderr_lines.len().saturating_sub(TAIL)..];
    // A process killed by a signal has no exit code.
    let code = if exit > 128 { None } else { Some(exit) };
    a.classify(code, &errors, tail)
}

/// (capture class, expected class, expected retry-after in seconds).
const CASES: &[(&str, FailureClass, Option<u64>)] = &[
    ("rate_limited", RateLimited, Some(2)),
    ("quota_exhausted", QuotaExhausted, None),
    ("billing", Billing, None),
    ("auth", Auth, None),
    ("context_too_long", ContextTooLong, None),
    ("model_not_found", ModelNotFound, None),
    ("overloaded", Overloaded, None),
    ("agent_error", AgentError, None),
    ("crashed", Crashed, None),
];

fn check(a: &dyn Adapter, agent: &str, skip: &[&str]) {
    let mut failures = Vec::new();
    for (class, want, retry) in CASES {
        if skip.contains(class) {
            continue;
        }
        let exit = format!("{}/tests/fixtures/captured/{agent}-{class}.exit", env!("CARGO_MANIFEST_DIR"));
        if !std::path::Path::new(&exit).exists() {
            failures.push(format!("{agent}-{class}: no capture"));
            continue;
        }
        let got = classify_capture(a, agent, class);
        let ok = match got {
            Some((c, r)) => c == *want && (retry.is_none() || r == retry.map(Duration::from_secs)),
            None => false,
        };
        if !ok {
            failures.push(format!("{agent}-{class}: want {want} (retry {retry:?}), got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn opencode_captures() {
    check(&OpencodeAdapter::opencode(), "opencode", &[]);
}

#[test]
fn kilo_captures() {
    check(&OpencodeAdapter::kilo(), "kilo", &[]);
}

#[test]
fn cline_captures() {
    check(&ClineAdapter, "cline", &[]);
}
