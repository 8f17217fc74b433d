//! Namespaces on Redis beyond one server and one user: a Redis ACL user confined to its
//! namespace with the ACL line docs/state-schema.md gives (on one server and on a real 3-node
//! Cluster), and a store written with the key layout from before the per-namespace indexes.

use chrono::Utc;
use serde_json::json;
use swarm_core::event::{Event, EventKind};
use swarm_core::plan::{Plan, Task, Workdir};
use swarm_core::report::{RunRecord, TaskReport};
use swarm_core::state::{RunState, TaskState};
use swarm_core::state_doc::Actor;
use swarm_store::{Batch, ModelLimits, RedisStore, Reservation, Store, StoreError};
use swarm_testkit::{RedisCluster, RedisServer};

const PASSWORD: &str = "pw-t3am1-s3cret";

/// The ACL lines of docs/state-schema.md (the least, then the broader one) for `ns`, each as
/// `ACL SETUSER` arguments.
fn acl_lines(ns: &str) -> Vec<Vec<String>> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/state-schema.md"))
        .expect("docs/state-schema.md");
    let lines: Vec<Vec<String>> = doc
        .lines()
        .filter(|l| l.starts_with("ACL SETUSER team1 "))
        .map(|l| l.replace("team1", ns).replace(">change-me", &format!(">{PASSWORD}")))
        .map(|l| l.split_whitespace().skip(2).map(String::from).collect())
        .collect();
    assert_eq!(lines.len(), 2, "the doc gives two ACL lines");
    lines
}

fn acl_line(ns: &str) -> Vec<String> {
    acl_lines(ns).swap_remove(0)
}

fn plan(ns: &str) -> Plan {
    let task = Task {
        id: "a".into(),
        title: "task a".into(),
        agent: "exec".into(),
        model: None,
        tier: None,
        depends: vec![],
        timeout: None,
        stall: None,
        retries: 0,
        check: None,
        command: Some("true".into()),
        paths: vec![],
        workdir: Some(Workdir::Shared),
        role: None,
        handoff: None,
        on_conflict: None,
        labels: Default::default(),
        prompt: String::new(),
    };
    Plan {
        name: "p".into(),
        namespace: ns.into(),
        concurrency: Some(1),
        brief: String::new(),
        state: None,
        tasks: vec![task],
    }
}

fn record(run_id: &str, ns: &str) -> RunRecord {
    RunRecord {
        run_id: run_id.into(),
        plan: "p".into(),
        namespace: ns.into(),
        plan_file: "/tmp/plan.md".into(),
        workdir: "/tmp".into(),
        state: RunState::Running,
        started_at: Utc::now(),
        ended_at: None,
        concurrency: 1,
        fail_fast: false,
        allow_paid: false,
        workers: false,
        owner: None,
        spec: plan(ns),
        git: None,
    }
}

fn task(state: TaskState) -> TaskReport {
    TaskReport { state, ..TaskReport::new("a", "exec") }
}

fn create(store: &dyn Store, run_id: &str, ns: &str) {
    store.create_run(&record(run_id, ns), &[task(TaskState::Pending)]).unwrap();
}

fn event(run_id: &str, state: TaskState) -> Event {
    Event {
        run_id: run_id.into(),
        timestamp: Utc::now(),
        elapsed_ms: 1,
        kind: EventKind::TaskState { task: "a".into(), state, reason: None, detail: None },
    }
}

fn run_ids(store: &dyn Store) -> Vec<String> {
    store.runs(100).unwrap().into_iter().map(|r| r.run_id).collect()
}

