//! `swarm run` and `swarm resume`.

use crate::cli::{ResumeArgs, RunArgs};
use crate::error::{CliError, CliResult};
use crate::output::{errln, outln};
use crate::progress::{self, OutputMode, Reporter};
use crate::project::Project;
use anyhow::anyhow;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use swarm_agents::Registry;
use swarm_core::report::RunReport;
use swarm_core::state::TaskState;
use swarm_core::{Plan, Workdir};
use swarm_runner::util::RunDir;
use swarm_runner::{Canceller, RunHandle, StartRequest};

fn output_mode(json: bool, no_progress: bool) -> OutputMode {
    if json {
        OutputMode::Json
    } else if no_progress || !std::io::stderr().is_terminal() || std::env::var_os("CI").is_some() {
        OutputMode::Plain
    } else {
        OutputMode::Tty
    }
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

/// The rehearsal scenario when none is given: every model writes `rehearsal/<TASK_ID>.md`
/// through its agent's file tool, reports done, then says DONE.
pub const DEFAULT_SCENARIO: &str = r#"
[models.rehearsal]
steps = [
  { write = { path = "rehearsal/{task}.md", content = "Task {task} of run {run}: written by the agent's own file tool, steered by swarm's fake model.\n" } },
  { report = { status = "done", summary = "rehearsal: the agent wrote rehearsal/{task}.md" } },
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
            // The fake model costs nothing.
            paid: Some(false),
            ..Default::default()
        },
    );
    for t in plan.tasks.iter_mut().filter(|t| t.runs_agent()) {
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
    // Checked before anything is created: bad input stores nothing.
    Registry::from_config(&project.config).map_err(CliError::invalid)?;
    let request = StartRequest {
        plan: plan.clone(),
        plan_file: args.plan.clone(),
        concurrency: args.concurrency,
        fail_fast: args.fail_fast,
        allow_paid: args.allow_paid,
        base: args.base.clone(),
        workers: args.workers || project.config.run.workers,
        repo: args.repo.clone().or_else(|| project.config.run.repo.clone()),
    };
    request.check().map_err(CliError::from_engine)?;
    project.ensure_state_dir();
    let engine = project.engine(project.create_store()?)?;
    let mode = output_mode(args.json, args.no_progress);
    let handle = engine.start(runtime.handle(), request).map_err(CliError::from_engine)?;
    if mode != OutputMode::Json {
        outln!("run {}", handle.run_id());
        say_where_work_goes(&engine, handle.run_id(), &plan, args.base.as_deref());
    }
    let run_dir = engine.run_dir(handle.run_id());
    let report = runtime.block_on(follow(handle, progress::reporter(mode, plan.tasks.len()), &run_dir));
    if mode != OutputMode::Json {
        let workdir = PathBuf::from(&plan_dir(&args.plan, &project));
        print_outputs(&plan, &report, &workdir);
    }
    Ok(exit_code(&report, &project))
}

/// Where the run's worktree tasks start and their work goes (or, outside git, that AI tasks
/// share the plan's directory), said once at the start.
fn say_where_work_goes(engine: &swarm_runner::Engine, run_id: &str, plan: &Plan, base: Option<&str>) {
    let Ok((record, _)) = engine.record(Some(run_id)) else { return };
    match &record.git {
        Some(g) => {
            let short = &g.base_commit[..g.base_commit.len().min(12)];
            errln!("base {short} ({}); work merges into {}", base.unwrap_or("HEAD"), g.integration_branch);
            if swarm_runner::util::is_dirty(Path::new(&g.repo)) {
                errln!("note: your checkout has uncommitted changes; they are not in the base, and the run leaves them alone");
            }
        }
        None => {
            let ai = plan.tasks.iter().any(|t| t.workdir(true) == Workdir::Worktree && t.workdir.is_none());
            if ai && swarm_runner::util::repo_of(Path::new(&record.workdir)).is_none() {
                errln!("note: not in a git repository: AI tasks share the plan's directory, and nothing is merged");
            }
        }
    }
}

