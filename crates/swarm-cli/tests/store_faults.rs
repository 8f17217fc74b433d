//! Store faults through the real binary: a store that is emptied, replaced, deleted or gone for
//! good mid-run is not a user cancel; reads never create a store; broken stores and refused
//! credentials are configuration errors; passwords are never printed, yet agents can use them.

mod support;

use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use support::*;
use swarm_testkit::RedisServer;

/// `slow` runs until it is stopped; `after` waits for it; `quick` is independent and succeeds.
const SLOW_PLAN: &str = "---
defaults:
  agent: exec
---

## quick: Independent and quick
- command: true

## slow: Runs until stopped
- command: exec {fake} --pidfile slow.pid --sleep 60s

## after: Depends on slow
- depends: slow
- command: touch after.ran
";

/// Starts `SLOW_PLAN` on `store` and waits until `slow` runs (and `quick` is done). Returns the
/// run, its id and the pid of `slow`'s agent.
fn start_slow(p: &Project, store: &str) -> (Bg, String, u32) {
    p.plan(SLOW_PLAN);
    let mut run = p.spawn(&["run", "plan.md", "--store", store, "--no-progress"]);
    let run_id = run.run_id();
    let agent = p.pid("slow.pid");
    wait_until(Duration::from_secs(15), "quick succeeded", || {
        run.stdout().lines().any(|l| l.contains("quick") && l.contains("succeeded"))
    });
    (run, run_id, agent)
}

/// The run ended with exit 1 (not 130), said why on stderr, failed every unfinished task with
/// `lease_lost` and kept its report on disk.
fn assert_lease_lost(p: &Project, out: &Out, run_id: &str, agent: u32, cause: &str) -> Value {
    out.expect_code(1);
    assert!(out.stderr.contains(cause), "stderr names the cause `{cause}`\n{}", out.dump());
    assert!(out.stderr.contains("lease_lost"), "stderr says what became of the tasks\n{}", out.dump());
    assert!(
        !out.stdout.contains("cancel requested") && !out.stdout.contains("cancel_requested"),
        "a store fault is no user cancel\n{}",
        out.dump()
    );
    assert_gone(agent, "slow's agent");
    let report = p.report(run_id);
    assert_eq!(report["state"], "failed", "{report:#}");
    assert_task(&report, "quick", "succeeded", None);
    assert_task(&report, "slow", "failed", Some("lease_lost"));
    assert_task(&report, "after", "failed", Some("lease_lost"));
    assert_eq!(attempts(&report, "slow")[0]["reason"], "lease_lost", "{report:#}");
    assert!(detail(&report, "slow").contains(cause), "{report:#}");
    let fault = &report["store_error"];
    assert!(fault["message"].as_str().is_some_and(|m| m.contains(cause)), "{report:#}");
    assert!(!p.exists("after.ran"), "nothing new started");
    let md = p.read(&format!(".swarm/runs/{run_id}/report.md"));
    assert!(md.contains(cause), "report.md names the store's fault\n{md}");
    report
}

#[test]
fn a_redis_restarted_empty_mid_run_is_lease_lost_not_a_cancel() {
    let mut redis = RedisServer::start(); // no AOF, no RDB: a restart comes back empty
    let p = Project::new();
    let (run, run_id, agent) = start_slow(&p, &redis.url());
    redis.restart();
    let out = run.wait(Duration::from_secs(60));
    assert_lease_lost(&p, &out, &run_id, agent, "no longer in the store");
}

