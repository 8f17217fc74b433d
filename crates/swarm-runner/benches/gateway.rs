//! The model gateway's own cost, against a direct call to the same provider (swarm's fake model)
//! in one run: added latency at p50/p99 (non-streaming), added time to the first byte
//! (streaming), requests per second with 8 concurrent clients, and the memory the gateway adds.
//! Targets: <= 1 ms added at p50, >= 1,000 req/s on 2 cores, <= 30 MB.
//! The fake provider runs in a child process (this bench, re-run with `SWARM_BENCH_FAKE=1`): it
//! keeps a log of every request, which would otherwise count as the gateway's memory.
//! Run: `cargo bench -p swarm-runner --bench gateway` (`SWARM_BENCH_LOAD_S=10` for a longer load).

use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_runner::gateway::{Gateway, GatewayEvent, Grant, Ledger};
use swarm_store::{SqliteStore, Store};

const SEQUENTIAL: usize = 2000;
const STREAMED: usize = 500;
const CONCURRENCY: usize = 8;
/// How long the throughput phase lasts (`SWARM_BENCH_LOAD_S`, default 5 s).
fn load() -> Duration {
    let secs = std::env::var("SWARM_BENCH_LOAD_S").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    Duration::from_secs(secs)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(String::from))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn one(client: &reqwest::Client, url: &str, token: &str, stream: bool) -> (Duration, Duration) {
    let body = serde_json::json!({
        "model": "ok", "stream": stream,
        "messages": [{ "role": "user", "content": "say something short" }],
    });
    let start = Instant::now();
    let mut response = client.post(url).bearer_auth(token).json(&body).send().await.expect("request");
    assert!(response.status().is_success(), "{}", response.status());
    let first = response.chunk().await.expect("first chunk");
    let ttfb = start.elapsed();
    assert!(first.is_some());
    while response.chunk().await.expect("chunk").is_some() {}
    (start.elapsed(), ttfb)
}

async fn latencies(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    n: usize,
    stream: bool,
) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (total, ttfb) = one(client, url, token, stream).await;
        out.push(if stream { ttfb } else { total });
    }
    out.sort();
    out
}

async fn throughput(client: &reqwest::Client, url: &str, token: &str) -> f64 {
    let until = Instant::now() + load();
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, url, token) = (client.clone(), url.to_string(), token.to_string());
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < until {
                one(&client, &url, &token, false).await;
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap();
    }
    total as f64 / load().as_secs_f64()
}

/// The child's side: serve the fake provider, say its URL on stdout, live until stdin closes.
fn fake_provider(rt: &tokio::runtime::Runtime) {
    rt.block_on(async {
        let scenario =
            swarm_fakellm::Scenario::from_toml("[models.ok]\nsteps = [ { say = \"DONE\" } ]\n").unwrap();
        let fake = swarm_fakellm::serve(scenario, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        println!("{}", fake.base_url());
        let _ =
            tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink())).await;
        let _ = fake.shutdown().await;
    });
}

/// This bench again as the fake provider's process, and its base URL.
fn spawn_fake() -> (std::process::Child, String) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("SWARM_BENCH_FAKE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the fake provider's process");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (child, line.trim().to_string())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if std::env::var_os("SWARM_BENCH_FAKE").is_some() {
        return fake_provider(&rt);
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut fake_process, fake_url) = spawn_fake();
    rt.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
        let direct = format!("{fake_url}/chat/completions");
        // Warm up, then the direct baseline.
        latencies(&client, &direct, "k", 200, false).await;
        let direct_lat = latencies(&client, &direct, "k", SEQUENTIAL, false).await;
        let direct_ttfb = latencies(&client, &direct, "k", STREAMED, true).await;
        let direct_rps = throughput(&client, &direct, "k").await;
        let rss_before = rss_kib();

        let config = swarm_core::config::Config::parse(
            &format!(
                "[providers.fake]\nkind = \"openai-compatible\"\nbase_url = \"{}\"\npaid = false\n\n[models]\nlayers = [[\"fake/ok\"]]\n",
                fake_url
            ),
            std::path::Path::new("bench.toml"),
        )
        .unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
        let gateway = Gateway::start(store, &config).unwrap();
        let (events, mut rx) = tokio::sync::mpsc::unbounded_channel::<GatewayEvent>();
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let token = gateway.grant(Grant {
            pinned: None,
            run_id: "bench".into(),
            namespace: "bench".into(),
            task: 0,
            attempt: 1,
            start_layer: 1,
            events,
            ledger: Ledger::new(&config, false),
        });
        let via = format!("{}/chat/completions", gateway.base_url());
        latencies(&client, &via, &token, 200, false).await;
        let gw_lat = latencies(&client, &via, &token, SEQUENTIAL, false).await;
        let gw_ttfb = latencies(&client, &via, &token, STREAMED, true).await;
        let gw_rps = throughput(&client, &via, &token).await;
        let rss_after = rss_kib();

        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!("gateway bench: {SEQUENTIAL} sequential requests, {STREAMED} streamed, {CONCURRENCY} clients for {:?}; fake provider in-process", load());
        println!("  p50 latency        direct {:7.3} ms   via gateway {:7.3} ms   added {:6.3} ms (target <= 1)",
            ms(pct(&direct_lat, 0.5)), ms(pct(&gw_lat, 0.5)), ms(pct(&gw_lat, 0.5)) - ms(pct(&direct_lat, 0.5)));
        println!("  p99 latency        direct {:7.3} ms   via gateway {:7.3} ms   added {:6.3} ms",
            ms(pct(&direct_lat, 0.99)), ms(pct(&gw_lat, 0.99)), ms(pct(&gw_lat, 0.99)) - ms(pct(&direct_lat, 0.99)));
        println!("  p50 first byte     direct {:7.3} ms   via gateway {:7.3} ms   added {:6.3} ms",
            ms(pct(&direct_ttfb, 0.5)), ms(pct(&gw_ttfb, 0.5)), ms(pct(&gw_ttfb, 0.5)) - ms(pct(&direct_ttfb, 0.5)));
        println!("  throughput         direct {direct_rps:7.0} req/s   via gateway {gw_rps:7.0} req/s (target >= 1000)");
        println!("  memory added       {:.1} MB (RSS after the gateway's load minus before it started; target <= 30)",
            (rss_after.saturating_sub(rss_before)) as f64 / 1024.0);
        drop(gateway);
    });
    drop(fake_process.stdin.take());
    let _ = fake_process.wait();
}