/// An admin writes namespace `team2`; user `team1`, confined by the doc's ACL line, runs a run
/// of its own from start to end and sees nothing of `team2`.
fn confined_user_sees_only_its_namespace(admin: &dyn Store, user_url: &str, reader_url: &str) {
    let user = RedisStore::connect_in(user_url, true, &["team1".into()]).expect("the confined user opens");
    create(&user, "t1", "team1");
    let ttl = std::time::Duration::from_secs(30);
    user.acquire_lease("t1", "lease-1", ttl, None).unwrap();
    let batch = Batch {
        lease: Some("lease-1".into()),
        tasks: vec![task(TaskState::Running)],
        events: vec![event("t1", TaskState::Ready), event("t1", TaskState::Running)],
        ..Batch::default()
    };
    user.apply("t1", &batch).unwrap();
    assert_eq!(user.tasks("t1").unwrap()[0].state, TaskState::Running);
    assert_eq!(user.lease_holder("t1").unwrap().as_deref(), Some("lease-1"));
    user.request_cancel("t1").unwrap();
    assert!(user.cancel_requested("t1").unwrap());
    // Shared state, with the run told of the change.
    let by = Actor { run_id: Some("t1".into()), task_id: Some("a".into()), ..Actor::default() };
    user.state_write("team1", "k", Some(&json!({"v": 1})), None, Some(&by)).unwrap();
    assert_eq!(user.state_get("team1", "k").unwrap().unwrap().version, 1);
    assert_eq!(user.state_changes("team1", 0, 10).unwrap().len(), 1);
    let kinds: Vec<EventKind> = user.events("t1", 0, 100).unwrap().into_iter().map(|(_, e)| e.kind).collect();
    assert!(kinds.iter().any(|k| matches!(k, EventKind::StateChanged { .. })), "{kinds:?}");
    assert!(matches!(
        user.model_reserve("team1", "m", 1, &ModelLimits::default(), &[]).unwrap(),
        Reservation::Granted { .. }
    ));
    assert!(user.now_ms().unwrap() > 0);
    let health = user.health().unwrap();
    assert!(health.errors.is_empty(), "{:?}", health.errors);
    // Nothing of team2.
    assert_eq!(run_ids(&user), ["t1"]);
    assert!(user.run("t2").unwrap().is_none());
    assert!(matches!(user.tasks("t2"), Err(StoreError::NoSuchRun(_))));
    let err = user.state_get("team2", "secret").unwrap_err();
    assert!(matches!(err, StoreError::Auth { .. }), "{err}");
    assert!(!err.to_string().contains(PASSWORD), "{err}");
    // A reader of the same user (`swarm status`) finds the run and writes nothing.
    let reader = RedisStore::connect_in(reader_url, false, &["team1".into()]).unwrap();
    assert_eq!(run_ids(&reader), ["t1"]);
    assert_eq!(reader.events("t1", 0, 100).unwrap().len(), 3);
    assert!(!reader.describe().contains(PASSWORD), "{}", reader.describe());
    // The admin's own namespaces are untouched.
    assert_eq!(admin.state_get("team2", "secret").unwrap().unwrap().value, json!("s"));
    assert_eq!(admin.tasks("t2").unwrap()[0].state, TaskState::Pending);
}

fn seed_team2(admin: &dyn Store) {
    create(admin, "t2", "team2");
    admin.state_write("team2", "secret", Some(&json!("s")), None, None).unwrap();
}

#[test]
fn an_acl_user_confined_to_its_namespace_runs_and_sees_nothing_else() {
    for line in acl_lines("team1") {
        let server = RedisServer::start();
        let admin = RedisStore::open(&server.url()).unwrap();
        seed_team2(&admin);
        let mut conn = redis::Client::open(server.url()).unwrap().get_connection().unwrap();
        let _: () = redis::cmd("ACL").arg("SETUSER").arg(&line).query(&mut conn).unwrap();
        let user_url = format!("redis://team1:{PASSWORD}@127.0.0.1:{}", server.port);
        let reader_url = format!("redis://127.0.0.1:{}/0?user=team1&password={PASSWORD}", server.port);
        confined_user_sees_only_its_namespace(&admin, &user_url, &reader_url);
        // The user touched no key outside its namespace.
        let keys: Vec<String> = redis::cmd("KEYS").arg("swarm:*").query(&mut conn).unwrap();
        let mut global: Vec<&String> = keys.iter().filter(|k| !k.starts_with("swarm:{")).collect();
        global.sort();
        assert_eq!(global, ["swarm:meta", "swarm:namespaces", "swarm:run_ns", "swarm:runs"]);
        let runs: Vec<String> =
            redis::cmd("ZRANGE").arg("swarm:runs").arg(0).arg(-1).query(&mut conn).unwrap();
        assert_eq!(runs, ["t2"], "the confined user wrote no global key ({line:?})");
    }
}

#[test]
fn an_acl_user_confined_to_its_namespace_works_on_a_cluster() {
    let cluster = RedisCluster::start();
    let admin = RedisStore::open(&cluster.url()).unwrap();
    let health = admin.health().unwrap();
    assert!(health.server_version.starts_with(|c: char| c.is_ascii_digit()), "{health:?}");
    assert!(health.warnings.iter().all(|w| !w.contains("INFO")), "{:?}", health.warnings);
    seed_team2(&admin);
    let mut setuser = vec!["ACL".to_string(), "SETUSER".into()];
    setuser.extend(acl_line("team1"));
    cluster.on_every_node(&setuser.iter().map(String::as_str).collect::<Vec<_>>());
    let nodes: Vec<String> = cluster.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
    let user_url = format!("redis+cluster://team1:{PASSWORD}@{}", nodes.join(","));
    confined_user_sees_only_its_namespace(&admin, &user_url, &user_url);
}

