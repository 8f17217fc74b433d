//! The orchestrator's face (docs/contract.md §10): MCP driven by an independent client (the official MCP
//! Python SDK, in the project's `.venv`) over stdio and streamable HTTP, in the current revision
//! and the handshake ones; the JSON API and the run's events as SSE; the server's guards.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

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
            "task_logs"
        ]
    );
    assert_eq!(d["tools_described"], true);
    assert_eq!(d["tools_with_output_schema"].as_array().unwrap().len(), 10, "structured output everywhere");
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

#[test]
fn mcp_over_stdio_with_the_python_sdk() {
    let p = project();
    let d = client(&p, &["--swarm", SWARM, "--project", &p.path().display().to_string(), "--stdio"]);
    assert_eq!(d["protocol_version"], "2026-07-28", "{d:#}");
    assert_eq!(d["server_name"], "swarm");
    assert_scenario(&p, &d);
    // The server runs as task `intruder`: a key only `owner` may write is refused, not written.
    assert_eq!(d["owned"]["is_error"], true, "{}", d["owned"]);
    assert!(d["owned"]["text"].as_str().unwrap().contains("only owner may"), "{}", d["owned"]);
    p.swarm(&["state", "get", "mcp/owned"]).expect_code(1);
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

#[test]
fn mcp_over_streamable_http_in_every_revision() {
    let p = project();
    let (server, addr) = serve(&p, &[]);
    let url = format!("http://{addr}/mcp");
    let modern = client(&p, &["--url", &url]);
    assert_eq!(modern["protocol_version"], "2026-07-28");
    assert_scenario(&p, &modern);
    assert_eq!(
        modern["owned"]["data"]["version"], 1,
        "the HTTP server runs as the user: {}",
        modern["owned"]
    );
    // The legacy initialize handshake, as today's clients mostly still do it.
    let legacy = client(&p, &["--url", &url, "--mode", "legacy", "--raw-initialize", "2025-11-25"]);
    assert_eq!(legacy["protocol_version"], "2025-11-25", "{legacy:#}");
    assert_eq!(legacy["tools"].as_array().unwrap().len(), 10);
    assert_eq!(legacy["call"]["ok"], true);
    let older = client(&p, &["--url", &url, "--raw-initialize", "2025-06-18"]);
    assert_eq!(older["protocol_version"], "2025-06-18", "{older:#}");
    assert_eq!(older["call"]["name"], "good");
    let sdk_legacy = client(&p, &["--url", &url, "--mode", "legacy"]);
    assert_eq!(sdk_legacy["protocol_version"], "2025-11-25");
    assert!(sdk_legacy.get("exception").is_none_or(Value::is_null), "{sdk_legacy:#}");
    assert_eq!(sdk_legacy["final"]["data"]["state"], "succeeded");
    server.signal(nix::sys::signal::Signal::SIGTERM);
    server.wait(Duration::from_secs(30)).expect_code(0);
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

#[test]
fn the_json_api_starts_streams_and_cancels_runs() {
    let p = project();
    p.write("mixed.md", "---\ndefaults:\n  agent: exec\n---\n\n## ok: Fine\n- command: echo fine\n\n## broken: Fails\n- command: echo no >&2; exit 3\n\n## after: Blocked\n- depends: broken\n- command: true\n");
    p.write(
        "swarm.toml",
        &format!("{FAST_CONFIG}\n[providers.paid]\nkind = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key_env = \"SERVE_TEST_PROVIDER_KEY\"\n"),
    );
    let (server, addr) = serve(&p, &[]);
    let base = format!("http://{addr}");
    let (status, started) = post(&format!("{base}/api/runs"), r#"{"plan_path": "mixed.md"}"#);
    assert_eq!(status, 201, "{started}");
    let run_id = started["run_id"].as_str().unwrap().to_string();
    // From the start to the end, then live.
    let events = sse(&format!("{base}/api/runs/{run_id}/events"), None);
    let kinds: Vec<&str> = events.iter().map(|(_, e)| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"run_started"));
    assert_eq!(kinds.last(), Some(&"run_finished"), "{kinds:?}");
    let ids: Vec<u64> = events.iter().map(|(id, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[1] > w[0]), "ids increase: {ids:?}");
    assert!(events
        .iter()
        .any(|(_, e)| e["kind"] == "task_state" && e["task"] == "after" && e["state"] == "blocked"));
    // Resuming from an id gives exactly what came after it.
    let mid = ids[ids.len() / 2];
    let resumed = sse(&format!("{base}/api/runs/{run_id}/events"), Some(mid));
    assert_eq!(
        resumed.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        ids.iter().copied().filter(|i| *i > mid).collect::<Vec<_>>()
    );
    // The report, as report.json has it.
    let (status, report) = get(&format!("{base}/api/runs/{run_id}"));
    assert_eq!(status, 200);
    assert_eq!(report["state"], "failed");
    assert_task(&report, "broken", "failed", Some("exit_code"));
    assert_task(&report, "after", "blocked", Some("dependency_failed"));
    assert_eq!(report, p.report(&run_id), "the API answers report.json's shape");
    let (_, list) = get(&format!("{base}/api/runs"));
    assert!(list["runs"].as_array().unwrap().iter().any(|r| r["run_id"] == run_id.as_str()));
    // Cancel a live run.
    let (_, slow) = post(&format!("{base}/api/runs"), r#"{"plan_path": "slow.md"}"#);
    let slow_id = slow["run_id"].as_str().unwrap().to_string();
    wait_status(&p, &slow_id, "slow runs", |st| st["tasks"][0]["state"] == "running");
    let (status, cancelled) = post(&format!("{base}/api/runs/{slow_id}/cancel"), "");
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(p.status(&slow_id)["state"], "cancelled");
    // Bad input is a clear 4xx, never a crash.
    let (status, err) = post(&format!("{base}/api/runs"), r###"{"plan": "## x: nothing\n"}"###);
    assert_eq!(status, 400);
    assert!(err["error"].as_str().unwrap().contains("no agent"), "{err}");
    let (status, _) = post(&format!("{base}/api/runs"), "not json");
    assert_eq!(status, 400);
    let (status, _) = get(&format!("{base}/api/runs/nope"));
    assert!(status == 404 || status == 400, "{status}");
    let (status, logs) = get(&format!("{base}/api/runs/{run_id}/tasks/broken/logs?tail=10"));
    assert_eq!(status, 200);
    assert!(logs["log"].as_str().unwrap().contains("no"), "{logs}");
    // No secret in any answer, event or page.
    let mut everything = String::new();
    for path in ["/api/runs", &format!("/api/runs/{run_id}"), &format!("/api/runs/{slow_id}"), "/"] {
        everything.push_str(
            &agent()
                .get(&format!("{base}{path}"))
                .header("Authorization", &format!("Bearer {}", token()))
                .call()
                .unwrap()
                .body_mut()
                .read_to_string()
                .unwrap(),
        );
    }
    everything.push_str(&format!("{:?}", sse(&format!("{base}/api/runs/{run_id}/events"), None)));
    everything.push_str(&format!("{:?}", sse(&format!("{base}/api/runs/{slow_id}/events"), None)));
    assert!(everything.len() > 2000 && !everything.contains(SECRET), "a provider key leaked");
    server.signal(nix::sys::signal::Signal::SIGTERM);
    let out = server.wait(Duration::from_secs(30));
    out.expect_code(0);
    assert!(!out.stdout.contains(SECRET) && !out.stderr.contains(SECRET));
}

#[test]
fn the_server_guards_its_door() {
    let p = project();
    // Reachable from other hosts: not without a token.
    let refused = p.swarm(&["serve", "--bind", "0.0.0.0:0"]);
    refused.expect_code(2);
    assert!(refused.stderr.contains("--token-env"), "{}", refused.dump());
    let mut cmd = p.command(&["serve", "--bind", "0.0.0.0:0", "--token-env", "SERVE_TOKEN", "--json"]);
    cmd.env("SERVE_TOKEN", "s3cret-token");
    let bg = p.spawn_cmd(cmd);
    let addr = wait_for(Duration::from_secs(20), "serve listens", || {
        bg.stdout()
            .lines()
            .find_map(|l| serde_json::from_str::<Value>(l).ok()?["listening"].as_str().map(String::from))
    });
    let port = addr.rsplit(':').next().unwrap();
    let url = format!("http://127.0.0.1:{port}/api/runs");
    assert_eq!(agent().get(&url).call().unwrap().status().as_u16(), 401);
    assert_eq!(
        agent().get(&url).header("Authorization", "Bearer wrong").call().unwrap().status().as_u16(),
        401
    );
    assert_eq!(agent().get(&format!("http://127.0.0.1:{port}/mcp")).call().unwrap().status().as_u16(), 401);
    let ok = agent().get(&url).header("Authorization", "Bearer s3cret-token").call().unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert!(!bg.stdout().contains("s3cret") && !bg.stderr().contains("s3cret"), "the token is never printed");
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    bg.wait(Duration::from_secs(30));

    // On loopback: a page of another origin, or a DNS-rebound host name, is refused, token or not.
    let (bg, addr) = serve(&p, &[]);
    let url = format!("http://{addr}/api/runs");
    let bearer = format!("Bearer {}", token());
    let r = agent()
        .get(&url)
        .header("Authorization", &bearer)
        .header("Origin", "http://evil.example")
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = agent().get(&url).header("Authorization", &bearer).header("Host", "evil.example").call().unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = agent()
        .post(&format!("http://{addr}/mcp"))
        .header("Authorization", &bearer)
        .header("Origin", "http://evil.example")
        .send("{}")
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = agent()
        .get(&url)
        .header("Authorization", &bearer)
        .header("Origin", &format!("http://{addr}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "the dashboard's own origin passes");
    let started = Instant::now();
    let page = agent().get(&format!("http://{addr}/")).call().unwrap().body_mut().read_to_string().unwrap();
    assert!(page.contains("<title>swarm</title>") && started.elapsed() < Duration::from_secs(5));
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    bg.wait(Duration::from_secs(30));
}

/// On loopback too, every request needs a token (issue 15): any local user, and any agent of any
/// run, could otherwise start an `exec` task as the user serving. Without `--token-env`, swarm
/// makes one into `.swarm/serve-token` (0600), keeps it across restarts and prints the dashboard's
/// address with it; the dashboard keeps it in a cookie, honoured from its own origin only.
#[test]
fn a_loopback_server_requires_its_token() {
    let p = project();
    let (bg, addr) = serve(&p, &[]);
    let tok = token();
    let file = p.file(".swarm/serve-token");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let api = format!("http://{addr}/api/runs");
    let status = |r: Result<ureq::http::Response<ureq::Body>, ureq::Error>| r.unwrap().status().as_u16();
    assert_eq!(status(agent().get(&api).call()), 401);
    assert_eq!(
        status(
            agent()
                .post(&api)
                .header("Content-Type", "application/json")
                .send(r###"{"plan": "## x: y\n- agent: exec\n- command: id\n"}"###)
        ),
        401
    );
    assert_eq!(status(agent().post(&format!("http://{addr}/mcp")).send("{}")), 401);
    assert_eq!(status(agent().get(&api).header("Authorization", "Bearer nope").call()), 401);
    assert_eq!(status(agent().get(&api).header("Authorization", &format!("Bearer {tok}")).call()), 200);
    assert_eq!(status(agent().get(&format!("http://{addr}/")).call()), 200, "the page itself holds no data");
    let port = addr.rsplit(':').next().unwrap();
    let cookie = format!("swarm_token_{port}={tok}");
    assert_eq!(status(agent().get(&api).header("Cookie", &cookie).call()), 200);
    let evil = agent().get(&api).header("Cookie", &cookie).header("Origin", "http://localhost:9999").call();
    assert_eq!(status(evil), 401, "the cookie counts from the dashboard's origin only");
    let dashboard = format!("dashboard http://{addr}/#token={tok}");
    wait_until(Duration::from_secs(10), "the dashboard's address is printed", || {
        bg.stderr().contains(&dashboard)
    });
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    bg.wait(Duration::from_secs(30)).expect_code(0);
    let (bg, _) = serve(&p, &[]);
    assert_eq!(token(), tok, "the token is kept across restarts");
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    bg.wait(Duration::from_secs(30));
}

/// A provider key in swarm's environment is not readable from `/proc/<swarm pid>/environ`
/// (issue 15): an agent of the same user could read it there.
#[test]
fn provider_keys_are_not_in_procs_environ_of_swarm() {
    let p = project();
    p.write(
        "swarm.toml",
        &format!("{FAST_CONFIG}\n[providers.paid]\nkind = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key_env = \"SERVE_TEST_PROVIDER_KEY\"\n"),
    );
    let (bg, addr) = serve(&p, &[]);
    let environ = std::fs::read(format!("/proc/{}/environ", bg.pid())).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(environ.contains("SERVE_TEST_PROVIDER_KEY=") && !environ.contains(SECRET), "{environ}");
    // (That swarm itself still has the value is os::secrets' unit test.)
    let (status, _) = get(&format!("http://{addr}/api/runs"));
    assert_eq!(status, 200, "the server works sealed");
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    bg.wait(Duration::from_secs(30)).expect_code(0);
}

/// A wait that is not a number of seconds is bad input, not a panic (issue 15).
#[test]
fn a_nan_wait_is_bad_input_not_a_panic() {
    let p = project();
    let (bg, addr) = serve(&p, &[]);
    let (_, started) = post(&format!("http://{addr}/api/runs"), r#"{"plan_path": "good.md"}"#);
    let run = started["run_id"].as_str().unwrap().to_string();
    for wait in ["NaN", "inf", "-inf"] {
        let (status, err) = get(&format!("http://{addr}/api/runs/{run}?wait_s={wait}"));
        assert_eq!(status, 400, "{wait}: {err}");
        assert!(err["error"].as_str().unwrap_or_default().contains("wait_s"), "{err}");
    }
    let (status, _) = get(&format!("http://{addr}/api/runs/{run}?wait_s=0.5"));
    assert_eq!(status, 200, "the server still answers");
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    bg.wait(Duration::from_secs(30)).expect_code(0);
}

/// `plan_path` names a plan inside the project (issue 15): no other file is read, nothing that is
/// not a plan is echoed (the server's environment holds a provider key), nothing hangs.
#[test]
fn plan_paths_stay_inside_the_project_and_errors_leak_nothing() {
    let p = project();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("away.md"), format!("## x: {SECRET}\n")).unwrap();
    std::os::unix::fs::symlink("/proc/self/environ", p.file("environ.md")).unwrap();
    std::os::unix::fs::symlink(outside.path(), p.file("out")).unwrap();
    assert!(Command::new("mkfifo").arg(p.file("fifo.md")).status().unwrap().success());
    let (server, addr) = serve(&p, &[]);
    let away = outside.path().join("away.md").display().to_string();
    for (path, why) in [
        ("/proc/self/environ", "plan file"),
        ("../../../../../../proc/self/environ", "plan file"),
        ("environ.md", "symbolic link"),
        (away.as_str(), "inside the project"),
        ("out/away.md", "inside the project"),
        ("fifo.md", "FIFO"),
        ("/dev/zero", "plan file"),
    ] {
        let started = Instant::now();
        let body = serde_json::json!({ "plan_path": path }).to_string();
        let (status, err) = post(&format!("http://{addr}/api/runs"), &body);
        assert_eq!(status, 400, "{path}: {err}");
        let text = err.to_string();
        assert!(text.contains(why), "{path}: {text}");
        assert!(!text.contains(SECRET) && !text.contains("PATH="), "{path} leaked: {text}");
        assert!(started.elapsed() < Duration::from_secs(5), "{path} took {:?}", started.elapsed());
    }
    let (status, _) = post(&format!("http://{addr}/api/runs"), r#"{"plan_path": "good.md"}"#);
    assert_eq!(status, 201, "a plan inside the project still starts");
    server.signal(nix::sys::signal::Signal::SIGTERM);
    server.wait(Duration::from_secs(30));
}

#[test]
fn the_dashboard_in_chromium_and_firefox_shows_runs_live_and_cancels() {
    let p = project();
    p.write("mixed.md", "---\ndefaults:\n  agent: exec\n---\n\n## ok: Fine\n- command: echo fine\n\n## broken: Fails\n- command: echo no >&2; exit 3\n\n## after: Blocked\n- depends: broken\n- command: true\n");
    let (server, addr) = serve(&p, &[]);
    let base = format!("http://{addr}");
    let (_, failed) = post(&format!("{base}/api/runs"), r#"{"plan_path": "mixed.md"}"#);
    let failed = failed["run_id"].as_str().unwrap().to_string();
    wait_status(&p, &failed, "the mixed run ends", |st| st["state"] == "failed");
    let (_, live) = post(&format!("{base}/api/runs"), r#"{"plan_path": "slow.md"}"#);
    let live = live["run_id"].as_str().unwrap().to_string();
    // A test artifact: the dashboard with a live run.
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/dashboard.py");
    let out = Command::new(python())
        .args([script, &format!("{base}/#token={}", token()), &failed, &live, &shot.display().to_string()])
        .output()
        .expect("python runs");
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    assert!(seen.get("exception").is_none(), "{seen:#} (screenshot: {})", shot.display());
    assert_eq!(seen["page_errors"], serde_json::json!([]));
    assert_eq!(seen["run_state_failed"], "failed");
    let broken = seen["broken_text"].as_str().unwrap();
    assert!(broken.contains("failed") && broken.contains("exit_code"), "{broken}");
    assert!(seen["after_text"].as_str().unwrap().contains("blocked"));
    assert!(seen["ok_text"].as_str().unwrap().contains("succeeded"));
    assert!(seen["log"].as_str().unwrap().contains("no"), "{seen:#}");
    assert_eq!(seen["attempt_rows"], 1);
    assert_eq!(seen["cancel_disabled_when_over"], true);
    assert_eq!(seen["live_before"], "running");
    assert_eq!(seen["live_after"], "cancelled");
    assert_eq!(p.status(&live)["state"], "cancelled", "the button cancelled the run");
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "a screenshot was kept");
    // The same in Firefox, over WebDriver BiDi.
    let (_, live) = post(&format!("{base}/api/runs"), r#"{"plan_path": "slow.md"}"#);
    let live = live["run_id"].as_str().unwrap().to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/dashboard_firefox.py");
    let out = Command::new(python())
        .args([script, &format!("{base}/#token={}", token()), &failed, &live])
        .output()
        .expect("python runs");
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    assert!(seen.get("exception").is_none(), "{seen:#}");
    assert!(seen["browser"].as_str().unwrap().starts_with("firefox"), "{seen:#}");
    assert!(seen["broken_text"].as_str().unwrap().contains("exit_code"), "{seen:#}");
    assert!(seen["after_text"].as_str().unwrap().contains("blocked"));
    assert_eq!(seen["live_before"], "running");
    assert_eq!(seen["live_after"], "cancelled");
    assert_eq!(p.status(&live)["state"], "cancelled", "Firefox's click cancelled the run");
    server.signal(nix::sys::signal::Signal::SIGTERM);
    server.wait(Duration::from_secs(30)).expect_code(0);
}

/// The README's MCP config entries, taken from the README and used as written (the `swarm` they
/// name is this build's, found on PATH).
#[test]
fn the_readme_mcp_config_entries_work_as_written() {
    let readme = include_str!("../../../README.md");
    let mut blocks: Vec<(String, Value)> = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in readme.lines() {
        match &mut open {
            None => {
                if let Some(kind) = line.strip_prefix("```json mcp=") {
                    open = Some((kind.to_string(), String::new()));
                }
            }
            Some((kind, body)) => {
                if line == "```" {
                    blocks
                        .push((kind.clone(), serde_json::from_str(body).expect("README MCP block is JSON")));
                    open = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    assert_eq!(
        blocks.iter().filter(|(k, _)| k == "stdio").count(),
        2,
        "Antigravity and Claude Code stdio entries"
    );
    assert_eq!(blocks.iter().filter(|(k, _)| k == "http").count(), 1);
    let p = project();
    let bin_dir = std::path::Path::new(SWARM).parent().unwrap().to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    for (kind, block) in &blocks {
        let entry = &block["mcpServers"]["swarm"];
        let seen = if kind == "stdio" {
            assert_eq!(entry["command"], "swarm");
            let mut spec = entry.clone();
            let args: Vec<Value> = spec["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| match a.as_str() {
                    Some("/path/to/your/repo") => Value::String(p.path().display().to_string()),
                    _ => a.clone(),
                })
                .collect();
            spec["args"] = Value::Array(args);
            let mut cmd = python_in(&p);
            cmd.arg(CLIENT)
                .args([
                    "--light",
                    "--project",
                    &p.path().display().to_string(),
                    "--stdio-json",
                    &spec.to_string(),
                ])
                .env("PATH", &path);
            let out = cmd.output().unwrap();
            serde_json::from_slice::<Value>(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
        } else {
            // "with `swarm serve` running in the repository": as written, on its default address.
            let server = p.spawn(&["serve"]);
            let url = entry["serverUrl"].as_str().unwrap().to_string();
            wait_until(Duration::from_secs(20), "swarm serve listens on 7878", || {
                std::net::TcpStream::connect("127.0.0.1:7878").is_ok()
            });
            // Its token, pasted where the README says.
            let file = p.file(".swarm/serve-token");
            wait_until(Duration::from_secs(20), "the token is made", || file.exists());
            let header = entry["headers"]["Authorization"].as_str().unwrap();
            assert_eq!(header, "Bearer <contents of .swarm/serve-token>");
            let pasted = std::fs::read_to_string(&file).unwrap().trim().to_string();
            TOKEN.with(|t| *t.borrow_mut() = pasted);
            let seen = client(&p, &["--light", "--url", &url]);
            server.signal(nix::sys::signal::Signal::SIGTERM);
            server.wait(Duration::from_secs(30)).expect_code(0);
            seen
        };
        assert!(seen.get("exception").is_none(), "{kind} entry {entry}: {seen:#}");
        assert_eq!(seen["tools"].as_array().map(Vec::len), Some(10), "{kind} entry: {seen:#}");
        assert_eq!(seen["good_plan"]["data"]["ok"], true, "{kind} entry {entry}: {seen:#}");
    }
}

/// In stdio mode stdout carries protocol messages only, even while a run's agents print (an
/// older client's handshake, by hand: 2025-06-18).
#[test]
fn mcp_stdio_prints_nothing_but_protocol_messages() {
    use std::io::Write;
    let p = project();
    let mut child = p
        .command(&["mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("swarm mcp");
    let mut stdin = child.stdin.take().unwrap();
    let send = |stdin: &mut std::process::ChildStdin, v: Value| {
        writeln!(stdin, "{v}").unwrap();
        stdin.flush().unwrap();
    };
    send(
        &mut stdin,
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}),
    );
    send(&mut stdin, serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    send(
        &mut stdin,
        serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "run_start", "arguments": {"plan_path": "good.md"}}}),
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen: Vec<Value> = Vec::new();
    let mut run_id = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let line = lines.next().expect("a line").expect("utf-8");
        let msg: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a protocol message ({e}): {line}"));
        assert_eq!(msg["jsonrpc"], "2.0", "{line}");
        seen.push(msg.clone());
        match msg["id"].as_u64() {
            Some(1) => assert_eq!(msg["result"]["protocolVersion"], "2025-06-18"),
            Some(2) => {
                run_id = msg["result"]["structuredContent"]["run_id"].as_str().unwrap().to_string();
                send(
                    &mut stdin,
                    serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                    "params": {"name": "run_status", "arguments": {"run_id": run_id, "wait_s": 30}}}),
                );
            }
            Some(3) => {
                let state = msg["result"]["structuredContent"]["state"].as_str().unwrap().to_string();
                if state == "running" {
                    send(
                        &mut stdin,
                        serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                        "params": {"name": "run_status", "arguments": {"run_id": run_id, "wait_s": 30}}}),
                    );
                } else {
                    assert_eq!(state, "succeeded");
                    break;
                }
            }
            _ => {}
        }
    }
    assert_eq!(p.status(&run_id)["state"], "succeeded");
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "swarm mcp ends when its client closes stdin");
}

/// A run started through the API is an ordinary run: when its server dies, `swarm resume`
/// continues it.
#[test]
fn a_run_started_by_the_server_outlives_it_through_resume() {
    let p = project();
    p.write(
        "twice.md",
        "---\ndefaults:\n  agent: exec\n---\n\n## first: Quick\n- command: echo one >> first.count\n\n## second: Hangs the first time\n- depends: first\n- command: if [ -f marker ]; then echo done; else touch marker; sleep 60; fi\n",
    );
    let (server, addr) = serve(&p, &[]);
    let (_, started) = post(&format!("http://{addr}/api/runs"), r#"{"plan_path": "twice.md"}"#);
    let run_id = started["run_id"].as_str().unwrap().to_string();
    wait_status(&p, &run_id, "second runs", |st| st["tasks"][1]["state"] == "running");
    server.kill9();
    let resumed = p.swarm(&["resume", &run_id]);
    resumed.expect_code(0);
    let st = p.status(&run_id);
    assert_eq!(st["state"], "succeeded");
    assert_eq!(p.read("first.count"), "one\n", "first is not run again");
}

/// Stopping the server (SIGTERM) cancels the runs it drives gracefully and says how to go on.
#[test]
fn stopping_the_server_cancels_its_runs_and_says_how_to_resume() {
    let p = project();
    let (server, addr) = serve(&p, &[]);
    let (_, started) = post(&format!("http://{addr}/api/runs"), r#"{"plan_path": "slow.md"}"#);
    let run_id = started["run_id"].as_str().unwrap().to_string();
    wait_status(&p, &run_id, "slow runs", |st| st["tasks"][0]["state"] == "running");
    server.signal(nix::sys::signal::Signal::SIGTERM);
    let out = server.wait(Duration::from_secs(30));
    out.expect_code(0);
    assert!(out.stderr.contains(&format!("swarm resume {run_id}")), "{}", out.dump());
    assert_eq!(p.status(&run_id)["state"], "cancelled");
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

/// A request over `swarm mcp`'s 16 MiB line limit is answered with an error naming the limit
/// (rmcp alone drops it without a word, and the client waits forever), and the server goes on
/// serving the next request.
#[test]
fn an_mcp_stdio_request_over_16_mib_is_answered_and_the_server_goes_on() {
    use std::io::Write;
    let p = project();
    let (mut child, mut stdin, rx) = mcp_stdio(&p);
    let init = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}});
    writeln!(
        stdin,
        "{init}\n{}",
        serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
    )
    .unwrap();
    stdin.flush().unwrap();
    assert_eq!(answer(&rx, 1, Duration::from_secs(30))["result"]["protocolVersion"], "2025-06-18");
    let huge = format!("## a: big\n- agent: exec\n- command: echo {}\n", "x".repeat(17 << 20));
    let big = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "plan_check", "arguments": {"plan": huge}}});
    let next = serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "plan_check", "arguments": {"plan_path": "good.md"}}});
    // Written from a thread: the pipe fills while the server reads it.
    let writer = std::thread::spawn(move || {
        writeln!(stdin, "{big}\n{next}").unwrap();
        stdin.flush().unwrap();
        stdin
    });
    let refused = answer(&rx, 2, Duration::from_secs(60));
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("16 MiB") && message.contains("16777216 bytes"), "{message}");
    assert_eq!(refused["error"]["data"]["max_bytes"], 16777216);
    let served = answer(&rx, 3, Duration::from_secs(30));
    assert_eq!(served["result"]["structuredContent"]["ok"], true, "still serving: {served}");
    drop(writer.join().unwrap());
    assert!(child.wait().unwrap().success(), "swarm mcp ends when its client closes stdin");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("refused a message of more than 16 MiB (16777216 bytes) (id 2)"), "{stderr}");
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

