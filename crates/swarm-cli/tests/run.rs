//! `swarm run` end to end: scheduling, failure propagation, retries, reports, logs and output.

mod support;

use serde_json::Value;
use support::*;

#[test]
fn diamond_runs_branches_in_parallel_and_writes_the_report() {
    let p = Project::new();
    p.plan(
        "---
name: diamond
concurrency: 4
defaults:
  agent: exec
---

# Diamond

## a: Root
- command: echo root > a.out

## b: Left
- depends: a
- command: {fake} --sleep 1s --print 1

## c: Right
- depends: a
- command: {fake} --sleep 1s --print 2

## d: Join
- depends: b, c
- command: test -f a.out && echo joined > d.out
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let run_id = out.run_id();
    assert!(p.exists("d.out"), "d ran in the plan's directory");

    let st = p.status(&run_id);
    assert_eq!(st["run_id"], run_id.as_str());
    assert_eq!(st["state"], "succeeded");
    for id in ["a", "b", "c", "d"] {
        assert_task(&st, id, "succeeded", None);
        assert_eq!(attempts(&st, id).len(), 1, "{id} ran once");
    }
    let span = |id: &str| {
        let a = &attempts(&st, id)[0];
        (time(&a["started_at"]), time(&a["ended_at"]))
    };
    let (a, b, c, d) = (span("a"), span("b"), span("c"), span("d"));
    assert!(b.0 >= a.1 && c.0 >= a.1, "b and c start after a ended: {a:?} {b:?} {c:?}");
    assert!(b.0 < c.1 && c.0 < b.1, "b and c overlap in time: b={b:?} c={c:?}");
    assert!(d.0 >= b.1 && d.0 >= c.1, "d starts after both b and c ended: b={b:?} c={c:?} d={d:?}");

    // report.json: the docs/contract.md §4 fields, the same content as `swarm status --json`.
    let report = p.report(&run_id);
    assert!(p.exists(&format!(".swarm/runs/{run_id}/report.md")));
    assert_eq!(report["run_id"], run_id.as_str());
    assert_eq!(report["plan"], "diamond");
    assert_eq!(report["state"], "succeeded");
    let (started, ended) = (time(&report["started_at"]), time(&report["ended_at"]));
    assert!(started <= ended);
    let tasks = report["tasks"].as_array().expect("tasks array");
    assert_eq!(tasks.iter().map(|t| t["id"].as_str().unwrap()).collect::<Vec<_>>(), ["a", "b", "c", "d"]);
    for t in tasks {
        assert_eq!(t["state"], "succeeded");
        assert!(t.get("reason").is_some_and(Value::is_null), "reason is present and null: {t}");
        let att = &t["attempts"][0];
        for key in [
            "n",
            "agent",
            "model",
            "layer",
            "exit_code",
            "started_at",
            "ended_at",
            "tokens_in",
            "tokens_out",
            "cost_usd",
            "fallback_reason",
        ] {
            assert!(att.get(key).is_some(), "attempt field `{key}` missing: {att}");
        }
        assert_eq!(att["n"], 1);
        assert_eq!(att["agent"], "exec");
        assert_eq!(att["exit_code"], 0);
        assert!(time(&att["started_at"]) >= started && time(&att["ended_at"]) <= ended);
    }
    assert_eq!(report["tasks"], st["tasks"], "report.json and `swarm status --json` agree");

    let runs = p.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["run_id"], run_id.as_str());
    assert_eq!(runs[0]["state"], "succeeded");
}