#[test]
fn a_flushed_redis_mid_run_is_lease_lost_and_the_event_says_so() {
    let redis = RedisServer::start();
    let p = Project::new();
    p.plan(SLOW_PLAN);
    let run = p.spawn(&["run", "plan.md", "--store", &redis.url(), "--json"]);
    let agent = p.pid("slow.pid");
    wait_until(Duration::from_secs(15), "quick succeeded", || {
        run.stdout().contains(r#""task":"quick","state":"succeeded""#)
    });
    let mut conn = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("FLUSHALL").query(&mut conn).unwrap();
    let out = run.wait(Duration::from_secs(60));
    let events: Vec<Value> =
        out.stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let run_id = events[0]["run_id"].as_str().unwrap().to_string();
    let lost = events.iter().find(|e| e["kind"] == "store_lost").unwrap_or_else(|| panic!("{}", out.dump()));
    assert!(lost["message"].as_str().unwrap().contains("no longer in the store"), "{lost}");
    assert_lease_lost(&p, &out, &run_id, agent, "no longer in the store");
}

#[test]
fn a_redis_gone_for_good_exits_1_and_counts_the_lost_writes() {
    let mut redis = RedisServer::start();
    let p = Project::new();
    // Give up on the store 2 s after the run ended (default 30 s).
    p.write("swarm.toml", &format!("{FAST_CONFIG}[store]\ngive_up_after = \"2s\"\n"));
    p.plan(
        "## a: A\n- agent: exec\n- command: while [ ! -f go ]; do sleep 0.02; done\n\n\
         ## b: B\n- agent: exec\n- depends: a\n- command: true\n",
    );
    let mut run = p.spawn(&["run", "plan.md", "--store", &redis.url(), "--no-progress"]);
    let run_id = run.run_id();
    wait_until(Duration::from_secs(15), "a running", || run.stdout().contains("running    attempt 1"));
    redis.kill();
    p.write("go", "");
    let out = run.wait(Duration::from_secs(60));
    out.expect_code(1);
    let report = p.report(&run_id);
    assert_task(&report, "a", "succeeded", None);
    assert_task(&report, "b", "succeeded", None);
    assert_eq!(report["state"], "failed", "the run could not be recorded\n{report:#}");
    let lost = report["store_error"]["lost_writes"].as_u64().unwrap_or_else(|| panic!("{report:#}"));
    assert!(lost >= 4, "a's end, b's transitions and the run's end were lost: {lost}\n{report:#}");
    assert!(
        out.stderr.contains(&format!("{lost} writes")) && out.stderr.contains("not stored"),
        "stderr says how many writes were lost\n{}",
        out.dump()
    );
}

#[test]
fn a_deleted_sqlite_store_mid_run_is_lease_lost() {
    let p = Project::new();
    let (run, run_id, agent) = start_slow(&p, "sqlite:.swarm/state.db");
    for f in ["state.db", "state.db-wal", "state.db-shm"] {
        let _ = std::fs::remove_file(p.file(&format!(".swarm/{f}")));
    }
    let out = run.wait(Duration::from_secs(60));
    assert_lease_lost(&p, &out, &run_id, agent, "deleted or replaced");
}

#[test]
fn a_replaced_sqlite_store_mid_run_is_lease_lost() {
    let p = Project::new();
    let (run, run_id, agent) = start_slow(&p, "sqlite:.swarm/state.db");
    // Another store moved into its place (e.g. restored from a backup).
    p.swarm(&["state", "set", "k", "1", "--store", "sqlite:other.db"]).expect_code(0);
    std::fs::rename(p.file("other.db"), p.file(".swarm/state.db")).unwrap();
    let out = run.wait(Duration::from_secs(60));
    assert_lease_lost(&p, &out, &run_id, agent, "deleted or replaced");
}

#[test]
fn read_only_commands_never_create_a_store() {
    let p = Project::new();
    let store = "sqlite:.swarm/state.db";
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["runs"],
        &["runs", "--json"],
        &["logs", "latest", "a"],
        &["events"],
        &["cancel", "latest"],
        &["resume", "latest"],
        &["state", "get", "k"],
        &["state", "list"],
    ] {
        let mut args = args.to_vec();
        args.extend(["--store", store]);
        let out = p.swarm(&args);
        out.expect_code(2);
        assert!(
            out.stderr.contains("no swarm state here") && out.stderr.contains("swarm run"),
            "`swarm {}` says there is no state yet\n{}",
            args.join(" "),
            out.dump()
        );
        assert!(!p.exists(".swarm"), "`swarm {}` created {}", args.join(" "), p.file(".swarm").display());
    }
    let doctor = p.swarm(&["doctor", "--store", store]);
    assert!(doctor.stdout.contains("not created yet"), "{}", doctor.dump());
    assert!(!p.exists(".swarm"), "`swarm doctor` created the store");
    // Writes create it.
    p.swarm(&["state", "set", "k", "1", "--store", store]).expect_code(0);
    assert!(p.exists(".swarm/state.db"));
    p.swarm(&["state", "get", "k", "--store", store]).expect_code(0);
    p.swarm(&["runs", "--store", store]).expect_code(0);
}