/// MCP sessions are bounded (3,000 `initialize` once kept 3,000 sessions, +166 MB): past the
/// limit a new one takes the place of the least recently used idle one, or is refused with 503
/// while all are fresh; a session idle past the expiry is closed.
#[test]
fn mcp_sessions_are_bounded_and_expire() {
    let p = project();
    let limits = [("SWARM_SERVE_MCP_MAX_SESSIONS", "2"), ("SWARM_SERVE_MCP_IDLE_S", "8")];
    let (server, addr) = serve_with(&p, &[], &limits);
    let (status, a, _) = mcp_initialize(&addr);
    assert_eq!(status, 200);
    let (status, b, _) = mcp_initialize(&addr);
    assert_eq!(status, 200);
    let (a, b) = (a.expect("a session id"), b.expect("a session id"));
    let (status, _, body) = mcp_initialize(&addr);
    assert_eq!(status, 503, "a third session while both are fresh: {body}");
    assert!(body.contains("too many MCP sessions: 2"), "{body}");
    // `a` is used, so `b` is the least recently used: once idle a while, a new session takes its place.
    assert_eq!(mcp_use(&addr, &a), 200);
    let c = wait_for(Duration::from_secs(20), "a new session takes an idle one's place", || {
        assert_eq!(mcp_use(&addr, &a), 200, "the session in use stays");
        let (status, c, _) = mcp_initialize(&addr);
        (status == 200).then_some(c)
    });
    assert!(c.is_some());
    assert_eq!(mcp_use(&addr, &b), 404, "the replaced session is gone");
    // Idle past the expiry (8 s here), the sessions are closed.
    std::thread::sleep(Duration::from_secs(11));
    assert_eq!(mcp_use(&addr, &a), 404, "an expired session is gone");
    assert_eq!(mcp_initialize(&addr).0, 200);
    server.signal(nix::sys::signal::Signal::SIGTERM);
    server.wait(Duration::from_secs(30)).expect_code(0);
}

