//! `swarm worker` (run the attempts of `--workers` runs on this host) and `swarm workers` (who
//! runs them): docs/contract.md §11.

use crate::cli::{WorkerArgs, WorkersArgs};
use crate::error::{CliError, CliResult};
use crate::output::{errln, outln};
use crate::project::Project;
use anyhow::anyhow;
use chrono::Utc;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use swarm_agents::catalog::{self, CATALOG};
use swarm_runner::remote::place::Clones;
use swarm_runner::remote::worker::{Mode, Serves, Worker, WorkerNote, WorkerSpec};
use tokio::sync::{mpsc, watch};

pub fn worker(store: Option<&str>, config: Option<&Path>, args: WorkerArgs) -> CliResult {
    let project = Project::discover(store, config)?;
    let registry = swarm_agents::Registry::from_config(&project.config).map_err(CliError::invalid)?;
    if args.concurrency == Some(0) {
        return Err(CliError::invalid(anyhow!("--concurrency must be at least 1")));
    }
    let agents = agents_here(&project, &args.agents, &registry)?;
    let host = swarm_runner::util::hostname();
    let spec = WorkerSpec {
        name: args.name.clone().unwrap_or_else(|| format!("{host}-{}", std::process::id())),
        serves: match &args.namespace {
            Some(ns) => Serves::Only(ns.clone()),
            None => Serves::Every { home: project.default_namespace() },
        },
        concurrency: args
            .concurrency
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        agents,
        labels: labels(&args.labels)?,
        lease: args.lease.max(Duration::from_secs(1)),
        drain_timeout: args.drain_timeout,
        clones: Clones { home: clones_home(args.clones.as_deref())?, repo: args.repo.clone() },
    };
    let store = project.create_store()?;
    let described = store.describe();
    let (notes_tx, notes) = mpsc::unbounded_channel();
    let worker =
        Worker::new(store, &project.config, registry, project.address.secret(), spec.clone(), notes_tx)
            .map_err(|e| CliError::invalid(anyhow!(e)))?;
    let runtime = super::run::runtime();
    let (mode_tx, mode) = watch::channel(Mode::Work);
    let json = args.json;
    runtime
        .block_on(async move {
            // Listening for the signals before saying it started: a signal sent at once drains.
            let signals = Signals::new().map_err(|e| swarm_store::StoreError::Backend {
                address: described.clone(),
                message: format!("cannot listen for signals: {e}"),
            })?;
            say_started(&spec, &host, &described, json);
            let printer = tokio::spawn(print_notes(notes, json));
            let signals = tokio::spawn(drain_on_signals(signals, mode_tx, json));
            let ran = worker.run(mode).await;
            signals.abort();
            let _ = printer.await;
            ran
        })
        .map_err(CliError::from_store)?;
    Ok(0)
}

/// The agents this worker runs, with their versions: those asked for (each must be known), or
/// every agent whose CLI is found here, exec and the config's custom agents.
fn agents_here(
    project: &Project,
    asked: &[String],
    registry: &swarm_agents::Registry,
) -> Result<Vec<(String, Option<String>)>, CliError> {
    let extra = catalog::local_bin_dirs(&project.root);
    let version_of = |name: &str| {
        let info = CATALOG.iter().find(|i| i.name == name)?;
        let path = catalog::locate(info.binary, &extra)?;
        catalog::version(&path, Duration::from_secs(15)).ok()
    };
    if !asked.is_empty() {
        let mut agents = Vec::new();
        for a in asked.iter().filter(|a| !a.is_empty()) {
            registry.get(a).map_err(CliError::invalid)?;
            agents.push((a.clone(), version_of(a)));
        }
        return Ok(agents);
    }
    let mut agents: Vec<(String, Option<String>)> = CATALOG
        .iter()
        .filter(|i| catalog::locate(i.binary, &extra).is_some())
        .map(|i| (i.name.to_string(), version_of(i.name)))
        .collect();
    agents.push(("exec".into(), None));
    for (name, _) in project.config.agents.iter().filter(|(_, a)| a.command.is_some()) {
        agents.push((name.clone(), None));
    }
    Ok(agents)
}

/// `--clones DIR`, or `~/.swarm/clones`; made absolute (clones are made from elsewhere).
fn clones_home(given: Option<&Path>) -> Result<std::path::PathBuf, CliError> {
    let dir = match given {
        Some(dir) => dir.to_path_buf(),
        None => std::env::var_os("HOME").map(|h| Path::new(&h).join(".swarm/clones")).ok_or_else(|| {
            CliError::invalid(anyhow!("HOME is not set: say where clones go with --clones DIR"))
        })?,
    };
    std::path::absolute(&dir).map_err(|e| CliError::invalid(anyhow!("--clones {}: {e}", dir.display())))
}

fn labels(given: &[String]) -> Result<Vec<(String, String)>, CliError> {
    given
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(CliError::invalid(anyhow!("--labels: `{l}` is not key=value"))),
        })
        .collect()
}

