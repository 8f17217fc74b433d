//! Controlling a live run from other processes: status, cancel, Ctrl-C, resume after a crash.

mod support;

use nix::sys::signal::Signal;
use std::time::Duration;
use support::*;

const LONG_PLAN: &str = "---
defaults:
  agent: exec
---

## long: Sleeps for a minute
- command: exec {fake} --pidfile long.pid --sleep 60s

## after: Depends on long
- depends: long
- command: touch after.ran
";

fn running(st: &serde_json::Value, id: &str) -> bool {
    state(st, id) == "running"
}

/// Starts `LONG_PLAN` (as a terminal's foreground job when `job`), waits until `long` runs, and
/// returns the run, its id and the agent's pid.
fn start_long(p: &Project, job: bool) -> (Bg, String, u32) {
    p.plan(LONG_PLAN);
    let mut run = if job { p.spawn_job(&["run", "plan.md"]) } else { p.spawn(&["run", "plan.md"]) };
    let run_id = run.run_id();
    wait_status(p, &run_id, "long is running", |st| running(st, "long"));
    let agent = p.pid("long.pid");
    (run, run_id, agent)
}

#[test]
fn status_and_runs_from_another_process_while_the_run_is_live() {
    let p = Project::new();
    p.plan(
        "---
defaults:
  agent: exec
---

## gate: Waits for the test's go signal
- command: echo waiting; while [ ! -f go ]; do sleep 0.02; done

## next: After the gate
- depends: gate
- command: true
",
    );
    let mut run = p.spawn(&["run", "plan.md"]);
    let run_id = run.run_id();
    // (A task turns `running` a moment before its attempt record lands in the store.)
    let st = wait_status(&p, &run_id, "gate's attempt is running", |st| {
        running(st, "gate") && !attempts(st, "gate").is_empty()
    });
    assert_eq!(st["run_id"], run_id.as_str());
    assert_eq!(st["state"], "running");
    assert!(st["ended_at"].is_null());
    assert_eq!(st["counts"]["running"], 1);
    assert_eq!(state(&st, "next"), "pending");
    let a = &attempts(&st, "gate")[0];
    assert!(a["ended_at"].is_null() && a["started_at"].is_string(), "{a}");

    // Without a run id: the latest run.
    assert_eq!(p.status("latest")["run_id"], run_id.as_str());
    let human = p.swarm(&["status"]);
    human.expect_code(0);
    for want in [run_id.as_str(), "gate", "next", "running", "pending"] {
        assert!(human.stdout.contains(want), "`swarm status` lacks `{want}`\n{}", human.dump());
    }
    assert!(!human.stdout.contains("warning"), "the orchestrator is alive\n{}", human.dump());
    let runs = p.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["run_id"], run_id.as_str());
    assert_eq!(runs[0]["state"], "running");
    let human_runs = p.swarm(&["runs"]);
    assert!(human_runs.expect_code(0).stdout.contains(&run_id));

    // `swarm logs -f` follows the live attempt.
    let logs = p.spawn(&["logs", &run_id, "gate", "-f"]);
    p.write("go", "");
    run.wait(Duration::from_secs(20)).expect_code(0);
    let logs = logs.wait(Duration::from_secs(10));
    assert!(logs.expect_code(0).stdout.contains("waiting"), "{}", logs.dump());
    let st = p.status(&run_id);
    assert_eq!(st["state"], "succeeded");
    assert_task(&st, "next", "succeeded", None);
}

