//! The JSON API, the run's events as SSE, the dashboard in real browsers, and runs the server
//! started outliving it.

use super::*;

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

#[test]
fn the_api_lists_the_namespaces_workers() {
    let p = Project::on_own_redis();
    let (_server, addr) = serve(&p, &[]);
    let url = format!("http://{addr}/api/workers");
    assert_eq!(get(&url), (200, serde_json::json!({ "workers": [] })));
    let w = worker(&p, "w1", 3, &["--labels", "zone=eu"]);
    let (status, body) = get(&url);
    let rows = body["workers"].as_array().cloned().unwrap_or_default();
    assert_eq!((status, rows.len()), (200, 1), "{body}");
    let r = &rows[0];
    assert_eq!(
        (r["name"].as_str(), r["alive"].as_bool(), r["capacity"].as_u64()),
        (Some("w1"), Some(true), Some(3)),
        "{r}"
    );
    assert_eq!(r["labels"], serde_json::json!({ "zone": "eu" }));
    assert!(r["agents"].as_array().unwrap().iter().any(|a| a["name"] == "exec"), "{r}");
    drop(w);
    // A store without workers says so.
    let sqlite = Project::new();
    let (_server, addr) = serve(&sqlite, &["--store", "sqlite:.swarm/state.db"]);
    let (status, body) = get(&format!("http://{addr}/api/workers"));
    assert!(status == 400 && body.to_string().contains("Redis"), "{status} {body}");
}
