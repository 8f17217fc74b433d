//! Process supervision through the real binary: timeouts, stalls and leftover processes.

mod support;

use std::time::Duration;
use support::*;

#[test]
fn timeout_kills_an_agent_that_ignores_sigterm_and_its_grandchild() {
    let p = Project::new();
    p.plan(
        "## stubborn: Ignores SIGTERM and forks
- agent: exec
- timeout: 1s
- command: exec {fake} --ignore-term --grandchild gc.pid --pidfile self.pid --sleep 60s
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    let st = p.status(&out.run_id());
    assert_task(&st, "stubborn", "failed", Some("timeout"));
    let a = &attempts(&st, "stubborn")[0];
    assert_eq!(a["reason"], "timeout");
    assert!(a["detail"].as_str().unwrap_or("").contains("timed out"), "{a}");
    // timeout 1s + grace 1s, then SIGKILL: well under the 60 s the agent wanted.
    assert!(out.elapsed < Duration::from_secs(15), "took {:?}", out.elapsed);
    assert_gone(p.pid("self.pid"), "the agent");
    assert_gone(p.pid("gc.pid"), "the agent's grandchild");
}

#[test]
fn a_timeout_in_a_shell_kills_the_whole_group() {
    let p = Project::new();
    p.plan(
        "## shell: A shell with a child
- agent: exec
- timeout: 1s
- command: {fake} --pidfile inner.pid --sleep 60s; echo unreachable
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    let st = p.status(&out.run_id());
    assert_task(&st, "shell", "failed", Some("timeout"));
    assert_gone(p.pid("inner.pid"), "the shell's child");
}

#[test]
fn processes_left_behind_by_a_finished_task_are_stopped() {
    let p = Project::new();
    p.plan(
        "---
defaults:
  agent: exec
---

## holds-pipe: Background sleeper keeps stdout open
- command: sleep 100 & echo $! > bg.pid; echo leaving

## detached: Background sleeper with its output redirected
- command: sleep 100 > /dev/null 2>&1 & echo $! > bg2.pid

## forked: fake-agent's grandchild outlives it
- command: {fake} --grandchild gc.pid
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    assert!(out.elapsed < Duration::from_secs(15), "took {:?}", out.elapsed);
    let st = p.status(&out.run_id());
    for id in ["holds-pipe", "detached", "forked"] {
        assert_task(&st, id, "succeeded", None);
    }
    assert_gone(p.pid("bg.pid"), "background sleep holding the pipe");
    assert_gone(p.pid("bg2.pid"), "background sleep with redirected output");
    assert_gone(p.pid("gc.pid"), "fake-agent's grandchild");
}

#[test]
fn a_silent_task_is_stalled() {
    let p = Project::new();
    p.plan(
        "## quiet: Says one thing, then nothing
- agent: exec
- stall: 1s
- command: echo hello; exec {fake} --pidfile quiet.pid --sleep 30s
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    assert!(
        out.elapsed < Duration::from_secs(8),
        "stall detected within a few seconds, took {:?}",
        out.elapsed
    );
    let st = p.status(&out.run_id());
    assert_task(&st, "quiet", "failed", Some("stalled"));
    assert!(detail(&st, "quiet").contains("no output"), "{}", detail(&st, "quiet"));
    assert_gone(p.pid("quiet.pid"), "the stalled agent");
    let logs = p.swarm(&["logs", "latest", "quiet"]);
    assert!(logs.expect_code(0).stdout.contains("hello"));
}

#[test]
fn steady_output_keeps_a_task_from_stalling() {
    let p = Project::new();
    p.plan(
        "## chatty: Prints every 200 ms for 2 s
- agent: exec
- stall: 1s
- command: for i in 1 2 3 4 5 6 7 8 9 10; do echo tick $i; sleep 0.2; done
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let st = p.status(&out.run_id());
    assert_task(&st, "chatty", "succeeded", None);
    let a = &attempts(&st, "chatty")[0];
    let ran = time(&a["ended_at"]) - time(&a["started_at"]);
    assert!(ran.num_milliseconds() >= 1500, "it ran past the stall limit: {ran}");
}

#[test]
fn stderr_output_also_counts_against_stalls() {
    let p = Project::new();
    p.plan(
        "## errs: Prints to stderr only
- agent: exec
- stall: 1s
- command: for i in 1 2 3 4 5 6 7 8; do echo tick $i >&2; sleep 0.2; done
",
    );
    p.swarm(&["run", "plan.md"]).expect_code(0);
}

#[test]
fn output_without_newlines_counts_as_activity() {
    let p = Project::new();
    p.plan(
        "## dots: A progress indicator that never ends its line until the end
- agent: exec
- stall: 1s
- command: for i in 1 2 3 4 5 6 7 8 9 10; do printf .; sleep 0.2; done; echo done
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    let st = p.status(&out.run_id());
    assert_task(&st, "dots", "succeeded", None);
    out.expect_code(0);
    let logs = p.swarm(&["logs", "latest", "dots"]);
    assert_eq!(logs.expect_code(0).stdout, "..........done\n");
}

/// Runs `swarm ARGS` as a child subreaper, like swarm running as PID 1 in a container: orphans
/// of its agents are reparented to it and stay zombies (nobody reaps them).
fn swarm_as_subreaper(p: &Project, args: &[&str]) -> Out {
    use std::os::unix::process::CommandExt;
    let mut cmd = p.command(args);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| nix::sys::prctl::set_child_subreaper(true).map_err(std::io::Error::from));
    }
    p.spawn_cmd(cmd).wait(CMD_TIMEOUT)
}

#[test]
fn zombie_leftovers_do_not_hold_up_the_end_of_an_attempt() {
    let p = Project::new();
    // A long grace period: an attempt that waited for it would take 30 s to end.
    p.write("swarm.toml", "[run]\ngrace = \"30s\"\n");
    p.plan(
        "---
defaults:
  agent: exec
---

## leaves: Leaves a sleeper behind
- command: sleep 100 > /dev/null 2>&1 & echo $! > bg.pid

## stalls: Stalled, and its shell's child is left a zombie
- stall: 1s
- command: echo hi; sleep 100; echo unreachable
",
    );
    let out = swarm_as_subreaper(&p, &["run", "plan.md"]);
    out.expect_code(1);
    assert!(
        out.elapsed < Duration::from_secs(15),
        "an attempt waited for the grace period: {:?}\n{}",
        out.elapsed,
        out.dump()
    );
    let st = p.status("latest");
    assert_task(&st, "leaves", "succeeded", None);
    assert_task(&st, "stalls", "failed", Some("stalled"));
    assert_gone(p.pid("bg.pid"), "the leftover sleeper");
}

#[test]
fn a_timed_out_attempt_is_retried() {
    let p = Project::new();
    p.plan(
        "## slow-once: Hangs on its first attempt only
- agent: exec
- timeout: 1s
- retries: 1
- command: if [ -f marker ]; then echo quick; else touch marker; exec {fake} --pidfile first.pid --sleep 60s; fi
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let st = p.status(&out.run_id());
    assert_task(&st, "slow-once", "succeeded", None);
    let att = attempts(&st, "slow-once");
    assert_eq!(att.len(), 2);
    assert_eq!(att[0]["reason"], "timeout");
    assert!(att[1]["reason"].is_null());
    assert_gone(p.pid("first.pid"), "the timed-out first attempt");
}
