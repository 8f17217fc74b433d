//! Workers on many hosts (docs/contract.md §11), with real `swarm worker` processes on a real
//! redis-server: a run's attempts go to the workers and the report says who ran them; a worker
//! killed mid-attempt loses it (and its agent) to another after the lease; a stopped one that
//! wakes up past its lease has its late writes refused; cancel and resume reach attempts on
//! workers; SIGTERM drains, a second hands back.

mod support;

use nix::sys::signal::Signal;
use serde_json::Value;
use std::time::{Duration, Instant};
use support::*;

fn queue(p: &mut Project) -> swarm_store::RedisStore {
    swarm_store::RedisStore::open(&p.redis().url()).expect("redis")
}

#[test]
fn a_run_with_workers_runs_every_attempt_on_them_and_says_who_ran_what() {
    let p = Project::on_own_redis();
    let mut plan = String::from("---\nname: spread\ndefaults:\n  agent: exec\n---\n\n# spread\n");
    for i in 1..=6 {
        plan.push_str(&format!(
            "\n## t{i}: task {i}\n- command: mkdir -p out && echo \"$SWARM_TASK_ID ran\" > out/t{i}.txt && sleep 1 && echo t{i} done\n"
        ));
    }
    p.plan(&plan);
    let w1 = worker(&p, "w1", 2, &[]);
    let w2 = worker(&p, "w2", 2, &["--labels", "zone=a,gpu=no"]);
    let out = p.swarm(&["run", "plan.md", "--workers"]);
    out.expect_code(0);
    let report = p.report(&out.run_id());
    let mut by = std::collections::BTreeSet::new();
    for i in 1..=6 {
        let id = format!("t{i}");
        assert_task(&report, &id, "succeeded", None);
        assert_eq!(p.read(&format!("out/{id}.txt")).trim(), format!("{id} ran"));
        let a = &attempts(&report, &id)[0];
        by.insert(a["worker"].as_str().expect("worker").to_string());
        assert_eq!(a["host"], swarm_runner::util::hostname().as_str());
        assert!(a["pid"].is_null(), "a pid of another host is never kept: {a}");
    }
    assert_eq!(by.into_iter().collect::<Vec<_>>(), ["w1", "w2"], "both workers ran attempts");
    // `swarm status` says where each task ran.
    let status = p.swarm(&["status", &out.run_id()]).expect_code(0).stdout.clone();
    let host = swarm_runner::util::hostname();
    assert!(status.contains("WORKER") && status.contains(&format!("w1@{host}")), "{status}");
    // The log of a remote attempt reads like any other.
    let logs = p.swarm(&["logs", &out.run_id(), "t3"]);
    assert!(logs.expect_code(0).stdout.contains("t3 done"), "{}", logs.dump());
    let listed = p.swarm(&["workers", "--json"]);
    let rows: Value = serde_json::from_str(&listed.expect_code(0).stdout).expect("json");
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.iter().map(|r| r["name"].as_str().unwrap()).collect::<Vec<_>>(), ["w1", "w2"]);
    for r in rows {
        assert_eq!(
            (r["alive"].as_bool(), r["capacity"].as_u64(), r["state"].as_str()),
            (Some(true), Some(2), Some("running"))
        );
        assert!(r["agents"].as_array().unwrap().iter().any(|a| a["name"] == "exec"), "{r}");
        assert_eq!(r["host"], swarm_runner::util::hostname().as_str());
    }
    assert_eq!(rows[1]["labels"], serde_json::json!({ "zone": "a", "gpu": "no" }));
    let table = p.swarm(&["workers"]);
    assert!(table.expect_code(0).stdout.contains("w2"), "{}", table.dump());
    // A worker that stops says so.
    w1.signal(Signal::SIGTERM);
    w1.wait(Duration::from_secs(20)).expect_code(0);
    let rows: Value = serde_json::from_str(&p.swarm(&["workers", "--json"]).stdout).unwrap();
    assert_eq!((rows[0]["state"].as_str(), rows[0]["alive"].as_bool()), (Some("stopped"), Some(false)));
    drop(w2);
}

