//! Redis-specific behaviour through the real binary: a store that goes away mid-run, an
//! unreachable address, passwords never printed.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::*;
use swarm_testkit::RedisServer;

#[test]
fn a_redis_restart_mid_run_loses_no_transition() {
    let mut redis = RedisServer::start_persistent();
    let p = Project::new();
    p.plan(
        "---\ndefaults:\n  agent: exec\n---\n\
         ## a: A\n- command: {fake} --print 1 --sleep 1500ms\n\n\
         ## b: B\n- depends: a\n- command: {fake} --print 1 --sleep 300ms\n\n\
         ## c: C\n- depends: b\n- command: {fake} --print 1 --sleep 1s\n",
    );
    let url = redis.url();
    let mut run = p.spawn(&["run", "plan.md", "--store", &url]);
    let run_id = run.run_id();
    let status = |p: &Project| -> Option<Value> {
        let out = p.swarm(&["status", &run_id, "--json", "--store", &url]);
        (out.code() == Some(0)).then(|| out.json())
    };
    wait_until(Duration::from_secs(10), "task a running", || {
        status(&p).is_some_and(|st| state(&st, "a") == "running")
    });
    redis.kill();
    // While Redis is down the run goes on: a finishes, b runs and finishes, c starts.
    wait_until(Duration::from_secs(20), "c to start while Redis is down", || {
        run.stdout().lines().any(|l| l.contains(" c ") && l.contains("running"))
    });
    assert!(run.stdout().contains("store write failed"), "the outage is reported live:\n{}", run.stdout());
    redis.restart();
    let out = run.wait(Duration::from_secs(60));
    out.expect_code(0);
    assert!(out.stdout.contains("is back"), "the recovery was reported:\n{}", out.dump());
    let st = status(&p).expect("status after the run");
    for id in ["a", "b", "c"] {
        assert_task(&st, id, "succeeded", None);
    }
    let events = p.swarm(&["events", &run_id, "--json", "--store", &url]).expect_code(0).stdout.clone();
    let kinds: Vec<(String, String)> = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("event line is JSON"))
        .filter(|e| e["kind"] == "task_state")
        .map(|e| (e["task"].as_str().unwrap().to_string(), e["state"].as_str().unwrap().to_string()))
        .collect();
    for id in ["a", "b", "c"] {
        let states: Vec<&str> = kinds.iter().filter(|(t, _)| t == id).map(|(_, s)| s.as_str()).collect();
        assert_eq!(states, ["ready", "running", "succeeded"], "every transition of {id} is in the store");
    }
    assert!(events.contains("\"kind\":\"run_finished\""));
}

#[test]
fn an_unreachable_redis_is_a_clear_error_without_the_password() {
    let p = Project::new();
    p.plan("## a: A\n- agent: exec\n- command: true\n");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("redis://alice:hunter2@127.0.0.1:{port}/3");
    let out = p.swarm(&["run", "plan.md", "--store", &url]);
    out.expect_code(2);
    assert!(out.stderr.contains(&format!("127.0.0.1:{port}")), "{}", out.dump());
    assert!(out.stderr.contains("alice:***"), "{}", out.dump());
    assert!(!out.dump().contains("hunter2"), "password printed:\n{}", out.dump());
    let env_out = {
        let mut cmd = p.command(&["status"]);
        cmd.env("SWARM_STORE", &url);
        p.spawn_cmd(cmd).wait(Duration::from_secs(30))
    };
    env_out.expect_code(2);
    assert!(!env_out.dump().contains("hunter2"), "password printed:\n{}", env_out.dump());
}

#[test]
fn a_store_schema_newer_than_the_binary_is_refused() {
    let redis = RedisServer::start();
    let mut conn = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("HSET").arg("swarm:meta").arg("schema_version").arg("7").query(&mut conn).unwrap();
    let p = Project::new();
    p.plan("## a: A\n- agent: exec\n- command: true\n");
    let out = p.swarm(&["run", "plan.md", "--store", &redis.url()]);
    out.expect_code(2);
    assert!(out.stderr.contains("schema version 7"), "{}", out.dump());
    let runs: i64 = redis::cmd("ZCARD").arg("swarm:runs").query(&mut conn).unwrap();
    assert_eq!(runs, 0, "nothing written");
}

