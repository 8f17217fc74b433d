//! The store conformance suite: every backend must pass the same checks. A new backend is a new
//! `backend_tests!` line at the bottom.

use chrono::{Duration, Utc};
use std::sync::Arc;
use swarm_core::event::{Event, EventKind};
use swarm_core::plan::{Plan, Task, Workdir};
use swarm_core::report::{AttemptReport, RunRecord, TaskReport};
use swarm_core::state::{Reason, RunState, TaskState};
use swarm_store::{Batch, Store, StoreError};

fn plan(ids: &[&str]) -> Plan {
    Plan {
        name: "p".into(),
        namespace: "ns".into(),
        concurrency: Some(2),
        brief: String::new(),
        tasks: ids
            .iter()
            .map(|id| Task {
                id: id.to_string(),
                title: format!("task {id}"),
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
                workdir: Workdir::Shared,
                prompt: String::new(),
            })
            .collect(),
    }
}

fn record(run_id: &str, minutes_ago: i64, ids: &[&str]) -> RunRecord {
    RunRecord {
        run_id: run_id.into(),
        plan: "p".into(),
        namespace: "ns".into(),
        plan_file: "/tmp/plan.md".into(),
        workdir: "/tmp".into(),
        state: RunState::Running,
        started_at: Utc::now() - Duration::minutes(minutes_ago),
        ended_at: None,
        concurrency: 2,
        fail_fast: false,
        owner: None,
        spec: plan(ids),
    }
}

fn task(id: &str, state: TaskState) -> TaskReport {
    TaskReport {
        id: id.into(),
        title: String::new(),
        agent: "exec".into(),
        depends: vec![],
        state,
        reason: None,
        detail: None,
        attempts: vec![],
    }
}

fn event(run_id: &str, task: &str, state: TaskState) -> Event {
    Event {
        run_id: run_id.into(),
        timestamp: Utc::now(),
        elapsed_ms: 1,
        kind: EventKind::TaskState { task: task.into(), state, reason: None, detail: None },
    }
}

fn create(store: &dyn Store, run_id: &str, minutes_ago: i64, ids: &[&str]) {
    let tasks: Vec<_> = ids.iter().map(|id| task(id, TaskState::Pending)).collect();
    store.create_run(&record(run_id, minutes_ago, ids), &tasks).unwrap();
}

pub fn round_trips_runs_and_tasks(store: &dyn Store) {
    create(store, "r1", 0, &["b", "a", "c"]);
    let r = store.run("r1").unwrap().expect("run stored");
    assert_eq!(r, record("r1", 0, &["b", "a", "c"]).clone_with_started(r.started_at));
    let ids: Vec<_> = store.tasks("r1").unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(ids, ["b", "a", "c"], "tasks keep plan order");
    assert!(store.run("nope").unwrap().is_none());
    assert!(store.create_run(&record("r1", 0, &[]), &[]).is_err(), "a run id is never reused");
}

pub fn applies_batches_atomically_and_in_order(store: &dyn Store) {
    create(store, "r2", 0, &["a", "b"]);
    let mut a = task("a", TaskState::Failed);
    a.reason = Some(Reason::Timeout);
    a.attempts.push(AttemptReport {
        n: 1,
        agent: "exec".into(),
        model: Some("local/ok".into()),
        layer: Some(2),
        exit_code: None,
        started_at: Utc::now(),
        ended_at: Some(Utc::now()),
        tokens_in: 10,
        tokens_out: 5,
        cost_usd: 0.5,
        fallback_reason: None,
        reason: Some(Reason::Timeout),
        detail: Some("timed out after 1s".into()),
        pid: Some(42),
        host: Some("h".into()),
        log: Some("/tmp/a.1.log".into()),
        workdir: Some("/tmp".into()),
    });
    let mut run = record("r2", 0, &["a", "b"]);
    run.state = RunState::Failed;
    let batch = Batch {
        lease: None,
        run: Some(run.clone()),
        tasks: vec![a.clone()],
        events: vec![event("r2", "a", TaskState::Running), event("r2", "a", TaskState::Failed)],
    };
    store.apply("r2", &batch).unwrap();
    assert_eq!(store.run("r2").unwrap().unwrap().state, RunState::Failed);
    let tasks = store.tasks("r2").unwrap();
    assert_eq!(tasks[0], a);
    assert_eq!(tasks[1].state, TaskState::Pending, "untouched task unchanged");
    store
        .apply("r2", &Batch { events: vec![event("r2", "b", TaskState::Ready)], ..Batch::default() })
        .unwrap();
    let evs = store.events("r2", 0, 100).unwrap();
    let seqs: Vec<u64> = evs.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(evs[2].1, event("r2", "b", TaskState::Ready).with_timestamp(evs[2].1.timestamp));
    assert_eq!(store.events("r2", 2, 100).unwrap().len(), 1, "after filters");
    assert_eq!(store.events("r2", 0, 2).unwrap().len(), 2, "limit applies");
}

