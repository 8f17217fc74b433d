//! Checks of one backend's own behaviour (SQLite's file, Redis's connection and keys).

use super::*;

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
