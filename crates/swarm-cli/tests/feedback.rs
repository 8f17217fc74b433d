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
