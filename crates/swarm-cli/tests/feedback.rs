//! The feedback loop through the real binary: every outcome path of an attempt, decided from the
//! exit code, the agent's completion report, the task's check and what git saw change; and the
//! retry prompt that tells the next attempt why the last one failed.
//!
//! `exec` tasks stand in for AI agents here: `[agents.exec] require_report = true` makes a
//! missing report fatal, exactly as for the AI agents (the default there).

mod support;

use serde_json::Value;
use support::*;

const REQUIRE: &str =
    "[run]\nretry_backoff = \"100ms\"\ngrace = \"1s\"\n[agents.exec]\nrequire_report = true\n";

fn project(plan: &str) -> Project {
    let p = Project::git();
    p.write("swarm.toml", REQUIRE);
    p.plan(plan);
    p
}

fn run(p: &Project) -> (Out, Value) {
    let out = p.swarm(&["run", "plan.md", "--no-progress"]);
    let run_id = out.run_id();
    let st = p.status(&run_id);
    (out, st)
}

#[test]
fn a_missing_report_fails_with_no_report() {
    let p = project("## t: T\n- agent: exec\n- command: echo working\n");
    let (out, st) = run(&p);
    out.expect_code(1);
    assert_task(&st, "t", "failed", Some("no_report"));
    assert!(detail(&st, "t").contains("completion.json"), "{}", detail(&st, "t"));
}

#[test]
fn exec_tasks_need_no_report_by_default() {
    let p = Project::new();
    p.plan("## t: T\n- agent: exec\n- command: echo working\n");
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
}

#[test]
fn an_invalid_report_lists_every_schema_error() {
    let p = project(
        "## t: T\n- agent: exec\n- command: printf '%s' '{\"schema_version\": 1, \"status\": \"finished\", \"files_changed\": \"a.txt\"}' > \"$SWARM_COMPLETION_FILE\"\n",
    );
    let (out, st) = run(&p);
    out.expect_code(1);
    assert_task(&st, "t", "failed", Some("invalid_report"));
    let d = detail(&st, "t");
    for needle in ["run_id", "task_id", "summary", "finished", "files_changed"] {
        assert!(d.contains(needle), "the schema error about {needle} is listed: {d}");
    }
}

#[test]
fn a_blocked_report_fails_with_the_agents_blockers() {
    let p = project(
        "## t: T\n- agent: exec\n- command: swarm report --status blocked --summary 'need credentials' --blocker 'no API key for the billing service'\n",
    );
    let (out, st) = run(&p);
    out.expect_code(1);
    assert_task(&st, "t", "failed", Some("reported_failure"));
    let d = detail(&st, "t");
    assert!(d.contains("blocked") && d.contains("no API key for the billing service"), "{d}");
    let completion = &attempts(&st, "t")[0]["completion"];
    assert_eq!(completion["status"], "blocked", "the report is kept on the attempt");
}

#[test]
fn a_done_report_with_a_failing_check_fails_with_check_failed_and_its_output() {
    let p = project(
        "## t: T\n- agent: exec\n- command: swarm report --status done --summary 'all good, trust me'\n- check: echo 'assertion failed: 2 + 2 == 5'; exit 1\n",
    );
    let (out, st) = run(&p);
    out.expect_code(1);
    assert_task(&st, "t", "failed", Some("check_failed"));
    let a = &attempts(&st, "t")[0];
    assert!(a["check_output"].as_str().unwrap_or("").contains("assertion failed: 2 + 2 == 5"), "{a}");
}

#[test]
fn a_nonzero_exit_wins_over_a_done_report() {
    let p =
        project("## t: T\n- agent: exec\n- command: swarm report --status done --summary done && exit 4\n");
    let (out, st) = run(&p);
    out.expect_code(1);
    assert_task(&st, "t", "failed", Some("exit_code"));
    assert_eq!(attempts(&st, "t")[0]["exit_code"], 4);
}

