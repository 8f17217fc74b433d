//! Nothing slow holds up a run's loop: a hanging worktree setup command, a hanging agent
//! pre-step or a hanging hook never delays a cancel from another terminal or the lease's
//! renewal, and whatever hangs is stopped with the run.

mod support;

use std::time::{Duration, Instant};
use support::*;

/// A git project with one commit (worktrees need a HEAD) and `config` added to swarm.toml;
/// `{dir}` in it is the project's path.
fn project(config: &str) -> Project {
    let p = Project::git();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(p.path())
            .output()
            .unwrap();
        assert!(ok.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&ok.stderr));
    };
    p.write("README", "hi\n");
    p.write(".gitignore", ".swarm/\n*.pid\n");
    git(&["add", "."]);
    git(&["commit", "-qm", "init"]);
    let dir = p.path().display().to_string();
    p.write("swarm.toml", &format!("{FAST_CONFIG}{}", config.replace("{dir}", &dir)));
    p
}

/// Starts `plan.md`, waits for `pidfile` (what hangs), cancels from another process, and
/// returns how long the run took to end after the cancel, its output and the hanging pid.
fn cancel_while_hanging(p: &Project, pidfile: &str) -> (Duration, Out, u32) {
    let mut run = p.spawn(&["run", "plan.md"]);
    let run_id = run.run_id();
    let hanging = p.pid(pidfile);
    let asked = Instant::now();
    p.swarm(&["cancel", &run_id]);
    let out = run.wait(Duration::from_secs(30));
    let took = asked.elapsed();
    assert_no_process_of(&run_id);
    (took, out, hanging)
}

#[test]
fn a_hanging_worktree_setup_never_holds_up_a_cancel() {
    let p = project("[worktree]\nsetup = \"echo $$ > {dir}/setup.pid; exec sleep 60\"\n");
    p.plan("## tree: Works in its own worktree\n- agent: exec\n- workdir: worktree\n- command: echo hi\n");
    let (took, out, setup) = cancel_while_hanging(&p, "setup.pid");
    out.expect_code(130);
    assert!(took < Duration::from_secs(3), "the cancel took {took:?}\n{}", out.dump());
    assert_gone(setup, "the setup command");
    let st = p.status(&out.run_id());
    assert_task(&st, "tree", "cancelled", Some("cancelled"));
}

#[test]
fn a_failing_or_slow_worktree_setup_is_setup_failed() {
    let p = project("[worktree]\nsetup = \"echo preparing; exit 3\"\n");
    p.plan("## tree: Works in its own worktree\n- agent: exec\n- workdir: worktree\n- command: echo hi\n");
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    let st = p.status(&out.run_id());
    assert_task(&st, "tree", "failed", Some("setup_failed"));
    assert!(detail(&st, "tree").contains("preparing"), "the setup's output tail: {}", detail(&st, "tree"));
    let p = project("[worktree]\nsetup = \"sleep 30\"\nsetup_timeout = \"1s\"\n");
    p.plan("## tree: Works in its own worktree\n- agent: exec\n- workdir: worktree\n- command: echo hi\n");
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    let st = p.status(&out.run_id());
    assert_task(&st, "tree", "failed", Some("setup_failed"));
    assert!(detail(&st, "tree").contains("timed out after 1s"), "{}", detail(&st, "tree"));
}

#[test]
fn a_hanging_agent_pre_step_never_holds_up_a_cancel_and_times_out() {
    let p = project("[agents.exec]\nsetup = \"echo $$ > {dir}/pre.pid; exec sleep 60\"\n");
    p.plan("## a: An exec task whose agent has a pre-step\n- agent: exec\n- command: echo hi\n");
    let (took, out, pre) = cancel_while_hanging(&p, "pre.pid");
    out.expect_code(130);
    assert!(took < Duration::from_secs(3), "the cancel took {took:?}\n{}", out.dump());
    assert_gone(pre, "the pre-step");
    let p = project("[agents.exec]\nsetup = \"sleep 30\"\n[worktree]\nsetup_timeout = \"1s\"\n");
    p.plan("## a: An exec task whose agent has a pre-step\n- agent: exec\n- command: echo hi\n");
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    let st = p.status(&out.run_id());
    assert_task(&st, "a", "failed", Some("spawn_error"));
    assert!(detail(&st, "a").contains("timed out after 1s"), "{}", detail(&st, "a"));
}

const HOOKED_PLAN: &str = "---
defaults:
  agent: exec
---

## quick: Ends at once; its end hook hangs
- command: echo quick

## long: Works for a minute
- command: exec {fake} --pidfile long.pid --sleep 60s
";

#[test]
fn a_cancel_while_a_task_end_hook_hangs_ends_the_run_and_the_hook_at_once() {
    let p =
        project("[hooks]\non_task_end = \"echo $$ > {dir}/hook.pid; exec sleep 300\"\ntimeout = \"5m\"\n");
    p.plan(HOOKED_PLAN);
    let (took, out, hook) = cancel_while_hanging(&p, "hook.pid");
    out.expect_code(130);
    assert!(took < Duration::from_secs(3), "the run lived {took:?} after the cancel\n{}", out.dump());
    assert_gone(hook, "the hanging hook");
    assert!(
        out.stdout.contains("the run was cancelled") || out.stderr.contains("the run was cancelled"),
        "the hook's stop is reported\n{}",
        out.dump()
    );
}

#[test]
fn the_lease_is_renewed_while_a_hook_hangs() {
    let p =
        project("[hooks]\non_task_end = \"echo $$ > {dir}/hook.pid; exec sleep 300\"\ntimeout = \"5m\"\n");
    p.plan(HOOKED_PLAN);
    let mut run = p.spawn(&["run", "plan.md"]);
    let run_id = run.run_id();
    p.pid("hook.pid");
    let store = p.store();
    let beat = || store.run(&run_id).unwrap().unwrap().owner.unwrap().heartbeat_at;
    let first = beat();
    wait_until(Duration::from_secs(15), "the heartbeat moves on while the hook hangs", || {
        beat() - first >= chrono::Duration::seconds(4)
    });
    let resume = p.swarm(&["resume", &run_id]);
    resume.expect_code(2);
    assert!(resume.stderr.contains("still driven"), "{}", resume.dump());
    run.signal(nix::sys::signal::Signal::SIGTERM);
    run.wait(Duration::from_secs(20)).expect_code(130);
}
