//! The dashboard's task graph at 500 tasks (issue 21: "readable at 50 tasks and usable at 500"),
//! in headless Chromium and Firefox against a real finished run of 500 `exec` tasks in 50 chains
//! of ten: every task drawn, every dependency an edge, Fit shows it whole, keyboard zoom and a
//! card opened by keyboard work.

mod support;

use serde_json::Value;
use std::process::Command;
use std::time::Duration;
use support::*;

const TASKS: usize = 500;
/// Task `i` depends on task `i - CHAINS`: 50 chains of ten, 450 edges.
const CHAINS: usize = 50;

fn plan() -> String {
    let mut plan = String::from("---\ndefaults:\n  agent: exec\n  command: \"true\"\n---\n");
    for i in 0..TASKS {
        plan.push_str(&format!("\n## t{i}: Step {i}\n"));
        if i >= CHAINS {
            plan.push_str(&format!("- depends: t{}\n", i - CHAINS));
        }
    }
    plan
}

fn python() -> std::path::PathBuf {
    let py =
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python")).to_path_buf();
    assert!(
        py.exists(),
        "the test venv is missing: run ./scripts/test.sh (it installs Playwright into .venv)"
    );
    py
}

fn check(browser: &str) {
    let p = Project::new();
    p.write("swarm.toml", FAST_CONFIG);
    p.write("scale.md", &plan());
    let run = p.swarm(&["run", "scale.md", "--concurrency", "8"]).expect_code(0).run_id();
    let report = p.report(&run);
    assert_eq!(report["tasks"].as_array().map(Vec::len), Some(TASKS));

    let mut cmd = p.command(&["serve", "--bind", "127.0.0.1:0", "--json"]);
    cmd.stdin(std::process::Stdio::null());
    let server = p.spawn_cmd(cmd);
    let line = wait_for(Duration::from_secs(20), "swarm serve listens", || {
        server
            .stdout()
            .lines()
            .find_map(|l| serde_json::from_str::<Value>(l).ok().filter(|v| v["listening"].is_string()))
    });
    let token = std::fs::read_to_string(line["token_file"].as_str().unwrap()).unwrap().trim().to_string();
    let url = format!("http://{}/#token={token}", line["listening"].as_str().unwrap());
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dashboard-scale-{browser}"));
    std::fs::create_dir_all(&shots).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/dashboard_scale.py");
    let out = Command::new(python())
        .args([script, browser, &url, &run, &shots.display().to_string()])
        .output()
        .expect("python runs");
    server.signal(nix::sys::signal::Signal::SIGTERM);
    server.wait(Duration::from_secs(30)).expect_code(0);
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    assert!(seen.get("exception").is_none(), "{seen:#}\n(screenshots: {})", shots.display());
    assert_eq!(seen["page_errors"], serde_json::json!([]), "{seen:#}");
    assert_eq!(seen["cards"], TASKS, "{seen:#}");
    assert_eq!(seen["edges"], TASKS - CHAINS, "an edge per dependency: {seen:#}");
    assert_eq!(seen["edges_drawn"], TASKS - CHAINS, "every edge has a length: {seen:#}");
    assert_eq!(seen["critical"], TASKS / CHAINS, "one chain of ten is the critical path: {seen:#}");
    assert!(seen["page_height"].as_u64().unwrap() < 4000, "long lists scroll in their panels: {seen:#}");
    assert_eq!(seen["fits"], true, "Fit shows the whole graph: {seen:#}");
    assert!(seen["fit_scale"].as_f64().unwrap() < 1.0, "{seen:#}");
    assert_eq!((&seen["zoomed_in"], &seen["refit"]), (&Value::Bool(true), &Value::Bool(true)), "{seen:#}");
    assert!(seen["opened"].as_str().unwrap().contains("t250"), "{seen:#}");
    eprintln!("{browser}: 500 cards drawn in {} s after the run was chosen", seen["draw_s"]);
    let shot = shots.join(format!("dashboard-{browser}-500.png"));
    assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 20_000), "{} kept", shot.display());
}

#[test]
fn five_hundred_tasks_in_chromium() {
    check("chromium");
}

#[test]
fn five_hundred_tasks_in_firefox() {
    check("firefox");
}