#[test]
fn cancel_from_another_process_stops_the_run() {
    let p = Project::new();
    let (run, run_id, agent) = start_long(&p, false);
    assert!(pid_alive(agent));

    let cancel = p.swarm(&["cancel", &run_id]);
    cancel.expect_code(0);
    assert!(cancel.stdout.contains("cancelled"), "{}", cancel.dump());
    let out = run.wait(Duration::from_secs(20));
    out.expect_code(130);
    assert_gone(agent, "the cancelled agent");
    let st = p.status(&run_id);
    assert_eq!(st["state"], "cancelled");
    assert_task(&st, "long", "cancelled", Some("cancelled"));
    assert_task(&st, "after", "cancelled", Some("cancelled"));
    assert!(attempts(&st, "after").is_empty());
    assert!(!p.exists("after.ran"));
    assert!(
        p.exists(&format!(".swarm/runs/{run_id}/report.json")),
        "a cancelled run still writes its report"
    );
    // Cancelling a finished run is harmless.
    let again = p.swarm(&["cancel", &run_id]);
    assert!(again.expect_code(0).stdout.contains("already finished"), "{}", again.dump());
}

#[test]
fn ctrl_c_cancels_the_run() {
    let p = Project::new();
    let (run, run_id, agent) = start_long(&p, true);

    // As a terminal does: SIGINT to the whole foreground job (agents have their own groups).
    run.signal_group(Signal::SIGINT);
    let out = run.wait(Duration::from_secs(20));
    out.expect_code(130);
    assert!(out.stdout.contains("cancel requested (ctrl-c)"), "{}", out.dump());
    assert_gone(agent, "the agent after Ctrl-C");
    let st = p.status(&run_id);
    assert_eq!(st["state"], "cancelled");
    assert_task(&st, "long", "cancelled", Some("cancelled"));
    assert_task(&st, "after", "cancelled", Some("cancelled"));
}

#[test]
fn a_second_ctrl_c_kills_at_once() {
    let p = Project::new();
    // A long grace period: only the second Ctrl-C can end the run quickly.
    p.write("swarm.toml", "[run]\ngrace = \"60s\"\n");
    p.plan(
        "## stubborn: Ignores SIGTERM
- agent: exec
- command: exec {fake} --ignore-term --pidfile stubborn.pid --sleep 60s
",
    );
    let mut run = p.spawn(&["run", "plan.md"]);
    let run_id = run.run_id();
    wait_status(&p, &run_id, "stubborn is running", |st| running(st, "stubborn"));
    let agent = p.pid("stubborn.pid");

    run.signal(Signal::SIGINT);
    wait_until(Duration::from_secs(10), "swarm reports the cancel request", || {
        run.stdout().contains("cancel requested")
    });
    assert!(pid_alive(agent), "SIGTERM is ignored: the agent is still in its grace period");
    run.signal(Signal::SIGINT);
    let out = run.wait(Duration::from_secs(20));
    out.expect_code(130);
    assert!(
        out.elapsed < Duration::from_secs(30),
        "did not wait for the 60 s grace period: {:?}",
        out.elapsed
    );
    assert_gone(agent, "the agent after the second Ctrl-C");
    assert_task(&p.status(&run_id), "stubborn", "cancelled", Some("cancelled"));
}