#[test]
fn a_killed_workers_attempt_is_taken_over_after_the_lease_and_its_agent_dies_with_it() {
    let mut p = Project::on_own_redis();
    p.plan(
        "---\nname: kill\n---\n\n# kill\n\n## slow: a slow task\n- agent: exec\n\
         - command: if [ -e first ]; then echo second run; else touch first; echo $$ > pid.txt; sleep 30; fi\n",
    );
    let w1 = worker(&p, "w1", 1, &[]);
    let run = p.spawn(&["run", "plan.md", "--workers"]);
    let agent = p.pid("pid.txt");
    let killed = Instant::now();
    w1.kill9();
    // The guard ends the agent of a worker that died, whatever killed it.
    wait_until(Duration::from_secs(10), "the dead worker's agent is gone", || !pid_alive(agent));
    let w2 = worker(&p, "w2", 1, &[]);
    let out = run.wait(Duration::from_secs(60));
    out.expect_code(0);
    let took = said(&w2, "took");
    assert_eq!(took.len(), 1, "{}", w2.stdout());
    assert_eq!(took[0]["fence"], 2, "a new owner, a new fencing token");
    let reclaim = killed.elapsed();
    assert!(reclaim < Duration::from_secs(2 + 2 + 10), "taken over in {reclaim:?}");
    let report = p.report(&out.run_id());
    assert_task(&report, "slow", "succeeded", None);
    let a = attempts(&report, "slow");
    assert_eq!(a.len(), 1, "the same attempt, run again by its new owner: {a:?}");
    assert_eq!(a[0]["worker"], "w2");
    let events = p.swarm(&["events", &out.run_id(), "--json"]);
    assert!(events.stdout.contains("lease_lost"), "the takeover is said:\n{}", events.stdout);
    let q = queue(&mut p);
    assert_eq!(q.workers(&p.namespace()).unwrap().len(), 2);
}

#[test]
fn a_worker_stopped_past_its_lease_has_its_late_writes_refused() {
    let mut p = Project::on_own_redis();
    p.plan(
        "---\nname: zombie\n---\n\n# zombie\n\n## slow: a slow task\n- agent: exec\n\
         - command: echo $$ >> pids.txt; sleep 3; echo finished by $$\n",
    );
    let w1 = worker(&p, "w1", 1, &[]);
    let run = p.spawn(&["run", "plan.md", "--workers"]);
    p.pid("pids.txt");
    w1.signal(Signal::SIGSTOP);
    let w2 = worker(&p, "w2", 1, &[]);
    let out = run.wait(Duration::from_secs(60));
    out.expect_code(0);
    // The stopped worker wakes: its agent ended long ago, and what it says of it is refused.
    w1.signal(Signal::SIGCONT);
    wait_until(Duration::from_secs(20), "w1 heard it lost the attempt", || {
        !said(&w1, "lease_lost").is_empty()
    });
    assert_eq!(said(&w1, "lease_lost")[0]["owner"], "w2");
    assert!(said(&w1, "ended").is_empty(), "w1's end never counted:\n{}", w1.stdout());
    let report = p.report(&out.run_id());
    assert_task(&report, "slow", "succeeded", None);
    assert_eq!(attempts(&report, "slow")[0]["worker"], "w2");
    let q = queue(&mut p);
    assert!(q.lost_writes(&p.namespace(), &out.run_id(), "slow", 1).unwrap() >= 1);
    // At least once: both agents ran (the one of the stopped worker went on by itself).
    assert_eq!(p.read("pids.txt").lines().count(), 2);
    drop(w2);
}