pub fn cancel_flag(store: &dyn Store) {
    create(store, "r3", 0, &["a"]);
    assert!(!store.cancel_requested("r3").unwrap());
    store.request_cancel("r3").unwrap();
    assert!(store.cancel_requested("r3").unwrap());
    store.clear_cancel("r3").unwrap();
    assert!(!store.cancel_requested("r3").unwrap());
    assert!(matches!(store.request_cancel("missing"), Err(StoreError::NoSuchRun(_))));
}

pub fn resolves_run_ids(store: &dyn Store) {
    create(store, "20260101-000000-aaaa", 30, &["a"]);
    create(store, "20260101-000100-aaab", 20, &["a"]);
    create(store, "20260102-000000-bbbb", 10, &["a"]);
    assert_eq!(store.resolve(None).unwrap(), "20260102-000000-bbbb");
    assert_eq!(store.resolve(Some("latest")).unwrap(), "20260102-000000-bbbb");
    assert_eq!(store.resolve(Some("20260101-000000")).unwrap(), "20260101-000000-aaaa");
    assert_eq!(store.resolve(Some("bbbb")).unwrap(), "20260102-000000-bbbb", "suffix works");
    assert!(matches!(store.resolve(Some("20260101")), Err(StoreError::Ambiguous { .. })));
    assert!(matches!(store.resolve(Some("zzz")), Err(StoreError::NoSuchRun(_))));
    let listed: Vec<_> = store.runs(2).unwrap().into_iter().map(|r| r.run_id).collect();
    assert_eq!(listed, ["20260102-000000-bbbb", "20260101-000100-aaab"], "newest first, limited");
}

pub fn fences_stale_lease_holders(store: &dyn Store) {
    use std::time::Duration as D;
    create(store, "r4", 0, &["a"]);
    store.acquire_lease("r4", "first", D::from_secs(30), false).unwrap();
    store.acquire_lease("r4", "first", D::from_secs(30), false).expect("the holder renews");
    let err = store.acquire_lease("r4", "second", D::from_secs(30), false).unwrap_err();
    assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
    let write = |token: &str| Batch {
        lease: Some(token.into()),
        tasks: vec![task("a", TaskState::Running)],
        events: vec![event("r4", "a", TaskState::Running)],
        ..Batch::default()
    };
    assert!(matches!(store.apply("r4", &write("second")), Err(StoreError::Fenced { .. })));
    assert_eq!(store.tasks("r4").unwrap()[0].state, TaskState::Pending, "a rejected write changes nothing");
    let evs = store.events("r4", 0, 10).unwrap();
    assert!(
        matches!(&evs[..], [(_, Event { kind: EventKind::WriteRejected { lease, .. }, .. })] if lease == "second"),
        "the rejection is recorded: {evs:?}"
    );
    store.apply("r4", &write("first")).unwrap();
    assert_eq!(store.tasks("r4").unwrap()[0].state, TaskState::Running);
    // A verified-dead holder's lease can be taken over at once.
    store.acquire_lease("r4", "third", D::from_secs(30), true).unwrap();
    assert!(matches!(store.apply("r4", &write("first")), Err(StoreError::Fenced { .. })));
}

pub fn leases_expire_by_the_store_clock(store: &dyn Store) {
    use std::time::Duration as D;
    create(store, "r5", 0, &["a"]);
    store.acquire_lease("r5", "first", D::from_millis(100), false).unwrap();
    swarm_testkit::wait_until(D::from_secs(5), "the lease to expire", || {
        store.acquire_lease("r5", "second", D::from_secs(30), false).is_ok()
    });
}

