//! `swarm state` through the real binary, on both stores: get/set/list/delete, compare-and-set
//! exit codes, the live change feed, and an agent's write naming its run, task and attempt.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::*;
use swarm_testkit::RedisServer;

/// A project plus the store its commands use, chosen explicitly (whatever `SWARM_TEST_STORE`
/// says), so each test runs once per backend.
struct Setup {
    p: Project,
    store: String,
    _redis: Option<RedisServer>,
}

impl Setup {
    fn sqlite() -> Setup {
        Setup { p: Project::new(), store: "sqlite:.swarm/state.db".into(), _redis: None }
    }

    fn redis() -> Setup {
        let redis = RedisServer::start();
        Setup { p: Project::new(), store: redis.url(), _redis: Some(redis) }
    }

    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = args.to_vec();
        all.extend(["--store", self.store.as_str()]);
        all
    }

    fn swarm(&self, args: &[&str]) -> Out {
        self.p.swarm(&self.args(args))
    }

    fn state(&self, args: &[&str]) -> Out {
        let mut all = vec!["state"];
        all.extend(args);
        self.swarm(&all)
    }
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

fn set_get_list_delete_and_compare_and_set(s: &Setup) {
    s.state(&["set", "k", r#"{"n": 1}"#]).expect_code(0);
    assert_eq!(s.state(&["get", "k"]).expect_code(0).json(), json!({ "n": 1 }));
    let out = s.state(&["set", "k", "plain words", "--json"]);
    let entry = out.expect_code(0).json();
    assert_eq!(
        (entry["value"].clone(), entry["version"].clone()),
        (json!("plain words"), json!(2)),
        "not JSON: a string"
    );
    assert!(entry["updated_by"]["pid"].is_u64(), "{entry}");
    assert!(entry["updated_by"].get("run_id").is_none(), "no run outside an agent: {entry}");

    // Compare-and-set: losing is exit 1 and names the key and both versions.
    let lost = s.state(&["set", "k", "3", "--if-version", "1"]);
    lost.expect_code(1);
    for part in ["`k`", "expected version 1", "found version 2"] {
        assert!(lost.stderr.contains(part), "missing {part:?}\n{}", lost.dump());
    }
    assert_eq!(s.state(&["get", "k"]).expect_code(0).json(), json!("plain words"), "the loser wrote nothing");
    assert_eq!(
        s.state(&["set", "k", "3", "--if-version", "2", "--json"]).expect_code(0).json()["version"],
        3
    );
    s.state(&["set", "lock", "me", "--if-version", "0"]).expect_code(0);
    let taken = s.state(&["set", "lock", "you", "--if-version", "0"]);
    assert!(
        taken.expect_code(1).stderr.contains("expected no entry (version 0), found version 1"),
        "{}",
        taken.dump()
    );

    s.state(&["set", "b/2", "[2]"]).expect_code(0);
    s.state(&["set", "b/1", "null"]).expect_code(0);
    let listed = s.state(&["list"]);
    let keys: Vec<&str> =
        lines(&listed.expect_code(0).stdout).iter().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(keys, ["b/1", "b/2", "k", "lock"], "{}", listed.dump());
    let some = s.state(&["list", "b/", "--json"]).expect_code(0).json();
    let rows = some.as_array().expect("an array");
    assert_eq!(rows.iter().map(|e| e["key"].as_str().unwrap()).collect::<Vec<_>>(), ["b/1", "b/2"]);
    assert_eq!(rows[0]["value"], Value::Null);

    // Namespaces: --namespace, SWARM_NAMESPACE, else the project directory's name.
    s.state(&["get", "k", "--namespace", "other"]).expect_code(1);
    s.state(&["set", "k", "elsewhere", "--namespace", "other"]).expect_code(0);
    let mut cmd = s.p.command(&s.args(&["state", "get", "k"]));
    cmd.env("SWARM_NAMESPACE", "other");
    assert_eq!(s.p.spawn_cmd(cmd).wait(CMD_TIMEOUT).expect_code(0).json(), json!("elsewhere"));
    let dir_name = s.p.path().file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(s.state(&["get", "k", "--namespace", &dir_name]).expect_code(0).json(), json!(3));

    s.state(&["delete", "k", "--if-version", "1"]).expect_code(1);
    assert!(s.state(&["delete", "k"]).expect_code(0).stdout.contains("deleted"));
    let missing = s.state(&["get", "k"]);
    assert!(missing.expect_code(1).stderr.contains("no key `k`"), "{}", missing.dump());
    s.state(&["delete", "k"]).expect_code(0);
    s.state(&["get", ""]).expect_code(2);
    s.state(&["set", "k", "1", "--if-version", "many"]).expect_code(2);
}

fn watch_prints_changes_as_they_happen(s: &Setup) {
    s.state(&["set", "old", "1"]).expect_code(0);
    let live = s.p.spawn(&s.args(&["state", "watch", "w/", "--json"]));
    let everything = s.p.spawn(&s.args(&["state", "watch", "--from-start"]));
    // The live watcher starts at the feed's end; write until it has seen a first change, then
    // the rest must follow in order.
    let mut n = 0;
    wait_until(Duration::from_secs(10), "the watcher sees a change", || {
        n += 1;
        s.state(&["set", "w/first", &n.to_string()]).expect_code(0);
        !live.stdout().is_empty()
    });
    s.state(&["set", "other", "1"]).expect_code(0);
    s.state(&["set", "w/second", r#"{"a": [1]}"#]).expect_code(0);
    s.state(&["delete", "w/first"]).expect_code(0);
    wait_until(Duration::from_secs(10), "the watcher prints the delete", || {
        live.stdout().contains("\"delete\"")
    });
    let changes: Vec<Value> =
        live.stdout().lines().map(|l| serde_json::from_str(l).expect("one JSON change per line")).collect();
    let tail: Vec<(&str, &str)> = changes[changes.len() - 2..]
        .iter()
        .map(|c| (c["key"].as_str().unwrap(), c["op"].as_str().unwrap()))
        .collect();
    assert_eq!(tail, [("w/second", "set"), ("w/first", "delete")], "{changes:?}");
    assert!(
        changes.iter().all(|c| c["key"].as_str().unwrap().starts_with("w/")),
        "prefix filter: {changes:?}"
    );
    assert!(changes.windows(2).all(|w| w[0]["seq"].as_u64() < w[1]["seq"].as_u64()));
    assert_eq!(changes[changes.len() - 2]["value"], json!({ "a": [1] }));
    wait_until(Duration::from_secs(10), "--from-start shows the first change", || {
        everything.stdout().lines().next().is_some_and(|l| l.contains("set old v1 = 1"))
    });
    let out = live.kill9();
    assert!(out.stderr.is_empty(), "{}", out.dump());
    everything.kill9();
}

fn an_agents_write_names_its_run_task_and_attempt(s: &Setup) {
    let swarm = shlex_quote(SWARM);
    s.p.plan(&format!(
        "---
name: shared
namespace: team
defaults:
  agent: exec
---

## writer: Record progress in the shared state
- command: {swarm} state set progress '{{\"done\": true}}' --if-version 0

## reader: Read it back
- depends: writer
- command: {swarm} state get progress --json | grep -q '\"value\":{{\"done\":true}}'
"
    ));
    let out = s.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let run_id = out.run_id();

    let entry = s.state(&["get", "progress", "--namespace", "team", "--json"]).expect_code(0).json();
    assert_eq!(entry["value"], json!({ "done": true }));
    let by = &entry["updated_by"];
    assert_eq!(by["run_id"], run_id.as_str(), "{entry}");
    assert_eq!(by["task_id"], "writer", "{entry}");
    assert_eq!(by["attempt"], 1, "{entry}");
    assert!(by["pid"].is_u64() && by["host"].is_string(), "{entry}");

    let events = s.swarm(&["events", &run_id, "--json"]);
    let changed: Vec<Value> = events
        .expect_code(0)
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON event"))
        .filter(|e| e["kind"] == "state_changed")
        .collect();
    assert_eq!(changed.len(), 1, "{}", events.dump());
    let e = &changed[0];
    assert_eq!((&e["key"], &e["op"], &e["version"]), (&json!("progress"), &json!("set"), &json!(1)), "{e}");
    assert_eq!(
        (&e["task"], &e["attempt"], &e["run_id"]),
        (&json!("writer"), &json!(1), &json!(run_id)),
        "{e}"
    );
}

/// Single-quotes a path for `sh -c`.
fn shlex_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&super::Setup::sqlite()); } )*
        }
        mod redis {
            $( #[test] fn $name() { super::$name(&super::Setup::redis()); } )*
        }
    };
}

on_both_stores!(
    set_get_list_delete_and_compare_and_set,
    watch_prints_changes_as_they_happen,
    an_agents_write_names_its_run_task_and_attempt,
);
