//! The store conformance suite: every backend must pass the same checks. A new backend is a new
//! `backend_tests!` line at the bottom.

use chrono::{Duration, Utc};
use serde_json::json;
use std::sync::Arc;
use swarm_core::event::{Event, EventKind};
use swarm_core::plan::{Plan, Task, Workdir};
use swarm_core::report::{AttemptReport, RunRecord, TaskReport};
use swarm_core::router::Cooldown;
use swarm_core::state::{Reason, RunState, TaskState};
use swarm_core::state_doc::{Actor, StateOp};
use swarm_store::{
    Batch, Bucket, DayWindow, Learned, ModelLimits, Reservation, StandingQuery, Store, StoreError, DAY_MS,
    MINUTE_MS, NEVER, TRIM_MS,
};

/// Opens another handle on the same backing store (another connection, as another process would).
type Reopen = Arc<dyn Fn() -> Arc<dyn Store> + Send + Sync>;

fn plan(ids: &[&str]) -> Plan {
    Plan {
        name: "p".into(),
        namespace: "ns".into(),
        concurrency: Some(2),
        brief: String::new(),
        state: None,
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
                workdir: Some(Workdir::Shared),
                role: None,
                handoff: None,
                on_conflict: None,
                labels: Default::default(),
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
        allow_paid: false,
        workers: false,
        owner: None,
        spec: plan(ids),
        git: None,
    }
}

fn task(id: &str, state: TaskState) -> TaskReport {
    TaskReport { state, ..TaskReport::new(id, "exec") }
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
        worker: Some("w1".into()),
        log: Some("/tmp/a.1.log".into()),
        workdir: Some("/tmp".into()),
        completion: None,
        check_output: None,
        warnings: vec![],
        failure_class: None,
        retry_after_ms: None,
        session_id: None,
        requests: vec![],
        kind: None,
        queued_at: Some(Utc::now()),
        checks_at: None,
        merging_at: None,
        model_waits: vec![],
    });
    let mut run = record("r2", 0, &["a", "b"]);
    run.state = RunState::Failed;
    let batch = Batch {
        id: None,
        lease: None,
        expect: vec![],
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
    store.acquire_lease("r4", "first", D::from_secs(30), None).unwrap();
    store.acquire_lease("r4", "first", D::from_secs(30), None).expect("the holder renews");
    let err = store.acquire_lease("r4", "second", D::from_secs(30), None).unwrap_err();
    assert!(matches!(&err, StoreError::Fenced { holder, .. } if holder == "first"), "{err:?}");
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
    // A verified-dead holder's lease can be taken over at once, but only from that holder.
    assert_eq!(store.lease_holder("r4").unwrap().as_deref(), Some("first"));
    let err = store.acquire_lease("r4", "third", D::from_secs(30), Some("someone-else")).unwrap_err();
    assert!(matches!(&err, StoreError::Fenced { holder, .. } if holder == "first"), "{err:?}");
    store.acquire_lease("r4", "third", D::from_secs(30), Some("first")).unwrap();
    assert!(matches!(store.apply("r4", &write("first")), Err(StoreError::Fenced { .. })));
    // A second taker-over of the same dead holder finds the lease moved on: it loses.
    let err = store.acquire_lease("r4", "fourth", D::from_secs(30), Some("first")).unwrap_err();
    assert!(matches!(&err, StoreError::Fenced { holder, .. } if holder == "third"), "{err:?}");
}

pub fn leases_expire_by_the_store_clock(store: &dyn Store) {
    use std::time::Duration as D;
    create(store, "r5", 0, &["a"]);
    store.acquire_lease("r5", "first", D::from_millis(100), None).unwrap();
    swarm_testkit::wait_until(D::from_secs(5), "the lease to expire", || {
        store.acquire_lease("r5", "second", D::from_secs(30), None).is_ok()
    });
}

pub fn state_get_set_delete_list(store: &dyn Store) {
    assert!(store.state_get("ns", "a").unwrap().is_none());
    let first = store.state_set("ns", "a", &json!({ "n": 1 }), None, None).unwrap();
    assert_eq!((first.key.as_str(), first.version, &first.value), ("a", 1, &json!({ "n": 1 })));
    assert_eq!(first.updated_by, None);
    assert_eq!(store.state_get("ns", "a").unwrap(), Some(first.clone()), "get returns what set stored");
    let second = store.state_set("ns", "a", &json!("two"), None, None).unwrap();
    assert_eq!(second.version, 2, "every write bumps the version");
    assert!(second.updated_at >= first.updated_at);
    for (key, value) in
        [("b/1", json!(null)), ("c", json!([1, { "x": "y" }])), ("b/2", json!(2.5)), ("b%", json!(true))]
    {
        store.state_set("ns", key, &value, None, None).unwrap();
        assert_eq!(store.state_get("ns", key).unwrap().unwrap().value, value, "{key} round-trips");
    }
    let keys = |prefix: &str| -> Vec<String> {
        store.state_list("ns", prefix).unwrap().into_iter().map(|e| e.key).collect()
    };
    assert_eq!(keys(""), ["a", "b%", "b/1", "b/2", "c"], "sorted by key");
    assert_eq!(keys("b/"), ["b/1", "b/2"]);
    assert_eq!(keys("b%"), ["b%"], "a prefix is literal text, not a pattern");
    assert_eq!(keys("B"), Vec::<String>::new(), "prefixes are case-sensitive");
    assert!(store.state_list("other", "").unwrap().is_empty(), "namespaces are separate");
    assert!(store.state_get("other", "a").unwrap().is_none());
    assert_eq!(store.state_set("other", "a", &json!(0), None, None).unwrap().version, 1);
    assert_eq!(
        store.state_get("ns", "a").unwrap().unwrap().version,
        2,
        "the other namespace's `a` is untouched"
    );

    assert!(store.state_delete("ns", "a", None, None).unwrap(), "existed");
    assert!(store.state_get("ns", "a").unwrap().is_none());
    assert!(!store.state_delete("ns", "a", None, None).unwrap(), "already gone");
    assert_eq!(store.state_set("ns", "a", &json!(1), None, None).unwrap().version, 1, "recreated at 1");
}

