//! `swarm run` and `swarm resume`.

use crate::cli::{ResumeArgs, RunArgs};
use crate::error::{CliError, CliResult};
use crate::output::{errln, outln};
use crate::project::Project;
use anyhow::anyhow;
use chrono::Utc;
use std::io::IsTerminal;
use std::path::Path;
use swarm_agents::Registry;
use swarm_core::report::{RunRecord, RunReport, TaskReport};
use swarm_core::scheduler::Restored;
use swarm_core::state::{Reason, RunState, TaskState};
use swarm_core::{Plan, Workdir};
use swarm_runner::paths::RunDir;
use swarm_runner::process::{hostname, lease_holder_dead, lease_token, owner_status};
use swarm_runner::reaper::{self, Marker, Scope};
use swarm_runner::{progress, OutputMode, RunSetup};
use swarm_store::StoreError;

fn output_mode(json: bool, no_progress: bool) -> OutputMode {
    if json {
        OutputMode::Json
    } else if no_progress || !std::io::stderr().is_terminal() || std::env::var_os("CI").is_some() {
        OutputMode::Plain
    } else {
        OutputMode::Tty
    }
}

pub fn new_run_id() -> String {
    format!("{}-{:04x}", Utc::now().format("%Y%m%d-%H%M%S"), fastrand::u16(..))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

/// The rehearsal scenario when none is given: every model reports done, then says DONE.
pub const DEFAULT_SCENARIO: &str = r#"
[models.rehearsal]
steps = [
  { report = { status = "done", summary = "rehearsal: the fake model did no real work" } },
  { say = "DONE" },
]
usage = { prompt_tokens = 1000, completion_tokens = 100 }
"#;

/// Starts the fake model for `--rehearse` and points every AI task at it through a provider
/// named `rehearsal`. Returns the server (it lives as long as the run).
fn rehearse(
    runtime: &tokio::runtime::Runtime,
    scenario: Option<&Path>,
    plan: &mut swarm_core::Plan,
    config: &mut swarm_core::config::Config,
) -> CliResult<swarm_fakellm::FakeLlm> {
    let scenario = match scenario {
        Some(path) => swarm_fakellm::Scenario::from_file(path).map_err(CliError::invalid)?,
        None => swarm_fakellm::Scenario::from_toml(DEFAULT_SCENARIO).map_err(CliError::invalid)?,
    };
    let models: Vec<String> = scenario.models.keys().cloned().collect();
    let fallback = if models.iter().any(|m| m == "rehearsal") {
        "rehearsal".to_string()
    } else {
        models.first().cloned().unwrap_or_default()
    };
    let server = runtime
        .block_on(swarm_fakellm::serve(scenario, ([127, 0, 0, 1], 0).into()))
        .map_err(|e| CliError::other(anyhow!("cannot start the fake model: {e}")))?;
    config.providers.insert(
        "rehearsal".into(),
        swarm_core::config::ProviderConfig {
            kind: "openai-compatible".into(),
            base_url: Some(server.base_url()),
            api_key_env: None,
            models: models.clone(),
        },
    );
    for t in plan.tasks.iter_mut().filter(|t| t.agent != "exec") {
        // `model: local/ok` rehearses as the scenario's `ok` when it has one.
        let wanted =
            t.model.as_deref().and_then(|m| m.rsplit('/').next()).filter(|m| models.iter().any(|x| x == m));
        t.model = Some(format!("rehearsal/{}", wanted.unwrap_or(&fallback)));
    }
    Ok(server)
}

pub fn run(store: Option<&str>, config: Option<&Path>, args: RunArgs) -> CliResult {
    let mut project = Project::discover(store, config)?;
    let mut plan = super::plan::load(&project, &args.plan, args.json)?;
    let runtime = runtime();
    let _fake_model = if args.rehearse {
        let server = rehearse(&runtime, args.scenario.as_deref(), &mut plan, &mut project.config)?;
        if !args.json {
            errln!("rehearsal: agents talk to swarm's fake model at {} (no tokens spent)", server.base_url());
        }
        Some(server)
    } else {
        None
    };
    let registry = Registry::from_config(&project.config).map_err(CliError::invalid)?;
    if args.concurrency == Some(0) {
        return Err(CliError::invalid(anyhow!("--concurrency must be at least 1")));
    }
    let concurrency = args
        .concurrency
        .or(plan.concurrency.map(|c| c as usize))
        .or(project.config.run.concurrency)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(4, |n| n.get()));
    project.ensure_state_dir();
    let store = project.create_store()?;
    let plan_file = std::fs::canonicalize(&args.plan).unwrap_or(args.plan.clone());
    let workdir = plan_file.parent().map(Path::to_path_buf).unwrap_or_else(|| project.root.clone());
    let run_id = new_run_id();
    let record = RunRecord {
        run_id: run_id.clone(),
        plan: plan.name.clone(),
        namespace: plan.namespace.clone(),
        plan_file: plan_file.display().to_string(),
        workdir: workdir.display().to_string(),
        state: RunState::Running,
        started_at: Utc::now(),
        ended_at: None,
        concurrency,
        fail_fast: args.fail_fast,
        owner: None,
        spec: plan.clone(),
    };
    let tasks: Vec<TaskReport> = plan
        .tasks
        .iter()
        .map(|t| TaskReport {
            id: t.id.clone(),
            title: t.title.clone(),
            agent: t.agent.clone(),
            depends: t.depends.clone(),
            state: TaskState::Pending,
            reason: None,
            detail: None,
            attempts: vec![],
        })
        .collect();
    store.create_run(&record, &tasks).map_err(CliError::from_store)?;
    let lease = lease_token();
    store.acquire_lease(&run_id, &lease, swarm_runner::LEASE_TTL, None).map_err(CliError::from_store)?;
    let mode = output_mode(args.json, args.no_progress);
    if mode != OutputMode::Json {
        outln!("run {run_id}");
    }
    let setup = RunSetup {
        store,
        record,
        tasks,
        restored: None,
        retry_failed: false,
        registry,
        config: project.config.clone(),
        run_dir: RunDir::new(&project.state_dir, &run_id),
        store_env: project.address.describe(),
        store_secret: project.address.secret(),
        reporter: progress::reporter(mode, plan.tasks.len()),
        lease,
        project_root: project.root.clone(),
    };
    let report = runtime.block_on(swarm_runner::run(setup));
    if mode != OutputMode::Json {
        print_outputs(&plan, &report, &workdir);
    }
    Ok(exit_code(&report, &project))
}

