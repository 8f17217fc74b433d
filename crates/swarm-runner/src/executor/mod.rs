//! The executor: runs one [`AttemptJob`] end to end — its workspace (worktree, setup command),
//! the agent's launch (through its adapter) and pre-steps, the process under supervision, and
//! the evidence of how it ended — and says what happens only through [`AttemptEvent`]s. It is
//! the seam a remote worker takes over: a job in, events out.

pub mod agent_files;
mod attempt_log;
mod evidence;
mod merge;
pub mod prompt;
pub mod provider;
mod resolver;
mod route;
pub(crate) mod supervise;
pub(crate) mod workspace;

pub(crate) use crate::executor::attempt_log::AttemptLog;
use crate::executor::supervise::Supervisor;
use crate::executor::workspace::Workspaces;
use crate::hierarchy::{self, Hierarchy};
use crate::job::{AttemptEvent, AttemptJob, Evidence, ModelRoute};
use crate::job::{Events, StopRequest};
use crate::os::bounded::{run_bounded, Bounded};
use crate::os::reaper::Marker;
pub(crate) use merge::{apply_merge, resolve_pushed};
use merge::{integrate, resolve_conflict, Conflict};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use swarm_agents::{AttemptSpec, Launch, Registry};
use swarm_core::scheduler::Failure;
use swarm_core::state::Reason;
use tokio::process::Command;
use tokio::sync::watch;

/// What every executor of this process shares.
pub struct ExecutorContext {
    pub registry: Registry,
    pub workspaces: Workspaces,
    /// PATH for agents: this swarm binary's directory first.
    pub agent_path: OsString,
    /// This swarm binary, so agents can call `swarm report` / `swarm state`.
    pub swarm_bin: PathBuf,
    /// The secrets masked in the store address agents get, so swarm's own commands inside a
    /// task can connect (`SWARM_STORE_PASSWORD`): known to this host, never part of a job.
    pub store_secret: Option<String>,
    /// The model hierarchy attempts of agents that talk to providers themselves pick from.
    pub hierarchy: Option<Arc<Hierarchy>>,
    /// The store: a `full` hand-off reads the state keys a dependency wrote from its feed.
    pub store: Option<Arc<dyn swarm_store::Store>>,
}

impl ExecutorContext {
    pub fn new(
        registry: Registry,
        store_secret: Option<String>,
        hierarchy: Option<Arc<Hierarchy>>,
    ) -> ExecutorContext {
        let swarm_bin = std::env::current_exe().unwrap_or_else(|_| "swarm".into());
        let workspaces = Workspaces::default();
        ExecutorContext {
            registry,
            workspaces,
            agent_path: agent_path(),
            swarm_bin,
            store_secret,
            hierarchy,
            store: None,
        }
    }
}

/// Runs `job` to its end; the last event sent is always `Finished`.
pub async fn run(
    mut job: AttemptJob,
    ctx: Arc<ExecutorContext>,
    mut stop: watch::Receiver<StopRequest>,
    tx: Events,
) {
    let (task, attempt) = (job.task_index, job.attempt);
    let send = |ev: AttemptEvent| {
        let _ = tx.send((task, attempt, ev));
    };
    let mut log = AttemptLog::new(job.log.clone(), job.limits.log_limit);
    if !job.handoff_state.is_empty() {
        job.prompt = with_state_keys(&job, ctx.store.clone()).await;
    }
    let resolved = route::resolve(&job, ctx.hierarchy.as_ref(), &mut stop, send).await;
    let launched = match resolved {
        Ok(resolved) => launch(&job, &ctx, &resolved, &mut stop).await.map(|l| (l, resolved)),
        Err(failure) => Err(failure),
    };
    match launched {
        Ok((Launched { child, stdin, adapter, workdir, baseline, copied, user }, resolved)) => {
            send(AttemptEvent::Started { pid: child.id(), workdir: workdir.clone() });
            let supervisor =
                Supervisor::new(&job, adapter, workdir, baseline, stdin, log, stop.clone(), tx.clone());
            let (exit_code, mut outcome, mut evidence) = supervisor.run(child).await;
            let model = resolved.model.clone();
            if let Some(user) = user {
                let changes = tokio::task::spawn_blocking(move || user.changes()).await;
                evidence.warnings.extend(changes.unwrap_or_default());
            }
            if outcome.is_ok() {
                if matches!(job.workspace, crate::job::WorkspaceSpec::Worktree { .. }) {
                    send(AttemptEvent::Merging);
                }
                integrate(&job, &ctx, model.as_deref(), copied.clone(), &mut outcome, &mut evidence).await;
                let conflict = Conflict { resolved: &resolved, copied: &copied, tx: tx.clone() };
                resolve_conflict(&job, &ctx, conflict, &mut outcome, &mut evidence, &mut stop).await;
            } else if let (Some(h), Some(model)) = (&ctx.hierarchy, model) {
                cool_picked(&job, h, model, &outcome, &evidence).await;
            }
            send(AttemptEvent::Finished { exit_code, outcome, evidence: Box::new(evidence) });
        }
        Err(failure) => {
            let detail = failure.detail.clone().unwrap_or_default();
            log.write(format!("swarm: could not start the attempt: {detail}\n").as_bytes());
            log.finish();
            let evidence = Box::new(Evidence::default());
            send(AttemptEvent::Finished { exit_code: None, outcome: Err(failure), evidence });
        }
    }
}