#[test]
fn cancel_stops_attempts_on_workers_and_drops_queued_ones() {
    let p = Project::on_own_redis();
    p.plan(
        "---\nname: cancel\ndefaults:\n  agent: exec\n---\n\n# cancel\n\n\
         ## long: runs on the worker\n- command: echo $$ > pid.txt; sleep 60\n\n\
         ## waiting: queued, no worker runs its agent\n- agent: opencode\n\nNever run.\n",
    );
    let w1 = worker(&p, "w1", 1, &["--agents", "exec"]);
    let mut run = p.spawn(&["run", "plan.md", "--workers"]);
    let run_id = run.run_id();
    let agent = p.pid("pid.txt");
    p.swarm(&["cancel", &run_id]).expect_code(0);
    let out = run.wait(Duration::from_secs(30));
    assert_eq!(out.code(), Some(130), "{}", out.dump());
    wait_until(Duration::from_secs(10), "the agent on the worker is gone", || !pid_alive(agent));
    let report = p.report(&run_id);
    assert_task(&report, "long", "cancelled", Some("cancelled"));
    assert_task(&report, "waiting", "cancelled", Some("cancelled"));
    let queued = &attempts(&report, "waiting")[0];
    assert!(queued["detail"].as_str().unwrap_or("").contains("before a live worker ran it"), "{queued}");
    // The worker goes on, idle.
    std::thread::sleep(Duration::from_millis(1500));
    let rows: Value = serde_json::from_str(&p.swarm(&["workers", "--json"]).stdout).unwrap();
    assert_eq!((rows[0]["alive"].as_bool(), rows[0]["running"].as_u64()), (Some(true), Some(0)));
    drop(w1);
}

#[test]
fn sigterm_drains_a_worker_and_a_second_one_hands_the_attempt_back() {
    let p = Project::on_own_redis();
    p.plan(
        "---\nname: drain\ndefaults:\n  agent: exec\n---\n\n# drain\n\n\
         ## a: finishes while the worker drains\n- command: echo $$ > a.pid; sleep 2; echo a done\n\n\
         ## b: comes after a\n- depends: a\n\
         - command: if [ -e handed ]; then echo b done; else touch handed; echo $$ > b.pid; sleep 60; fi\n",
    );
    let w1 = worker(&p, "w1", 1, &[]);
    let mut run = p.spawn(&["run", "plan.md", "--workers"]);
    let run_id = run.run_id();
    p.pid("a.pid");
    w1.signal(Signal::SIGTERM);
    // a finishes; b is not taken by a draining worker, which then stops.
    let drained = w1.wait(Duration::from_secs(30));
    drained.expect_code(0);
    assert_eq!(said_in(&drained.stdout, "took").len(), 1, "{}", drained.stdout);
    let w2 = worker(&p, "w2", 1, &[]);
    p.pid("b.pid");
    w2.signal(Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    w2.signal(Signal::SIGTERM);
    let handed = w2.wait(Duration::from_secs(30));
    assert_eq!(said_in(&handed.stdout, "handed_back").len(), 1, "{}", handed.stdout);
    let w3 = worker(&p, "w3", 1, &[]);
    let out = run.wait(Duration::from_secs(60));
    out.expect_code(0);
    let report = p.report(&run_id);
    assert_task(&report, "b", "succeeded", None);
    assert_eq!(attempts(&report, "b")[0]["worker"], "w3");
    assert_eq!(attempts(&report, "a")[0]["worker"], "w1");
    drop(w3);
}

fn said_in(stdout: &str, event: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == event)
        .collect()
}

#[test]
fn resume_after_the_orchestrator_died_stops_its_attempt_on_the_worker_and_runs_it_again() {
    let mut p = Project::on_own_redis();
    p.plan(
        "---\nname: resume\n---\n\n# resume\n\n## t: a task\n- agent: exec\n\
         - command: if [ -e first ]; then echo second run; else touch first; echo $$ > pid.txt; sleep 60; fi\n",
    );
    let w1 = worker(&p, "w1", 2, &[]);
    let mut run = p.spawn(&["run", "plan.md", "--workers"]);
    let run_id = run.run_id();
    let agent = p.pid("pid.txt");
    run.kill9();
    let out = p.swarm(&["resume", &run_id]);
    out.expect_code(0);
    wait_until(Duration::from_secs(10), "the first attempt's agent is gone", || !pid_alive(agent));
    // Its worker was asked to stop it (another host hears only that).
    let mut admin = redis::Client::open(p.redis().url()).unwrap().get_connection().unwrap();
    let key = format!("swarm:{{{}}}:attempt:{run_id}:t:1", p.namespace());
    let stop: Option<String> = redis::cmd("HGET").arg(&key).arg("stop").query(&mut admin).unwrap();
    assert_eq!(stop.as_deref(), Some("kill"));
    let report = p.report(&run_id);
    assert_task(&report, "t", "succeeded", None);
    let a = attempts(&report, "t");
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!((a[0]["reason"].as_str(), a[1]["worker"].as_str()), (Some("lease_lost"), Some("w1")));
    drop(w1);
}

