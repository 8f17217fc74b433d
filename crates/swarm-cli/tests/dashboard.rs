//! The dashboard's views (issue 21) in headless Chromium and Firefox against a real run: the
//! task graph's edges, the timeline's retried task with its wait for a model, the models panel
//! with a cooling model and one whose day is spent, and a task's log growing while it is
//! written. The run is real (`swarm serve`, its gateway, a custom agent calling it with curl,
//! `exec` tasks); only the model is fake (swarm's fake model server, scripted to refuse).

mod support;

use serde_json::Value;
use std::process::Command;
use std::time::Duration;
use support::*;

const KEY: &str = "sk-dashboard-provider-0123456789";

/// Three layers: `spent` (its daily quota gone), `r429` (rate limited for 300 s) and `slot`
/// (one 429 with `retry-after: 4`, then answers). The first attempt's request is refused by all
/// three (`models_exhausted`); the retry's waits for `slot` to cool down.
const SCENARIO: &str = "[models.spent]\nrate_limit = { first = 1000, kind = \"quota\", header = false }\n\
    [models.r429]\nrate_limit = { first = 1000, retry_after = 300 }\n\
    [models.slot]\nrate_limit = { first = 1, retry_after = 4 }\nsteps = [ { say = \"DONE\" } ]\n";

/// `flaky` calls the gateway (its first attempt fails); `writer` prints until released.
const PLAN: &str = "---\ndefaults:\n  timeout: 120s\n---\n\n\
    ## setup: Prepares\n- agent: exec\n- command: echo ready\n\n\
    ## flaky: Asks a model, fails once\n- agent: caller\n- depends: setup\n- retries: 1\n\nCall the model.\n\n\
    ## writer: Writes until released\n- agent: exec\n- depends: setup\n\
    - command: i=0; while [ ! -f release ] && [ $i -lt 900 ]; do i=$((i+1)); echo \"tick $i\"; sleep 0.2; done; echo writer done\n\n\
    ## final: Ends\n- agent: exec\n- depends: flaky, writer\n- command: echo all done\n";

const AGENT: &str = "curl -s -H \"Authorization: Bearer $SWARM_GATEWAY_TOKEN\" -H 'content-type: application/json' \
    -d '{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}' \"$SWARM_GATEWAY_URL/chat/completions\"\n\
    echo\n\
    if [ ! -f tried ]; then touch tried; echo 'first try: giving up' >&2; exit 1; fi\n\
    swarm report --status done --summary called\n";

fn python() -> std::path::PathBuf {
    let py =
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python")).to_path_buf();
    assert!(
        py.exists(),
        "the test venv is missing: run ./scripts/test.sh (it installs Playwright into .venv)"
    );
    py
}

fn project(fake: &Fake) -> Project {
    let p = Project::new();
    p.write(
        "swarm.toml",
        &format!(
            "{FAST_CONFIG}\n[providers.fake]\nkind = \"openai-compatible\"\nbase_url = \"{}\"\napi_key_env = \"DASHBOARD_TEST_KEY\"\npaid = false\n\n\
             [models]\nlayers = [[\"fake/spent\"], [\"fake/r429\"], [\"fake/slot\"]]\nbudget_usd = 5.0\n\n\
             [agents.caller]\ncommand = \"sh agent.sh\"\n",
            fake.base_url()
        ),
    );
    p.write("agent.sh", AGENT);
    p.write("views.md", PLAN);
    p
}

/// `swarm serve` on a free loopback port: its address and token.
fn serve(p: &Project) -> (Bg, String, String) {
    let mut cmd = p.command(&["serve", "--bind", "127.0.0.1:0", "--json"]);
    cmd.env("DASHBOARD_TEST_KEY", KEY);
    let bg = p.spawn_cmd(cmd);
    let line = wait_for(Duration::from_secs(20), "swarm serve listens", || {
        bg.stdout()
            .lines()
            .find_map(|l| serde_json::from_str::<Value>(l).ok().filter(|v| v["listening"].is_string()))
    });
    let token = std::fs::read_to_string(line["token_file"].as_str().unwrap()).unwrap().trim().to_string();
    (bg, line["listening"].as_str().unwrap().to_string(), token)
}

fn call(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let auth = token.map(|t| format!("Bearer {t}")).unwrap_or_default();
    let mut r = match (method, body) {
        ("POST", Some(b)) => {
            agent.post(url).header("Authorization", &auth).header("Content-Type", "application/json").send(b)
        }
        _ => agent.get(url).header("Authorization", &auth).call(),
    }
    .expect("request");
    let status = r.status().as_u16();
    (status, serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default()).unwrap_or(Value::Null))
}