#[test]
fn a_failure_blocks_its_dependents_but_not_independent_branches() {
    let p = Project::new();
    p.plan(
        "---
defaults:
  agent: exec
---

## a: Fails
- command: {fake} --stderr boom --exit 3

## b: Child of a
- depends: a
- command: touch b.ran

## c: Grandchild of a
- depends: b
- command: touch c.ran

## x: Independent
- command: {fake} --sleep 300ms

## y: After x
- depends: x
- command: touch y.ran
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    let st = p.status(&out.run_id());
    assert_eq!(st["state"], "failed");
    assert_task(&st, "a", "failed", Some("exit_code"));
    assert_eq!(attempts(&st, "a")[0]["exit_code"], 3);
    for id in ["b", "c"] {
        assert_task(&st, id, "blocked", Some("dependency_failed"));
        assert!(detail(&st, id).contains("`a`"), "{id}'s detail names a: {}", detail(&st, id));
        assert!(attempts(&st, id).is_empty(), "{id} never started");
    }
    assert!(!p.exists("b.ran") && !p.exists("c.ran"));
    assert_task(&st, "x", "succeeded", None);
    assert_task(&st, "y", "succeeded", None);
    assert!(p.exists("y.ran"));
    assert!(out.stdout.contains("a: exit_code"), "the summary names the failure\n{}", out.dump());
}

#[test]
fn fail_fast_cancels_tasks_not_yet_started() {
    let p = Project::new();
    p.plan(
        "---
defaults:
  agent: exec
---

## a: Fails
- command: exit 3

## b: Child of a
- depends: a
- command: true

## x: Independent 1
- command: touch x.ran

## y: Independent 2
- command: touch y.ran
",
    );
    let out = p.swarm(&["run", "plan.md", "--fail-fast", "--concurrency", "1"]);
    out.expect_code(1);
    let st = p.status(&out.run_id());
    assert_eq!(st["state"], "failed");
    assert_task(&st, "a", "failed", Some("exit_code"));
    assert_task(&st, "b", "blocked", Some("dependency_failed"));
    for id in ["x", "y"] {
        assert_task(&st, id, "cancelled", Some("cancelled"));
        assert!(attempts(&st, id).is_empty());
    }
    assert!(!p.exists("x.ran") && !p.exists("y.ran"));
}

#[test]
fn retries_succeed_on_the_third_attempt() {
    let p = Project::new();
    p.plan(
        "## flaky: Fails twice
- agent: exec
- retries: 2
- command: {fake} --fail-first 2 counter --print 1
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let st = p.status(&out.run_id());
    assert_task(&st, "flaky", "succeeded", None);
    let att = attempts(&st, "flaky");
    assert_eq!(att.len(), 3, "{st:#}");
    for (i, a) in att.iter().enumerate() {
        assert_eq!(a["n"], i + 1);
    }
    for a in &att[..2] {
        assert_eq!(a["reason"], "exit_code");
        assert_eq!(a["exit_code"], 1);
    }
    assert!(att[2]["reason"].is_null());
    assert_eq!(att[2]["exit_code"], 0);
    assert!(time(&att[1]["started_at"]) >= time(&att[0]["ended_at"]));
    assert_eq!(p.read("counter").trim(), "3");
}

#[test]
fn retries_exhausted_fail_the_task() {
    let p = Project::new();
    p.plan(
        "## flaky: Fails twice, one retry
- agent: exec
- retries: 1
- command: {fake} --fail-first 2 counter
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    let st = p.status(&out.run_id());
    assert_task(&st, "flaky", "failed", Some("exit_code"));
    let att = attempts(&st, "flaky");
    assert_eq!(att.len(), 2, "{st:#}");
    assert!(att.iter().all(|a| a["reason"] == "exit_code"));
    assert_eq!(p.read("counter").trim(), "2");
}

#[test]
fn a_missing_custom_agent_binary_is_a_spawn_error() {
    let p = Project::new();
    p.write(
        "swarm.toml",
        &format!("{FAST_CONFIG}\n[agents.ghost]\ncommand = \"/nonexistent/binary {{prompt}}\"\n"),
    );
    p.plan(
        "## haunt: Uses a custom agent that is not installed
- agent: ghost

Say boo.

## fine: Independent
- agent: exec
- command: true
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    let st = p.status(&out.run_id());
    assert_task(&st, "haunt", "failed", Some("spawn_error"));
    let d = detail(&st, "haunt");
    assert!(d.contains("/nonexistent/binary"), "detail names the program: {d}");
    assert!(
        d.contains("No such file or directory") || d.contains("os error 2"),
        "detail has the OS error: {d}"
    );
    assert_eq!(attempts(&st, "haunt")[0]["reason"], "spawn_error");
    assert_task(&st, "fine", "succeeded", None);
}

#[test]
fn a_failing_check_fails_the_task() {
    let p = Project::new();
    p.plan(
        "---
defaults:
  agent: exec
---

## good: Check passes
- command: echo hello > good.txt
- check: grep -q hello good.txt

## bad: Check fails
- command: echo hello > bad.txt
- check: grep -q goodbye bad.txt
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    let st = p.status(&out.run_id());
    assert_task(&st, "good", "succeeded", None);
    assert_task(&st, "bad", "failed", Some("check_failed"));
    assert!(detail(&st, "bad").contains("grep -q goodbye"), "{}", detail(&st, "bad"));
}

#[test]
fn git_root_holds_the_store_and_tasks_run_in_the_plan_directory() {
    let p = Project::git();
    p.write("sub/plan.md", "## where: Where am I\n- agent: exec\n- command: pwd > where.txt\n");
    // Run from a subdirectory of the repository: the store still goes to the git root.
    let out = p.swarm_in("sub", &["run", "plan.md"]);
    out.expect_code(0);
    let run_id = out.run_id();
    assert!(on_redis() || p.exists(".swarm/state.db"), "store at the git root");
    assert!(!p.exists("sub/.swarm"), "no store in the subdirectory");
    assert!(p.exists(&format!(".swarm/runs/{run_id}/report.json")));
    let sub = std::fs::canonicalize(p.file("sub")).unwrap();
    assert_eq!(p.read("sub/where.txt").trim(), sub.to_str().unwrap());
    let st = p.status(&run_id);
    let root_name = p.path().file_name().unwrap().to_str().unwrap();
    assert_eq!(st["namespace"], root_name, "namespace defaults to the git root's name");
    assert_eq!(st["plan"], "plan", "plan name defaults to the file stem");
}

#[test]
fn exec_tasks_get_the_prompt_and_swarm_environment() {
    let p = Project::new();
    p.plan(
        "# Brief

Shared brief text.

## envy: Show the environment
- agent: exec
- command: cat > stdin.txt; env | grep '^SWARM_' | sort > env.txt

Task prompt text.
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let run_id = out.run_id();
    let stdin = p.read("stdin.txt");
    assert!(stdin.contains("Shared brief text.") && stdin.contains("Task prompt text."), "stdin: {stdin}");
    let env = p.read("env.txt");
    for want in [format!("SWARM_RUN_ID={run_id}"), "SWARM_TASK_ID=envy".into(), "SWARM_ATTEMPT=1".into()] {
        assert!(env.lines().any(|l| l == want), "missing {want} in:\n{env}");
    }
    for key in ["SWARM_STORE=", "SWARM_NAMESPACE=", "SWARM_COMPLETION_FILE=", "SWARM_PROMPT="] {
        assert!(env.contains(key), "missing {key} in:\n{env}");
    }
}

#[test]
fn logs_prints_the_attempt_output() {
    let p = Project::new();
    p.plan(
        "## talk: Talks
- agent: exec
- retries: 1
- command: {fake} --print 3 --stderr to-stderr --fail-first 1 counter
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let run_id = out.run_id();
    let logs = p.swarm(&["logs", &run_id, "talk"]);
    logs.expect_code(0);
    for want in ["line 1", "line 2", "line 3", "to-stderr"] {
        assert!(logs.stdout.contains(want), "latest attempt's log lacks `{want}`\n{}", logs.dump());
    }
    assert!(!logs.stdout.contains("failing on purpose"), "the latest attempt is the 2nd\n{}", logs.dump());
    let first = p.swarm(&["logs", &run_id, "talk", "--attempt", "1"]);
    first.expect_code(0);
    assert!(first.stdout.contains("failing on purpose (1 of 1)"), "{}", first.dump());
    // `latest` and a unique prefix name the run too.
    let latest = p.swarm(&["logs", "latest", "talk"]);
    assert_eq!(latest.expect_code(0).stdout, logs.stdout);
    let prefix = &run_id[..run_id.len() - 2];
    assert_eq!(p.swarm(&["logs", prefix, "talk"]).expect_code(0).stdout, logs.stdout);
    // Unknown task: invalid input.
    let bad = p.swarm(&["logs", &run_id, "nope"]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("talk"), "lists the tasks\n{}", bad.dump());
}

#[test]
fn json_output_is_only_json_event_lines() {
    let p = Project::new();
    p.plan(
        "---
defaults:
  agent: exec
---

## one: First
- command: {fake} --print 2

## two: Second
- depends: one
- command: {fake} --garbage --exit 1
",
    );
    let out = p.swarm(&["run", "plan.md", "--json"]);
    out.expect_code(1);
    let events: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}\n{}", out.dump()))
        })
        .collect();
    assert!(events.len() >= 6, "{}", out.dump());
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_else(|| panic!("event without `kind`: {e}")))
        .collect();
    assert_eq!(kinds.first(), Some(&"run_started"));
    assert_eq!(kinds.last(), Some(&"run_finished"));
    let run_id = events[0]["run_id"].as_str().expect("run_id").to_string();
    assert!(events.iter().all(|e| e["run_id"] == run_id.as_str()));
    let last = events.last().unwrap();
    assert_eq!(last["state"], "failed");
    assert_eq!(last["succeeded"], 1);
    assert_eq!(last["failed"], 1);
    assert!(
        events.iter().any(|e| e["kind"] == "output" && e["task"] == "one" && e["line"] == "line 2"),
        "output lines are events\n{}",
        out.dump()
    );
    assert!(events
        .iter()
        .any(|e| e["kind"] == "task_state" && e["task"] == "two" && e["reason"] == "exit_code"));
    assert_eq!(p.status(&run_id)["state"], "failed");
}

#[test]
fn garbage_and_spam_output_do_not_break_the_run() {
    let p = Project::new();
    p.plan(
        "---
defaults:
  agent: exec
---

## garbage: Invalid UTF-8 and truncated JSON
- command: {fake} --garbage --print 1

## spam: Output as fast as possible
- command: {fake} --spam 1s

## after: Runs after both
- depends: garbage, spam
- command: echo fine
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let run_id = out.run_id();
    let st = p.status(&run_id);
    for id in ["garbage", "spam", "after"] {
        assert_task(&st, id, "succeeded", None);
    }
    let log =
        |id: &str| std::fs::read(attempts(&st, id)[0]["log"].as_str().expect("log path")).expect("log file");
    let garbage = log("garbage");
    assert!(garbage.windows(2).any(|w| w == b"\xff\xfe"), "raw bytes kept in the log");
    assert!(String::from_utf8_lossy(&garbage).contains("{\"type\":\"step_finish\",\"tokens\":{\"inp"));
    assert!(String::from_utf8_lossy(&garbage).contains("line 1"));
    // Every spam line is in the log, in order, none lost or torn.
    let spam = String::from_utf8(log("spam")).expect("spam log is UTF-8");
    let lines: Vec<&str> = spam.lines().collect();
    assert!(lines.len() > 100, "only {} spam lines", lines.len());
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("spam {} lorem ipsum dolor sit amet", i + 1), "log line {}", i + 1);
    }
    let logs = p.swarm(&["logs", &run_id, "garbage"]);
    logs.expect_code(0);
    assert!(logs.stdout.contains("not utf8"));
}

/// The largest number of attempts running at the same instant.
fn max_overlap(st: &Value) -> usize {
    let mut edges: Vec<(chrono::DateTime<chrono::Utc>, i32)> = Vec::new();
    for t in st["tasks"].as_array().unwrap() {
        for a in t["attempts"].as_array().unwrap() {
            edges.push((time(&a["started_at"]), 1));
            edges.push((time(&a["ended_at"]), -1));
        }
    }
    edges.sort(); // at equal instants, an end (-1) sorts before a start (+1)
    let (mut now, mut max) = (0, 0);
    for (_, d) in edges {
        now += d;
        max = max.max(now);
    }
    max as usize
}

#[test]
fn concurrency_limits_are_respected() {
    let p = Project::new();
    let mut plan = String::from("---\nconcurrency: 2\ndefaults:\n  agent: exec\n---\n\n");
    for i in 1..=5 {
        plan.push_str(&format!("## t{i}: Sleeper\n- command: {{fake}} --sleep 300ms\n\n"));
    }
    p.plan(&plan);
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let st = p.status(&out.run_id());
    assert_eq!(max_overlap(&st), 2, "plan concurrency 2\n{st:#}");
    // --concurrency overrides the plan.
    let out = p.swarm(&["run", "plan.md", "--concurrency", "1"]);
    out.expect_code(0);
    assert_eq!(max_overlap(&p.status(&out.run_id())), 1);
    // A per-agent limit from swarm.toml.
    p.write("swarm.toml", &format!("{FAST_CONFIG}\n[agents.exec]\nconcurrency = 1\n"));
    let out = p.swarm(&["run", "plan.md", "--concurrency", "4"]);
    out.expect_code(0);
    assert_eq!(max_overlap(&p.status(&out.run_id())), 1, "agents.exec.concurrency = 1");
}

#[test]
fn concurrent_runs_share_one_store() {
    let p = Project::new();
    let mut plan = String::from("---\ndefaults:\n  agent: exec\n---\n\n");
    for i in 1..=15 {
        plan.push_str(&format!("## t{i}: Printer\n- command: {{fake}} --print 20\n\n"));
    }
    p.plan(&plan);
    // Create the store first (the next test races its very first opening).
    p.swarm(&["state", "set", "created", "true"]).expect_code(0);
    assert!(p.runs().is_empty());
    let runs: Vec<Bg> = (0..3).map(|_| p.spawn(&["run", "plan.md", "--concurrency", "4"])).collect();
    let mut ids = Vec::new();
    for r in runs {
        let out = r.wait(std::time::Duration::from_secs(60));
        out.expect_code(0);
        ids.push(out.run_id());
    }
    let listed = p.runs();
    assert_eq!(listed.len(), 3);
    for id in &ids {
        assert!(
            listed.iter().any(|r| r["run_id"] == id.as_str() && r["state"] == "succeeded"),
            "{id} in {listed:?}"
        );
        assert_eq!(p.status(id)["counts"]["succeeded"], 15);
    }
}

#[test]
fn long_lines_are_kept_whole_in_the_log() {
    let p = Project::new();
    p.plan(
        "## big: One 1 MB line, then one without a newline
- agent: exec
- command: head -c 1000000 /dev/zero | tr '\\0' x; echo; printf 'no newline at the end'
",
    );
    let out = p.swarm(&["run", "plan.md", "--json"]);
    out.expect_code(0);
    let events: Vec<Value> =
        out.stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let outputs: Vec<&Value> = events.iter().filter(|e| e["kind"] == "output").collect();
    assert!(outputs.iter().all(|e| e["line"].as_str().unwrap().len() <= 64 * 1024), "events are bounded");
    assert_eq!(outputs.last().unwrap()["line"], "no newline at the end");
    let logs = p.swarm(&["logs", "latest", "big"]);
    logs.expect_code(0);
    let want = format!("{}\nno newline at the end\n", "x".repeat(1_000_000));
    assert!(
        logs.stdout == want,
        "log holds {} bytes and {} newlines",
        logs.stdout.len(),
        logs.stdout.matches('\n').count()
    );
}

#[test]
fn concurrent_first_use_of_a_new_store() {
    for _ in 0..30 {
        let p = Project::new();
        // `state set` creates the store; reads never do.
        let cmds: Vec<Bg> = (0..8).map(|i| p.spawn(&["state", "set", &format!("k{i}"), "1"])).collect();
        for c in cmds {
            c.wait(std::time::Duration::from_secs(30)).expect_code(0);
        }
    }
}

/// Hundreds of quick tasks: children exit (SIGCHLD) while the store is being written, batches
/// are large and frequent. On Redis this once turned interrupted reads into double writes.
#[test]
fn hundreds_of_quick_tasks_all_succeed_with_every_transition_stored() {
    let p = Project::new();
    let mut plan = String::from("---\nconcurrency: 8\ndefaults:\n  agent: exec\n---\n");
    for i in 0..400 {
        plan.push_str(&format!("## t{i}: T\n- command: true\n\n"));
    }
    p.plan(&plan);
    let out = p.swarm(&["run", "plan.md", "--no-progress"]);
    out.expect_code(0);
    let run_id = out.run_id();
    let st = p.status(&run_id);
    assert_eq!(st["counts"]["succeeded"], 400, "{}", out.dump());
    let events = p.swarm(&["events", &run_id, "--json"]).expect_code(0).stdout.clone();
    let states = events.lines().filter(|l| l.contains("\"kind\":\"task_state\"")).count();
    assert_eq!(states, 400 * 3, "ready, running, succeeded for every task");
}

#[test]
fn an_exec_task_gets_a_200k_prompt_whole_on_stdin_and_a_bounded_copy_in_its_environment() {
    let p = Project::new();
    let prompt: String = (0..12_000).map(|i| format!("line {i}: \"q\" $x `y` \\z\n")).collect();
    assert!(prompt.len() > 200 * 1024);
    let plan = serde_json::json!({ "tasks": [ { "id": "big", "agent": "exec", "prompt": prompt,
        "command": "cat > stdin.txt; printf %s \"$SWARM_PROMPT\" > env.txt" } ] });
    p.write("plan.json", &plan.to_string());
    p.swarm(&["run", "plan.json"]).expect_code(0);
    let stdin = p.read("stdin.txt");
    assert!(stdin == prompt, "stdin carries the whole prompt: {} of {} bytes", stdin.len(), prompt.len());
    let env = p.read("env.txt");
    assert!(env.len() <= 32 * 1024, "SWARM_PROMPT is bounded: {} bytes", env.len());
    assert!(prompt.starts_with(env.split("\n[… truncated").next().unwrap()));
    assert!(env.contains("the whole prompt is on stdin"), "{}", &env[env.len() - 100..]);
}

/// A failed command says why in the run's last lines: the last lines of its stderr follow the
/// exit (issue 15: `exit 1` was labelled `crashed` and nothing else).
#[test]
fn a_failed_command_shows_the_last_lines_of_its_stderr() {
    let p = Project::new();
    p.plan("## broken: Fails\n- agent: exec\n- command: echo starting; echo 'first problem' >&2; echo 'cannot open config.toml' >&2; exit 1\n");
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    let st = p.status(&out.run_id());
    let why = detail(&st, "broken");
    assert!(why.starts_with("exited with code 1") && why.contains("cannot open config.toml"), "{why}");
    assert!(why.contains("first problem") && !why.contains("starting"), "stderr only: {why}");
    let summary = out.stdout.lines().find(|l| l.contains("failed  broken")).unwrap_or_default();
    assert!(summary.contains("cannot open config.toml"), "{}", out.dump());
}

/// The paths a run prints at its end exist (issue 15): a task that printed nothing has no log
/// file, and a report that could not be written is not pointed at.
#[test]
fn the_paths_a_run_prints_at_its_end_exist() {
    let p = Project::new();
    p.plan("---\ndefaults:\n  agent: exec\n---\n\n## quiet: Fails silently\n- command: exit 1\n\n## block: Keeps the report from being written\n- command: mkdir -p .swarm/runs/$SWARM_RUN_ID/report.json\n");
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    for line in out.stdout.lines().chain(out.stderr.lines()) {
        for (prefix, end) in [("(log: ", ")"), ("report: ", "")] {
            let Some(at) = line.find(prefix) else { continue };
            let path = line[at + prefix.len()..].trim_end_matches(end);
            if path.starts_with('/') {
                assert!(
                    std::path::Path::new(path).is_file(),
                    "printed but not written: {path}\n{}",
                    out.dump()
                );
            }
        }
    }
    assert!(out.stdout.contains("report: not written"), "{}", out.dump());
}
