//! Conformance checks of runs, tasks, events and leases.

use super::*;

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