#[test]
fn a_run_creates_its_store() {
    let p = Project::new();
    p.plan("## a: A\n- agent: exec\n- command: true\n");
    p.swarm(&["run", "plan.md", "--store", "sqlite:.swarm/state.db"]).expect_code(0);
    assert!(p.exists(".swarm/state.db"));
    assert!(p.exists(".swarm/.gitignore"));
}

/// Turns `p`'s swarm store into one whose pages after the first are garbage.
fn corrupt_store(p: &Project, store: &str) {
    let big = format!("\"{}\"", "x".repeat(20_000));
    p.swarm(&["state", "set", "big", &big, "--store", store]).expect_code(0);
    let path = p.file(".swarm/state.db");
    {
        // Everything into the main file, so the garbage below is all there is.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 8192, "the store spans several pages");
    let mut x: u32 = 12345;
    for b in &mut bytes[4096..] {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (x >> 16) as u8;
    }
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn a_corrupt_sqlite_store_is_a_configuration_error() {
    let p = Project::new();
    p.plan("## a: A\n- agent: exec\n- command: true\n");
    std::fs::create_dir_all(p.file(".swarm")).unwrap();
    let store = "sqlite:.swarm/state.db";
    let db = p.file(".swarm/state.db");
    let random: Vec<u8> = (0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for what in ["random bytes", "corrupt pages"] {
        let _ = std::fs::remove_dir_all(p.file(".swarm"));
        if what == "random bytes" {
            std::fs::create_dir_all(p.file(".swarm")).unwrap();
            std::fs::write(&db, &random).unwrap();
        } else {
            corrupt_store(&p, store);
        }
        for args in [&["status"][..], &["runs", "--json"], &["run", "plan.md"], &["state", "set", "k", "1"]] {
            let mut args = args.to_vec();
            args.extend(["--store", store]);
            let out = p.swarm(&args);
            out.expect_code(2);
            assert!(
                out.stderr.contains("not a usable swarm store") && out.stderr.contains("state.db"),
                "{what}: `swarm {}` names the broken file\n{}",
                args.join(" "),
                out.dump()
            );
        }
    }
}

#[test]
fn refused_redis_credentials_are_a_configuration_error() {
    let redis = RedisServer::start_with_password("s3cret-pw");
    let p = Project::new();
    p.plan("## a: A\n- agent: exec\n- command: true\n");
    let host = format!("127.0.0.1:{}", redis.port);
    for url in [
        format!("redis://{host}"),
        format!("redis://:wrong-pw@{host}"),
        format!("redis://bob:wrong-pw@{host}"),
    ] {
        for args in [&["status"][..], &["run", "plan.md"], &["state", "set", "k", "1"]] {
            let mut args = args.to_vec();
            args.extend(["--store", &url]);
            let out = p.swarm(&args);
            out.expect_code(2);
            assert!(out.stderr.contains("refused the credentials"), "{url}: {}", out.dump());
            assert!(!out.dump().contains("wrong-pw"), "password printed:\n{}", out.dump());
        }
    }
    let ok = p.swarm(&["run", "plan.md", "--store", &format!("redis://:s3cret-pw@{host}")]);
    ok.expect_code(0);
}

#[test]
fn passwords_in_every_address_form_are_masked() {
    let p = Project::new();
    p.plan("## a: A\n- agent: exec\n- command: true\n");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for url in [
        format!("redis://127.0.0.1:{port}?password=hunter2"),
        format!("redis://127.0.0.1:{port}/0?protocol=resp2&password=hunter2"),
        format!("redis://alice:hunter2@127.0.0.1:{port}/3"),
        format!("rediss://127.0.0.1:{port}/?PASSWORD=hunter2#frag"),
        "foo://user:hunter2@host".to_string(),
        "foo:user:hunter2@host".to_string(),
        "postgres://user:hunter2@host/db?sslmode=require".to_string(),
    ] {
        for args in [
            &["status"][..],
            &["status", "--json"],
            &["runs", "--json"],
            &["run", "plan.md", "--json"],
            &["doctor"],
            &["doctor", "--json"],
        ] {
            let mut args = args.to_vec();
            args.extend(["--store", &url]);
            let out = p.swarm(&args);
            assert!(matches!(out.code(), Some(1 | 2)), "{url}: {}", out.dump());
            assert!(
                !out.dump().contains("hunter2"),
                "`swarm {}` printed the password:\n{}",
                args.join(" "),
                out.dump()
            );
            assert!(
                out.dump().contains("***"),
                "`swarm {}` shows where the secret was:\n{}",
                args.join(" "),
                out.dump()
            );
            if args.contains(&"--json") && args[0] == "doctor" {
                let v: Value = serde_json::from_str(&out.stdout).expect("doctor --json prints JSON");
                assert!(v.to_string().contains("***"), "{v:#}");
            }
        }
        // From the environment too.
        let mut cmd = p.command(&["status", "--json"]);
        cmd.env("SWARM_STORE", &url);
        let out = p.spawn_cmd(cmd).wait(CMD_TIMEOUT);
        out.expect_code(2);
        assert!(!out.dump().contains("hunter2"), "printed the password:\n{}", out.dump());
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn agents_use_a_password_protected_redis_without_ever_seeing_the_password_in_files() {
    let password = "pw-Zq81-secret";
    let redis = RedisServer::start_with_password(password);
    let url = format!("redis://:{password}@127.0.0.1:{}", redis.port);
    let p = Project::new();
    p.plan(
        "## shared: Writes shared state and reports through the store's credentials
- agent: exec
- command: echo \"store is $SWARM_STORE\"; swarm state set k '\"v\"' && swarm state get k && swarm report --status done --summary s
",
    );
    let out = p.swarm(&["run", "plan.md", "--store", &url, "--no-progress"]);
    out.expect_code(0);
    let run_id = out.run_id();
    let get = p.swarm(&["state", "get", "k", "--store", &url]);
    assert_eq!(get.expect_code(0).stdout.trim(), "\"v\"");
    let report = p.report(&run_id);
    assert_task(&report, "shared", "succeeded", None);
    assert_eq!(attempts(&report, "shared")[0]["completion"]["summary"], "s", "{report:#}");
    let log = p.swarm(&["logs", &run_id, "shared", "--store", &url]).expect_code(0).stdout.clone();
    assert!(log.contains(&format!("store is redis://:***@127.0.0.1:{}", redis.port)), "{log}");
    let events = p.swarm(&["events", &run_id, "--json", "--store", &url]).expect_code(0).stdout.clone();
    assert!(events.contains("state_changed"), "{events}");
    assert!(!events.contains(password), "an event holds the password:\n{events}");
    assert!(!out.dump().contains(password), "{}", out.dump());
    let mut checked = 0;
    for dir in [".swarm", "plans"] {
        for f in files_under(&p.file(dir)) {
            let bytes = std::fs::read(&f).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(password),
                "{} holds the password",
                f.display()
            );
            checked += 1;
        }
    }
    assert!(
        p.exists(&format!("plans/agent-shared/{run_id}/shared/completion.json")),
        "the mirror was written"
    );
    assert!(checked >= 4, "report, log and mirror files were checked ({checked})");
}