/// What the browser saw of a live run of [`PLAN`], and the run's report.
fn views_in(browser: &str) -> (Value, Value, Project, std::path::PathBuf) {
    let fake = Fake::start(SCENARIO);
    let p = project(&fake);
    let (server, addr, token) = serve(&p);
    let base = format!("http://{addr}");
    // The new API answers only with the token.
    for path in ["/api/models", "/api/runs/latest/timeline", "/api/runs/latest/tasks/x/log"] {
        assert_eq!(call("GET", &format!("{base}{path}"), None, None).0, 401, "{path}");
    }
    let (status, started) =
        call("POST", &format!("{base}/api/runs"), Some(&token), Some(r#"{"plan_path": "views.md"}"#));
    assert_eq!(status, 201, "{started}");
    let run = started["run_id"].as_str().unwrap().to_string();
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dashboard-{browser}-{run}"));
    std::fs::create_dir_all(&shots).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/dashboard_views.py");
    let release = p.file("release").display().to_string();
    let out = Command::new(python())
        .args([
            script,
            browser,
            &format!("{base}/#token={token}"),
            &run,
            &release,
            &shots.display().to_string(),
        ])
        .output()
        .expect("python runs");
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    // Whatever the browser saw, the run is let go.
    std::fs::write(p.file("release"), "").unwrap();
    wait_status(&p, &run, "the run ends", |st| st["state"] != "running");
    let (_, panel) = call("GET", &format!("{base}/api/models?run={run}"), Some(&token), None);
    server.signal(nix::sys::signal::Signal::SIGTERM);
    server.wait(Duration::from_secs(30)).expect_code(0);
    let report = p.report(&run);
    let seen = serde_json::json!({ "seen": seen, "panel": panel });
    (seen, report, p, shots)
}

fn check(browser: &str) {
    let (both, report, p, shots) = views_in(browser);
    let (seen, panel) = (&both["seen"], &both["panel"]);
    assert!(seen.get("exception").is_none(), "{seen:#}\n(screenshots: {})", shots.display());
    assert_eq!(seen["page_errors"], serde_json::json!([]), "{seen:#}");
    assert!(seen["browser"].as_str().unwrap().to_lowercase().starts_with(browser), "{seen:#}");
    // Graph: an edge for every dependency, the critical path marked.
    let mut edges: Vec<&str> =
        seen["edges"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    edges.sort_unstable();
    assert_eq!(edges, ["flaky>final", "setup>flaky", "setup>writer", "writer>final"], "{seen:#}");
    let critical: Vec<&str> =
        seen["critical_cards"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    assert!(critical.contains(&"setup") && critical.len() >= 2, "{seen:#}");
    // Timeline: the retry is a bar of its own, and it waited for a model.
    let bars: Vec<&str> =
        seen["flaky_bars"].as_array().unwrap().iter().map(|b| b.as_str().unwrap()).collect();
    assert_eq!(bars.len(), 2, "{seen:#}");
    assert!(bars[0].contains("attempt 1 · failed: models_exhausted"), "{seen:#}");
    assert!(bars[1].contains("attempt 2 ·") && bars[1].contains("waiting for a model"), "{seen:#}");
    assert!(seen["flaky_wait_width"].as_f64().unwrap() > 0.0, "{seen:#}");
    assert_eq!(seen["now_line_live"], true, "a now-line while the run is live");
    // Models: cooling with its reason; the spent day with its reset.
    let cooling = seen["cooling_row"].as_str().unwrap();
    assert!(cooling.contains("cooling until") && cooling.contains("rate_limited"), "{cooling}");
    let spent = seen["exhausted_row"].as_str().unwrap();
    assert!(spent.contains("day exhausted until") && spent.contains("UTC day"), "{spent}");
    let row =
        |id: &str| panel["models"].as_array().unwrap().iter().find(|m| m["model"] == id).cloned().unwrap();
    assert_eq!(
        (row("fake/spent")["state"].as_str(), row("fake/spent")["reason"].as_str()),
        (Some("cooling"), Some("quota_exhausted"))
    );
    assert_eq!(row("fake/spent")["until"], row("fake/spent")["resets_at"], "cooling until its day resets");
    assert_eq!(panel["run"]["absorbed"]["fake/r429"], 1, "{panel:#}");
    assert!(panel["run"]["per_minute"].as_array().is_some_and(|m| !m.is_empty()), "{panel:#}");
    assert_eq!(panel["budget_usd"], 5.0);
    // The log grew while the agent wrote, then its attempt ended.
    let lines = &seen["log_lines"];
    assert!(lines[1].as_u64().unwrap() >= lines[0].as_u64().unwrap() + 5, "{seen:#}");
    assert_eq!(seen["log_state"], "live");
    assert_eq!(seen["log_end"], "writer done", "{seen:#}");
    assert_eq!(seen["run_state"], "succeeded");
    // The report keeps the phases the timeline drew, and report.md shows them.
    let flaky = attempts(&report, "flaky");
    assert_eq!(flaky.len(), 2, "{report:#}");
    assert!(flaky[0]["queued_at"].is_string() && flaky[1]["queued_at"] == flaky[0]["ended_at"], "{report:#}");
    let wait = &flaky[1]["model_waits"][0];
    let waited = time(&wait["to"]) - time(&wait["from"]);
    assert!(waited >= chrono::Duration::milliseconds(1500), "the wait for `slot` to cool down: {wait:#}");
    let md = p.read(&format!(".swarm/runs/{}/report.md", report["run_id"].as_str().unwrap()));
    assert!(md.contains("```mermaid\ngantt") && md.contains("attempt 2 waiting for a model"), "{md}");
    assert!(md.contains("## Model layers") && md.contains("| 3 | `fake/slot` | 1 |"), "{md}");
    for shot in ["live", "done"] {
        let file = shots.join(format!("dashboard-{browser}-{shot}.png"));
        assert!(
            std::fs::metadata(&file).map(|m| m.len() > 20_000).unwrap_or(false),
            "{} kept",
            file.display()
        );
    }
}

#[test]
fn the_dashboard_views_in_chromium() {
    check("chromium");
}

#[test]
fn the_dashboard_views_in_firefox() {
    check("firefox");
}

/// The SSE events of a finished stream at `url`: `(event, data)` pairs up to `end`.
fn sse(url: &str, token: &str) -> Vec<(String, Value)> {
    use std::io::BufRead;
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(30))).build().into();
    let r =
        agent.get(url).header("Authorization", &format!("Bearer {token}")).call().expect("GET the stream");
    let mut out = Vec::new();
    let mut event = String::new();
    for line in std::io::BufReader::new(r.into_body().into_reader()).lines() {
        let line = line.expect("a line of the stream");
        if let Some(e) = line.strip_prefix("event: ") {
            event = e.to_string();
        } else if let Some(d) = line.strip_prefix("data: ") {
            out.push((std::mem::take(&mut event), serde_json::from_str(d).expect("JSON data")));
            if out.last().unwrap().0 == "end" {
                break;
            }
        }
    }
    out
}

/// A task's log as SSE: whole from offset 0, only the rest from a later offset, and a `capped`
/// event when the log reached its head+tail cap.
#[test]
fn the_log_stream_goes_on_from_an_offset_and_says_when_the_cap_applies() {
    let p = Project::new();
    p.write("swarm.toml", &format!("{FAST_CONFIG}log_limit = \"4KiB\"\n"));
    p.write(
        "logs.md",
        "## small: Prints a little\n- agent: exec\n- command: printf 'one\\ntwo\\nthree\\n'\n\n\
         ## flood: Prints a lot\n- agent: exec\n- command: seq 1 3000\n",
    );
    let (server, addr, token) = serve(&p);
    let base = format!("http://{addr}");
    let (_, started) =
        call("POST", &format!("{base}/api/runs"), Some(&token), Some(r#"{"plan_path": "logs.md"}"#));
    let run = started["run_id"].as_str().unwrap().to_string();
    wait_status(&p, &run, "the run ends", |st| st["state"] == "succeeded");
    let text = |events: &[(String, Value)]| -> String {
        events.iter().filter(|(e, _)| e == "chunk").map(|(_, d)| d["text"].as_str().unwrap()).collect()
    };
    let whole = sse(&format!("{base}/api/runs/{run}/tasks/small/log"), &token);
    assert_eq!(text(&whole), "one\ntwo\nthree\n", "{whole:?}");
    assert_eq!(whole.last().unwrap(), &("end".to_string(), serde_json::json!({ "attempt": 1, "next": 14 })));
    let rest = sse(&format!("{base}/api/runs/{run}/tasks/small/log?offset=4"), &token);
    assert_eq!(text(&rest), "two\nthree\n");
    assert_eq!(rest[0].1["offset"], 4);
    let flood = sse(&format!("{base}/api/runs/{run}/tasks/flood/log"), &token);
    let capped: Vec<_> = flood.iter().filter(|(e, _)| e == "capped").collect();
    assert_eq!(capped.len(), 1, "{flood:?}");
    assert!(capped[0].1["message"].as_str().unwrap().contains("log_limit"));
    assert!(text(&flood).ends_with("3000\n"), "the tail is there once the attempt ended");
    let (status, err) = call("GET", &format!("{base}/api/runs/{run}/tasks/nope/log"), Some(&token), None);
    assert_eq!(status, 404, "{err}");
    server.signal(nix::sys::signal::Signal::SIGTERM);
    server.wait(Duration::from_secs(30)).expect_code(0);
}