#[test]
fn resume_after_the_orchestrator_is_killed() {
    let p = Project::new();
    p.plan(
        "---
defaults:
  agent: exec
---

## a: Quick
- command: echo a >> a.count

## b: Hangs on its first attempt only
- depends: a
- command: if [ -f marker ]; then echo done; else touch marker; exec {fake} --pidfile b.pid --sleep 60s; fi

## c: After b
- depends: b
- command: touch c.ran
",
    );
    let mut run = p.spawn(&["run", "plan.md"]);
    let run_id = run.run_id();
    let old_b = p.pid("b.pid");
    // Crash only once the store knows b's process group (what `resume` stops).
    wait_status(&p, &run_id, "b's attempt is recorded", |st| {
        running(st, "b") && attempts(st, "b").first().is_some_and(|a| a["pid"] == old_b)
    });

    run.kill9();
    assert!(pid_alive(old_b), "b's process group outlives its orchestrator");
    let st = p.status(&run_id);
    assert_eq!(st["state"], "running");
    assert_task(&st, "a", "succeeded", None);
    assert_eq!(state(&st, "b"), "running");
    assert_eq!(state(&st, "c"), "pending");
    let human = p.swarm(&["status", &run_id]);
    human.expect_code(0);
    assert!(
        human.stdout.contains("warning")
            && human.stdout.contains("is gone")
            && human.stdout.contains("swarm resume"),
        "status warns that the orchestrator is gone\n{}",
        human.dump()
    );

    let resumed = p.swarm(&["resume", &run_id]);
    resumed.expect_code(0);
    assert_eq!(resumed.run_id(), run_id, "resume prints the same run id");
    assert_gone(old_b, "b's orphaned first attempt");
    let st = p.status(&run_id);
    assert_eq!(st["state"], "succeeded");
    for id in ["a", "b", "c"] {
        assert_task(&st, id, "succeeded", None);
    }
    assert_eq!(attempts(&st, "a").len(), 1, "a is never run again");
    assert_eq!(p.read("a.count"), "a\n");
    let b = attempts(&st, "b");
    assert_eq!(b.len(), 2, "{st:#}");
    assert_eq!(b[0]["reason"], "lease_lost");
    assert!(b[0]["ended_at"].is_string());
    assert_eq!(b[1]["n"], 2);
    assert!(b[1]["reason"].is_null());
    assert!(p.exists("c.ran"));
    assert!(p.report(&run_id)["state"] == "succeeded");
    // A finished run cannot be resumed into doing anything again.
    let again = p.swarm(&["resume", &run_id]);
    again.expect_code(0);
    assert_eq!(attempts(&p.status(&run_id), "b").len(), 2);
}

#[test]
fn resume_refuses_a_run_that_is_still_driven() {
    let p = Project::new();
    let (run, run_id, agent) = start_long(&p, false);
    let resume = p.swarm(&["resume", &run_id]);
    resume.expect_code(2);
    assert!(resume.stderr.contains("still driven"), "{}", resume.dump());
    assert!(pid_alive(agent), "the refused resume left the live attempt alone");
    run.signal(Signal::SIGTERM);
    run.wait(Duration::from_secs(20)).expect_code(130);
    assert_gone(agent, "the agent after SIGTERM");
}

#[test]
fn cancel_of_an_orphaned_run_stops_its_leftover_attempts() {
    let p = Project::new();
    p.plan(LONG_PLAN);
    let mut run = p.spawn(&["run", "plan.md"]);
    let run_id = run.run_id();
    let agent = p.pid("long.pid");
    wait_status(&p, &run_id, "long's attempt is recorded", |st| {
        attempts(st, "long").first().is_some_and(|a| a["pid"] == agent)
    });
    run.kill9();
    assert!(pid_alive(agent));
    let cancel = p.swarm(&["cancel", &run_id]);
    cancel.expect_code(0);
    assert_gone(agent, "the orphaned agent");
    let st = p.status(&run_id);
    assert_eq!(st["state"], "cancelled");
    assert_task(&st, "long", "cancelled", Some("cancelled"));
    assert_task(&st, "after", "cancelled", Some("cancelled"));
}

#[test]
fn resume_stops_a_check_left_running_by_a_killed_orchestrator() {
    let p = Project::new();
    p.plan(
        "## checked: Its check hangs on the first attempt only
- agent: exec
- command: echo built
- check: if [ -f marker ]; then true; else touch marker; exec {fake} --pidfile check.pid --sleep 60s; fi
",
    );
    let mut run = p.spawn(&["run", "plan.md"]);
    let run_id = run.run_id();
    let check = p.pid("check.pid");
    // The check's process group is recorded on the attempt (as the agent's was) before we crash.
    wait_status(&p, &run_id, "the check's group is recorded", |st| {
        attempts(st, "checked").first().is_some_and(|a| a["pid"] == check)
    });
    run.kill9();
    assert!(pid_alive(check), "the check outlives its orchestrator");
    p.swarm(&["resume", &run_id]).expect_code(0);
    assert_gone(check, "the interrupted attempt's check");
    let st = p.status(&run_id);
    assert_task(&st, "checked", "succeeded", None);
    assert_eq!(attempts(&st, "checked").len(), 2);
}

