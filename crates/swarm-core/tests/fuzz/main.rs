//! Fuzzing on stable Rust: the plan parser (markdown and JSON), `swarm.toml` and completion.json
//! fed near-valid inputs (mutated) and raw bytes. Properties: no panic, no case running longer
//! than the deadline, every error located within the input, and a parsed plan's JSON form
//! (`swarm plan show --json`) parses back to the same plan.
//!
//! `cargo test` runs a bounded number of cases per target with a fixed seed. `bench/fuzz` runs
//! the long campaign (`campaign`, ignored here):
//! `SWARM_FUZZ_CASES` (total, split across targets), `SWARM_FUZZ_SEED`, `SWARM_FUZZ_TARGETS`
//! (comma-separated names), `SWARM_FUZZ_SAVE` (directory for inputs that found something).

mod gen;
mod harness;

use harness::{Settings, Stats, Target};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use swarm_core::completion;
use swarm_core::config::{Config, ConfigError};
use swarm_core::diagnostic::{Diagnostic, Diagnostics};
use swarm_core::plan::{parse_bytes, parse_json, PlanContext, PlanFormat};

/// Cases per target in `cargo test` (debug build: about 10 s for all four on two cores).
const CI_CASES: u64 = 2500;
const CI_SEED: u64 = 0x5eed_5a1d;
const DEADLINE: Duration = Duration::from_secs(2);