#[test]
fn workers_need_a_redis_store_and_say_so() {
    let p = Project::new();
    p.plan("---\nname: x\n---\n\n# x\n\n## t: t\n- agent: exec\n- command: true\n");
    for args in [&["run", "plan.md", "--workers"][..], &["worker"], &["workers"]] {
        let out = p.swarm(&[&["--store", "sqlite:.swarm/state.db"][..], args].concat());
        assert_eq!(out.code(), Some(2), "{args:?}: {}", out.dump());
        assert!(out.stderr.contains("Redis"), "{}", out.stderr);
    }
}

#[test]
fn worktree_tasks_on_two_workers_of_one_repository_are_all_merged() {
    let p = Project::on_own_redis();
    git(&p, &["init", "-q", "-b", "main"]);
    git(&p, &["config", "user.name", "Test User"]);
    git(&p, &["config", "user.email", "user@example.com"]);
    p.write("shared.txt", "one\n");
    git(&p, &["add", "-A"]);
    git(&p, &["commit", "-q", "-m", "init"]);
    let mut plan =
        String::from("---\ndefaults:\n  agent: exec\n  workdir: worktree\n---\n\n# parallel worktrees\n");
    for i in 1..=6 {
        plan.push_str(&format!("\n## t{i}: task {i}\n- command: echo {i} > f{i}.txt\n"));
    }
    p.plan(&plan);
    git(&p, &["add", "-A"]);
    git(&p, &["commit", "-q", "-m", "plan"]);
    let w1 = worker(&p, "w1", 3, &[]);
    let w2 = worker(&p, "w2", 3, &[]);
    // Both workers make worktrees of the one repository and merge into its integration branch
    // at the same time: one process at a time does (a file lock), none fails on git's locks.
    let out = p.swarm(&["run", "plan.md", "--workers"]);
    out.expect_code(0);
    let report = p.report(&out.run_id());
    let mut by = std::collections::BTreeSet::new();
    for i in 1..=6 {
        assert_task(&report, &format!("t{i}"), "succeeded", None);
        by.insert(attempts(&report, &format!("t{i}"))[0]["worker"].as_str().unwrap().to_string());
        let file = git(&p, &["show", &format!("swarm/{}:f{i}.txt", out.run_id())]);
        assert_eq!(file, i.to_string());
    }
    assert_eq!(by.len(), 2, "both workers ran tasks");
    drop((w1, w2));
}

/// The least ACL line of docs/state-schema.md for namespace `team1`, as `ACL SETUSER` arguments.
fn team1_acl(password: &str) -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/state-schema.md"))
        .expect("docs/state-schema.md");
    let line = doc.lines().find(|l| l.starts_with("ACL SETUSER team1 ")).expect("the ACL line in the doc");
    line.replace(">change-me", &format!(">{password}")).split_whitespace().skip(2).map(String::from).collect()
}