#[test]
fn cancel_stops_a_check_left_running_by_a_killed_orchestrator() {
    let p = Project::new();
    p.plan(
        "## checked: Its check hangs
- agent: exec
- command: echo built
- check: exec {fake} --pidfile check.pid --sleep 60s
",
    );
    let mut run = p.spawn(&["run", "plan.md"]);
    let run_id = run.run_id();
    let check = p.pid("check.pid");
    // The check's process group is recorded on the attempt (as the agent's was) before we crash.
    wait_status(&p, &run_id, "the check's group is recorded", |st| {
        attempts(st, "checked").first().is_some_and(|a| a["pid"] == check)
    });
    run.kill9();
    p.swarm(&["cancel", &run_id]).expect_code(0);
    assert_gone(check, "the orphaned check");
    assert_task(&p.status(&run_id), "checked", "cancelled", Some("cancelled"));
}

#[test]
fn sigint_to_the_orchestrator_alone_cancels_too() {
    let p = Project::new();
    p.plan(LONG_PLAN);
    let run = p.spawn(&["run", "plan.md", "--json"]);
    let agent = p.pid("long.pid");
    // Signal only once the run is under way (its events are out), as a user would.
    wait_until(Duration::from_secs(10), "the attempt_started event is out", || {
        run.stdout().contains("\"kind\":\"attempt_started\"")
    });
    run.signal(Signal::SIGINT);
    let out = run.wait(Duration::from_secs(20));
    out.expect_code(130);
    assert_gone(agent, "the agent");
    let last: serde_json::Value =
        serde_json::from_str(out.stdout.lines().last().expect("events")).expect("JSON");
    assert_eq!((last["kind"].as_str(), last["state"].as_str()), (Some("run_finished"), Some("cancelled")));
    assert!(out.stdout.contains("\"kind\":\"cancel_requested\""), "{}", out.dump());
}

#[test]
fn resume_continues_a_cancelled_run() {
    let p = Project::new();
    p.plan(
        "---
defaults:
  agent: exec
---

## first: Quick
- command: echo first >> first.count

## gate: Hangs until `go` exists
- depends: first
- command: echo gate >> gate.count; [ -f go ] || exec {fake} --pidfile gate.pid --sleep 60s

## last: After the gate
- depends: gate
- command: touch last.ran
",
    );
    let mut run = p.spawn(&["run", "plan.md"]);
    let run_id = run.run_id();
    wait_status(&p, &run_id, "gate is running", |st| running(st, "gate"));
    p.pid("gate.pid");
    p.swarm(&["cancel", &run_id]).expect_code(0);
    run.wait(Duration::from_secs(20)).expect_code(130);
    assert_eq!(p.status(&run_id)["state"], "cancelled");

    p.write("go", "");
    let out = p.swarm(&["resume", &run_id]);
    out.expect_code(0);
    let st = p.status(&run_id);
    assert_eq!(st["state"], "succeeded");
    assert_eq!(attempts(&st, "first").len(), 1, "succeeded tasks are never run again");
    assert_eq!(p.read("first.count"), "first\n");
    assert_eq!(attempts(&st, "gate").len(), 2);
    assert_eq!(attempts(&st, "gate")[0]["reason"], "cancelled");
    assert!(p.exists("last.ran"));
}

