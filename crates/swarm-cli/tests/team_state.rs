//! Declared shared state (docs/contract.md §12) through the real binary, on both stores: a plan's
//! `state:` with schemas and writers enforced on agents' writes (real processes) and on the
//! user's, refusals in the change feed, `swarm state doc`, and concurrent compare-and-set
//! writers that lose no update.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::*;
use swarm_testkit::RedisServer;

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
        let mut all = vec!["state", "--namespace", "team"];
        all.extend(args);
        self.swarm(&all)
    }
}

/// Each `count-N` task adds 1 to `counter` ten times with compare-and-set, retrying a lost race.
const COUNT_SH: &str = r#"i=0
while [ $i -lt 10 ]; do
  e=$("$SWARM_BIN" state get counter --json 2>/dev/null) || e='{"version":0,"value":0}'
  v=$(printf '%s' "$e" | sed -n 's/.*"version":\([0-9]*\).*/\1/p')
  n=$(printf '%s' "$e" | sed -n 's/.*"value":\([0-9]*\).*/\1/p')
  if "$SWARM_BIN" state set counter $((n+1)) --if-version "$v" >/dev/null 2>>lost.txt; then i=$((i+1)); fi
done
"#;

fn plan(s: &Setup) {
    s.p.write("count.sh", &COUNT_SH.replace("$SWARM_BIN", SWARM));
    s.p.write(
        "topic.schema.json",
        r#"{"type": "object", "required": ["topic", "findings"],
            "properties": {"topic": {"type": "string"}, "findings": {"type": "array", "items": {"type": "string"}}}}"#,
    );
    let swarm = format!("'{SWARM}'");
    s.p.plan(&format!(
        r#"---
name: team
namespace: team
defaults:
  agent: exec
state:
  strict: true
  keys:
    research/*:
      writers: [research, research-*]
      schema_file: topic.schema.json
    counter:
      writers: [count-*]
      schema: {{type: integer, minimum: 0}}
---

## research: Write the findings
- command: {swarm} state set research/topic '{{"topic": "bees", "findings": ["they dance"]}}' --if-version 0

## research-2: Write findings of the wrong shape
- command: {swarm} state set research/shape '{{"topic": 1, "findings": []}}' 2>shape.err; echo $? >shape.code

## intruder: Write a key it does not own
- command: {swarm} state set research/topic '{{"topic": "x", "findings": []}}' 2>intruder.err; echo $? >intruder.code

## count-1: Count
- command: sh count.sh

## count-2: Count
- command: sh count.sh

## count-3: Count
- command: sh count.sh

## count-4: Count
- command: sh count.sh
"#
    ));
}

fn agents_writes_are_checked_against_schema_and_writers(s: &Setup) {
    plan(s);
    let out = s.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let md = s.p.read(&format!(".swarm/runs/{}/report.md", out.run_id()));
    assert!(md.contains("| `research/topic` | set | 1 | research |"), "{md}");
    assert!(
        md.contains("| `research/topic` | refused | 0 | intruder | task `intruder` may not write"),
        "{md}"
    );
    assert!(md.contains("| `counter` | set | 40 | count-"), "{md}");

    // Wrong shape: exit 2, the JSON path and the rule; nothing written.
    assert_eq!(s.p.read("shape.code").trim(), "2");
    let err = s.p.read("shape.err");
    assert!(err.contains("research/shape") && err.contains("/topic") && err.contains("type"), "{err}");
    s.state(&["get", "research/shape"]).expect_code(1);
    // Not a writer: exit 1, saying who may write it; the owner's value stands.
    assert_eq!(s.p.read("intruder.code").trim(), "1");
    let err = s.p.read("intruder.err");
    assert!(
        err.contains("task `intruder` may not write `research/topic`: only research, research-* may"),
        "{err}"
    );
    let topic = s.state(&["get", "research/topic", "--json"]).expect_code(0).json();
    assert_eq!(topic["value"]["topic"], "bees");
    assert_eq!(topic["version"], 1);

    // Four real processes, ten compare-and-set increments each: no update lost.
    let counter = s.state(&["get", "counter", "--json"]).expect_code(0).json();
    assert_eq!((&counter["value"], &counter["version"]), (&json!(40), &json!(40)), "{counter}");

    // The refusals are in the change feed, with who and why.
    let watch = s.p.spawn(&s.args(&["state", "--namespace", "team", "watch", "--from-start", "--json"]));
    wait_until(Duration::from_secs(20), "the feed shows both refusals", || {
        watch.stdout().lines().filter(|l| l.contains("\"refused\"")).count() == 2
    });
    let refused: Vec<Value> = watch
        .stdout()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|c| c["op"] == "refused")
        .collect();
    let by: Vec<(&str, &str)> =
        refused.iter().map(|c| (c["key"].as_str().unwrap(), c["by"]["task_id"].as_str().unwrap())).collect();
    assert!(
        by.contains(&("research/shape", "research-2")) && by.contains(&("research/topic", "intruder")),
        "{by:?}"
    );
    assert!(refused
        .iter()
        .all(|c| c["reason"].as_str().is_some_and(|r| !r.is_empty()) && c.get("value").is_none()));
    watch.kill9();
}

fn the_users_writes_follow_the_schema_but_not_the_writers(s: &Setup) {
    plan(s);
    s.swarm(&["run", "plan.md"]).expect_code(0);
    // Outside any run the user may write any declared key, in its shape.
    let bad = s.state(&["set", "research/user", r#"{"topic": "t", "findings": [3]}"#]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("/findings/0") && bad.stderr.contains("type"), "{}", bad.dump());
    s.state(&["get", "research/user"]).expect_code(1);
    s.state(&["set", "research/user", r#"{"topic": "t", "findings": ["f"]}"#]).expect_code(0);
    s.state(&["set", "counter", "-1"]).expect_code(2);
    // strict: an undeclared key is refused.
    let undeclared = s.state(&["set", "notes", "1"]);
    assert!(undeclared.expect_code(1).stderr.contains("not declared"), "{}", undeclared.dump());

    // The declaration as markdown, from the plan or from the namespace's latest run.
    let from_plan = s.swarm(&["state", "doc", "--plan", "plan.md"]).expect_code(0).stdout.clone();
    assert!(from_plan.starts_with("# Shared state of `team`"), "{from_plan}");
    for part in [
        "#### `research/*`",
        "writers: research, research-*",
        "schema file: `topic.schema.json`",
        "\"minimum\": 0",
    ] {
        assert!(from_plan.contains(part), "missing {part:?} in\n{from_plan}");
    }
    assert_eq!(s.state(&["doc"]).expect_code(0).stdout, from_plan);
}

fn a_bad_declaration_is_a_plan_error(s: &Setup) {
    plan(s);
    let text = s.p.read("plan.md").replace("{type: integer, minimum: 0}", "{type: integr}");
    s.p.plan(&text);
    let out = s.swarm(&["plan", "check", "plan.md"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("bad JSON Schema for `counter`") && out.stderr.contains("plan.md:14:7"),
        "{}",
        out.dump()
    );
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
    agents_writes_are_checked_against_schema_and_writers,
    the_users_writes_follow_the_schema_but_not_the_writers,
    a_bad_declaration_is_a_plan_error,
);