/// Runs `plan.md` of `p` (two exec tasks, one needing a label) with a worker, everything on
/// `url`; the report.
fn run_with_a_worker(p: &Project, url: &str, ns: &str) -> Value {
    p.plan(&format!(
        "---\nnamespace: {ns}\ndefaults:\n  agent: exec\n---\n\n## a: A\n- command: echo a > a.txt\n\n## b: B\n- depends: a\n- labels: zone=a\n- command: cat a.txt > b.txt\n"
    ));
    let with = |args: &[&str]| {
        let mut cmd = p.command(args);
        cmd.env("SWARM_STORE", url).env("SWARM_NAMESPACE", ns);
        cmd
    };
    let mut w =
        p.spawn_cmd(with(&["worker", "--name", "w1", "--namespace", ns, "--labels", "zone=a", "--json"]));
    wait_until(Duration::from_secs(20), "the worker started", || {
        assert!(w.is_running(), "the worker exited:\n{}{}", w.stdout(), w.stderr());
        w.stdout().contains("worker_started")
    });
    let out = p.spawn_cmd(with(&["run", "plan.md", "--workers"])).wait(CMD_TIMEOUT);
    out.expect_code(0);
    assert_eq!(p.read("b.txt").trim(), "a");
    let listed = p.spawn_cmd(with(&["workers", "--json", "--namespace", ns])).wait(CMD_TIMEOUT);
    let rows: Value = serde_json::from_str(&listed.expect_code(0).stdout).expect("json");
    assert_eq!(rows[0]["name"], "w1", "{rows}");
    let report = p.report(&out.run_id());
    w.signal(Signal::SIGTERM);
    let said = w.wait(Duration::from_secs(20));
    assert!(!said.stdout.contains("store_error"), "{}", said.dump());
    assert!(!said.stderr.contains("NOPERM") && !said.stdout.contains("NOPERM"), "{}", said.dump());
    report
}

#[test]
fn a_worker_runs_as_an_acl_user_confined_to_its_namespace() {
    let redis = swarm_testkit::RedisServer::start();
    let mut conn = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("ACL").arg("SETUSER").arg(team1_acl("pw-w0rker")).query(&mut conn).unwrap();
    let url = format!("redis://team1:pw-w0rker@127.0.0.1:{}", redis.port);
    let p = Project::new();
    let report = run_with_a_worker(&p, &url, "team1");
    assert_eq!(attempts(&report, "b")[0]["worker"], "w1");
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    assert!(keys.iter().any(|k| k == "swarm:{team1}:workers"), "{keys:?}");
}

#[test]
fn a_worker_runs_on_a_redis_cluster() {
    let cluster = swarm_testkit::RedisCluster::start();
    let p = Project::new();
    let report = run_with_a_worker(&p, &cluster.url(), "team1");
    assert_eq!(attempts(&report, "a")[0]["worker"], "w1");
}

#[test]
fn cancelling_a_run_whose_orchestrator_died_stops_its_attempts_on_workers() {
    let mut p = Project::on_own_redis();
    p.write("swarm.toml", &format!("{FAST_CONFIG}workers = true\n"));
    p.plan("---\nname: orphan\n---\n\n# orphan\n\n## long: long\n- agent: exec\n- command: echo $$ > pid.txt; sleep 60\n");
    let w1 = worker(&p, "w1", 1, &[]);
    // `[run] workers = true` queues the attempts without `--workers`.
    let mut run = p.spawn(&["run", "plan.md"]);
    let run_id = run.run_id();
    let agent = p.pid("pid.txt");
    run.kill9();
    p.swarm(&["cancel", &run_id]).expect_code(0);
    // The worker is asked to stop it (on this host the cancel also ends the run's processes
    // itself; on another only the request reaches it).
    let mut admin = redis::Client::open(p.redis().url()).unwrap().get_connection().unwrap();
    let key = format!("swarm:{{{}}}:attempt:{run_id}:long:1", p.namespace());
    let stop: Option<String> = redis::cmd("HGET").arg(&key).arg("stop").query(&mut admin).unwrap();
    assert_eq!(stop.as_deref(), Some("kill"));
    wait_until(Duration::from_secs(10), "the agent on the worker is gone", || !pid_alive(agent));
    assert_task(&p.status(&run_id), "long", "cancelled", Some("cancelled"));
    wait_until(Duration::from_secs(10), "the worker ended the attempt", || !said(&w1, "ended").is_empty());
    assert_eq!(said(&w1, "ended")[0]["ok"], false, "{}", w1.stdout());
}