fn say_started(spec: &WorkerSpec, host: &str, store: &str, json: bool) {
    let agents: Vec<String> = spec
        .agents
        .iter()
        .map(|(a, v)| v.as_ref().map_or_else(|| a.clone(), |v| format!("{a} {v}")))
        .collect();
    let (namespace, serves) = match &spec.serves {
        Serves::Only(ns) => (Value::from(ns.as_str()), format!("namespace {ns}")),
        Serves::Every { home } => {
            (Value::Null, format!("every namespace of the store (with a queue, and {home})"))
        }
    };
    if json {
        let line = json!({
            "event": "worker_started", "name": spec.name, "host": host, "namespace": namespace,
            "store": store, "concurrency": spec.concurrency, "agents": agents,
            "lease_ms": spec.lease.as_millis() as u64,
        });
        outln!("{line}");
    } else {
        errln!(
            "worker {} on {host}: {serves}, {} at once, agents: {}; store {store}",
            spec.name,
            spec.concurrency,
            agents.join(", ")
        );
        errln!(
            "Ctrl-C (or SIGTERM) drains: no new attempts, running ones finish; a second one hands them back"
        );
    }
}

async fn print_notes(mut notes: mpsc::UnboundedReceiver<WorkerNote>, json: bool) {
    while let Some(note) = notes.recv().await {
        let (event, line) = match &note {
            WorkerNote::Took { run_id, task, attempt, fence } => (
                json!({ "event": "took", "run_id": run_id, "task": task, "attempt": attempt, "fence": fence }),
                format!("took {task} #{attempt} of run {run_id} (fencing token {fence})"),
            ),
            WorkerNote::Ended { run_id, task, attempt, ok } => (
                json!({ "event": "ended", "run_id": run_id, "task": task, "attempt": attempt, "ok": ok }),
                format!("{task} #{attempt} of run {run_id} {}", if *ok { "succeeded" } else { "failed" }),
            ),
            WorkerNote::LeaseLost { run_id, task, attempt, owner } => (
                json!({ "event": "lease_lost", "run_id": run_id, "task": task, "attempt": attempt, "owner": owner }),
                format!("lease_lost: {task} #{attempt} of run {run_id} belongs to {owner} now; stopped here, nothing more written"),
            ),
            WorkerNote::HandedBack { run_id, task, attempt } => (
                json!({ "event": "handed_back", "run_id": run_id, "task": task, "attempt": attempt }),
                format!("handed {task} #{attempt} of run {run_id} back to the queue"),
            ),
            WorkerNote::StoreTrouble { message } => {
                (json!({ "event": "store_error", "message": message }), format!("store: {message}; trying again"))
            }
        };
        if json {
            let mut event = event;
            event["at"] = json!(Utc::now());
            outln!("{event}");
        } else {
            errln!("{line}");
        }
    }
}

/// Ctrl-C and SIGTERM, listened for from when it is made.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals { int: signal(SignalKind::interrupt())?, term: signal(SignalKind::terminate())? })
    }
}

/// First Ctrl-C or SIGTERM: drain. Second: hand the running attempts back now.
async fn drain_on_signals(mut signals: Signals, mode: watch::Sender<Mode>, json: bool) {
    let mut count = 0;
    loop {
        tokio::select! {
            _ = signals.int.recv() => {}
            _ = signals.term.recv() => {}
        }
        count += 1;
        let next = if count == 1 { Mode::Drain } else { Mode::HandBack };
        let _ = mode.send(next);
        if !json {
            match next {
                Mode::Drain => {
                    errln!("draining: no new attempts; running ones finish (again to hand them back)")
                }
                _ => errln!("handing the running attempts back to the queue"),
            }
        }
    }
}

pub fn workers(store: Option<&str>, config: Option<&Path>, args: WorkersArgs) -> CliResult {
    let project = Project::discover(store, config)?;
    let ns = args.namespace.clone().unwrap_or_else(|| project.default_namespace());
    let engine = project.engine(project.open_store()?)?;
    let rows: Vec<Value> = engine
        .workers(&ns)
        .map_err(CliError::from_engine)?
        .iter()
        .map(|w| serde_json::to_value(w).expect("a worker serializes"))
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
        return Ok(0);
    }
    println!("namespace {ns}: {} worker(s)", rows.len());
    println!(
        "{:<24} {:<16} {:<8} {:<9} {:<12} {:<10} AGENTS",
        "NAME", "HOST", "ALIVE", "STATE", "RUNNING", "SEEN"
    );
    for r in &rows {
        let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
        let agents: Vec<String> = r["agents"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| match a["version"].as_str() {
                Some(v) => format!("{} {v}", a["name"].as_str().unwrap_or("")),
                None => a["name"].as_str().unwrap_or("").to_string(),
            })
            .collect();
        println!(
            "{:<24} {:<16} {:<8} {:<9} {:<12} {:<10} {}",
            s("name"),
            s("host"),
            if r["alive"] == true { "yes" } else { "no" },
            s("state"),
            format!("{}/{}", r["running"], r["capacity"]),
            format!("{:.0}s ago", r["seen_ago_ms"].as_u64().unwrap_or(0) as f64 / 1000.0),
            agents.join(", ")
        );
    }
    Ok(0)
}