trait TestExt {
    fn clone_with_started(&self, at: chrono::DateTime<Utc>) -> Self;
}
impl TestExt for RunRecord {
    fn clone_with_started(&self, at: chrono::DateTime<Utc>) -> Self {
        RunRecord { started_at: at, ..self.clone() }
    }
}
trait EventExt {
    fn with_timestamp(self, at: chrono::DateTime<Utc>) -> Self;
}
impl EventExt for Event {
    fn with_timestamp(self, at: chrono::DateTime<Utc>) -> Self {
        Event { timestamp: at, ..self }
    }
}

macro_rules! backend_tests {
    ($backend:ident, $open:expr) => {
        mod $backend {
            use super::*;
            fn open() -> (Arc<dyn Store>, Box<dyn std::any::Any>) {
                $open
            }
            #[test]
            fn round_trips_runs_and_tasks() {
                let (s, _guard) = open();
                super::round_trips_runs_and_tasks(&*s);
            }
            #[test]
            fn applies_batches_atomically_and_in_order() {
                let (s, _guard) = open();
                super::applies_batches_atomically_and_in_order(&*s);
            }
            #[test]
            fn cancel_flag() {
                let (s, _guard) = open();
                super::cancel_flag(&*s);
            }
            #[test]
            fn fences_stale_lease_holders() {
                let (s, _guard) = open();
                super::fences_stale_lease_holders(&*s);
            }
            #[test]
            fn leases_expire_by_the_store_clock() {
                let (s, _guard) = open();
                super::leases_expire_by_the_store_clock(&*s);
            }
            #[test]
            fn resolves_run_ids() {
                let (s, _guard) = open();
                super::resolves_run_ids(&*s);
            }
        }
    };
}

backend_tests!(sqlite, {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(swarm_store::SqliteStore::open(&dir.path().join("s.db")).unwrap());
    (store, Box::new(dir))
});

#[test]
fn sqlite_second_process_view_sees_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let writer = swarm_store::SqliteStore::open(&path).unwrap();
    let reader = swarm_store::SqliteStore::open(&path).unwrap();
    create(&writer, "r", 0, &["a"]);
    writer.apply("r", &Batch { tasks: vec![task("a", TaskState::Running)], ..Batch::default() }).unwrap();
    assert_eq!(reader.tasks("r").unwrap()[0].state, TaskState::Running);
}

#[test]
fn sqlite_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(swarm_store::SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'", []).unwrap();
    drop(conn);
    let err = swarm_store::SqliteStore::open(&path).err().expect("newer schema refused");
    assert!(matches!(err, StoreError::SchemaTooNew { found: 99, .. }), "{err}");
}

#[test]
fn sqlite_reports_corrupt_documents_with_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = swarm_store::SqliteStore::open(&path).unwrap();
    create(&store, "r", 0, &["a"]);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE tasks SET doc='{not json' WHERE task_id='a'", []).unwrap();
    let err = store.tasks("r").unwrap_err();
    assert!(err.to_string().contains("tasks[r/a]"), "{err}");
}

backend_tests!(redis, {
    let server = swarm_testkit::RedisServer::start();
    let store: Arc<dyn Store> = Arc::new(swarm_store::RedisStore::open(&server.url()).unwrap());
    (store, Box::new(server))
});

#[test]
fn redis_unreachable_names_the_address_without_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("redis://alice:s3cret@127.0.0.1:{port}/2");
    let err = swarm_store::RedisStore::open(&url).err().expect("nothing listens there");
    let text = err.to_string();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("s3cret"), "password leaked: {text}");
}

#[test]
fn redis_reconnects_after_a_restart() {
    let mut server = swarm_testkit::RedisServer::start_persistent();
    let store = swarm_store::RedisStore::open(&server.url()).unwrap();
    create(&store, "r", 0, &["a"]);
    server.restart();
    store.apply("r", &Batch { tasks: vec![task("a", TaskState::Running)], ..Batch::default() }).unwrap();
    assert_eq!(store.tasks("r").unwrap()[0].state, TaskState::Running);
}