#[test]
fn rediss_with_a_private_ca_runs_a_plan() {
    let redis = RedisServer::start_tls();
    let p = Project::new();
    p.plan("## a: A\n- agent: exec\n- command: echo over tls\n");
    let ca = redis.ca_cert().display().to_string();
    let with_ca = |args: &[&str], ca: Option<&str>| {
        let mut cmd = p.command(args);
        if let Some(ca) = ca {
            cmd.env("SWARM_REDIS_CA_CERT", ca);
        }
        p.spawn_cmd(cmd).wait(CMD_TIMEOUT)
    };
    let out = with_ca(&["run", "plan.md", "--store", &redis.url()], Some(&ca));
    out.expect_code(0);
    let st = with_ca(&["status", "--json", "--store", &redis.url()], Some(&ca));
    st.expect_code(0);
    assert_task(&st.json(), "a", "succeeded", None);
    // Without the CA the server's certificate is not trusted: a clear error, exit 2.
    let untrusted = with_ca(&["status", "--store", &redis.url()], None);
    untrusted.expect_code(2);
    assert!(untrusted.stderr.contains(&format!("127.0.0.1:{}", redis.port)), "{}", untrusted.dump());
}

const TEAM_PASSWORD: &str = "pw-t3am1-s3cret";

/// The ACL line of docs/state-schema.md for namespace `team1`, as `ACL SETUSER` arguments.
fn team1_acl() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/state-schema.md"))
        .expect("docs/state-schema.md");
    let line = doc.lines().find(|l| l.starts_with("ACL SETUSER team1 ")).expect("the ACL line in the doc");
    let line = line.replace(">change-me", &format!(">{TEAM_PASSWORD}"));
    line.split_whitespace().skip(2).map(String::from).collect()
}

/// Every file under `dir` that holds `needle`.
fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut hits = vec![];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            hits.extend(files_containing(&path, needle));
        } else if std::fs::read(&path).is_ok_and(|b| String::from_utf8_lossy(&b).contains(needle)) {
            hits.push(path);
        }
    }
    hits
}