/// A client that sends its request's headers slowly (slow-loris) is cut off once the header-read
/// timeout passes (1 s here, 30 s by default), and the server goes on serving.
#[test]
fn a_slow_client_is_cut_off_after_the_header_read_timeout() {
    use std::io::{Read, Write};
    let p = project();
    let (server, addr) = serve_with(&p, &[], &[("SWARM_SERVE_HEADER_TIMEOUT_S", "1")]);
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let started = Instant::now();
    conn.write_all(format!("GET /api/runs HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ").as_bytes()).unwrap();
    let mut buf = [0u8; 1024];
    let closed = loop {
        assert!(started.elapsed() < Duration::from_secs(15), "the connection is still open after 15 s");
        match conn.read(&mut buf) {
            Ok(0) => break started.elapsed(),
            Ok(_) => {} // a 408 answer, before the close
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                // One more byte of the header, as a slow client sends them.
                if conn.write_all(b"x").is_err() {
                    break started.elapsed();
                }
            }
            Err(_) => break started.elapsed(),
        }
    };
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_secs(5),
        "closed after {closed:?}"
    );
    assert_eq!(get(&format!("http://{addr}/api/runs")).0, 200, "the server goes on serving");
    server.signal(nix::sys::signal::Signal::SIGTERM);
    server.wait(Duration::from_secs(30)).expect_code(0);
}

/// Past the cap on connections at once, a new one waits to be accepted until one closes.
#[test]
fn connections_past_the_cap_wait_for_one_to_close() {
    let p = project();
    let (server, addr) = serve_with(&p, &[], &[("SWARM_SERVE_MAX_CONNECTIONS", "2")]);
    let held: Vec<_> = (0..2).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    let url = format!("http://{addr}/api/runs");
    let tok = token();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = agent().get(&url).header("Authorization", &format!("Bearer {tok}")).call();
        let _ = tx.send(r.map(|r| r.status().as_u16()).unwrap_or(0));
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(2)).is_err(),
        "a third connection is not served while two are open"
    );
    drop(held);
    assert_eq!(rx.recv_timeout(Duration::from_secs(20)).expect("served once one closes"), 200);
    server.signal(nix::sys::signal::Signal::SIGTERM);
    server.wait(Duration::from_secs(30)).expect_code(0);
}