fn ctx() -> PlanContext {
    PlanContext {
        default_name: "plan".into(),
        default_namespace: "ns".into(),
        agents: ["opencode", "kilo", "cline", "claude", "codex", "gemini", "aider", "exec", "mybot"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

/// The diagnostic's `line:column` is where its span starts, and the span lies within the input.
fn located(d: &Diagnostics, item: &Diagnostic) -> Result<(), String> {
    let src = &d.source;
    let span = &item.span;
    if span.start > span.end || span.end > src.len() {
        return Err(format!("span {span:?} outside the input ({} bytes): {}", src.len(), item.message));
    }
    if !src.is_char_boundary(span.start) || !src.is_char_boundary(span.end) {
        return Err(format!("span {span:?} splits a character: {}", item.message));
    }
    let before = &src[..span.start];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map_or(0, |i| i + 1)..].chars().count() + 1;
    if (item.line, item.column) != (line, column) {
        return Err(format!(
            "says {}:{} but its span starts at {line}:{column}: {}",
            item.line, item.column, item.message
        ));
    }
    Ok(())
}

fn check_plan(bytes: &[u8], format: PlanFormat) -> Result<(), String> {
    let file = if format == PlanFormat::Json { "plan.json" } else { "plan.md" };
    match parse_bytes(file, bytes, format, &ctx()) {
        Ok(plan) => {
            // What `swarm plan show --json` prints, `swarm run plan.json` accepts unchanged.
            let json = serde_json::to_string_pretty(&plan).expect("plans serialize");
            match parse_json("plan.json", &json, &ctx()) {
                Ok(back) if back == plan => Ok(()),
                Ok(back) => Err(format!("its JSON form parses to another plan:\n{plan:?}\n{back:?}")),
                Err(d) => Err(format!("its JSON form is rejected:\n{}", d.render(false))),
            }
        }
        Err(d) => {
            if d.is_empty() {
                return Err("rejected without a diagnostic".into());
            }
            if d.source != String::from_utf8_lossy(bytes) {
                return Err("the diagnostics quote another source than the input".into());
            }
            // Binary data is rejected whole, as not a plan: nothing of it is located or quoted.
            if let [whole] = &d.items[..] {
                if whole.line == 0 {
                    let rendered = d.render(false);
                    let quiet = rendered.contains("binary data, not a plan") && !rendered.contains(" | ");
                    return if quiet {
                        Ok(())
                    } else {
                        Err(format!("a whole-file error quotes: {rendered}"))
                    };
                }
            }
            for item in &d.items {
                located(&d, item)?;
            }
            let rendered = d.render(false);
            let _ = d.render(true);
            for item in &d.items {
                let at = format!("{file}:{}:{}", item.line, item.column);
                if !rendered.contains(&at) {
                    return Err(format!("rendering lacks {at} for {:?}", item.message));
                }
            }
            Ok(())
        }
    }
}

fn check_markdown(bytes: &[u8]) -> Result<(), String> {
    check_plan(bytes, PlanFormat::Markdown)
}

fn check_json(bytes: &[u8]) -> Result<(), String> {
    check_plan(bytes, PlanFormat::Json)
}

/// 1-based line count of the input (a position may be just past its last line).
fn lines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count() + 1
}

fn check_config(bytes: &[u8]) -> Result<(), String> {
    // `Config::read` refuses a file that is not UTF-8 before parsing (an I/O error naming it).
    let Ok(text) = std::str::from_utf8(bytes) else { return Ok(()) };
    match Config::parse(text, Path::new("swarm.toml")) {
        Ok(_) => Ok(()),
        Err(ConfigError::Invalid { message, .. }) => {
            if let Some(rest) = message.strip_prefix("TOML parse error at line ") {
                let (line, rest) = rest.split_once(", column ").ok_or("no column")?;
                let column: usize = rest
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap_or("")
                    .parse()
                    .map_err(|_| "bad column")?;
                let line: usize = line.parse().map_err(|_| "bad line")?;
                if line == 0 || line > lines(bytes) || column == 0 {
                    return Err(format!("location {line}:{column} outside the input: {message}"));
                }
                return Ok(());
            }
            // Checks after parsing name the key instead.
            let keyed = ["run.", "agents.", "hooks.", "feedback.", "store.", "providers.", "models."];
            if keyed.iter().any(|k| message.starts_with(k)) {
                Ok(())
            } else {
                Err(format!("error without a location: {message}"))
            }
        }
        Err(other) => Err(format!("unexpected error kind: {other}")),
    }
}

fn check_completion(bytes: &[u8]) -> Result<(), String> {
    let errors = match completion::parse_bytes(bytes, Some("r1"), Some("t1")) {
        Ok(c) => {
            let again = serde_json::to_vec(&c).expect("completions serialize");
            return match completion::parse_bytes(&again, Some("r1"), Some("t1")) {
                Ok(back) if back == c => Ok(()),
                other => Err(format!("a valid report does not round-trip: {other:?}")),
            };
        }
        Err(errors) => errors,
    };
    if errors.is_empty() {
        return Err("rejected without an error".into());
    }
    let value: Option<Value> = std::str::from_utf8(bytes).ok().and_then(|t| serde_json::from_str(t).ok());
    for e in &errors {
        if let Some(rest) = e.strip_prefix("not valid UTF-8: byte 0x") {
            let offset: usize = rest
                .split(" at offset ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("no offset: {e}"))?;
            if offset >= bytes.len() || std::str::from_utf8(&bytes[..offset]).is_err() {
                return Err(format!("offset {offset} is not the first invalid byte: {e}"));
            }
        } else if e.starts_with("not valid JSON: ") {
            let line: usize = e
                .rsplit(" at line ")
                .next()
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("no line: {e}"))?;
            if line == 0 || line > lines(bytes) {
                return Err(format!("line {line} outside the input: {e}"));
            }
        } else {
            // `<json pointer>: message`; a key may itself hold ": ", so any split that resolves.
            let value = value
                .as_ref()
                .ok_or_else(|| format!("a schema error for a document that does not parse: {e}"))?;
            let resolves = e.match_indices(": ").any(|(i, _)| value.pointer(&e[..i]).is_some());
            if !resolves {
                return Err(format!("the error's JSON pointer is not in the document: {e}"));
            }
        }
    }
    Ok(())
}

const TARGETS: [Target; 4] = [
    Target { name: "plan_markdown", inputs: gen::markdown_plans, check: check_markdown },
    Target { name: "plan_json", inputs: gen::json_plans, check: check_json },
    Target { name: "config", inputs: gen::configs, check: check_config },
    Target { name: "completion", inputs: gen::completions, check: check_completion },
];

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .map(|v| v.replace('_', "").parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

fn ci(target: &Target) {
    let settings = Settings {
        cases: env_u64("SWARM_FUZZ_CI_CASES").unwrap_or(CI_CASES),
        seed: env_u64("SWARM_FUZZ_SEED").unwrap_or(CI_SEED),
        deadline: DEADLINE,
        save_to: std::env::var_os("SWARM_FUZZ_SAVE").map(PathBuf::from),
        max_hangs: 1,
    };
    let stats = harness::run(target, &settings);
    println!("{}", stats.line(target.name));
    assert!(stats.clean(), "seed {}:\n{}", settings.seed, stats.findings.join("\n"));
}

#[test]
fn plan_markdown() {
    ci(&TARGETS[0]);
}

#[test]
fn plan_json() {
    ci(&TARGETS[1]);
}

#[test]
fn config() {
    ci(&TARGETS[2]);
}

#[test]
fn completion_json() {
    ci(&TARGETS[3]);
}

/// The long campaign (`bench/fuzz`): prints cases, panics, hangs and time per target and in total.
#[test]
#[ignore = "long; run by bench/fuzz"]
fn campaign() {
    let total = env_u64("SWARM_FUZZ_CASES").unwrap_or(1_000_000);
    let seed = env_u64("SWARM_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    let only = std::env::var("SWARM_FUZZ_TARGETS").ok();
    let targets: Vec<&Target> = TARGETS
        .iter()
        .filter(|t| only.as_deref().is_none_or(|o| o.split(',').any(|n| n.trim() == t.name)))
        .collect();
    assert!(
        !targets.is_empty(),
        "SWARM_FUZZ_TARGETS names none of: plan_markdown, plan_json, config, completion"
    );
    let save_to = std::env::var_os("SWARM_FUZZ_SAVE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("swarm-fuzz-findings"));
    println!(
        "fuzz campaign: {total} cases over {} targets, seed {seed}, deadline {DEADLINE:?} per case",
        targets.len()
    );
    let mut sum = Stats::default();
    let mut findings = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        // The remainder goes to the first targets, so the total is exact.
        let n = total / targets.len() as u64 + u64::from((i as u64) < total % targets.len() as u64);
        let settings =
            Settings { cases: n, seed, deadline: DEADLINE, save_to: Some(save_to.clone()), max_hangs: 3 };
        let stats = harness::run(t, &settings);
        println!("{}", stats.line(t.name));
        sum.cases += stats.cases;
        sum.panics += stats.panics;
        sum.hangs += stats.hangs;
        sum.violations += stats.violations;
        sum.elapsed += stats.elapsed;
        findings.extend(stats.findings);
    }
    println!("{}", sum.line("total"));
    for f in &findings {
        println!("{f}");
    }
    assert!(
        sum.clean(),
        "the campaign found problems (seed {seed}); inputs saved under {}",
        save_to.display()
    );
}

/// The harness itself: a panicking check is counted (not fatal), a slow one is a hang.
#[test]
fn the_harness_counts_panics_and_hangs() {
    use proptest::strategy::{Just, Strategy};
    let settings = |deadline| Settings { cases: 3, seed: 1, deadline, save_to: None, max_hangs: 1 };
    let panicking = Target { name: "panics", inputs: || Just(vec![1u8]).boxed(), check: |_| panic!("boom") };
    let stats = harness::run(&panicking, &settings(DEADLINE));
    assert_eq!((stats.cases, stats.panics, stats.hangs), (3, 3, 0));
    assert!(stats.findings[0].contains("panic: boom at "), "{:?}", stats.findings);
    let slow = Target {
        name: "hangs",
        inputs: || Just(vec![]).boxed(),
        check: |_| {
            std::thread::sleep(Duration::from_millis(300));
            Ok(())
        },
    };
    let stats = harness::run(&slow, &settings(Duration::from_millis(20)));
    assert_eq!((stats.cases, stats.hangs), (1, 1), "stops at max_hangs");
    let wrong = Target { name: "bad", inputs: || Just(vec![]).boxed(), check: |_| Err("no location".into()) };
    assert_eq!(harness::run(&wrong, &settings(DEADLINE)).violations, 3);
}
