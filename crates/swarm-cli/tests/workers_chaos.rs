//! The workers' chaos suite (issue 20; docs/contract.md §11), bounded to a few minutes, on real
//! `swarm worker` processes and a real redis-server with AOF: kill -9 a worker at random
//! moments twenty times; SIGSTOP one past its lease, then SIGCONT; kill and restart Redis
//! mid-run; kill -9 the orchestrator with workers running, then `swarm resume`. It prints the
//! figures (`cargo test --test workers_chaos -- --nocapture`): attempts lost, tasks succeeded
//! twice, effects run more than once, the worst time to take over a dead worker's attempt.
//!
//! What "at least once" means here: an attempt is counted once (its end only from its current
//! owner, with its fencing token), but an agent killed (or cut off) after it had an effect and
//! before its end was counted runs again: an effect that appends (`effects.log`) shows twice;
//! one written idempotently (`done/<task>`, overwritten) does not.

mod support;

use chrono::{DateTime, Utc};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::*;

const LEASE: Duration = Duration::from_secs(2);

/// The workers of a phase: started, killed and replaced.
struct Fleet {
    live: Vec<(String, Bg)>,
    /// Workers that ended: their name, what they said, when they were killed.
    gone: Vec<(String, String, Option<DateTime<Utc>>)>,
    next: usize,
    j: usize,
}

impl Fleet {
    fn new(p: &Project, n: usize, j: usize) -> Fleet {
        let mut f = Fleet { live: vec![], gone: vec![], next: 0, j };
        for _ in 0..n {
            f.spawn(p);
        }
        f
    }

    fn spawn(&mut self, p: &Project) {
        self.next += 1;
        let name = format!("w{}", self.next);
        let j = self.j.to_string();
        let lease = format!("{}s", LEASE.as_secs());
        let args = ["worker", "--name", &name, "-j", &j, "--lease", &lease, "--json"];
        let mut w = p.spawn(&args);
        wait_until(Duration::from_secs(20), "a worker started", || {
            assert!(w.is_running(), "{}", w.stderr());
            w.stdout().contains("worker_started")
        });
        self.live.push((name, w));
    }

    /// kill -9 a random worker that runs something (else any), and start another.
    fn kill_one(&mut self, p: &Project, rng: &mut fastrand::Rng) {
        let busy: Vec<usize> = (0..self.live.len()).filter(|i| open(&self.live[*i].1.stdout()) > 0).collect();
        let i = if busy.is_empty() { rng.usize(..self.live.len()) } else { busy[rng.usize(..busy.len())] };
        let (name, w) = self.live.remove(i);
        let at = Utc::now();
        let out = w.kill9();
        self.gone.push((name, out.stdout, Some(at)));
        self.spawn(p);
    }

    fn stop_all(mut self) -> Vec<(String, String, Option<DateTime<Utc>>)> {
        for (name, w) in self.live.drain(..) {
            w.signal(Signal::SIGTERM);
            let out = w.wait(Duration::from_secs(30));
            self.gone.push((name, out.stdout, None));
        }
        self.gone
    }
}

