//! Nothing outlives a run: processes an attempt detaches from its process group (a double-forked
//! daemon, a `setsid` child) end with the attempt; `resume` and `cancel` never signal a stored
//! pid that is no longer the attempt's.

mod support;

use std::time::Duration;
use support::*;

#[test]
fn a_double_forked_daemon_and_a_setsid_child_end_with_their_attempt() {
    let p = Project::new();
    p.plan(
        "## detach: Leaves a daemon behind and exits 0
- agent: exec
- command: setsid sh -c 'sleep 300' >/dev/null 2>&1 & echo $! > setsid.pid; {fake} --ignore-term --daemon daemon.pid --print 1

## after: Runs once detach is over
- agent: exec
- depends: detach
- command: echo after
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let run_id = out.run_id();
    let (daemon, setsid) = (p.pid("daemon.pid"), p.pid("setsid.pid"));
    assert_gone(daemon, "the double-forked daemon that ignores SIGTERM");
    assert_gone(setsid, "the setsid child");
    assert_no_process_of(&run_id);
    let report = p.report(&run_id);
    let warnings = attempts(&report, "detach")[0]["warnings"].to_string();
    assert!(warnings.contains("outside its process group"), "the attempt says so: {warnings}");
    let log = p.read(&format!(".swarm/runs/{run_id}/logs/detach.1.log"));
    assert!(log.contains("needed SIGKILL"), "{log}");
}

#[test]
fn a_cancelled_run_takes_its_daemons_along() {
    let p = Project::new();
    p.plan(
        "## hold: Starts a daemon, then works for a minute
- agent: exec
- command: {fake} --daemon daemon.pid --pidfile agent.pid --sleep 60s
",
    );
    let mut run = p.spawn(&["run", "plan.md"]);
    let run_id = run.run_id();
    let daemon = p.pid("daemon.pid");
    p.pid("agent.pid");
    assert!(pid_alive(daemon));
    p.swarm(&["cancel", &run_id]).expect_code(0);
    run.wait(Duration::from_secs(20)).expect_code(130);
    assert_gone(daemon, "the daemon of the cancelled attempt");
    assert_no_process_of(&run_id);
}

#[test]
fn resume_and_cancel_of_a_dead_run_end_its_detached_daemons_too() {
    let p = Project::new();
    p.plan(
        "## hold: Starts a daemon on its first attempt, then works for a minute
- agent: exec
- command: if [ -f marker ]; then echo done; else touch marker; exec {fake} --daemon daemon.pid --pidfile agent.pid --sleep 60s; fi
",
    );
    let mut run = p.spawn(&["run", "plan.md"]);
    let run_id = run.run_id();
    let (daemon, agent) = (p.pid("daemon.pid"), p.pid("agent.pid"));
    wait_status(&p, &run_id, "the attempt's group is recorded", |st| {
        attempts(st, "hold").first().is_some_and(|a| a["pid"] == agent)
    });
    run.kill9();
    assert!(pid_alive(daemon) && pid_alive(agent), "both outlive the killed orchestrator");
    p.swarm(&["resume", &run_id]).expect_code(0);
    assert_gone(agent, "the interrupted attempt");
    assert_gone(daemon, "its detached daemon");
    assert_task(&p.status(&run_id), "hold", "succeeded", None);
}

/// A pid recorded for an attempt may belong to an unrelated process by the time `resume` or
/// `cancel` runs (pids are reused): it must be left alone.
fn unrelated_process_with_the_attempts_pid(p: &Project, plan: &str) -> (String, std::process::Child) {
    use std::os::unix::process::CommandExt;
    p.plan(plan);
    let mut run = p.spawn(&["run", "plan.md"]);
    let run_id = run.run_id();
    let agent = p.pid("agent.pid");
    wait_status(p, &run_id, "the attempt's group is recorded", |st| {
        attempts(st, "hold").first().is_some_and(|a| a["pid"] == agent)
    });
    run.kill9();
    signal(agent, nix::sys::signal::Signal::SIGKILL);
    assert_gone(agent, "the attempt, ended by hand");
    // The attempt's pid now names a stranger, leader of its own group like an attempt was.
    let stranger = std::process::Command::new("sleep").arg("60").process_group(0).spawn().unwrap();
    let store = p.store();
    let mut tasks = store.tasks(&run_id).unwrap();
    tasks[0].attempts[0].pid = Some(stranger.id());
    let batch = swarm_store::Batch { tasks: tasks.clone(), ..Default::default() };
    store.apply(&run_id, &batch).unwrap();
    (run_id, stranger)
}

#[test]
fn resume_leaves_a_process_that_reused_the_attempts_pid_alone() {
    let p = Project::new();
    let (run_id, mut stranger) = unrelated_process_with_the_attempts_pid(
        &p,
        "## hold: Hangs on its first attempt only
- agent: exec
- command: if [ -f marker ]; then echo done; else touch marker; exec {fake} --pidfile agent.pid --sleep 60s; fi
",
    );
    p.swarm(&["resume", &run_id]).expect_code(0);
    assert!(stranger.try_wait().unwrap().is_none(), "resume killed an unrelated process");
    assert_task(&p.status(&run_id), "hold", "succeeded", None);
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}

#[test]
fn cancel_leaves_a_process_that_reused_the_attempts_pid_alone() {
    let p = Project::new();
    let (run_id, mut stranger) = unrelated_process_with_the_attempts_pid(
        &p,
        "## hold: Works for a minute
- agent: exec
- command: exec {fake} --pidfile agent.pid --sleep 60s
",
    );
    p.swarm(&["cancel", &run_id]).expect_code(0);
    assert!(stranger.try_wait().unwrap().is_none(), "cancel killed an unrelated process");
    assert_eq!(p.status(&run_id)["state"], "cancelled");
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}
