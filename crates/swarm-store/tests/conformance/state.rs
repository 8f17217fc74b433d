//! Conformance checks of shared state: get, set, compare-and-set, the change feed.

use super::*;

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