/// The run's exit code; a store that failed the run is also said on stderr, with where the
/// whole report is.
fn exit_code(report: &RunReport, project: &Project) -> i32 {
    if let Some(f) = &report.store_error {
        let path = RunDir::new(&project.state_dir, &report.run_id).report_json();
        errln!("error: run {}: {}", report.run_id, f.message);
        errln!("report: {}", path.display());
    }
    report.state.exit_code()
}

/// Longest list of outputs printed at the end of a run.
const MAX_OUTPUTS: usize = 20;

/// After the summary, one line per file a succeeded `shared` task declared in `paths` (plain
/// paths; globs are skipped) that exists now: a run ends by saying where its results are.
fn print_outputs(plan: &Plan, report: &RunReport, workdir: &Path) {
    let cwd = std::env::current_dir().and_then(std::fs::canonicalize).ok();
    let succeeded = |id: &str| report.tasks.iter().any(|t| t.id == id && t.state == TaskState::Succeeded);
    let outputs: Vec<String> = plan
        .tasks
        .iter()
        .filter(|t| t.workdir == Workdir::Shared && succeeded(&t.id))
        .flat_map(|t| t.paths.iter().map(move |p| (t, p)))
        .filter(|(_, p)| !p.contains(['*', '?', '[', '{']))
        .filter_map(|(t, p)| {
            let path = workdir.join(p);
            path.exists().then(|| {
                let shown = cwd.as_deref().and_then(|c| path.strip_prefix(c).ok()).unwrap_or(&path);
                format!("output: {} ({})", shown.display(), t.id)
            })
        })
        .collect();
    for line in outputs.iter().take(MAX_OUTPUTS) {
        outln!("{line}");
    }
    if outputs.len() > MAX_OUTPUTS {
        outln!("output: … and {} more", outputs.len() - MAX_OUTPUTS);
    }
}