fn lines(stdout: &str) -> Vec<Value> {
    stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Attempts a worker took and has not ended (as far as it said).
fn open(stdout: &str) -> usize {
    let said = lines(stdout);
    let n = |e: &str| said.iter().filter(|v| v["event"] == e).count();
    n("took").saturating_sub(n("ended") + n("lease_lost") + n("handed_back"))
}

fn key(v: &Value) -> (String, String, u64) {
    (v["run_id"].as_str().unwrap().into(), v["task"].as_str().unwrap().into(), v["attempt"].as_u64().unwrap())
}

fn at(v: &Value) -> DateTime<Utc> {
    v["at"].as_str().unwrap().parse().unwrap()
}

/// The longest time from a worker's kill to another worker taking an attempt it had open.
fn worst_reclaim(workers: &[(String, String, Option<DateTime<Utc>>)]) -> (Duration, usize) {
    let took: Vec<(String, Value)> = workers
        .iter()
        .flat_map(|(n, out, _)| {
            lines(out).into_iter().filter(|v| v["event"] == "took").map(move |v| (n.clone(), v))
        })
        .collect();
    let (mut worst, mut count) = (Duration::ZERO, 0);
    for (name, out, killed) in workers {
        let Some(killed) = killed else { continue };
        let said = lines(out);
        let ended: BTreeSet<_> = said
            .iter()
            .filter(|v| v["event"] != "took")
            .filter_map(|v| v.get("task").map(|_| key(v)))
            .collect();
        for t in said.iter().filter(|v| v["event"] == "took" && !ended.contains(&key(v))) {
            let next = took
                .iter()
                .filter(|(n, v)| n != name && key(v) == key(t) && v["fence"].as_u64() > t["fence"].as_u64())
                .map(|(_, v)| at(v))
                .min();
            // None: it ended before the kill (its `ended` line was not out yet); nothing to take.
            if let Some(next) = next {
                count += 1;
                worst = worst.max((next - *killed).to_std().unwrap_or_default());
            }
        }
    }
    (worst, count)
}

/// A plan of `n` independent exec tasks, each sleeping a while, then writing its idempotent
/// effect (`done/<task>`) and appending its other one (`effects.log`).
fn plan(p: &Project, name: &str, n: usize) {
    let mut plan = format!("---\nname: {name}\ndefaults:\n  agent: exec\n  retries: 3\n---\n\n# {name}\n");
    for i in 0..n {
        let secs = 0.4 + ((i * 7) % 20) as f64 / 10.0;
        plan.push_str(&format!(
            "\n## t{i}: task {i}\n- command: sleep {secs:.1}; mkdir -p done; echo $SWARM_TASK_ID > done/$SWARM_TASK_ID; echo $SWARM_TASK_ID >> effects.log\n"
        ));
    }
    p.write(&format!("{name}.md"), &plan);
}

/// What a phase's run left: tasks not succeeded, tasks counted as succeeded twice (two
/// succeeded attempts in the run's record, or one attempt's end accepted twice), ends a worker
/// gave while no orchestrator listened (their attempts run again after `resume`), effects run
/// more than once (appended, idempotent).
struct Figures {
    lost: usize,
    twice: usize,
    unheard: usize,
    appended_again: usize,
    idempotent_again: usize,
}

fn figures(p: &mut Project, run_id: &str, n: usize) -> Figures {
    let report = p.report(run_id);
    let lost = (0..n).filter(|i| state(&report, &format!("t{i}")) != "succeeded").count();
    let q = swarm_store::RedisStore::open(&p.redis().url()).unwrap();
    let mut ok_ends: BTreeMap<(String, u32), usize> = BTreeMap::new();
    let mut after = "0-0".to_string();
    loop {
        let feed = q.feed(&p.namespace(), run_id, &after, 1000, None).unwrap();
        let Some(last) = feed.last() else { break };
        after = last.id.clone();
        for e in &feed {
            if let swarm_store::Said::End(end) = &e.said {
                let end: Value = serde_json::from_str(end).unwrap();
                if end["outcome"].get("Ok").is_some() {
                    *ok_ends.entry((e.task.clone(), e.attempt)).or_default() += 1;
                }
            }
        }
    }
    let succeeded = |a: &Value| a["ended_at"].is_string() && a["reason"].is_null();
    let counted_twice = (0..n)
        .filter(|i| attempts(&report, &format!("t{i}")).iter().filter(|a| succeeded(a)).count() > 1)
        .count();
    let twice = counted_twice + ok_ends.values().filter(|n| **n > 1).count();
    let unheard = ok_ends
        .keys()
        .filter(|(t, n)| {
            !attempts(&report, t).iter().any(|a| a["n"].as_u64() == Some(u64::from(*n)) && succeeded(a))
        })
        .count();
    let effects = std::fs::read_to_string(p.file("effects.log")).unwrap_or_default();
    let appended_again =
        effects.lines().count().saturating_sub(effects.lines().collect::<BTreeSet<_>>().len());
    let idempotent = (0..n).filter(|i| p.exists(&format!("done/t{i}"))).count();
    let idempotent_again = (0..n)
        .filter(|i| {
            std::fs::read_to_string(p.file(&format!("done/t{i}"))).is_ok_and(|s| s.lines().count() != 1)
        })
        .count();
    assert_eq!(idempotent, n - lost);
    let _ = std::fs::remove_file(p.file("effects.log"));
    let _ = std::fs::remove_dir_all(p.file("done"));
    Figures { lost, twice, unheard, appended_again, idempotent_again }
}

fn say(phase: &str, n: usize, f: &Figures, more: &str) {
    eprintln!(
        "chaos {phase}: {n} tasks; attempts lost {}, tasks succeeded twice {}, idempotent effects duplicated {}, appended effects run again {} (at least once), ends no orchestrator heard {}{more}",
        f.lost, f.twice, f.idempotent_again, f.appended_again, f.unheard
    );
    assert_eq!((f.lost, f.twice, f.idempotent_again), (0, 0, 0), "{phase}");
}

#[test]
fn workers_lose_nothing_and_count_nothing_twice_under_chaos() {
    let seed = fastrand::u64(..);
    let mut rng = fastrand::Rng::with_seed(seed);
    eprintln!("chaos seed {seed}; lease {}s", LEASE.as_secs());
    let mut p = Project::on_redis_server(swarm_testkit::RedisServer::start_persistent());
    kill_workers(&mut p, &mut rng);
    stop_a_worker(&mut p);
    restart_redis(&mut p);
    kill_the_orchestrator(&mut p);
}

/// kill -9 a worker at random moments, twenty times, each replaced at once.
fn kill_workers(p: &mut Project, rng: &mut fastrand::Rng) {
    let n = 40;
    plan(p, "kills", n);
    let mut fleet = Fleet::new(p, 3, 3);
    let mut run = p.spawn(&["run", "kills.md", "--workers"]);
    let run_id = run.run_id();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(300 + rng.u64(..600)));
        fleet.kill_one(p, rng);
    }
    let out = run.wait(Duration::from_secs(180));
    let workers = fleet.stop_all();
    let (worst, reclaimed) = worst_reclaim(&workers);
    let f = figures(p, &run_id, n);
    let more = format!(
        "; {reclaimed} attempts taken over, the worst {:.1}s after its worker died (target ≤ lease + 2s = {}s when a worker has room)",
        worst.as_secs_f64(),
        LEASE.as_secs() + 2
    );
    say("kill -9 x20", n, &f, &more);
    out.expect_code(0);
    assert!(reclaimed > 0);
    // The target (lease + 2 s) is a figure printed above, met when a worker has room as the
    // lease runs out (a busy machine or full workers add the time until a slot frees). The
    // test fails on what breaks the design: a takeover that waits behind queued work (11.8 s
    // before the fix) or for more than one lease.
    assert!(worst <= LEASE + Duration::from_secs(8), "{worst:?}");
}

