//! The orchestrator's face (docs/contract.md §10): MCP driven by an independent client (the official MCP
//! Python SDK, in the project's `.venv`) over stdio and streamable HTTP, in the current revision
//! and the handshake ones; the JSON API and the run's events as SSE; the server's guards.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

#[path = "serve/api.rs"]
mod api;
#[path = "serve/guards.rs"]
mod guards;
#[path = "serve/mcp.rs"]
mod mcp;

/// A provider key in the server's environment: no answer, event or page may carry it.
const SECRET: &str = "sk-serve-secret-4242424242";

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/client.py");

fn python() -> std::path::PathBuf {
    let py =
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python")).to_path_buf();
    assert!(
        py.exists(),
        "the test venv is missing: run ./scripts/test.sh (it installs the MCP Python SDK into .venv)"
    );
    py
}

/// A project with a plan that succeeds (`good.md`) and one that sleeps (`slow.md`).
fn project() -> Project {
    let p = Project::new();
    p.write(
        "swarm.toml",
        &format!("{FAST_CONFIG}\n[state.keys.\"mcp/typed\"]\nschema = {{ type = \"integer\" }}\n\n[state.keys.\"mcp/owned\"]\nwriters = [\"owner\"]\n"),
    );
    p.write("good.md", "---\ndefaults:\n  agent: exec\n---\n\n## hello: Says hello\n- command: echo \"hello from swarm\"; sleep 1\n");
    p.write("slow.md", "## slow: Sleeps\n- agent: exec\n- command: sleep 60\n");
    p
}

/// The test venv's Python, in the project, with the environment every swarm command here gets
/// (the stdio server it starts must find the same store).
fn python_in(p: &Project) -> Command {
    let mut cmd = Command::new(python());
    cmd.current_dir(p.path());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SWARM_") {
            cmd.env_remove(k);
        }
    }
    let env = p
        .command(&[])
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
        .collect::<Vec<_>>();
    cmd.envs(env);
    // A stdio server started by the client runs as this task (an agent's own MCP server).
    cmd.env("SWARM_TASK_ID", "intruder");
    cmd
}