#[test]
fn resume_retry_failed_reruns_failed_and_blocked_tasks_only() {
    let p = Project::new();
    p.plan(
        "---
defaults:
  agent: exec
---

## flaky: Fails until `go` exists
- command: echo try >> flaky.count; test -f go

## child: Blocked by flaky
- depends: flaky
- command: echo child >> child.count

## solid: Independent
- command: echo solid >> solid.count
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    let run_id = out.run_id();
    assert_task(&p.status(&run_id), "child", "blocked", Some("dependency_failed"));

    // A plain resume of a finished run does not retry failures.
    p.write("go", "");
    p.swarm(&["resume", &run_id]).expect_code(1);
    assert_eq!(p.read("flaky.count"), "try\n");

    let out = p.swarm(&["resume", &run_id, "--retry-failed"]);
    out.expect_code(0);
    let st = p.status(&run_id);
    assert_eq!(st["state"], "succeeded");
    assert_eq!(attempts(&st, "flaky").len(), 2);
    assert_eq!(attempts(&st, "child").len(), 1);
    assert_eq!(attempts(&st, "solid").len(), 1, "the succeeded task is kept");
    assert_eq!(p.read("solid.count"), "solid\n");
    assert_eq!(p.read("child.count"), "child\n");
}

#[test]
fn logs_follow_moves_on_to_the_next_attempt() {
    let p = Project::new();
    p.plan(
        "## twice: Fails once the test says so, then succeeds
- agent: exec
- retries: 1
- command: echo \"attempt $SWARM_ATTEMPT\"; [ \"$SWARM_ATTEMPT\" = 2 ] || { while [ ! -f go ]; do sleep 0.02; done; exit 1; }
",
    );
    let mut run = p.spawn(&["run", "plan.md"]);
    let run_id = run.run_id();
    wait_status(&p, &run_id, "attempt 1 is running", |st| running(st, "twice"));
    let follow = p.spawn(&["logs", &run_id, "twice", "--follow"]);
    wait_until(Duration::from_secs(10), "`logs -f` shows attempt 1", || {
        follow.stdout().contains("attempt 1")
    });
    p.write("go", "");
    run.wait(Duration::from_secs(20)).expect_code(0);
    let out = follow.wait(Duration::from_secs(10));
    out.expect_code(0);
    let (one, two) = (out.stdout.find("attempt 1"), out.stdout.find("attempt 2"));
    assert!(one.is_some() && two.is_some() && one < two, "{}", out.dump());
}

#[test]
fn sighup_cancels_like_sigterm() {
    let p = Project::new();
    let (run, run_id, agent) = start_long(&p, false);
    run.signal(Signal::SIGHUP);
    run.wait(Duration::from_secs(20)).expect_code(130);
    assert_gone(agent, "the agent after SIGHUP");
    assert_eq!(p.status(&run_id)["state"], "cancelled");
}

#[test]
fn two_resumes_at_once_one_takes_the_run_and_the_other_changes_nothing() {
    let p = Project::new();
    p.plan(
        "## stubborn: Ignores SIGTERM and hangs on its first attempt only
- agent: exec
- command: echo run >> runs.count; if [ -f marker ]; then echo done; else touch marker; exec {fake} --ignore-term --pidfile agent.pid --sleep 60s; fi
",
    );
    let mut run = p.spawn(&["run", "plan.md"]);
    let run_id = run.run_id();
    let agent = p.pid("agent.pid");
    wait_status(&p, &run_id, "the attempt's group is recorded", |st| {
        attempts(st, "stubborn").first().is_some_and(|a| a["pid"] == agent)
    });
    run.kill9();
    let (a, b) = (p.spawn(&["resume", &run_id]), p.spawn(&["resume", &run_id]));
    let (a, b) = (a.wait(Duration::from_secs(30)), b.wait(Duration::from_secs(30)));
    let mut codes = [a.code(), b.code()];
    codes.sort();
    assert_eq!(codes, [Some(0), Some(2)], "one resumes, one is refused\n{}\n{}", a.dump(), b.dump());
    let loser = if a.code() == Some(2) { &a } else { &b };
    assert!(
        loser.stderr.contains("taken over by another swarm") || loser.stderr.contains("still driven"),
        "{}",
        loser.dump()
    );
    assert_gone(agent, "the interrupted attempt");
    assert_eq!(p.read("runs.count"), "run\nrun\n", "the task ran once more, not twice");
    let st = p.status(&run_id);
    assert_task(&st, "stubborn", "succeeded", None);
    assert_eq!(attempts(&st, "stubborn").len(), 2, "{st:#}");
    assert_eq!(p.report(&run_id)["state"], "succeeded", "the loser did not overwrite the report");
    let events = p.swarm(&["events", &run_id, "--json"]).stdout;
    assert!(!events.contains("write_rejected"), "the loser tried no write:\n{events}");
}