/// The directory tasks of a plan file work in.
fn plan_dir(plan: &Path, project: &Project) -> PathBuf {
    let file = std::fs::canonicalize(plan).unwrap_or(plan.to_path_buf());
    file.parent().map(Path::to_path_buf).unwrap_or_else(|| project.root.clone())
}

/// Renders the run's events until it ends, turning Ctrl-C (and SIGTERM, SIGHUP) into a
/// graceful cancel, a second one into a kill.
async fn follow(mut handle: RunHandle, mut reporter: Box<dyn Reporter>, run_dir: &RunDir) -> RunReport {
    let signals = tokio::spawn(forward_signals(handle.canceller()));
    let mut events = handle.events().expect("a new handle has its events");
    let printer = tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            reporter.event(&ev);
        }
        reporter
    });
    let report = handle.wait().await;
    signals.abort();
    let mut reporter = printer.await.expect("the reporter does not panic");
    reporter.finish(&report, run_dir);
    report
}

/// First Ctrl-C (or SIGTERM, or SIGHUP when the terminal goes away): graceful cancel. Second:
/// kill every attempt now.
async fn forward_signals(run: Canceller) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) =
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()))
    else {
        return;
    };
    let mut count = 0;
    loop {
        let source = tokio::select! {
            _ = int.recv() => "ctrl-c",
            _ = term.recv() => "SIGTERM",
            _ = hup.recv() => "SIGHUP",
        };
        count += 1;
        if count == 1 {
            run.cancel(source);
        } else {
            run.kill();
        }
    }
}

/// The run's exit code; a store that failed the run is also said on stderr, with where the
/// whole report is.
fn exit_code(report: &RunReport, project: &Project) -> i32 {
    if let Some(f) = &report.store_error {
        let dir = RunDir::new(&project.state_dir, &report.run_id);
        errln!("error: run {}: {}", report.run_id, f.message);
        errln!("{}", crate::progress::report_line(&dir, dir.report_json().is_file()));
    }
    report.state.exit_code()
}

/// Longest list of outputs printed at the end of a run.
const MAX_OUTPUTS: usize = 20;

/// After the summary, one line per file a succeeded `shared` task declared in `paths` (plain
/// paths; globs are skipped) that exists now: a run ends by saying where its results are.
fn print_outputs(plan: &Plan, report: &RunReport, workdir: &Path) {
    let cwd = std::env::current_dir().and_then(std::fs::canonicalize).ok();
    let in_git = report.integration_branch.is_some();
    let succeeded = |id: &str| report.tasks.iter().any(|t| t.id == id && t.state == TaskState::Succeeded);
    let outputs: Vec<String> = plan
        .tasks
        .iter()
        .filter(|t| t.workdir(in_git) == Workdir::Shared && succeeded(&t.id))
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
    let engine = project.engine(project.open_store()?)?;
    let runtime = runtime();
    let (handle, info) =
        engine.resume(runtime.handle(), &args.run, args.retry_failed).map_err(CliError::from_engine)?;
    let mode = output_mode(args.json, args.no_progress);
    if mode != OutputMode::Json {
        outln!("run {}", handle.run_id());
        outln!(
            "resuming: {} of {} tasks already succeeded; {} interrupted attempt(s) stopped",
            info.succeeded,
            info.total,
            info.reaped
        );
    }
    let run_dir = engine.run_dir(handle.run_id());
    let (record, _) = engine.record(Some(handle.run_id())).map_err(CliError::from_engine)?;
    let report = runtime.block_on(follow(handle, progress::reporter(mode, info.total), &run_dir));
    if mode != OutputMode::Json {
        print_outputs(&record.spec, &report, Path::new(&record.workdir));
    }
    Ok(exit_code(&report, &project))
}