/// The Python client, run in the project with the project's store, its JSON answer.
fn client(p: &Project, args: &[&str]) -> Value {
    let mut cmd = python_in(p);
    cmd.arg(CLIENT).args(args).stdin(Stdio::null());
    if args.contains(&"--url") {
        cmd.args(["--token", &token()]);
    }
    let out = cmd.output().expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "client output is not JSON ({e}):\n{stdout}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// What every full client session must have seen.
fn assert_scenario(p: &Project, d: &Value) {
    assert!(d.get("exception").is_none_or(Value::is_null), "{d:#}");
    let tools: Vec<&str> = d["tools"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(
        tools,
        [
            "models",
            "plan_check",
            "run_cancel",
            "run_start",
            "run_status",
            "runs_list",
            "state_get",
            "state_list",
            "state_set",
            "task_logs",
            "workers_list"
        ]
    );
    assert_eq!(d["tools_described"], true);
    assert_eq!(d["tools_with_output_schema"].as_array().unwrap().len(), 11, "structured output everywhere");
    // Workers: none here; a store without them says so.
    match std::env::var("SWARM_TEST_STORE").as_deref() {
        Ok("redis") => assert_eq!(d["workers"]["data"]["workers"], serde_json::json!([]), "{}", d["workers"]),
        _ => assert!(
            d["workers"]["is_error"] == true && d["workers"]["text"].as_str().unwrap().contains("Redis")
        ),
    }
    // A bad plan is an answer, with where and what.
    let bad = &d["bad_plan"];
    assert_eq!(bad["is_error"], false);
    assert_eq!(bad["data"]["ok"], false);
    assert!(bad["data"]["errors"][0].as_str().unwrap().contains("inline-plan.md:1:4"), "{bad}");
    assert_eq!(d["good_plan"]["data"]["ok"], true);
    assert_eq!(d["no_plan"]["is_error"], true, "a missing plan is a tool error, not a crash");
    // The run went to success in the server's engine, and is an ordinary run.
    let run_id = d["run_id"].as_str().unwrap();
    assert_eq!(d["final"]["data"]["state"], "succeeded", "{:#}", d["final"]);
    assert_task(&d["final"]["data"], "hello", "succeeded", None);
    assert_eq!(p.status(run_id)["state"], "succeeded", "`swarm status` sees the MCP-started run");
    assert_eq!(d["logs"]["data"]["log"], "hello from swarm");
    assert!(d["runs"]["data"]["runs"].as_array().unwrap().iter().any(|r| r["run_id"] == run_id));
    assert_eq!(d["unknown_run"]["is_error"], true);
    assert!(d["unknown_run"]["text"].as_str().unwrap().contains("no-such-run"));
    // The second run was cancelled from the client.
    let slow = d["slow_run_id"].as_str().unwrap();
    assert_eq!(d["cancel"]["data"]["state"], "cancelled", "{:#}", d["cancel"]);
    assert_eq!(p.status(slow)["state"], "cancelled");
    // Shared state: compare-and-set.
    assert_eq!(d["set1"]["data"]["version"], 1);
    assert_eq!(d["set_stale"]["is_error"], true, "a stale if_version is refused");
    assert!(d["set_stale"]["text"].as_str().unwrap().contains("version"));
    assert_eq!(d["set2"]["data"]["version"], 2);
    assert_eq!(d["get"]["data"]["value"], serde_json::json!({ "n": 2 }));
    assert_eq!(d["get_missing"]["data"]["version"], 0);
    assert_eq!(d["list"]["data"]["entries"].as_array().unwrap().len(), 1);
    assert_eq!(p.swarm(&["state", "get", "mcp/k", "--json"]).expect_code(0).json()["version"], 2);
    // Declared state: a value that breaks the key's schema is a tool error naming path and rule.
    assert_eq!(d["typed_bad"]["is_error"], true, "{}", d["typed_bad"]);
    let text = d["typed_bad"]["text"].as_str().unwrap();
    assert!(text.contains("mcp/typed") && text.contains("type"), "{text}");
    assert_eq!(d["typed_ok"]["data"]["version"], 1, "{}", d["typed_ok"]);
    assert_eq!(p.swarm(&["state", "get", "mcp/typed"]).expect_code(0).json(), 3);
    // state_get with wait_s answered when the key was written, not when the wait ran out.
    let waited = &d["waited_key"];
    assert_eq!(waited["before"]["data"]["version"], 0, "{waited}");
    assert_eq!(waited["after"]["data"]["value"], "here", "{waited}");
    assert!(waited["seconds"].as_f64().unwrap() < 25.0, "{waited}");
    assert_eq!(d["models"]["is_error"], false);
    // A wait that runs out takes its time (and no more), with progress notifications on the way.
    let long = &d["long_wait"];
    let secs = long["seconds"].as_f64().unwrap();
    assert!((6.5..20.0).contains(&secs), "{long}");
    assert_eq!(long["state"], "running");
    let progress = long["progress"].as_array().unwrap();
    assert!(!progress.is_empty(), "progress notifications during a long wait: {long}");
    assert!(progress[0][2].as_str().unwrap().contains("waiting"), "{long}");
}

thread_local! {
    /// The token of the server this test (thread) started last: [`get`], [`post`], [`sse`] and
    /// the clients carry it.
    static TOKEN: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

fn token() -> String {
    TOKEN.with(|t| t.borrow().clone())
}

/// `swarm serve` on a free loopback port, with the token it made itself; its address.
fn serve(p: &Project, extra: &[&str]) -> (Bg, String) {
    serve_with(p, extra, &[])
}

/// [`serve`] with more environment (the hidden limits tests shorten).
fn serve_with(p: &Project, extra: &[&str], env: &[(&str, &str)]) -> (Bg, String) {
    let mut args = vec!["serve", "--bind", "127.0.0.1:0", "--json"];
    args.extend(extra);
    let mut cmd = p.command(&args);
    cmd.env("SERVE_TEST_PROVIDER_KEY", SECRET);
    cmd.envs(env.iter().copied());
    let bg = p.spawn_cmd(cmd);
    let line = wait_for(Duration::from_secs(20), "swarm serve listens", || {
        let out = bg.stdout();
        out.lines().find_map(|l| serde_json::from_str::<Value>(l).ok().filter(|v| v["listening"].is_string()))
    });
    let file = line["token_file"].as_str().expect("swarm's own token file");
    TOKEN.with(|t| *t.borrow_mut() = std::fs::read_to_string(file).unwrap().trim().to_string());
    (bg, line["listening"].as_str().unwrap().to_string())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn get(url: &str) -> (u16, Value) {
    let mut r = agent().get(url).header("Authorization", &format!("Bearer {}", token())).call().expect("GET");
    let status = r.status().as_u16();
    (status, serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default()).unwrap_or(Value::Null))
}

fn post(url: &str, body: &str) -> (u16, Value) {
    let mut r = agent()
        .post(url)
        .header("Content-Type", "application/json")
        .header("Authorization", &format!("Bearer {}", token()))
        .send(body)
        .expect("POST");
    let status = r.status().as_u16();
    (status, serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default()).unwrap_or(Value::Null))
}

/// Reads an SSE stream to its `end` event: the events' ids and data.
fn sse(url: &str, last_event_id: Option<u64>) -> Vec<(u64, Value)> {
    let mut req = agent()
        .get(url)
        .header("Accept", "text/event-stream")
        .header("Authorization", &format!("Bearer {}", token()));
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", &id.to_string());
    }
    let mut r = req.call().expect("GET events");
    assert_eq!(r.status().as_u16(), 200);
    let reader = BufReader::new(r.body_mut().as_reader());
    let (mut out, mut id, mut event) = (Vec::new(), 0u64, String::new());
    for line in reader.lines() {
        let line = line.expect("SSE line");
        if let Some(v) = line.strip_prefix("id: ") {
            id = v.parse().unwrap();
        } else if let Some(v) = line.strip_prefix("event: ") {
            event = v.to_string();
        } else if let Some(v) = line.strip_prefix("data: ") {
            if event == "end" {
                return out;
            }
            out.push((id, serde_json::from_str(v).expect("event JSON")));
        } else if line.is_empty() {
            event.clear();
        }
    }
    panic!("the stream ended without an `end` event after {} events", out.len());
}

/// `swarm mcp` with its stdio pipes: lines it prints arrive on the receiver.
fn mcp_stdio(
    p: &Project,
) -> (std::process::Child, std::process::ChildStdin, std::sync::mpsc::Receiver<String>) {
    let mut child = p
        .command(&["mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("swarm mcp");
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, stdin, rx)
}

/// The answer to request `id`, waiting up to `timeout`.
fn answer(rx: &std::sync::mpsc::Receiver<String>, id: u64, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|e| panic!("no answer to request {id} ({e})"));
        let msg: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if msg["id"].as_u64() == Some(id) {
            return msg;
        }
    }
}

/// An MCP `initialize` over streamable HTTP (the handshake revisions keep a session each): its
/// status and session id.
fn mcp_initialize(addr: &str) -> (u16, Option<String>, String) {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}});
    let mut r = agent()
        .post(&format!("http://{addr}/mcp"))
        .header("Authorization", &format!("Bearer {}", token()))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .send(body.to_string())
        .expect("POST /mcp");
    let session = r.headers().get("mcp-session-id").map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), session, r.body_mut().read_to_string().unwrap_or_default())
}

/// `tools/list` on a session: its HTTP status (404: no such session).
fn mcp_use(addr: &str, session: &str) -> u16 {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let mut r = agent()
        .post(&format!("http://{addr}/mcp"))
        .header("Authorization", &format!("Bearer {}", token()))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-06-18")
        .send(body.to_string())
        .expect("POST /mcp");
    let _ = r.body_mut().read_to_string();
    r.status().as_u16()
}