pub fn state_compare_and_set(store: &dyn Store) {
    let created = store.state_set("ns", "k", &json!("v1"), Some(0), None).unwrap();
    assert_eq!(created.version, 1, "Some(0) creates an absent key");
    let err = store.state_set("ns", "k", &json!("again"), Some(0), None).unwrap_err();
    assert!(
        matches!(&err, StoreError::VersionConflict { key, expected: 0, found: 1 } if key == "k"),
        "create-only on an existing key: {err:?}"
    );
    assert_eq!(store.state_set("ns", "k", &json!("v2"), Some(1), None).unwrap().version, 2);
    let err = store.state_set("ns", "k", &json!("stale"), Some(1), None).unwrap_err();
    assert!(matches!(&err, StoreError::VersionConflict { expected: 1, found: 2, .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("`k`") && text.contains("version 1") && text.contains("version 2"), "{text}");
    assert_eq!(store.state_get("ns", "k").unwrap().unwrap().value, json!("v2"), "a lost CAS writes nothing");
    let err = store.state_set("ns", "absent", &json!(1), Some(3), None).unwrap_err();
    assert!(matches!(&err, StoreError::VersionConflict { expected: 3, found: 0, .. }), "{err:?}");
    assert!(store.state_get("ns", "absent").unwrap().is_none());

    let err = store.state_delete("ns", "k", Some(1), None).unwrap_err();
    assert!(matches!(&err, StoreError::VersionConflict { expected: 1, found: 2, .. }), "{err:?}");
    assert!(store.state_get("ns", "k").unwrap().is_some(), "a lost conditional delete deletes nothing");
    assert!(store.state_delete("ns", "k", Some(2), None).unwrap());
    let err = store.state_delete("ns", "k", Some(2), None).unwrap_err();
    assert!(matches!(&err, StoreError::VersionConflict { expected: 2, found: 0, .. }), "{err:?}");
    let versions: Vec<u64> = store.state_changes("ns", 0, 100).unwrap().iter().map(|c| c.version).collect();
    assert_eq!(versions, [1, 2, 2], "only the writes that won are in the feed");
}

pub fn state_change_feed(store: &dyn Store) {
    assert_eq!(store.state_last_seq("feed").unwrap(), 0);
    assert!(store.state_changes("feed", 0, 100).unwrap().is_empty());
    let by = Actor { host: Some("h".into()), pid: Some(7), ..Actor::default() };
    store.state_set("feed", "a", &json!(1), None, Some(&by)).unwrap();
    store.state_set("feed", "b", &json!(null), None, None).unwrap();
    store.state_set("feed", "a", &json!({ "n": 2 }), None, None).unwrap();
    store.state_delete("feed", "b", None, Some(&by)).unwrap();
    store.state_delete("feed", "never", None, None).unwrap();
    store.state_set("elsewhere", "a", &json!(1), None, None).unwrap();

    let all = store.state_changes("feed", 0, 100).unwrap();
    let summary: Vec<(u64, &str, StateOp, u64)> =
        all.iter().map(|c| (c.seq, c.key.as_str(), c.op, c.version)).collect();
    assert_eq!(
        summary,
        [
            (1, "a", StateOp::Set, 1),
            (2, "b", StateOp::Set, 1),
            (3, "a", StateOp::Set, 2),
            (4, "b", StateOp::Delete, 1)
        ],
        "in order; deleting an absent key is no change"
    );
    assert!(all.iter().all(|c| c.namespace == "feed"));
    assert_eq!(all[0].value, Some(json!(1)));
    assert_eq!(all[1].value, Some(json!(null)), "a set of null keeps its value");
    assert_eq!(all[3].value, None, "a delete has no value");
    assert_eq!((all[0].by.as_ref(), all[1].by.as_ref(), all[3].by.as_ref()), (Some(&by), None, Some(&by)));
    assert!(all.windows(2).all(|w| w[0].at <= w[1].at));
    let seqs = |after, limit| -> Vec<u64> {
        store.state_changes("feed", after, limit).unwrap().into_iter().map(|c| c.seq).collect()
    };
    assert_eq!(seqs(2, 100), [3, 4], "after filters");
    assert_eq!(seqs(0, 2), [1, 2], "limit applies");
    assert_eq!(seqs(4, 100), Vec::<u64>::new());
    assert_eq!(store.state_last_seq("feed").unwrap(), 4);
    assert_eq!(store.state_last_seq("elsewhere").unwrap(), 1, "each namespace counts its own");
}

pub fn state_refusals_are_in_the_feed_and_write_nothing(store: &dyn Store) {
    store.state_set("refuse", "research/a", &json!({"topic": "t"}), None, None).unwrap();
    let by = Actor { task_id: Some("write".into()), attempt: Some(1), ..Actor::default() };
    let change = store.state_refuse("refuse", "research/a", "only research may write", Some(&by)).unwrap();
    assert_eq!((change.seq, change.op, change.version), (2, StateOp::Refused, 0));
    let feed = store.state_changes("refuse", 0, 10).unwrap();
    assert_eq!(feed.len(), 2);
    assert_eq!(feed[1], change, "the feed holds the refusal as returned");
    assert_eq!(feed[1].reason.as_deref(), Some("only research may write"));
    assert_eq!(feed[1].by.as_ref(), Some(&by));
    assert_eq!(feed[1].value, None);
    let entry = store.state_get("refuse", "research/a").unwrap().unwrap();
    assert_eq!((entry.version, entry.value), (1, json!({"topic": "t"})), "nothing written");
    assert_eq!(store.state_last_seq("refuse").unwrap(), 2);
    let next = store.state_set("refuse", "research/a", &json!(2), None, None).unwrap();
    assert_eq!(next.version, 2);
    assert_eq!(store.state_changes("refuse", 2, 10).unwrap()[0].seq, 3, "seq goes on after a refusal");
}

pub fn state_changes_reach_the_run_events(store: &dyn Store) {
    create(store, "r6", 0, &["a"]);
    let by = Actor {
        run_id: Some("r6".into()),
        task_id: Some("a".into()),
        attempt: Some(2),
        host: Some("h".into()),
        pid: Some(42),
    };
    let entry = store.state_set("ns", "k", &json!({ "done": true }), None, Some(&by)).unwrap();
    assert_eq!(entry.updated_by.as_ref(), Some(&by));
    assert_eq!(store.state_get("ns", "k").unwrap().unwrap().updated_by, Some(by.clone()));
    assert!(store.state_set("ns", "k", &json!(0), Some(7), Some(&by)).is_err());
    store.state_delete("ns", "k", None, Some(&by)).unwrap();
    // A run of another namespace, or none at all, is not told.
    store.state_set("other", "k", &json!(1), None, Some(&by)).unwrap();
    let ghost = Actor { run_id: Some("no-such-run".into()), ..by.clone() };
    store.state_set("ns", "k", &json!(1), None, Some(&ghost)).unwrap();

    let kinds: Vec<EventKind> =
        store.events("r6", 0, 100).unwrap().into_iter().map(|(_, e)| e.kind).collect();
    let changed = |op: &str, version| EventKind::StateChanged {
        key: "k".into(),
        op: op.into(),
        version,
        task: Some("a".into()),
        attempt: Some(2),
    };
    assert_eq!(kinds, [changed("set", 1), changed("delete", 1)], "one event per change that happened");
    // The orchestrator's own events keep counting after them.
    store
        .apply("r6", &Batch { events: vec![event("r6", "a", TaskState::Ready)], ..Batch::default() })
        .unwrap();
    let seqs: Vec<u64> = store.events("r6", 0, 100).unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(seqs, [1, 2, 3]);
}

/// Many writers, each with its own connection, increment one counter by read-then-CAS: every
/// transition has exactly one winner, so no increment is lost.
/// A batch applied twice (its answer was lost, the writer retried) is written once.
pub fn replayed_batches_apply_once(store: &dyn Store) {
    create(store, "r6", 0, &["a"]);
    let batch = Batch {
        id: Some("lease#1".into()),
        expect: vec![("a".into(), TaskState::Pending)],
        tasks: vec![task("a", TaskState::Running)],
        events: vec![event("r6", "a", TaskState::Running)],
        ..Batch::default()
    };
    store.apply("r6", &batch).unwrap();
    store.apply("r6", &batch).expect("the replay is recognised, not refused");
    assert_eq!(store.events("r6", 0, 100).unwrap().len(), 1, "events written once");
    let next = Batch {
        id: Some("lease#2".into()),
        expect: vec![("a".into(), TaskState::Running)],
        tasks: vec![task("a", TaskState::Succeeded)],
        ..Batch::default()
    };
    store.apply("r6", &next).unwrap();
    assert_eq!(store.tasks("r6").unwrap()[0].state, TaskState::Succeeded);
}

/// One batch with thousands of tasks and events (the first batch of a wide plan).
pub fn huge_batches_apply(store: &dyn Store) {
    let ids: Vec<String> = (0..5000).map(|i| format!("t{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    create(store, "r7", 0, &refs);
    let batch = Batch {
        expect: ids.iter().map(|id| (id.clone(), TaskState::Pending)).collect(),
        tasks: ids.iter().map(|id| task(id, TaskState::Ready)).collect(),
        events: ids.iter().map(|id| event("r7", id, TaskState::Ready)).collect(),
        ..Batch::default()
    };
    store.apply("r7", &batch).unwrap();
    assert!(store.tasks("r7").unwrap().iter().all(|t| t.state == TaskState::Ready));
    let evs = store.events("r7", 0, usize::MAX).unwrap();
    assert_eq!(evs.len(), 5000);
    assert!(evs.windows(2).all(|w| w[1].0 == w[0].0 + 1), "sequence numbers are contiguous");
}

/// Many writers race on each transition of one task; exactly one wins each, the rest are refused
/// (and their refusals recorded), and the task ends in the winners' state.
pub fn concurrent_transitions_have_exactly_one_winner(reopen: &Reopen) {
    const WRITERS: usize = 8;
    let store = reopen();
    create(&*store, "race", 0, &["a"]);
    let path = [TaskState::Pending, TaskState::Ready, TaskState::Running, TaskState::Succeeded];
    let mut refused = 0;
    for step in path.windows(2) {
        let (from, to) = (step[0], step[1]);
        let barrier = Arc::new(std::sync::Barrier::new(WRITERS));
        let outcomes: Vec<bool> = (0..WRITERS)
            .map(|w| {
                let (mine, barrier) = (reopen(), barrier.clone());
                std::thread::spawn(move || {
                    let batch = Batch {
                        expect: vec![("a".into(), from)],
                        tasks: vec![task("a", to)],
                        events: vec![event("race", "a", to)],
                        ..Batch::default()
                    };
                    barrier.wait();
                    match mine.apply("race", &batch) {
                        Ok(()) => true,
                        Err(StoreError::Conflict { task, expected, found, .. }) => {
                            assert_eq!(
                                (task.as_str(), expected.as_str()),
                                ("a", from.as_str()),
                                "writer {w}"
                            );
                            assert_eq!(found, to.as_str(), "writer {w} lost to the winner's write");
                            false
                        }
                        Err(e) => panic!("writer {w}: unexpected error {e}"),
                    }
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        assert_eq!(outcomes.iter().filter(|w| **w).count(), 1, "{from} -> {to}: exactly one winner");
        refused += WRITERS - 1;
        assert_eq!(store.tasks("race").unwrap()[0].state, to);
    }
    let evs = store.events("race", 0, 1000).unwrap();
    let applied = evs.iter().filter(|(_, e)| matches!(e.kind, EventKind::TaskState { .. })).count();
    let rejected = evs.iter().filter(|(_, e)| matches!(e.kind, EventKind::WriteRejected { .. })).count();
    assert_eq!(
        (applied, rejected),
        (path.len() - 1, refused),
        "each winner's event once, each refusal recorded"
    );
}

pub fn state_cas_has_no_lost_updates(reopen: &Reopen) {
    const THREADS: u32 = 8;
    const ROUNDS: usize = 50;
    let store = reopen();
    store.state_set("race", "counter", &json!({ "n": 0 }), Some(0), None).unwrap();
    let barrier = Arc::new(std::sync::Barrier::new(THREADS as usize));
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (mine, barrier) = (reopen(), barrier.clone());
            std::thread::spawn(move || {
                let by = Actor { attempt: Some(t), ..Actor::default() };
                barrier.wait();
                let mut wins = 0u64;
                for _ in 0..ROUNDS {
                    let seen = mine.state_get("race", "counter").unwrap().expect("counter exists");
                    let n = seen.value["n"].as_u64().expect("counter is a number");
                    match mine.state_set(
                        "race",
                        "counter",
                        &json!({ "n": n + 1 }),
                        Some(seen.version),
                        Some(&by),
                    ) {
                        Ok(e) => {
                            assert_eq!(e.version, seen.version + 1);
                            wins += 1;
                        }
                        Err(StoreError::VersionConflict { expected, found, .. }) => {
                            assert_eq!(expected, seen.version);
                            assert!(found > expected, "lost only to a newer version: {found} vs {expected}");
                        }
                        Err(e) => panic!("writer {t}: {e}"),
                    }
                }
                wins
            })
        })
        .collect();
    let wins: u64 = writers.into_iter().map(|w| w.join().expect("writer thread")).sum();
    let end = store.state_get("race", "counter").unwrap().unwrap();
    assert!(wins > 0);
    assert_eq!(end.value["n"], json!(wins), "the counter counts every successful CAS");
    assert_eq!(end.version, 1 + wins);
    let versions: Vec<u64> =
        store.state_changes("race", 0, 10_000).unwrap().iter().map(|c| c.version).collect();
    assert_eq!(versions, (1..=1 + wins).collect::<Vec<_>>(), "each version was written exactly once");
}

const FLASH: &str = "gemini/gemini-2.5-flash";
const FREE: &str = "openrouter/deepseek/deepseek-chat-v3-0324:free";

/// Usage-only queries of `keys`.
fn plain(keys: &[&str]) -> Vec<StandingQuery> {
    keys.iter().map(|k| StandingQuery::plain(*k)).collect()
}

fn granted(r: Result<Reservation, StoreError>) -> u64 {
    match r {
        Ok(Reservation::Granted { at_ms }) => at_ms,
        other => panic!("expected a grant, got {other:?}"),
    }
}

fn rpm(n: u32) -> ModelLimits {
    ModelLimits { rpm: Some(n), ..ModelLimits::default() }
}

pub fn model_rpm_is_a_sliding_minute(store: &dyn Store) {
    let limits = rpm(3);
    let ats: Vec<u64> = (0..3).map(|_| granted(store.model_reserve("ns", FLASH, 10, &limits, &[]))).collect();
    let oldest = *ats.iter().min().unwrap();
    assert_eq!(
        store.model_reserve("ns", FLASH, 10, &limits, &[]).unwrap(),
        Reservation::Full { limit: "rpm", free_at_ms: oldest + MINUTE_MS },
        "the oldest request leaves the window a minute after it was made"
    );
    let standing = &store.model_standings("ns", &plain(&[FLASH])).unwrap()[0];
    assert_eq!(
        (standing.minute_requests, standing.minute_tokens, standing.day_requests, standing.day_tokens),
        (3, 30, 3, 30),
        "a refused request is not recorded: {standing:?}"
    );
    assert!(standing.now_ms >= *ats.iter().max().unwrap());
    // Limits come with each call: a higher one has room again.
    granted(store.model_reserve("ns", FLASH, 10, &rpm(4), &[]));
    // Four recorded, room for two: the third oldest must leave too.
    assert_eq!(
        store.model_reserve("ns", FLASH, 10, &rpm(2), &[]).unwrap(),
        Reservation::Full { limit: "rpm", free_at_ms: ats[2] + MINUTE_MS },
        "a lowered limit waits for enough requests to leave"
    );
    assert_eq!(
        store.model_reserve("ns", FLASH, 10, &rpm(0), &[]).unwrap(),
        Reservation::Full { limit: "rpm", free_at_ms: NEVER }
    );
}

pub fn model_tpm_sums_tokens(store: &dyn Store) {
    let tpm = ModelLimits { tpm: Some(100), ..ModelLimits::default() };
    let ats: Vec<u64> =
        [10, 40, 50].iter().map(|t| granted(store.model_reserve("ns", FLASH, *t, &tpm, &[]))).collect();
    assert_eq!(
        store.model_reserve("ns", FLASH, 45, &tpm, &[]).unwrap(),
        Reservation::Full { limit: "tpm", free_at_ms: ats[1] + MINUTE_MS },
        "45 tokens fit once the first two requests (50 tokens) have left"
    );
    assert_eq!(
        store.model_reserve("ns", FLASH, 5, &tpm, &[]).unwrap(),
        Reservation::Full { limit: "tpm", free_at_ms: ats[0] + MINUTE_MS }
    );
    assert_eq!(
        store.model_reserve("ns", FREE, 101, &tpm, &[]).unwrap(),
        Reservation::Full { limit: "tpm", free_at_ms: NEVER },
        "more tokens than the window holds never fit"
    );
    granted(store.model_reserve("ns", FLASH, 0, &tpm, &[]));
    let standing = &store.model_standings("ns", &plain(&[FLASH])).unwrap()[0];
    assert_eq!((standing.minute_requests, standing.minute_tokens), (4, 100));
}

pub fn model_rpd_counts_the_day(store: &dyn Store) {
    let limits = ModelLimits { rpm: Some(5), rpd: Some(2), tpm: None, day: None };
    let ats: Vec<u64> = (0..2).map(|_| granted(store.model_reserve("ns", FLASH, 1, &limits, &[]))).collect();
    assert_eq!(
        store.model_reserve("ns", FLASH, 1, &limits, &[]).unwrap(),
        Reservation::Full { limit: "rpd", free_at_ms: ats.iter().min().unwrap() + DAY_MS }
    );
    // Both full: the request waits for the window that frees last.
    let both = ModelLimits { rpm: Some(2), rpd: Some(2), tpm: Some(2), day: None };
    assert!(matches!(
        store.model_reserve("ns", FLASH, 1, &both, &[]).unwrap(),
        Reservation::Full { limit: "rpd", .. }
    ));
    let standing = &store.model_standings("ns", &plain(&[FLASH])).unwrap()[0];
    assert_eq!((standing.day_requests, standing.day_tokens), (2, 2));
}

pub fn model_limits_none_are_unlimited(store: &dyn Store) {
    for _ in 0..50 {
        granted(store.model_reserve("ns", FLASH, 1_000_000, &ModelLimits::default(), &[]));
    }
    let standing = &store.model_standings("ns", &plain(&[FLASH])).unwrap()[0];
    assert_eq!((standing.minute_requests, standing.minute_tokens), (50, 50_000_000));
}

pub fn model_budgets_are_per_namespace_and_model(store: &dyn Store) {
    let one = rpm(1);
    let twin = format!("{FLASH}:free"); // its keys must not be FLASH's
    granted(store.model_reserve("a", FLASH, 1, &one, &[]));
    assert!(matches!(store.model_reserve("a", FLASH, 1, &one, &[]).unwrap(), Reservation::Full { .. }));
    granted(store.model_reserve("b", FLASH, 1, &one, &[]));
    granted(store.model_reserve("a", FREE, 1, &one, &[]));
    granted(store.model_reserve("a", &twin, 1, &one, &[]));
    let now = store.now_ms().unwrap();
    store.model_cool("a", FREE, &Cooldown::cooling(now + 60_000, "rate_limited")).unwrap();
    assert!(matches!(store.model_reserve("a", FREE, 1, &rpm(9), &[]).unwrap(), Reservation::Cooling(_)));
    granted(store.model_reserve("b", FREE, 1, &one, &[]));
    granted(store.model_reserve("a", "gemini/gemini-2.5-flash-lite", 1, &one, &[]));
    let standings = store.model_standings("a", &plain(&[FLASH, FREE, &twin])).unwrap();
    let summary: Vec<(&str, u64, bool)> =
        standings.iter().map(|s| (s.model.as_str(), s.minute_requests, s.cooldown.is_some())).collect();
    assert_eq!(
        summary,
        [(FLASH, 1, false), (FREE, 1, true), (twin.as_str(), 1, false)],
        "in the order asked"
    );
    assert!(store.model_standings("b", &plain(&[FREE])).unwrap()[0].cooldown.is_none());
    assert!(store.model_standings("a", &plain(&[])).unwrap().is_empty());
}

pub fn model_cooldowns_keep_the_longer_and_end(store: &dyn Store) {
    let now = store.now_ms().unwrap();
    store.model_cool("ns", FLASH, &Cooldown::cooling(now + 60_000, "quota_exhausted")).unwrap();
    store.model_cool("ns", FLASH, &Cooldown::cooling(now + 1_000, "rate_limited")).unwrap();
    let cooling = |model: &str| store.model_reserve("ns", model, 1, &ModelLimits::default(), &[]).unwrap();
    assert_eq!(
        cooling(FLASH),
        Reservation::Cooling(Cooldown::cooling(now + 60_000, "quota_exhausted")),
        "a shorter cooldown does not cut a longer one"
    );
    store.model_cool("ns", FLASH, &Cooldown::cooling(now + 120_000, "overloaded")).unwrap();
    store.model_cool("ns", FLASH, &Cooldown::cooling(now.saturating_sub(1), "over already")).unwrap();
    assert_eq!(cooling(FLASH), Reservation::Cooling(Cooldown::cooling(now + 120_000, "overloaded")));

    let short = store.now_ms().unwrap() + 1_000;
    store.model_cool("ns", FREE, &Cooldown::cooling(short, "rate_limited")).unwrap();
    assert_eq!(cooling(FREE), Reservation::Cooling(Cooldown::cooling(short, "rate_limited")));
    let standings = store.model_standings("ns", &plain(&[FLASH, FREE, "never/seen"])).unwrap();
    assert_eq!(standings[0].cooldown, Some(Cooldown::cooling(now + 120_000, "overloaded")));
    assert_eq!(standings[1].cooldown, Some(Cooldown::cooling(short, "rate_limited")));
    assert_eq!(
        standings[2],
        swarm_store::ModelStanding {
            model: "never/seen".into(),
            now_ms: standings[2].now_ms,
            ..Default::default()
        }
    );
    assert!(
        standings.iter().all(|s| s.now_ms >= now && s.now_ms == standings[0].now_ms),
        "one clock reading"
    );
    swarm_testkit::wait_until(std::time::Duration::from_secs(5), "the short cooldown to end", || {
        matches!(cooling(FREE), Reservation::Granted { .. })
    });
    let after = &store.model_standings("ns", &plain(&[FREE])).unwrap()[0];
    assert!(after.now_ms >= short);
    assert_eq!(after.cooldown, None);
    assert_eq!(after.minute_requests, 1, "refusals while cooling are not recorded");
    // "Until further notice" is as far as both backends count exactly.
    store.model_cool("ns", "forever", &Cooldown::cooling(u64::MAX, "auth")).unwrap();
    assert_eq!(cooling("forever"), Reservation::Cooling(Cooldown::cooling(1 << 53, "auth")));
    // An ended cooldown is replaced by any new one.
    let again = store.now_ms().unwrap() + 30_000;
    store.model_cool("ns", FREE, &Cooldown::cooling(again, "overloaded")).unwrap();
    assert_eq!(cooling(FREE), Reservation::Cooling(Cooldown::cooling(again, "overloaded")));
}

pub fn model_cooldowns_keep_their_kind(store: &dyn Store) {
    let now = store.now_ms().unwrap();
    let off = Cooldown::disabled(now, "auth: the provider refused the API key");
    store.model_cool("ns", FLASH, &off).unwrap();
    assert_eq!(store.model_standings("ns", &plain(&[FLASH])).unwrap()[0].cooldown, Some(off.clone()));
    assert_eq!(
        store.model_reserve("ns", FLASH, 1, &ModelLimits::default(), &[]).unwrap(),
        Reservation::Cooling(off),
        "a reservation says the kind too"
    );
}

pub fn model_day_window_counts_the_providers_day(store: &dyn Store) {
    // Two requests of the rolling day, then a provider day that began after them.
    granted(store.model_reserve("ns", FLASH, 1, &ModelLimits::default(), &[]));
    granted(store.model_reserve("ns", FLASH, 1, &ModelLimits::default(), &[]));
    let now = store.now_ms().unwrap();
    let day = DayWindow { start_ms: now + 1, end_ms: now + 3_600_000 };
    let limits = ModelLimits { rpd: Some(2), day: Some(day), ..ModelLimits::default() };
    // Wait for the store's clock to enter the new day.
    swarm_testkit::wait_until(std::time::Duration::from_secs(5), "the new day", || {
        store.now_ms().unwrap() > now + 1
    });
    granted(store.model_reserve("ns", FLASH, 1, &limits, &[]));
    granted(store.model_reserve("ns", FLASH, 1, &limits, &[]));
    assert_eq!(
        store.model_reserve("ns", FLASH, 1, &limits, &[]).unwrap(),
        Reservation::Full { limit: "rpd", free_at_ms: day.end_ms },
        "a provider's day frees at its end, all at once"
    );
    let q = StandingQuery { key: FLASH.into(), limits };
    let s = &store.model_standings("ns", &[q]).unwrap()[0];
    assert_eq!((s.day_requests, s.frees_at_ms), (2, Some(day.end_ms)));
    assert_eq!(store.model_standings("ns", &plain(&[FLASH])).unwrap()[0].day_requests, 4, "the rolling day");
}

pub fn model_groups_share_one_budget(store: &dyn Store) {
    let group = Bucket { key: "group:free".into(), limits: rpm(2) };
    granted(store.model_reserve("ns", FLASH, 1, &rpm(5), std::slice::from_ref(&group)));
    granted(store.model_reserve("ns", FREE, 1, &rpm(5), std::slice::from_ref(&group)));
    let third = store.model_reserve("ns", "other/model", 1, &rpm(5), std::slice::from_ref(&group)).unwrap();
    assert!(
        matches!(third, Reservation::Full { limit: "rpm", .. }),
        "the group's minute is spent: {third:?}"
    );
    // Nothing of the refused request was recorded anywhere; the models' own windows have room.
    let s = store.model_standings("ns", &plain(&[FLASH, FREE, "other/model", "group:free"])).unwrap();
    let counts: Vec<u64> = s.iter().map(|s| s.minute_requests).collect();
    assert_eq!(counts, [1, 1, 0, 2]);
    granted(store.model_reserve("ns", FLASH, 1, &rpm(5), &[]));
}

pub fn model_standings_say_when_a_full_window_frees(store: &dyn Store) {
    let first = granted(store.model_reserve("ns", FLASH, 1, &rpm(2), &[]));
    granted(store.model_reserve("ns", FLASH, 1, &rpm(2), &[]));
    let q = StandingQuery { key: FLASH.into(), limits: rpm(2) };
    let s = &store.model_standings("ns", &[q]).unwrap()[0];
    assert_eq!(s.frees_at_ms, Some(first + MINUTE_MS), "when the oldest request leaves the minute");
    let roomy = StandingQuery { key: FLASH.into(), limits: rpm(3) };
    assert_eq!(store.model_standings("ns", &[roomy]).unwrap()[0].frees_at_ms, None);
    assert_eq!(store.model_standings("ns", &plain(&[FLASH])).unwrap()[0].frees_at_ms, None);
    let never = StandingQuery { key: FLASH.into(), limits: rpm(0) };
    assert_eq!(store.model_standings("ns", &[never]).unwrap()[0].frees_at_ms, Some(NEVER));
}

pub fn model_learned_limits_are_kept_and_merged(store: &dyn Store) {
    assert_eq!(store.model_standings("ns", &plain(&[FLASH])).unwrap()[0].learned, None);
    let day = Learned { rpm: None, rpd: Some(20), source: "429: limit: 20 per day".into() };
    store.model_learn("ns", FLASH, &day).unwrap();
    let minute = Learned { rpm: Some(10), rpd: None, source: "429: limit: 10 per minute".into() };
    store.model_learn("ns", FLASH, &minute).unwrap();
    let learned = store.model_standings("ns", &plain(&[FLASH])).unwrap().remove(0).learned;
    assert_eq!(learned, Some(Learned { rpm: Some(10), rpd: Some(20), source: minute.source.clone() }));
    assert_eq!(store.model_standings("other", &plain(&[FLASH])).unwrap()[0].learned, None, "per namespace");
}

pub fn now_ms_is_the_wall_clock(store: &dyn Store) {
    let wall =
        || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let (before, now, after) = (wall(), store.now_ms().unwrap(), wall());
    assert!(now + 5_000 >= before && now <= after + 5_000, "store {now}, system {before}..{after}");
}

const RACE_RPM: u32 = 25;
const RACE_EACH: usize = 20;

/// Reservations of one racer: how many were granted (every refusal must be the rpm window).
fn race(store: &dyn Store) -> usize {
    (0..RACE_EACH)
        .filter(|_| match store.model_reserve("race", FLASH, 1, &rpm(RACE_RPM), &[]).unwrap() {
            Reservation::Granted { .. } => true,
            Reservation::Full { limit: "rpm", .. } => false,
            other => panic!("unexpected {other:?}"),
        })
        .count()
}

pub fn racing_reservers_share_one_budget(reopen: &Reopen) {
    const THREADS: usize = 8;
    let barrier = Arc::new(std::sync::Barrier::new(THREADS));
    let racers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (mine, barrier) = (reopen(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                race(&*mine)
            })
        })
        .collect();
    let granted: usize = racers.into_iter().map(|r| r.join().unwrap()).sum();
    assert_eq!(granted, RACE_RPM as usize, "exactly the budget is granted");
    let standing = &reopen().model_standings("race", &plain(&[FLASH])).unwrap()[0];
    assert_eq!(standing.minute_requests, u64::from(RACE_RPM));
}

/// Child processes of a test, killed if the test ends before they do.
struct Racers(Vec<std::process::Child>);
impl Drop for Racers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Two processes (this test binary again, running only `model_race_child`) race on `store`.
pub fn racing_processes_share_one_budget(store: &dyn Store) {
    const PROCESSES: usize = 2;
    let dir = tempfile::tempdir().unwrap();
    let mut racers = Racers(
        (0..PROCESSES)
            .map(|me| {
                std::process::Command::new(std::env::current_exe().unwrap())
                    .args(["--exact", "model_race_child", "--test-threads=1", "--quiet"])
                    .env("SWARM_RACE_STORE", store.describe())
                    .env("SWARM_RACE_DIR", dir.path())
                    .env("SWARM_RACE_ME", me.to_string())
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect(),
    );
    let ready = |me: usize| dir.path().join(format!("ready-{me}")).exists();
    swarm_testkit::wait_until(std::time::Duration::from_secs(60), "both racers to be ready", || {
        (0..PROCESSES).all(ready)
    });
    std::fs::write(dir.path().join("go"), "").unwrap();
    for c in &mut racers.0 {
        assert!(c.wait().unwrap().success(), "a racer failed");
    }
    let granted: usize = (0..PROCESSES)
        .map(|me| {
            std::fs::read_to_string(dir.path().join(format!("granted-{me}")))
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(granted, RACE_RPM as usize, "exactly the budget is granted across processes");
    assert_eq!(
        store.model_standings("race", &plain(&[FLASH])).unwrap()[0].minute_requests,
        u64::from(RACE_RPM)
    );
}

/// Not a check of its own: the body of a racing process that `racing_processes_share_one_budget`
/// starts (this binary again with `SWARM_RACE_STORE` set); without it, it does nothing.
#[test]
fn model_race_child() {
    let Ok(address) = std::env::var("SWARM_RACE_STORE") else { return };
    let dir = std::path::PathBuf::from(std::env::var("SWARM_RACE_DIR").unwrap());
    let me = std::env::var("SWARM_RACE_ME").unwrap();
    let address = swarm_store::Address::parse(&address, std::path::Path::new("/")).unwrap();
    let store = swarm_store::open(&address, swarm_store::Options::default()).unwrap();
    store.now_ms().unwrap(); // connected
    std::fs::write(dir.join(format!("ready-{me}")), "").unwrap();
    swarm_testkit::wait_until(std::time::Duration::from_secs(60), "the go", || dir.join("go").exists());
    std::fs::write(dir.join(format!("granted-{me}")), race(&*store).to_string()).unwrap();
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
            fn fixture() -> (Arc<dyn Store>, Box<dyn std::any::Any>, Reopen) {
                $open
            }
            fn open() -> (Arc<dyn Store>, Box<dyn std::any::Any>) {
                let (s, guard, _) = fixture();
                (s, guard)
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
            #[test]
            fn state_get_set_delete_list() {
                let (s, _guard) = open();
                super::state_get_set_delete_list(&*s);
            }
            #[test]
            fn state_compare_and_set() {
                let (s, _guard) = open();
                super::state_compare_and_set(&*s);
            }
            #[test]
            fn state_change_feed() {
                let (s, _guard) = open();
                super::state_change_feed(&*s);
            }
            #[test]
            fn state_refusals_are_in_the_feed_and_write_nothing() {
                let (s, _guard) = open();
                super::state_refusals_are_in_the_feed_and_write_nothing(&*s);
            }
            #[test]
            fn state_changes_reach_the_run_events() {
                let (s, _guard) = open();
                super::state_changes_reach_the_run_events(&*s);
            }
            #[test]
            fn replayed_batches_apply_once() {
                let (s, _guard) = open();
                super::replayed_batches_apply_once(&*s);
            }
            #[test]
            fn huge_batches_apply() {
                let (s, _guard) = open();
                super::huge_batches_apply(&*s);
            }
            #[test]
            fn concurrent_transitions_have_exactly_one_winner() {
                let (_s, _guard, reopen) = fixture();
                super::concurrent_transitions_have_exactly_one_winner(&reopen);
            }
            #[test]
            fn state_cas_has_no_lost_updates() {
                let (_s, _guard, reopen) = fixture();
                super::state_cas_has_no_lost_updates(&reopen);
            }
            #[test]
            fn model_rpm_is_a_sliding_minute() {
                let (s, _guard) = open();
                super::model_rpm_is_a_sliding_minute(&*s);
            }
            #[test]
            fn model_tpm_sums_tokens() {
                let (s, _guard) = open();
                super::model_tpm_sums_tokens(&*s);
            }
            #[test]
            fn model_rpd_counts_the_day() {
                let (s, _guard) = open();
                super::model_rpd_counts_the_day(&*s);
            }
            #[test]
            fn model_limits_none_are_unlimited() {
                let (s, _guard) = open();
                super::model_limits_none_are_unlimited(&*s);
            }
            #[test]
            fn model_budgets_are_per_namespace_and_model() {
                let (s, _guard) = open();
                super::model_budgets_are_per_namespace_and_model(&*s);
            }
            #[test]
            fn model_cooldowns_keep_the_longer_and_end() {
                let (s, _guard) = open();
                super::model_cooldowns_keep_the_longer_and_end(&*s);
            }
            #[test]
            fn model_cooldowns_keep_their_kind() {
                let (s, _guard) = open();
                super::model_cooldowns_keep_their_kind(&*s);
            }
            #[test]
            fn model_day_window_counts_the_providers_day() {
                let (s, _guard) = open();
                super::model_day_window_counts_the_providers_day(&*s);
            }
            #[test]
            fn model_groups_share_one_budget() {
                let (s, _guard) = open();
                super::model_groups_share_one_budget(&*s);
            }
            #[test]
            fn model_standings_say_when_a_full_window_frees() {
                let (s, _guard) = open();
                super::model_standings_say_when_a_full_window_frees(&*s);
            }
            #[test]
            fn model_learned_limits_are_kept_and_merged() {
                let (s, _guard) = open();
                super::model_learned_limits_are_kept_and_merged(&*s);
            }
            #[test]
            fn now_ms_is_the_wall_clock() {
                let (s, _guard) = open();
                super::now_ms_is_the_wall_clock(&*s);
            }
            #[test]
            fn racing_reservers_share_one_budget() {
                let (_s, _guard, reopen) = fixture();
                super::racing_reservers_share_one_budget(&reopen);
            }
            #[test]
            fn racing_processes_share_one_budget() {
                let (s, _guard) = open();
                super::racing_processes_share_one_budget(&*s);
            }
        }
    };
}

backend_tests!(sqlite, {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store: Arc<dyn Store> = Arc::new(swarm_store::SqliteStore::open(&path).unwrap());
    let reopen: Reopen = Arc::new(move || Arc::new(swarm_store::SqliteStore::open(&path).unwrap()));
    (store, Box::new(dir), reopen)
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
    let url = server.url();
    let store: Arc<dyn Store> = Arc::new(swarm_store::RedisStore::open(&url).unwrap());
    let reopen: Reopen = Arc::new(move || Arc::new(swarm_store::RedisStore::open(&url).unwrap()));
    (store, Box::new(server), reopen)
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

#[test]
fn redis_announces_new_events_on_the_namespace_channel() {
    let server = swarm_testkit::RedisServer::start();
    let store = swarm_store::RedisStore::open(&server.url()).unwrap();
    create(&store, "r", 0, &["a"]);
    let mut conn = ::redis::Client::open(server.url()).unwrap().get_connection().unwrap();
    let mut sub = conn.as_pubsub();
    sub.subscribe("swarm:{ns}:events").unwrap();
    sub.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let batch = Batch {
        events: vec![event("r", "a", TaskState::Ready), event("r", "a", TaskState::Running)],
        ..Batch::default()
    };
    store.apply("r", &batch).unwrap();
    let msg: String = sub.get_message().unwrap().get_payload().unwrap();
    assert_eq!(msg, "r 2", "run id and last event number");
}

#[test]
fn redis_event_retention_caps_the_stream() {
    let server = swarm_testkit::RedisServer::start();
    let store = swarm_store::RedisStore::open(&server.url()).unwrap().with_retention(10);
    create(&store, "r", 0, &["a"]);
    for _ in 0..200 {
        store
            .apply("r", &Batch { events: vec![event("r", "a", TaskState::Ready)], ..Batch::default() })
            .unwrap();
    }
    let kept = store.events("r", 0, usize::MAX).unwrap();
    assert!(kept.len() < 200, "old events trimmed, kept {}", kept.len());
    assert_eq!(kept.last().unwrap().0, 200, "the newest event is kept");
}

#[test]
fn sqlite_open_existing_never_creates_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("s.db");
    let err = swarm_store::SqliteStore::open_existing(&path).err().expect("no store there");
    assert!(matches!(err, StoreError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("swarm run"), "{err}");
    assert!(!dir.path().join("sub").exists(), "nothing created");
    drop(swarm_store::SqliteStore::open(&path).unwrap());
    let store = swarm_store::SqliteStore::open_existing(&path).unwrap();
    assert!(store.runs(10).unwrap().is_empty());
}

#[test]
fn sqlite_a_file_that_is_no_database_is_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    std::fs::write(&path, [0x5au8; 8192]).unwrap();
    for open in [swarm_store::SqliteStore::open, swarm_store::SqliteStore::open_existing] {
        let err = open(&path).err().expect("not a database");
        assert!(matches!(err, StoreError::Unusable { .. }), "{err}");
    }
}

#[test]
fn sqlite_a_deleted_or_replaced_file_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = swarm_store::SqliteStore::open(&path).unwrap();
    create(&store, "r", 0, &["a"]);
    store.acquire_lease("r", "t", std::time::Duration::from_secs(30), None).unwrap();
    std::fs::remove_file(&path).unwrap();
    let batch = Batch { tasks: vec![task("a", TaskState::Running)], ..Batch::default() };
    let err = store.apply("r", &batch).unwrap_err();
    assert!(matches!(err, StoreError::Replaced { .. }), "{err}");
    // Another store in its place.
    drop(swarm_store::SqliteStore::open(&path).unwrap());
    let err = store.acquire_lease("r", "t", std::time::Duration::from_secs(30), None).unwrap_err();
    assert!(matches!(err, StoreError::Replaced { .. }), "{err}");
    assert!(err.to_string().contains("deleted or replaced"), "{err}");
}

#[test]
fn redis_a_flushed_run_is_gone_and_its_lease_does_not_bring_it_back() {
    let server = swarm_testkit::RedisServer::start();
    let store = swarm_store::RedisStore::open(&server.url()).unwrap();
    create(&store, "r", 0, &["a"]);
    let ttl = std::time::Duration::from_secs(30);
    store.acquire_lease("r", "t", ttl, None).unwrap();
    let mut conn = ::redis::Client::open(server.url()).unwrap().get_connection().unwrap();
    let _: () = ::redis::cmd("FLUSHALL").query(&mut conn).unwrap();
    let err = store.acquire_lease("r", "t", ttl, None).unwrap_err();
    assert!(matches!(err, StoreError::NoSuchRun(_)), "{err}");
    let batch = Batch { tasks: vec![task("a", TaskState::Running)], ..Batch::default() };
    let err = store.apply("r", &batch).unwrap_err();
    assert!(matches!(err, StoreError::NoSuchRun(_)), "{err}");
    let keys: Vec<String> = ::redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    assert!(keys.is_empty(), "nothing written back: {keys:?}");
}

#[test]
fn redis_readers_write_nothing() {
    let server = swarm_testkit::RedisServer::start();
    let store = swarm_store::RedisStore::connect(&server.url(), false).unwrap();
    assert!(store.runs(10).unwrap().is_empty());
    let mut conn = ::redis::Client::open(server.url()).unwrap().get_connection().unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    assert!(keys.is_empty(), "a reader marked the server: {keys:?}");
}

#[test]
fn redis_refused_credentials_are_auth_errors() {
    let server = swarm_testkit::RedisServer::start_with_password("pw-1");
    let host = format!("127.0.0.1:{}", server.port);
    for url in
        [format!("redis://{host}"), format!("redis://:nope@{host}"), format!("redis://{host}?password=nope")]
    {
        let err = swarm_store::RedisStore::open(&url).err().expect("refused");
        assert!(matches!(err, StoreError::Auth { .. }), "{url}: {err}");
        assert!(!err.to_string().contains("nope"), "{err}");
    }
    swarm_store::RedisStore::open(&format!("redis://:pw-1@{host}")).unwrap();
    swarm_store::RedisStore::open(&format!("redis://{host}/0?password=pw-1")).unwrap();
}

/// The tables of a store written by swarm before model pacing (schema version 1 without
/// `model_cooldowns` and `model_requests`), verbatim.
const SQLITE_BEFORE_MODEL_PACING: &str = "
    CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE runs(
        run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, state TEXT NOT NULL,
        cancel_requested INTEGER NOT NULL DEFAULT 0, doc TEXT NOT NULL,
        lease TEXT, lease_until INTEGER NOT NULL DEFAULT 0, last_batch TEXT);
    CREATE TABLE tasks(
        run_id TEXT NOT NULL, task_id TEXT NOT NULL, ord INTEGER NOT NULL, state TEXT NOT NULL,
        doc TEXT NOT NULL, PRIMARY KEY(run_id, task_id));
    CREATE TABLE events(
        run_id TEXT NOT NULL, seq INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY(run_id, seq));
    CREATE INDEX runs_started ON runs(started_at);
    CREATE TABLE shared_state(
        namespace TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL, version INTEGER NOT NULL,
        PRIMARY KEY(namespace, key));
    CREATE TABLE state_changes(
        namespace TEXT NOT NULL, seq INTEGER NOT NULL, doc TEXT NOT NULL,
        PRIMARY KEY(namespace, seq));
    INSERT INTO meta(key, value) VALUES('schema_version', '1');";

#[test]
fn sqlite_a_store_from_before_model_pacing_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(SQLITE_BEFORE_MODEL_PACING).unwrap();
        let run = record("old", 5, &["a"]);
        conn.execute(
            "INSERT INTO runs(run_id, started_at, state, doc) VALUES('old', ?1, 'running', ?2)",
            rusqlite::params![run.started_at.to_rfc3339(), serde_json::to_string(&run).unwrap()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO tasks(run_id, task_id, ord, state, doc) VALUES('old', 'a', 0, 'pending', ?1)",
            [serde_json::to_string(&task("a", TaskState::Pending)).unwrap()],
        )
        .unwrap();
    }
    // A reader (`swarm status`, `swarm models`) opens it first.
    let reader = swarm_store::SqliteStore::open_existing(&path).unwrap();
    assert_eq!(reader.run("old").unwrap().unwrap().run_id, "old");
    assert_eq!(reader.tasks("old").unwrap()[0].state, TaskState::Pending);
    let standing = &reader.model_standings("ns", &plain(&[FLASH])).unwrap()[0];
    assert_eq!((standing.minute_requests, &standing.cooldown), (0, &None));
    let store = swarm_store::SqliteStore::open(&path).unwrap();
    granted(store.model_reserve("ns", FLASH, 7, &rpm(1), &[]));
    assert!(matches!(reader.model_reserve("ns", FLASH, 7, &rpm(1), &[]).unwrap(), Reservation::Full { .. }));
    store
        .model_cool("ns", FLASH, &Cooldown::cooling(store.now_ms().unwrap() + 60_000, "rate_limited"))
        .unwrap();
    assert!(reader.model_standings("ns", &plain(&[FLASH])).unwrap()[0].cooldown.is_some());
    store.apply("old", &Batch { tasks: vec![task("a", TaskState::Running)], ..Batch::default() }).unwrap();
    assert_eq!(reader.tasks("old").unwrap()[0].state, TaskState::Running);
    assert_eq!(store.health().unwrap().schema_version, 1, "an additive change keeps the major version");
}

#[test]
fn sqlite_cooldowns_from_before_kinds_read_as_they_were_meant() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let until = chrono::Utc::now().timestamp_millis() + 600_000;
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(SQLITE_BEFORE_MODEL_PACING).unwrap();
        conn.execute_batch(
            "CREATE TABLE model_cooldowns(namespace TEXT NOT NULL, model TEXT NOT NULL, until_ms INTEGER NOT NULL,
                reason TEXT NOT NULL, PRIMARY KEY(namespace, model));",
        )
        .unwrap();
        for (model, reason) in
            [(FLASH, "disabled: auth: the provider refused the API key"), (FREE, "rate_limited")]
        {
            conn.execute(
                "INSERT INTO model_cooldowns VALUES('ns', ?1, ?2, ?3)",
                rusqlite::params![model, until, reason],
            )
            .unwrap();
        }
    }
    let store = swarm_store::SqliteStore::open_existing(&path).unwrap();
    let standings = store.model_standings("ns", &plain(&[FLASH, FREE])).unwrap();
    let off = Cooldown {
        until_ms: until as u64,
        kind: swarm_core::router::CooldownKind::Disabled,
        reason: "auth: the provider refused the API key".into(),
    };
    assert_eq!(standings[0].cooldown, Some(off));
    assert_eq!(standings[1].cooldown, Some(Cooldown::cooling(until as u64, "rate_limited")));
}

#[test]
fn sqlite_requests_older_than_a_day_are_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = swarm_store::SqliteStore::open(&path).unwrap();
    let now = store.now_ms().unwrap() as i64;
    let conn = rusqlite::Connection::open(&path).unwrap();
    for (ns, at) in [("ns", now - TRIM_MS as i64 - 1), ("ns", now - DAY_MS as i64 + 60_000), ("other", 0)] {
        conn.execute(
            "INSERT INTO model_requests(namespace, model, at_ms, tokens) VALUES(?1, ?2, ?3, 5)",
            rusqlite::params![ns, FLASH, at],
        )
        .unwrap();
    }
    granted(store.model_reserve("ns", FLASH, 1, &ModelLimits::default(), &[]));
    let left: Vec<(String, i64)> = conn
        .prepare("SELECT namespace, at_ms FROM model_requests WHERE namespace='ns' ORDER BY at_ms")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        left.len(),
        2,
        "the request older than a provider day can be is gone, the one still in the day kept: {left:?}"
    );
    assert_eq!(left[0].1, now - DAY_MS as i64 + 60_000);
    let standing = &store.model_standings("ns", &plain(&[FLASH])).unwrap()[0];
    assert_eq!((standing.minute_requests, standing.day_requests, standing.day_tokens), (1, 2, 6));
}

#[test]
fn redis_model_keys_live_under_the_namespace_and_stay_bounded() {
    let server = swarm_testkit::RedisServer::start();
    let store = swarm_store::RedisStore::open(&server.url()).unwrap();
    let mut conn = ::redis::Client::open(server.url()).unwrap().get_connection().unwrap();
    let requests = format!("swarm:{{ns}}:model:{FREE}:req");
    let now = store.now_ms().unwrap();
    let old = now - TRIM_MS - 1;
    let _: () =
        ::redis::cmd("ZADD").arg(&requests).arg(old).arg(format!("{old}-0:5")).query(&mut conn).unwrap();
    let kept = now - DAY_MS + 60_000;
    let _: () =
        ::redis::cmd("ZADD").arg(&requests).arg(kept).arg(format!("{kept}-0:5")).query(&mut conn).unwrap();
    granted(store.model_reserve("ns", FREE, 1, &ModelLimits::default(), &[]));
    store.model_cool("ns", FREE, &Cooldown::cooling(now + 60_000, "rate_limited")).unwrap();
    let mut keys: Vec<String> = ::redis::cmd("KEYS").arg("swarm:{ns}:*").query(&mut conn).unwrap();
    keys.sort();
    assert_eq!(keys, [format!("swarm:{{ns}}:model:{FREE}:cool"), requests.clone()]);
    let members: Vec<(String, u64)> =
        ::redis::cmd("ZRANGE").arg(&requests).arg(0).arg(-1).arg("WITHSCORES").query(&mut conn).unwrap();
    assert_eq!(members.len(), 2, "the request older than a provider day can be is trimmed: {members:?}");
    assert_eq!(members[0], (format!("{kept}-0:5"), kept));
    assert!(members[1].0.ends_with(":1"), "members carry their tokens: {members:?}");
    for key in &keys {
        let ttl: i64 = ::redis::cmd("PTTL").arg(key).query(&mut conn).unwrap();
        assert!(ttl > 0 && ttl <= TRIM_MS as i64, "{key} expires ({ttl} ms)");
    }
}

#[test]
fn redis_model_standings_write_nothing() {
    let server = swarm_testkit::RedisServer::start();
    let reader = swarm_store::RedisStore::connect(&server.url(), false).unwrap();
    let standing = &reader.model_standings("ns", &plain(&[FLASH, FREE])).unwrap()[1];
    assert_eq!((standing.model.as_str(), standing.day_requests), (FREE, 0));
    let mut conn = ::redis::Client::open(server.url()).unwrap().get_connection().unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    assert!(keys.is_empty(), "a reader wrote {keys:?}");
}

backend_tests!(redis_cluster, {
    let cluster = swarm_testkit::RedisCluster::start();
    let url = cluster.url();
    let store = swarm_store::RedisStore::open(&url).unwrap();
    assert!(store.is_cluster());
    let store: Arc<dyn Store> = Arc::new(store);
    let reopen: Reopen = Arc::new(move || Arc::new(swarm_store::RedisStore::open(&url).unwrap()));
    (store, Box::new(cluster), reopen)
});