pub fn resume(store: Option<&str>, config: Option<&Path>, args: ResumeArgs) -> CliResult {
    let project = Project::discover(store, config)?;
    let registry = Registry::from_config(&project.config).map_err(CliError::invalid)?;
    let store = project.open_store()?;
    let run_id = store.resolve(Some(&args.run)).map_err(CliError::from_store)?;
    let mut record = store
        .run(&run_id)
        .map_err(CliError::from_store)?
        .ok_or_else(|| CliError::invalid(anyhow!("no run `{run_id}`")))?;
    let host = hostname();
    // A live orchestrator keeps its run; a dead one's lease is taken over below (at once when
    // it ran here, after it expired when it ran elsewhere).
    if record.state == RunState::Running {
        if let Some(owner) = record.owner.as_ref().filter(|o| owner_status(o).is_alive()) {
            return Err(CliError::invalid(anyhow!(
                "run {run_id} is still driven by swarm (pid {} on {}); cancel it or wait for it to end",
                owner.pid,
                owner.host
            )));
        }
    }
    // Take the lease before touching anything: of two `swarm resume` at once, one gets it and
    // the other stops here, having changed nothing.
    let lease = lease_token();
    // Only from a holder known dead: another `swarm resume` may hold it by now.
    let take_over =
        store.lease_holder(&run_id).map_err(CliError::from_store)?.filter(|h| lease_holder_dead(h));
    match store.acquire_lease(&run_id, &lease, swarm_runner::LEASE_TTL, take_over.as_deref()) {
        Ok(()) => {}
        Err(StoreError::Fenced { holder, .. }) => {
            return Err(CliError::invalid(anyhow!(
                "run {run_id} was taken over by another swarm process (lease {holder}) while this one \
                 was getting ready to resume it; nothing was changed"
            )));
        }
        Err(e) => return Err(CliError::from_store(e)),
    }
    let mut tasks = store.tasks(&run_id).map_err(CliError::from_store)?;
    let mut restored = Vec::with_capacity(tasks.len());
    let mut reaped = 0;
    for t in &mut tasks {
        if t.state == TaskState::Running {
            for a in t.attempts.iter_mut().filter(|a| a.ended_at.is_none()) {
                // The attempt's process group outlived its orchestrator: end it before retrying,
                // if the recorded pid is still the attempt's (pids are reused).
                if let (Some(pid), true) = (a.pid, a.host.as_deref() == Some(host.as_str())) {
                    let marker = Marker::attempt(&run_id, &t.id, a.n);
                    if reaper::signal_group_of(pid, &marker, nix::sys::signal::Signal::SIGKILL) {
                        reaped += 1;
                    }
                }
                a.ended_at = Some(Utc::now());
                a.reason = Some(Reason::LeaseLost);
                a.detail = Some("the orchestrator died while this attempt ran".into());
            }
        }
        restored.push(Restored { state: t.state, attempts: t.attempts.len() as u32 });
    }
    // Whatever else of the run still runs here (detached from its group, or its group's leader
    // gone) is found by the run's marker.
    reaper::end(&Marker::run(&run_id), Scope::All, std::time::Duration::ZERO);
    store.clear_cancel(&run_id).map_err(CliError::from_store)?;
    if record.state != RunState::Running {
        record.state = RunState::Running;
    }
    let mode = output_mode(args.json, args.no_progress);
    if mode != OutputMode::Json {
        outln!("run {run_id}");
        let done = tasks.iter().filter(|t| t.state == TaskState::Succeeded).count();
        outln!(
            "resuming: {done} of {} tasks already succeeded; {reaped} interrupted attempt(s) stopped",
            tasks.len()
        );
    }
    let total = tasks.len();
    let (plan, workdir) = (record.spec.clone(), std::path::PathBuf::from(&record.workdir));
    let setup = RunSetup {
        store,
        record,
        tasks,
        restored: Some(restored),
        retry_failed: args.retry_failed,
        registry,
        config: project.config.clone(),
        run_dir: RunDir::new(&project.state_dir, &run_id),
        store_env: project.address.describe(),
        store_secret: project.address.secret(),
        reporter: progress::reporter(mode, total),
        lease,
        project_root: project.root.clone(),
    };
    let report = runtime().block_on(swarm_runner::run(setup));
    if mode != OutputMode::Json {
        print_outputs(&plan, &report, &workdir);
    }
    Ok(exit_code(&report, &project))
}