#[test]
fn success_needs_all_evidence_to_agree_and_mismatched_claims_are_warnings() {
    // One at a time: the three share a directory, and each must see only its own changes.
    let p = project(
        "---\nconcurrency: 1\n---\n## ok: Changes what it says\n- agent: exec\n- command: echo hi > made.txt && swarm report --status done --summary 'made it' --file made.txt\n- check: test -f made.txt\n\n\
         ## quiet: Changes nothing\n- agent: exec\n- command: swarm report --status done --summary 'nothing to do'\n\n\
         ## fibber: Claims what it did not do\n- agent: exec\n- command: echo x > other.txt && swarm report --status done --summary 'did it' --file claimed.txt\n",
    );
    let (out, st) = run(&p);
    out.expect_code(0);
    for id in ["ok", "quiet", "fibber"] {
        assert_task(&st, id, "succeeded", None);
    }
    let warnings = |id: &str| {
        attempts(&st, id)[0]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(warnings("ok").is_empty(), "{:?}", warnings("ok"));
    assert!(warnings("quiet").iter().any(|w| w.contains("changed no files")), "{:?}", warnings("quiet"));
    let f = warnings("fibber");
    assert!(f.iter().any(|w| w.contains("other.txt") && w.contains("not in files_changed")), "{f:?}");
    assert!(f.iter().any(|w| w.contains("claimed.txt") && w.contains("unchanged")), "{f:?}");
}

#[test]
fn a_retry_prompt_carries_the_previous_failure() {
    // Attempt 1 fails its check; attempt 2 saves the prompt it got on stdin and passes.
    let p = project(
        "## t: T\n- agent: exec\n- retries: 1\n\
         - command: cat > prompt.$SWARM_ATTEMPT.txt; if [ \"$SWARM_ATTEMPT\" = 2 ]; then touch fixed; fi; swarm report --status done --summary tried\n\
         - check: test -f fixed || { echo 'expected file `fixed` is missing'; exit 1; }\n\nWrite the file.\n",
    );
    let (out, st) = run(&p);
    out.expect_code(0);
    assert_eq!(attempts(&st, "t").len(), 2);
    let first = p.read("prompt.1.txt");
    assert!(!first.contains("previous attempt"), "the first attempt has no feedback:\n{first}");
    assert!(first.contains("Write the file."), "{first}");
    let second = p.read("prompt.2.txt");
    assert!(second.contains("previous attempt (#1) failed"), "{second}");
    assert!(second.contains("check_failed"), "{second}");
    assert!(
        second.contains("expected file `fixed` is missing"),
        "the check output tail is included:\n{second}"
    );
    assert!(second.contains("SWARM_COMPLETION_FILE"), "the report footer is there:\n{second}");
}

#[test]
fn the_file_mirror_matches_the_store() {
    let p = project(
        "## good: Reports done\n- agent: exec\n- command: swarm report --status done --summary 'all done'\n\n\
         ## bad: Reports nothing\n- agent: exec\n- command: true\n",
    );
    let (out, st) = run(&p);
    out.expect_code(1);
    let run_id = st["run_id"].as_str().unwrap().to_string();
    let dir = format!("plans/agent-shared/{run_id}");
    for id in ["good", "bad"] {
        let mirrored: Value = serde_json::from_str(&p.read(&format!("{dir}/{id}/status.json"))).unwrap();
        assert_eq!(&mirrored, task(&st, id), "status.json of {id} is the stored task");
    }
    let completion: Value = serde_json::from_str(&p.read(&format!("{dir}/good/completion.json"))).unwrap();
    assert_eq!(
        completion,
        attempts(&st, "good")[0]["completion"],
        "completion.json is the one the agent wrote"
    );
    assert!(!p.exists(&format!("{dir}/bad/completion.json")));
    let run_status: Value = serde_json::from_str(&p.read(&format!("{dir}/status.json"))).unwrap();
    assert_eq!(run_status, st, "the run's status.json is its report");

    // The off switch.
    p.write("swarm.toml", &format!("{REQUIRE}[feedback]\nmirror = false\n"));
    let (_, st2) = run(&p);
    let run2 = st2["run_id"].as_str().unwrap();
    assert!(!p.exists(&format!("plans/agent-shared/{run2}")), "mirror off writes nothing");
}

#[test]
fn hooks_get_the_task_and_run_json_and_a_hanging_hook_is_cut_off() {
    let p = project(
        "## fine: Fine\n- agent: exec\n- command: swarm report --status done --summary ok\n\n\
         ## broken: Broken\n- agent: exec\n- command: exit 3\n",
    );
    p.write(
        "swarm.toml",
        &format!(
            "{REQUIRE}[hooks]\non_task_end = \"cat > \\\"ended-$(printf %s \\\"$SWARM_HOOK_PAYLOAD\\\" | sed -n 's/.*\\\"id\\\":\\\"\\\\([a-z]*\\\\)\\\".*/\\\\1/p' | head -c 20).json\\\"\"\n\
             on_failure = \"cat > failure.json\"\non_run_end = \"cat > run-end.json; sleep 60\"\ntimeout = \"500ms\"\n"
        ),
    );
    let started = std::time::Instant::now();
    let out = p.swarm(&["run", "plan.md", "--no-progress"]);
    out.expect_code(1);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "a hanging hook does not hold the run");
    assert!(out.stdout.contains("timed out"), "the cut-off hook is reported:\n{}", out.dump());
    let failure: Value = serde_json::from_str(&p.read("failure.json")).unwrap();
    assert_eq!(failure["task"]["id"], "broken");
    assert_eq!(failure["task"]["state"], "failed");
    assert_eq!(failure["task"]["reason"], "exit_code");
    assert_eq!(failure["run_id"], out.run_id());
    let run_end: Value = serde_json::from_str(&p.read("run-end.json")).unwrap();
    assert_eq!(run_end["run_id"], out.run_id());
    assert_eq!(run_end["state"], "failed");
    assert_eq!(run_end["tasks"].as_array().unwrap().len(), 2);
    let ended: Vec<String> = std::fs::read_dir(p.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("ended-"))
        .collect();
    assert_eq!(ended.len(), 2, "one on_task_end per task: {ended:?}");
}

#[test]
fn a_check_has_its_own_timeout() {
    let p = project(
        "## t: T\n- agent: exec\n- command: swarm report --status done --summary ok\n- check: sleep 30\n",
    );
    p.write("swarm.toml", &REQUIRE.replace("[run]\n", "[run]\ncheck_timeout = \"500ms\"\n"));
    let (out, st) = run(&p);
    out.expect_code(1);
    assert_task(&st, "t", "failed", Some("check_failed"));
    assert!(detail(&st, "t").contains("timed out after 500ms"), "{}", detail(&st, "t"));
}