/// The prompt of a `handoff: full` task with the state keys each dependency wrote (per the
/// namespace's change feed: the newest version of each key still there) in place of their tokens.
async fn with_state_keys(job: &AttemptJob, store: Option<Arc<dyn swarm_store::Store>>) -> String {
    let (run_id, deps, ns) = (job.run_id.clone(), job.handoff_state.clone(), namespace_of(job));
    let written = tokio::task::spawn_blocking(move || {
        let mut keys: Vec<(String, std::collections::BTreeMap<String, u64>)> =
            deps.into_iter().map(|d| (d, Default::default())).collect();
        let mut after = 0;
        while let Some(batch) = store.as_ref().and_then(|s| s.state_changes(&ns, after, 1000).ok()) {
            let Some(last) = batch.last() else { break };
            after = last.seq;
            for c in batch {
                let by = c.by.as_ref().filter(|b| b.run_id.as_deref() == Some(run_id.as_str()));
                let Some((_, mine)) =
                    by.and_then(|b| keys.iter_mut().find(|(d, _)| Some(d) == b.task_id.as_ref()))
                else {
                    continue;
                };
                match c.op {
                    swarm_core::state_doc::StateOp::Set => drop(mine.insert(c.key, c.version)),
                    swarm_core::state_doc::StateOp::Delete => drop(mine.remove(&c.key)),
                    swarm_core::state_doc::StateOp::Refused => {}
                }
            }
        }
        keys.into_iter().map(|(d, m)| (d, m.into_iter().take(50).collect())).collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    swarm_core::team::fill_state_keys(&job.prompt, &written)
}

/// The namespace the job's agents share state in (`SWARM_NAMESPACE`).
fn namespace_of(job: &AttemptJob) -> String {
    job.env.iter().find(|(k, _)| k == "SWARM_NAMESPACE").map(|(_, v)| v.clone()).unwrap_or_default()
}

/// A started agent and what the rest of its attempt needs.
struct Launched {
    child: tokio::process::Child,
    stdin: Option<String>,
    adapter: Arc<dyn swarm_agents::Adapter>,
    workdir: PathBuf,
    /// What git saw changed before the agent started.
    baseline: Option<std::collections::BTreeSet<String>>,
    /// Files copied into its worktree (`.worktreeinclude`): never committed.
    copied: Vec<String>,
    /// The user's checkout before the agent started (worktree tasks).
    user: Option<crate::os::git::UserSide>,
}

/// An attempt on a model of the hierarchy failed: when the model is to blame, it is cooled
/// down (or disabled) for every process on the store, on the store's clock, before the
/// dispatcher moves the next attempt to another model.
async fn cool_picked(
    job: &AttemptJob,
    h: &Arc<Hierarchy>,
    model: String,
    outcome: &Result<(), Failure>,
    evidence: &Evidence,
) {
    let ModelRoute::Hierarchy { namespace, .. } = &job.route else { return };
    let Some(class) = evidence.failure_class.filter(|c| c.is_model_level()) else { return };
    if matches!(outcome, Err(f) if f.reason == Reason::Cancelled) {
        return;
    }
    let (h, ns, retry_after) = (h.clone(), namespace.clone(), evidence.retry_after);
    let Some(i) = h.catalog.index(&model) else { return };
    let _ = tokio::task::spawn_blocking(move || {
        let now_ms = h.store.now_ms()?;
        let policy = h.policy_for(i, class, retry_after, 0, now_ms);
        hierarchy::apply_policy(&*h.store, &ns, &model, &policy)
    })
    .await;
}

/// Everything before the agent's process runs: workspace, git baseline, launch, pre-steps, spawn.
async fn launch(
    job: &AttemptJob,
    ctx: &ExecutorContext,
    resolved: &route::Resolved,
    stop: &mut watch::Receiver<StopRequest>,
) -> Result<Launched, Failure> {
    let spawn_error = |detail: String| Failure { reason: Reason::SpawnError, detail: Some(detail) };
    let marker = Marker::attempt(&job.run_id, &job.task.id, job.attempt);
    let prepared = ctx.workspaces.prepare(&job.workspace, &job.limits, &marker, stop).await?;
    let (workdir, mut copied, user) = (prepared.workdir, prepared.copied, prepared.user);
    copied.extend(workspace::write_agent_files(&job.workspace, &workdir, &job.files).map_err(spawn_error)?);
    let baseline = if job.report.required {
        // Before the agent starts, so its first edits are never taken for old ones.
        crate::executor::evidence::git_changes(&workdir).await
    } else {
        None
    };
    if job.task.runs_agent() {
        // exec tasks rarely report; `swarm report` creates the directory when they do.
        std::fs::create_dir_all(&job.attempt_dir)
            .map_err(|e| spawn_error(format!("cannot create {}: {e}", job.attempt_dir.display())))?;
    }
    let adapter = ctx.registry.get(&job.task.agent).map_err(|e| spawn_error(e.to_string()))?;
    let spec = AttemptSpec {
        run_id: &job.run_id,
        task: &job.task,
        attempt: job.attempt,
        prompt: &job.prompt,
        model: resolved.model.as_deref(),
        workdir: workdir.clone(),
        provider: resolved.provider.clone(),
        attempt_dir: job.attempt_dir.clone(),
        project_root: job.project_root.clone(),
        completion_file: job.report.required.then(|| job.report.path.clone()),
    };
    let launch = adapter.launch(&spec).map_err(|e| spawn_error(e.to_string()))?;
    let env = environment(job, ctx, &resolved.env, &launch);
    let configured = job.pre_step.as_ref().map(|cmd| swarm_agents::SetupCommand {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), cmd.clone()],
        env: vec![],
    });
    for step in configured.iter().chain(&launch.setup) {
        pre_step(job, &launch, step, &env, stop).await?;
    }
    let mut cmd = Command::new(&launch.program);
    cmd.args(&launch.args)
        .current_dir(&launch.cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(if launch.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let child = cmd.spawn().map_err(|e| {
        spawn_error(if !launch.cwd.is_dir() {
            format!(
                "cannot start `{}`: working directory {} does not exist",
                launch.program,
                launch.cwd.display()
            )
        } else if e.raw_os_error() == Some(nix::errno::Errno::E2BIG as i32) {
            format!(
                "cannot start `{}`: its arguments and environment are over the system's limit (the `{}` \
                 adapter passes something large, e.g. the prompt, as an argument)",
                launch.program, job.task.agent
            )
        } else {
            format!("cannot start `{}`: {e}", launch.program)
        })
    })?;
    Ok(Launched { child, stdin: launch.stdin, adapter, workdir, baseline, copied, user })
}

/// The agent's whole environment: swarm's own (less what the job and the adapter remove), the
/// job's (`SWARM_*`, a placeholder key), the adapter's, `env_from` copies, and PATH with this
/// swarm first.
fn environment(
    job: &AttemptJob,
    ctx: &ExecutorContext,
    route_env: &[(String, String)],
    launch: &Launch,
) -> Vec<(OsString, OsString)> {
    let mut env: std::collections::BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    for var in &job.env_remove {
        env.remove(&OsString::from(var));
    }
    for var in &launch.env_remove {
        env.remove(&OsString::from(var));
    }
    for (k, v) in job.env.iter().chain(route_env).chain(&launch.env) {
        env.insert(k.into(), v.into());
    }
    for (var, from) in &launch.env_from {
        if let Some(value) = env.get(&OsString::from(from)).cloned() {
            env.insert(var.into(), value);
        }
    }
    if let Some(secret) = &ctx.store_secret {
        env.insert("SWARM_STORE_PASSWORD".into(), secret.into());
    }
    env.insert("SWARM_BIN".into(), ctx.swarm_bin.clone().into());
    env.insert("PATH".into(), ctx.agent_path.clone());
    env.into_iter().collect()
}

/// An adapter's pre-step (a login, a config step), bounded by `setup_timeout` and stoppable.
async fn pre_step(
    job: &AttemptJob,
    launch: &Launch,
    step: &swarm_agents::SetupCommand,
    env: &[(OsString, OsString)],
    stop: &mut watch::Receiver<StopRequest>,
) -> Result<(), Failure> {
    let agent = &job.task.agent;
    let fail = |detail: String| Failure { reason: Reason::SpawnError, detail: Some(detail) };
    // A configured pre-step is shown by its command, an adapter's by its program only (its
    // arguments may name provider details).
    let shown = match step.args.as_slice() {
        [c, cmd] if step.program == "/bin/sh" && c == "-c" => cmd.as_str(),
        _ => step.program.as_str(),
    };
    let mut command = Command::new(&step.program);
    command
        .args(&step.args)
        .current_dir(&launch.cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .envs(step.env.iter().map(|(k, v)| (k, v)));
    let limits = &job.limits;
    match run_bounded(command, limits.setup_timeout, limits.grace, stop).await {
        Ok((status, _)) if status.success() => Ok(()),
        // Never echo the step's output or arguments: they may name provider details.
        Ok((status, _)) => Err(fail(format!("the {agent} pre-step `{shown}` failed ({status})"))),
        Err(Bounded::Spawn(e)) => Err(fail(format!("cannot run the {agent} pre-step `{shown}`: {e}"))),
        Err(Bounded::TimedOut) => Err(fail(format!(
            "the {agent} pre-step `{shown}` timed out after {}",
            swarm_core::duration::format(limits.setup_timeout)
        ))),
        Err(Bounded::Stopped) => {
            Err(Failure { reason: Reason::Cancelled, detail: Some("run cancelled".into()) })
        }
    }
}

/// PATH with the directory of this `swarm` binary first.
fn agent_path() -> OsString {
    let mut dirs: Vec<PathBuf> =
        std::env::current_exe().ok().and_then(|e| e.parent().map(PathBuf::from)).into_iter().collect();
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(dirs).unwrap_or_default()
}
