//! Feedback latency: from an agent's exit to its failure being visible to another process
//! reading the store, on both stores. Target: under 1 s.
//! Run: `cargo bench -p swarm-cli --bench feedback_latency`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use swarm_core::state::TaskState;
use swarm_store::{Address, Options};

const TRIALS: usize = 7;

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// One trial: returns milliseconds from the agent's last instant to the failure in the store.
fn trial(store_url: &str) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("plan.md"),
        "## t: Fails\n- agent: exec\n- command: sleep 0.3; date +%s%N > exited.ns; exit 3\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_swarm"))
        .args(["run", "plan.md", "--no-progress", "--store", store_url])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    reader.read_line(&mut first).unwrap();
    // Keep reading so swarm's later output has somewhere to go.
    let drain = std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let run_id = first.trim().strip_prefix("run ").expect("first line is `run <RUN_ID>`").to_string();
    let address = Address::parse(store_url, dir.path()).unwrap();
    let store = swarm_store::open(&address, Options::default()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let failed = store.tasks(&run_id).ok().and_then(|t| t.first().map(|t| t.state == TaskState::Failed));
        if failed == Some(true) {
            break now_ns();
        }
        assert!(Instant::now() < deadline, "the failure never showed up");
        std::thread::sleep(Duration::from_millis(1));
    };
    let exited: u128 = std::fs::read_to_string(dir.path().join("exited.ns")).unwrap().trim().parse().unwrap();
    let _ = child.wait();
    let _ = drain.join();
    (seen.saturating_sub(exited)) as f64 / 1e6
}

fn report(name: &str, url: &str) {
    let mut ms: Vec<f64> = (0..TRIALS).map(|_| trial(url)).collect();
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let verdict = if ms[ms.len() - 1] < 1000.0 { "ok" } else { "OVER TARGET" };
    println!(
        "  {name:<7} median {:>6.1} ms   max {:>6.1} ms   (target < 1000 ms: {verdict})",
        ms[ms.len() / 2],
        ms[ms.len() - 1]
    );
}

fn main() {
    println!(
        "feedback latency: agent exit -> failure visible in the store to another process, {TRIALS} trials"
    );
    let db = tempfile::tempdir().unwrap();
    report("sqlite", &format!("sqlite:{}", db.path().join("state.db").display()));
    let redis = swarm_testkit::RedisServer::start();
    report("redis", &redis.url());
}
