//! The workers' queue (docs/contract.md §11) on a real redis-server: attempts go to the workers
//! of their agent, a lease is kept by renewing and lost to another worker when it runs out (the
//! stale owner's renewal and end refused), an end counts once, every pending entry is reclaimed
//! across XAUTOCLAIM's pages, and the commands an attempt costs stay few.

use std::time::{Duration, Instant};
use swarm_store::{Fenced, RedisStore, Said, Stopped, WorkItem};

const NS: &str = "team1";

fn item(task: &str, agent: &str) -> WorkItem {
    WorkItem {
        run_id: "r1".into(),
        task: task.into(),
        attempt: 1,
        queue: agent.into(),
        job: format!("{{\"task\":\"{task}\"}}"),
    }
}

fn agents(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

const LEASE: Duration = Duration::from_millis(400);
const NOW: Duration = Duration::from_millis(10);

#[test]
fn an_attempt_goes_to_a_worker_of_its_agent_and_its_end_counts_once() {
    let server = swarm_testkit::RedisServer::start();
    let store = RedisStore::open(&server.url()).unwrap();
    let first = store.enqueue(NS, &item("a", "opencode")).unwrap();
    // Queued again (an orchestrator that resumes): the same entry, not a second one.
    assert_eq!(store.enqueue(NS, &item("a", "opencode")).unwrap(), first);
    assert!(store.take(NS, "w-kilo", &agents(&["kilo"]), LEASE, 10, NOW).unwrap().is_empty());
    let leases = store.take(NS, "w1", &agents(&["kilo", "opencode"]), LEASE, 10, NOW).unwrap();
    assert_eq!(leases.len(), 1, "{leases:?}");
    let lease = &leases[0];
    assert_eq!((lease.item.task.as_str(), lease.item.queue.as_str(), lease.fence), ("a", "opencode", 1));
    assert_eq!(lease.item.job, "{\"task\":\"a\"}");
    assert!(
        store.take(NS, "w2", &agents(&["opencode"]), LEASE, 10, NOW).unwrap().is_empty(),
        "delivered once"
    );
    assert_eq!(
        store.finish("w1", lease, "{\"ok\":true}").unwrap(),
        Fenced::Accepted { until_ms: None, stop: None }
    );
    assert_eq!(store.finish("w1", lease, "{\"ok\":true}").unwrap(), Fenced::Duplicate);
    let results = store.feed(NS, "r1", "0-0", 10, None).unwrap();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!((results[0].task.as_str(), results[0].worker.as_str(), results[0].fence), ("a", "w1", 1));
    assert!(store.feed(NS, "r1", &results[0].id, 10, None).unwrap().is_empty());
    // Nothing is left to reclaim, and the namespace next door sees nothing.
    std::thread::sleep(LEASE + Duration::from_millis(100));
    assert!(store.reclaim(NS, "w2", &agents(&["opencode"]), LEASE, 1000).unwrap().is_empty());
    assert!(store.take("team2", "w3", &agents(&["opencode"]), LEASE, 10, NOW).unwrap().is_empty());
}

#[test]
fn a_lease_not_renewed_goes_to_another_worker_and_the_stale_owner_is_refused() {
    let server = swarm_testkit::RedisServer::start();
    let store = RedisStore::open(&server.url()).unwrap();
    store.enqueue(NS, &item("a", "exec")).unwrap();
    let old = store.take(NS, "w1", &agents(&["exec"]), LEASE, 1, NOW).unwrap().remove(0);
    // Within its lease no other worker gets it.
    assert!(store.reclaim(NS, "w2", &agents(&["exec"]), LEASE, 1000).unwrap().is_empty());
    std::thread::sleep(LEASE + Duration::from_millis(150));
    let started = Instant::now();
    let new = store.reclaim(NS, "w2", &agents(&["exec"]), LEASE, 1000).unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!((new[0].fence, new[0].item.task.as_str()), (2, "a"));
    // The stale owner wakes up: its renewal and its end are refused, and say who owns it.
    let lost = Fenced::LeaseLost { owner: "w2".into(), fence: 2 };
    assert_eq!(store.renew("w1", &old, LEASE).unwrap(), lost);
    assert_eq!(store.finish("w1", &old, "{\"late\":true}").unwrap(), lost);
    assert!(store.feed(NS, "r1", "0-0", 10, None).unwrap().is_empty(), "a late write is not counted");
    assert_eq!(store.finish("w2", &new[0], "{}").unwrap(), Fenced::Accepted { until_ms: None, stop: None });
    let results = store.feed(NS, "r1", "0-0", 10, None).unwrap();
    assert_eq!(results.iter().map(|r| (r.worker.as_str(), r.fence)).collect::<Vec<_>>(), [("w2", 2)]);
    // The old owner's end, even after the new one's, is still refused.
    assert!(matches!(store.finish("w1", &old, "{}").unwrap(), Fenced::LeaseLost { .. }));
}

#[test]
fn renewing_keeps_a_long_attempt_and_a_zombie_cannot_take_it_back() {
    let server = swarm_testkit::RedisServer::start();
    let store = RedisStore::open(&server.url()).unwrap();
    store.enqueue(NS, &item("long", "exec")).unwrap();
    let lease = store.take(NS, "w1", &agents(&["exec"]), LEASE, 1, NOW).unwrap().remove(0);
    // Three leases long, renewed at a third of the lease: no other worker ever gets it.
    for _ in 0..9 {
        std::thread::sleep(LEASE / 3);
        assert!(matches!(
            store.renew("w1", &lease, LEASE).unwrap(),
            Fenced::Accepted { until_ms: Some(_), stop: None }
        ));
        assert!(store.reclaim(NS, "w2", &agents(&["exec"]), LEASE, 1000).unwrap().is_empty());
    }
    // A zombie holding an older token of the same attempt cannot renew it.
    let zombie = swarm_store::Lease { fence: lease.fence - 1, ..lease.clone() };
    assert!(matches!(store.renew("w9", &zombie, LEASE).unwrap(), Fenced::LeaseLost { .. }));
    assert_eq!(store.finish("w1", &lease, "{}").unwrap(), Fenced::Accepted { until_ms: None, stop: None });
}

#[test]
fn every_pending_attempt_of_a_dead_worker_is_reclaimed_across_pages() {
    let server = swarm_testkit::RedisServer::start();
    let store = RedisStore::open(&server.url()).unwrap();
    for i in 0..120 {
        store.enqueue(NS, &item(&format!("t{i}"), "exec")).unwrap();
    }
    let taken = store.take(NS, "dead", &agents(&["exec"]), LEASE, 200, NOW).unwrap();
    assert_eq!(taken.len(), 120);
    // Some finished before the worker died: their entries are gone from the pending list.
    for lease in taken.iter().step_by(3) {
        assert_eq!(
            store.finish("dead", lease, "{}").unwrap(),
            Fenced::Accepted { until_ms: None, stop: None }
        );
    }
    std::thread::sleep(LEASE + Duration::from_millis(150));
    let back = store.reclaim(NS, "alive", &agents(&["exec"]), LEASE, 1000).unwrap();
    let mut tasks: Vec<String> = back.iter().map(|l| l.item.task.clone()).collect();
    tasks.sort();
    let mut want: Vec<String> = (0..120).filter(|i| i % 3 != 0).map(|i| format!("t{i}")).collect();
    want.sort();
    assert_eq!(tasks, want, "every unfinished attempt, none finished");
    assert!(back.iter().all(|l| l.fence == 2));
}

#[test]
fn an_attempt_costs_few_redis_commands() {
    let server = swarm_testkit::RedisServer::start();
    let store = RedisStore::open(&server.url()).unwrap();
    let admin = redis::Client::open(server.url()).unwrap();
    let mut admin = admin.get_connection().unwrap();
    let n = 200;
    // Warm up: scripts loaded, groups made.
    store.enqueue(NS, &item("warm", "exec")).unwrap();
    let warm = store.take(NS, "w1", &agents(&["exec"]), LEASE, 1, NOW).unwrap();
    store.finish("w1", &warm[0], "{}").unwrap();
    // Commands the store sends (EVALSHA, XREADGROUP, XREAD…) and those its scripts run, apart.
    let calls = |c: &mut redis::Connection| -> (u64, u64) {
        let info: String = redis::cmd("INFO").arg("commandstats").query(c).unwrap();
        let mut sent = 0;
        let mut all = 0;
        for l in info.lines().filter(|l| l.starts_with("cmdstat_")) {
            let n: u64 =
                l.split_once("calls=").and_then(|(_, r)| r.split(',').next()?.parse().ok()).unwrap_or(0);
            all += n;
            if [
                "evalsha",
                "eval",
                "xreadgroup",
                "xread",
                "xautoclaim",
                "xgroup|create",
                "script|load",
                "ping",
            ]
            .iter()
            .any(|c| l.starts_with(&format!("cmdstat_{c}:")))
            {
                sent += n;
            }
        }
        (sent, all)
    };
    let before = calls(&mut admin);
    for i in 0..n {
        store.enqueue(NS, &item(&format!("t{i}"), "exec")).unwrap();
    }
    let mut done = 0;
    while done < n {
        for lease in store.take(NS, "w1", &agents(&["exec"]), LEASE, 10, NOW).unwrap() {
            store.say("w1", "h1", &lease, "[{\"kind\":\"started\"}]").unwrap();
            store.renew("w1", &lease, LEASE).unwrap();
            assert_eq!(
                store.finish("w1", &lease, "{}").unwrap(),
                Fenced::Accepted { until_ms: None, stop: None }
            );
            done += 1;
        }
    }
    let mut read = 0;
    let mut after = "0-0".to_string();
    while let Some(last) = store.feed(NS, "r1", &after, 100, None).unwrap().last() {
        after = last.id.clone();
        read += 1;
    }
    assert!(read >= 2);
    let (sent, all) = calls(&mut admin);
    let sent = (sent - before.0) as f64 / n as f64;
    let all = (all - before.1 - 1) as f64 / n as f64; // less the INFO itself
    eprintln!("redis commands per attempt (enqueue, take, events, one renewal, finish, feed read): {sent:.2} sent, {all:.2} with those its scripts run");
    // Issue 20's target: at most 10 commands per task.
    assert!(sent <= 10.0, "{sent}");
}

#[test]
fn only_the_current_owner_is_heard_and_a_stop_reaches_it() {
    let server = swarm_testkit::RedisServer::start();
    let store = RedisStore::open(&server.url()).unwrap();
    store.enqueue(NS, &item("a", "exec")).unwrap();
    let old = store.take(NS, "w1", &agents(&["exec"]), LEASE, 1, NOW).unwrap().remove(0);
    let heard = store.say("w1", "h1", &old, "[1]").unwrap();
    assert_eq!(heard, Fenced::Accepted { until_ms: None, stop: None });
    std::thread::sleep(LEASE + Duration::from_millis(150));
    let new = store.reclaim(NS, "w2", &agents(&["exec"]), LEASE, 1000).unwrap().remove(0);
    // The stale owner's events are refused, and counted.
    assert!(matches!(store.say("w1", "h1", &old, "[2]").unwrap(), Fenced::LeaseLost { .. }));
    store.say("w2", "h2", &new, "[3]").unwrap();
    assert_eq!(store.lost_writes(NS, "r1", "a", 1).unwrap(), 1);
    // The orchestrator asks it to stop: the owner reads it with its next renewal or events.
    assert_eq!(store.stop_attempt(NS, "r1", ("a", 1, "exec"), false).unwrap(), Stopped::Asked);
    let asked = Some("terminate".to_string());
    assert_eq!(
        store.say("w2", "h2", &new, "[4]").unwrap(),
        Fenced::Accepted { until_ms: None, stop: asked.clone() }
    );
    assert!(
        matches!(store.renew("w2", &new, LEASE).unwrap(), Fenced::Accepted { stop, .. } if stop == asked)
    );
    store.finish("w2", &new, "{\"end\":1}").unwrap();
    let feed = store.feed(NS, "r1", "0-0", 10, Some(Duration::from_millis(50))).unwrap();
    let said: Vec<(String, u64, Said)> = feed.into_iter().map(|e| (e.worker, e.fence, e.said)).collect();
    assert_eq!(
        said,
        [
            ("w1".into(), 1, Said::Events("[1]".into())),
            ("w2".into(), 2, Said::Events("[3]".into())),
            ("w2".into(), 2, Said::Events("[4]".into())),
            ("w2".into(), 2, Said::End("{\"end\":1}".into())),
        ]
    );
    assert_eq!(store.stop_attempt(NS, "r1", ("a", 1, "exec"), true).unwrap(), Stopped::Done);
}

#[test]
fn a_stopped_attempt_no_worker_runs_is_dropped_and_a_released_one_goes_to_the_next_worker() {
    let server = swarm_testkit::RedisServer::start();
    let store = RedisStore::open(&server.url()).unwrap();
    store.enqueue(NS, &item("queued", "exec")).unwrap();
    assert_eq!(store.stop_attempt(NS, "r1", ("queued", 1, "exec"), false).unwrap(), Stopped::Dropped);
    assert!(store.take(NS, "w1", &agents(&["exec"]), LEASE, 10, NOW).unwrap().is_empty(), "never delivered");
    // An owner that died: once its lease ran out, a stop drops it; a late end does not count.
    store.enqueue(NS, &item("orphan", "exec")).unwrap();
    let dead = store.take(NS, "w1", &agents(&["exec"]), LEASE, 1, NOW).unwrap().remove(0);
    std::thread::sleep(LEASE + Duration::from_millis(100));
    assert_eq!(store.stop_attempt(NS, "r1", ("orphan", 1, "exec"), false).unwrap(), Stopped::Dropped);
    assert!(matches!(store.finish("w1", &dead, "{}").unwrap(), Fenced::LeaseLost { .. }));
    assert!(store.reclaim(NS, "w2", &agents(&["exec"]), LEASE, 1000).unwrap().is_empty());
    // A draining worker hands one back: the next worker takes it at once, with a new token.
    store.enqueue(NS, &item("handed", "exec")).unwrap();
    let mine = store.take(NS, "w1", &agents(&["exec"]), LEASE, 1, NOW).unwrap().remove(0);
    assert!(matches!(store.release("w1", &mine).unwrap(), Fenced::Accepted { .. }));
    let next = store.take(NS, "w2", &agents(&["exec"]), LEASE, 1, NOW).unwrap();
    assert_eq!(next.iter().map(|l| (l.item.task.as_str(), l.fence)).collect::<Vec<_>>(), [("handed", 2)]);
    assert_eq!(next[0].item.job, mine.item.job);
    assert!(matches!(store.finish("w1", &mine, "{}").unwrap(), Fenced::LeaseLost { .. }));
    assert!(store.feed(NS, "r1", "0-0", 10, None).unwrap().is_empty());
}

#[test]
fn workers_say_who_they_are_and_silent_ones_are_forgotten() {
    let server = swarm_testkit::RedisServer::start();
    let store = RedisStore::open(&server.url()).unwrap();
    store.beat(NS, "w1", "{\"host\":\"h1\"}").unwrap();
    store.beat(NS, "w2", "{\"host\":\"h2\"}").unwrap();
    let rows = store.workers(NS).unwrap();
    assert_eq!(rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["w1", "w2"]);
    assert!(rows.iter().all(|r| r.now_ms >= r.seen_ms && r.now_ms - r.seen_ms < 1000));
    assert!(store.workers("team2").unwrap().is_empty());
    std::thread::sleep(Duration::from_millis(300));
    store.beat(NS, "w2", "{\"host\":\"h2\"}").unwrap();
    assert_eq!(store.forget_workers(NS, &agents(&["exec"]), Duration::from_millis(200)).unwrap(), 1);
    assert_eq!(store.workers(NS).unwrap().iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["w2"]);
}

#[test]
fn what_was_delivered_and_never_read_is_taken_up_but_not_what_runs() {
    let server = swarm_testkit::RedisServer::start();
    let store = RedisStore::open(&server.url()).unwrap();
    store.enqueue(NS, &item("running", "exec")).unwrap();
    let running = store.take(NS, "w1", &agents(&["exec"]), LEASE, 1, NOW).unwrap().remove(0);
    store.enqueue(NS, &item("lost", "exec")).unwrap();
    // The server delivers it to w1, whose connection broke before the reply came.
    let admin = redis::Client::open(server.url()).unwrap();
    let mut admin = admin.get_connection().unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("workers")
        .arg("w1")
        .arg("COUNT")
        .arg(10)
        .arg("STREAMS")
        .arg(format!("swarm:{{{NS}}}:work:exec"))
        .arg(">")
        .query(&mut admin)
        .unwrap();
    assert!(store.take(NS, "w1", &agents(&["exec"]), LEASE, 10, NOW).unwrap().is_empty(), "nothing new");
    let back = store
        .take_pending(NS, "w1", &agents(&["exec"]), LEASE, std::slice::from_ref(&running.entry))
        .unwrap();
    assert_eq!(back.iter().map(|l| (l.item.task.as_str(), l.fence)).collect::<Vec<_>>(), [("lost", 1)]);
    // Once ended, an entry is gone from the pending list: nothing to take up again.
    store.finish("w1", &back[0], "{}").unwrap();
    store.finish("w1", &running, "{}").unwrap();
    assert!(store.take_pending(NS, "w1", &agents(&["exec"]), LEASE, &[]).unwrap().is_empty());
}

#[test]
fn a_task_needing_labels_goes_only_to_a_worker_that_has_them() {
    let server = swarm_testkit::RedisServer::start();
    let store = RedisStore::open(&server.url()).unwrap();
    let labels: std::collections::BTreeMap<String, String> =
        [("gpu".to_string(), "yes".to_string())].into_iter().collect();
    let queue = swarm_store::queue_name("exec", &labels);
    assert_eq!(queue, "exec@gpu=yes");
    store.enqueue(NS, &item("g", &queue)).unwrap();
    let plain = store.queues_for(NS, &agents(&["exec"]), &[]).unwrap();
    assert_eq!(plain, ["exec"]);
    assert!(store.take(NS, "w1", &plain, LEASE, 10, NOW).unwrap().is_empty());
    let wrong = [("gpu".to_string(), "no".to_string())];
    assert_eq!(store.queues_for(NS, &agents(&["exec"]), &wrong).unwrap(), ["exec"]);
    let other_agent = [("gpu".to_string(), "yes".to_string())];
    assert_eq!(store.queues_for(NS, &agents(&["kilo"]), &other_agent).unwrap(), ["kilo"]);
    let has = [("gpu".to_string(), "yes".to_string()), ("zone".to_string(), "eu".to_string())];
    let queues = store.queues_for(NS, &agents(&["exec"]), &has).unwrap();
    assert_eq!(queues, ["exec", "exec@gpu=yes"]);
    let taken = store.take(NS, "w2", &queues, LEASE, 10, NOW).unwrap();
    assert_eq!(
        (taken.len(), taken[0].item.task.as_str(), taken[0].item.queue.as_str()),
        (1, "g", "exec@gpu=yes")
    );
    assert!(matches!(store.finish("w2", &taken[0], "{}").unwrap(), Fenced::Accepted { .. }));
}

#[test]
fn stopping_a_run_reaches_every_attempt_still_open_and_only_those() {
    let server = swarm_testkit::RedisServer::start();
    let store = RedisStore::open(&server.url()).unwrap();
    for task in ["ended", "running", "waiting"] {
        store.enqueue(NS, &item(task, "exec")).unwrap();
    }
    let mut taken = store.take(NS, "w1", &agents(&["exec"]), LEASE * 10, 2, NOW).unwrap();
    let ended = taken.iter().position(|l| l.item.task == "ended").expect("the first one taken");
    store.finish("w1", &taken.remove(ended), "{}").unwrap();
    let running = taken.remove(0);
    let queued = store.queued_attempts(NS, "r1").unwrap();
    let mut stopped = store.stop_run(NS, "r1", &queued, true).unwrap();
    stopped.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(stopped, [("running".into(), 1, Stopped::Asked), ("waiting".into(), 1, Stopped::Dropped)]);
    let asked = store.renew("w1", &running, LEASE).unwrap();
    assert!(matches!(&asked, Fenced::Accepted { stop: Some(s), .. } if s == "kill"), "{asked:?}");
    // Once it ended, nothing of the run is left to stop.
    store.finish("w1", &running, "{}").unwrap();
    assert_eq!(store.stop_run(NS, "r1", &queued, true).unwrap(), []);
    assert!(store.take(NS, "w2", &agents(&["exec"]), LEASE, 10, NOW).unwrap().is_empty(), "dropped");
    // Each task's last attempt queued, for a resumed run to number past.
    store.enqueue(NS, &WorkItem { attempt: 2, ..item("ended", "exec") }).unwrap();
    let queued = store.queued_attempts(NS, "r1").unwrap();
    let expected = [("ended", 2), ("running", 1), ("waiting", 1)].map(|(t, n)| (t.to_string(), n));
    assert_eq!(queued, expected.into_iter().collect());
    assert!(store.queued_attempts(NS, "r2").unwrap().is_empty());
}