/// SIGSTOP a busy worker past its lease, then SIGCONT it: its late writes are refused.
fn stop_a_worker(p: &mut Project) {
    let n = 6;
    plan(p, "stops", n);
    let fleet = Fleet::new(p, 2, 3);
    let mut run = p.spawn(&["run", "stops.md", "--workers"]);
    let run_id = run.run_id();
    wait_until(Duration::from_secs(20), "w1 runs an attempt", || open(&fleet.live[0].1.stdout()) > 0);
    let (_, stopped) = &fleet.live[0];
    stopped.signal(Signal::SIGSTOP);
    std::thread::sleep(LEASE + Duration::from_secs(3));
    stopped.signal(Signal::SIGCONT);
    let out = run.wait(Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(1));
    let q = swarm_store::RedisStore::open(&p.redis().url()).unwrap();
    let refused: u64 =
        (0..n).map(|i| q.lost_writes(&p.namespace(), &run_id, &format!("t{i}"), 1).unwrap()).sum();
    let workers = fleet.stop_all();
    let noticed = workers
        .iter()
        .map(|(_, o, _)| lines(o).iter().filter(|v| v["event"] == "lease_lost").count())
        .sum::<usize>();
    let f = figures(p, &run_id, n);
    say(
        "SIGSTOP past the lease",
        n,
        &f,
        &format!("; late writes refused {refused}, attempts the stopped worker found lost {noticed}"),
    );
    out.expect_code(0);
    assert!(refused >= 1 && noticed >= 1, "refused {refused}, noticed {noticed}");
}

/// Redis killed and restarted (AOF) while attempts run.
fn restart_redis(p: &mut Project) {
    let n = 20;
    plan(p, "restart", n);
    let fleet = Fleet::new(p, 2, 4);
    let mut run = p.spawn(&["run", "restart.md", "--workers"]);
    let run_id = run.run_id();
    std::thread::sleep(Duration::from_millis(1500));
    let down = Instant::now();
    p.redis().kill();
    std::thread::sleep(Duration::from_millis(1000));
    p.redis().restart();
    let away = down.elapsed();
    let out = run.wait(Duration::from_secs(120));
    fleet.stop_all();
    let f = figures(p, &run_id, n);
    say("Redis restart (AOF)", n, &f, &format!("; Redis was away {:.1}s", away.as_secs_f64()));
    out.expect_code(0);
}

/// kill -9 the orchestrator with workers running, then `swarm resume`.
fn kill_the_orchestrator(p: &mut Project) {
    let n = 20;
    plan(p, "orphans", n);
    let fleet = Fleet::new(p, 2, 4);
    let mut run = p.spawn(&["run", "orphans.md", "--workers"]);
    let run_id = run.run_id();
    std::thread::sleep(Duration::from_millis(1500));
    run.kill9();
    let out = p.swarm(&["resume", &run_id]);
    fleet.stop_all();
    let f = figures(p, &run_id, n);
    let report = p.report(&run_id);
    let again = (0..n).filter(|i| attempts(&report, &format!("t{i}")).len() > 1).count();
    say("orchestrator kill -9 + resume", n, &f, &format!("; tasks run again after the resume {again}"));
    out.expect_code(0);
}
