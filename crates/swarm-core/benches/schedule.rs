//! Scheduler benchmark: a generated 100,000-task plan (random DAG) is parsed, validated and
//! scheduled to completion with a no-op agent (every attempt ends at once). Targets: scheduler
//! time ≤ 1 s, peak RSS ≤ 300 MB. Run with `cargo bench -p swarm-core --bench schedule`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};
use swarm_core::backoff::Backoff;
use swarm_core::plan::{parse_markdown, PlanContext};
use swarm_core::scheduler::{nodes_for, Action, Input, Options, Scheduler};

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn generate(n: usize, seed: u64) -> String {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut s = String::with_capacity(n * 80);
    s.push_str("---\nname: big\nconcurrency: 8\ndefaults:\n  agent: exec\n  command: \"true\"\n---\n\nGenerated plan.\n\n");
    for i in 0..n {
        let _ = writeln!(s, "## t{i}: task {i}");
        if i > 0 {
            let k = rng.usize(0..=3.min(i));
            let mut deps: Vec<usize> = (0..k).map(|_| rng.usize(i.saturating_sub(1000)..i)).collect();
            deps.sort_unstable();
            deps.dedup();
            if !deps.is_empty() {
                let list: Vec<String> = deps.iter().map(|d| format!("t{d}")).collect();
                let _ = writeln!(s, "- depends: {}", list.join(", "));
            }
        }
        let _ = writeln!(s, "\nDo step {i}.\n");
    }
    s
}

fn main() {
    let n: usize = std::env::var("SWARM_BENCH_TASKS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let src = generate(n, 42);
    let ctx = PlanContext {
        default_name: "big".into(),
        default_namespace: "bench".into(),
        agents: vec!["exec".into()],
        ..Default::default()
    };

    let t0 = Instant::now();
    let plan = parse_markdown("big.md", &src, &ctx).unwrap_or_else(|d| panic!("{}", d.render(false)));
    let parse = t0.elapsed();
    assert_eq!(plan.tasks.len(), n);

    let t1 = Instant::now();
    let (nodes, agents) = nodes_for(&plan);
    let names = plan.tasks.iter().map(|t| t.id.clone()).collect();
    let opts = Options {
        concurrency: 8,
        agent_limits: vec![None; agents.len()],
        fail_fast: false,
        backoff: Backoff::default(),
        seed: 1,
    };
    let mut sched = Scheduler::new(nodes, names, opts);
    let mut out = Vec::new();
    let mut running = Vec::new();
    let mut actions = 0usize;
    sched.start(&mut out);
    loop {
        for a in out.drain(..) {
            actions += 1;
            if let Action::Start { task, attempt } = a {
                running.push((task, attempt));
            }
        }
        let Some((task, attempt)) = running.pop() else { break };
        sched.handle(Input::AttemptEnded { task, attempt, outcome: Ok(()), retry_after: None }, &mut out);
    }
    let schedule = t1.elapsed();
    assert!(sched.is_finished(), "scheduler did not finish");

    let rss = peak_rss_mb();
    let ok = |d: Duration, limit: f64| if d.as_secs_f64() <= limit { "ok" } else { "OVER TARGET" };
    println!("scheduler bench: {n} tasks, {} bytes of plan, {actions} actions", src.len());
    println!("  parse+validate   {:>8.1} ms", parse.as_secs_f64() * 1e3);
    println!(
        "  schedule         {:>8.1} ms   (target <= 1000 ms: {})",
        schedule.as_secs_f64() * 1e3,
        ok(schedule, 1.0)
    );
    println!(
        "  total            {:>8.1} ms   (parse+validate+schedule, target <= 1000 ms: {})",
        (parse + schedule).as_secs_f64() * 1e3,
        ok(parse + schedule, 1.0)
    );
    println!(
        "  peak RSS         {rss:>8.1} MB   (target <= 300 MB: {})",
        if rss <= 300.0 { "ok" } else { "OVER TARGET" }
    );
}