#[test]
fn an_acl_user_confined_to_its_namespace_runs_resumes_and_watches_it() {
    let redis = RedisServer::start();
    // Another team's run and state, written by an unconfined user.
    let other = Project::new();
    other.plan("---\nnamespace: team2\n---\n## x: X\n- agent: exec\n- command: true\n");
    let other_run = other.swarm(&["run", "plan.md", "--store", &redis.url()]).expect_code(0).run_id();
    let mut conn = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("ACL").arg("SETUSER").arg(team1_acl()).query(&mut conn).unwrap();

    let url = format!("redis://team1:{TEAM_PASSWORD}@127.0.0.1:{}", redis.port);
    let p = Project::new();
    p.plan(
        &"---
namespace: team1
defaults:
  agent: exec
---

## first: Writes shared state
- command: {swarm} state set greeting '\"hi\"' && echo first says hi

## gate: Hangs until `go` exists
- depends: first
- command: [ -f go ] || exec {fake} --pidfile gate.pid --sleep 60s

## last: After the gate
- depends: gate
- command: touch last.ran
"
        .replace("{swarm}", SWARM),
    );
    let outputs = std::cell::RefCell::new(String::new());
    let swarm = |args: &[&str]| {
        let mut cmd = p.command(args);
        cmd.env("SWARM_STORE", &url).env("SWARM_NAMESPACE", "team1");
        let out = p.spawn_cmd(cmd).wait(CMD_TIMEOUT);
        outputs.borrow_mut().push_str(&out.dump());
        out
    };
    let mut run = {
        let mut cmd = p.command(&["run", "plan.md", "--store", &url]);
        cmd.env_remove("SWARM_STORE");
        p.spawn_cmd(cmd)
    };
    let run_id = run.run_id();
    p.pid("gate.pid");
    swarm(&["cancel", &run_id]).expect_code(0);
    let first = run.wait(Duration::from_secs(20));
    outputs.borrow_mut().push_str(&first.dump());
    first.expect_code(130);
    p.write("go", "");
    swarm(&["resume", &run_id]).expect_code(0);
    let st = swarm(&["status", &run_id, "--json"]).expect_code(0).json();
    assert_eq!(st["state"], "succeeded", "{st}");
    assert!(p.exists("last.ran"));
    assert!(swarm(&["logs", &run_id, "first"]).expect_code(0).stdout.contains("first says hi"));
    let events = swarm(&["events", &run_id, "--json"]).expect_code(0).stdout.clone();
    assert!(events.contains("\"kind\":\"state_changed\""), "the agent's state write reached the run");
    assert!(events.contains("\"kind\":\"run_finished\""));
    assert_eq!(swarm(&["state", "get", "greeting"]).expect_code(0).stdout.trim(), "\"hi\"");

    // Nothing of team2: not its runs, not its state.
    let list = swarm(&["status", "--json"]).expect_code(0).stdout.clone();
    assert!(list.contains(&run_id) && !list.contains(&other_run), "{list}");
    let theirs = swarm(&["status", &other_run]);
    assert_ne!(theirs.code(), Some(0), "{}", theirs.dump());
    let theirs = swarm(&["state", "get", "anything", "--namespace", "team2"]);
    assert_ne!(theirs.code(), Some(0), "{}", theirs.dump());

    let outputs = outputs.into_inner();
    assert!(!outputs.contains(TEAM_PASSWORD), "the password was printed:\n{outputs}");
    let leaked = files_containing(p.path(), TEAM_PASSWORD);
    assert!(leaked.is_empty(), "the password is in {leaked:?}");
    // DUMP without LZF, so a password in a value would show as it is.
    let _: () = redis::cmd("CONFIG").arg("SET").arg("rdbcompression").arg("no").query(&mut conn).unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    assert!(keys.iter().any(|k| k.starts_with("swarm:{team1}:run:")), "{keys:?}");
    for key in keys.iter().filter(|k| k.starts_with("swarm:{team1}:")) {
        let dump: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut conn).unwrap();
        assert!(!String::from_utf8_lossy(&dump).contains(TEAM_PASSWORD), "the password is in {key}");
    }
}

#[test]
fn a_plan_runs_on_a_redis_cluster_with_a_password() {
    let cluster = swarm_testkit::RedisCluster::start_with(3, &["--requirepass", TEAM_PASSWORD]);
    let nodes: Vec<String> = cluster.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
    let url = format!("redis+cluster://:{TEAM_PASSWORD}@{}", nodes.join(","));
    let p = Project::new();
    p.plan(
        &"## a: A\n- agent: exec\n- command: {swarm} state set seen '\"yes\"' && echo on the cluster\n\n\
          ## b: B\n- agent: exec\n- depends: a\n- command: {swarm} state get seen\n"
            .replace("{swarm}", SWARM),
    );
    let swarm = |args: &[&str]| {
        let mut cmd = p.command(args);
        cmd.env("SWARM_STORE", &url);
        p.spawn_cmd(cmd).wait(CMD_TIMEOUT)
    };
    let out = swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let run_id = out.run_id();
    let st = swarm(&["status", &run_id, "--json"]);
    st.expect_code(0);
    assert_task(&st.json(), "a", "succeeded", None);
    assert_task(&st.json(), "b", "succeeded", None);
    assert!(swarm(&["logs", &run_id, "b"]).expect_code(0).stdout.contains("\"yes\""));
    let describe = swarm(&["status"]);
    assert!(!format!("{}{}", out.dump(), describe.dump()).contains(TEAM_PASSWORD));
    assert!(files_containing(p.path(), TEAM_PASSWORD).is_empty(), "the password is in a file");
}