/// What swarm wrote for a run before the per-namespace indexes, verbatim (keys and fields).
fn write_old_layout(conn: &mut redis::Connection, run_id: &str, ns: &str) {
    let run = record(run_id, ns);
    let started = run.started_at.timestamp_millis();
    let doc = serde_json::to_string(&run).unwrap();
    let tasks = serde_json::to_string(&task(TaskState::Pending)).unwrap();
    let mut pipe = redis::pipe();
    pipe.hset("swarm:meta", "schema_version", 1)
        .hset("swarm:run_ns", run_id, ns)
        .zadd("swarm:runs", run_id, started)
        .hset_multiple(
            format!("swarm:{{{ns}}}:run:{run_id}"),
            &[("doc", doc.as_str()), ("state", "running"), ("cancel", "0"), ("seq", "0")],
        )
        .hset(format!("swarm:{{{ns}}}:run:{run_id}:tasks"), "a", tasks);
    let _: () = pipe.query(conn).unwrap();
}

#[test]
fn a_store_of_the_old_layout_is_read_then_migrated_once() {
    let server = RedisServer::start();
    let mut conn = redis::Client::open(server.url()).unwrap().get_connection().unwrap();
    write_old_layout(&mut conn, "old", "team1");
    let index = "swarm:{team1}:runs";
    // A reader reads it as it is and writes nothing.
    let reader = RedisStore::connect(&server.url(), false).unwrap();
    assert_eq!(run_ids(&reader), ["old"]);
    assert_eq!(reader.tasks("old").unwrap()[0].state, TaskState::Pending);
    let exists: bool = redis::cmd("EXISTS").arg(index).query(&mut conn).unwrap();
    let layout: Option<String> = redis::cmd("HGET").arg("swarm:meta").arg("layout").query(&mut conn).unwrap();
    assert!(!exists && layout.is_none(), "a reader migrated");
    // A writer migrates: the run goes into its namespace's index, the marker says layout 2.
    let writer = RedisStore::open(&server.url()).unwrap();
    let layout: Option<String> = redis::cmd("HGET").arg("swarm:meta").arg("layout").query(&mut conn).unwrap();
    assert_eq!(layout.as_deref(), Some("2"));
    let indexed: Vec<String> = redis::cmd("ZRANGE").arg(index).arg(0).arg(-1).query(&mut conn).unwrap();
    assert_eq!(indexed, ["old"]);
    writer.apply("old", &Batch { tasks: vec![task(TaskState::Running)], ..Batch::default() }).unwrap();
    create(&writer, "new", "team1");
    assert_eq!(run_ids(&writer).len(), 2);
    // Again: nothing changes.
    drop(RedisStore::open(&server.url()).unwrap());
    let count: usize = redis::cmd("ZCARD").arg(index).query(&mut conn).unwrap();
    assert_eq!(count, 2);
    // The migrated run is now found by a user confined to the namespace.
    let _: () = redis::cmd("ACL").arg("SETUSER").arg(acl_line("team1")).query(&mut conn).unwrap();
    let user_url = format!("redis://team1:{PASSWORD}@127.0.0.1:{}", server.port);
    let user = RedisStore::connect_in(&user_url, false, &["team1".into()]).unwrap();
    let mut ids = run_ids(&user);
    ids.sort();
    assert_eq!(ids, ["new", "old"]);
    assert_eq!(user.tasks("old").unwrap()[0].state, TaskState::Running);
}

#[test]
fn a_namespace_marked_by_a_newer_schema_is_refused() {
    let server = RedisServer::start();
    let mut conn = redis::Client::open(server.url()).unwrap().get_connection().unwrap();
    let _: () =
        redis::cmd("HSET").arg("swarm:{later}:meta").arg("schema_version").arg("9").query(&mut conn).unwrap();
    let err = RedisStore::connect_in(&server.url(), true, &["later".into()]).err().expect("refused at open");
    assert!(matches!(err, StoreError::SchemaTooNew { found: 9, .. }), "{err}");
    // A store that was not told of the namespace refuses it when a run would start there.
    let store = RedisStore::open(&server.url()).unwrap();
    let err = store.create_run(&record("r", "later"), &[task(TaskState::Pending)]).unwrap_err();
    assert!(matches!(err, StoreError::SchemaTooNew { found: 9, .. }), "{err}");
    let exists: bool = redis::cmd("EXISTS").arg("swarm:{later}:run:r").query(&mut conn).unwrap();
    assert!(!exists, "nothing written");
}
