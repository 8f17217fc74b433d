//! The engine: the one way to start, resume, cancel and look at runs, for every face. A face
//! parses its input and renders what comes back; the run's record, lease, takeover and cleanup
//! are decided here. Nothing here prints or installs a signal handler: a face turns its signals
//! into [`Canceller`](crate::Canceller) calls and subscribes to the public events.

pub(crate) mod handle;
pub(crate) mod integration;

use crate::dispatcher::{self, RunSetup};
use crate::engine::handle::RunHandle;
use crate::executor::ExecutorContext;
use crate::gateway::{Gateway, Ledger};
use crate::hierarchy::Hierarchy;
use crate::os::git;
use crate::os::paths::RunDir;
use crate::os::process::{hostname, lease_holder_dead, lease_token, owner_status};
use crate::os::reaper::{self, Marker, Scope};
use chrono::Utc;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_agents::Registry;
use swarm_core::config::Config;
use swarm_core::event::{Event, EventKind};
use swarm_core::plan::Plan;
use swarm_core::plan::Workdir;
use swarm_core::report::{RunGit, RunRecord, RunReport, TaskReport};
use swarm_core::scheduler::Restored;
use swarm_core::state::{Reason, RunState, TaskState};
use swarm_store::{Batch, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Bad input: the contract's exit code 2.
    #[error("{0}")]
    Invalid(String),
    #[error("run {run_id} is still driven by swarm (pid {pid} on {host}); cancel it or wait for it to end")]
    StillDriven { run_id: String, pid: u32, host: String },
    #[error(
        "run {run_id} was taken over by another swarm process (lease {holder}) while this one was \
         getting ready to resume it; nothing was changed"
    )]
    TakenOver { run_id: String, holder: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Everything the engine works with: one project's store, config and agents.
pub struct Engine {
    pub store: Arc<dyn Store>,
    pub config: Config,
    /// The project's root (git root or current directory): hooks run and the mirror lives there.
    pub project_root: PathBuf,
    /// The project's `.swarm` directory: per-run files live under `runs/`.
    pub state_dir: PathBuf,
    /// The store address agents get as `SWARM_STORE` (any secret masked).
    pub store_env: String,
    executors: Arc<ExecutorContext>,
    /// The model gateway, started with the first run that needs it.
    gateway: std::sync::Mutex<Option<Arc<Gateway>>>,
}

/// What to start.
pub struct StartRequest {
    pub plan: Plan,
    /// The plan's file; tasks work in its directory.
    pub plan_file: PathBuf,
    /// At most this many tasks at once (default: the plan's, the config's, the CPU count).
    pub concurrency: Option<usize>,
    pub fail_fast: bool,
    /// Paid models may serve (`--allow-paid`), whatever `[models] allow_paid` says.
    pub allow_paid: bool,
    /// Worktree tasks start from this commit (`--base REF`; default HEAD).
    pub base: Option<String>,
}

/// How a resumed run stood.
#[derive(Debug, Clone, Copy)]
pub struct ResumeInfo {
    pub succeeded: usize,
    pub total: usize,
    /// Interrupted attempts whose processes were still running and were stopped.
    pub reaped: usize,
}

/// What `cancel` did.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelOutcome {
    AlreadyFinished(RunState),
    /// Its orchestrator stopped it.
    Stopped(RunState),
    /// Asked; the orchestrator is still winding down (or another one took the run over).
    Requested(String),
    /// Nobody drove it: its leftovers were stopped and the cancel recorded here.
    Closed,
}

impl Engine {
    /// `store_secret`: what the address agents get has masked, given to them separately.
    pub fn new(
        store: Arc<dyn Store>,
        config: Config,
        registry: Registry,
        project_root: PathBuf,
        state_dir: PathBuf,
        store_env: String,
        store_secret: Option<String>,
    ) -> Engine {
        let hierarchy = Hierarchy::of(store.clone(), &config);
        let executors = Arc::new(ExecutorContext::new(registry, store_secret, hierarchy));
        Engine { store, config, project_root, state_dir, store_env, executors, gateway: Default::default() }
    }

    pub fn run_dir(&self, run_id: &str) -> RunDir {
        RunDir::new(&self.state_dir, run_id)
    }

    /// Records a new run of `req.plan`, takes its lease and starts it (on the current tokio
    /// runtime). The run goes on whether or not the handle is waited on.
    pub fn start(&self, req: StartRequest) -> Result<RunHandle, EngineError> {
        if req.concurrency == Some(0) {
            return Err(EngineError::Invalid("--concurrency must be at least 1".into()));
        }
        let plan = req.plan;
        let concurrency = req
            .concurrency
            .or(plan.concurrency.map(|c| c as usize))
            .or(self.config.run.concurrency)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(4, |n| n.get()));
        let plan_file = std::fs::canonicalize(&req.plan_file).unwrap_or(req.plan_file);
        let workdir = plan_file.parent().map(Path::to_path_buf).unwrap_or_else(|| self.project_root.clone());
        let run_id = new_run_id();
        let git = self.prepare_git(&plan, &workdir, &run_id, req.base.as_deref())?;
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
            fail_fast: req.fail_fast,
            owner: None,
            spec: plan.clone(),
            git,
        };
        let tasks: Vec<TaskReport> = plan.tasks.iter().map(TaskReport::pending).collect();
        // Everything that can fail before the run exists: a failure stores nothing.
        let gateway = self.gateway_for(&plan)?;
        self.store.create_run(&record, &tasks)?;
        let lease = lease_token();
        self.store.acquire_lease(&run_id, &lease, crate::LEASE_TTL, None)?;
        let ledger = Ledger::new(&self.config, req.allow_paid);
        Ok(self.launch(record, tasks, None, false, lease, (gateway, ledger)))
    }

    /// Continues a run whose orchestrator is gone: takes its lease from the dead holder before
    /// touching anything (of two resumes at once, one gets it, the other changes nothing), stops
    /// what it left running here, and runs what is not done (failed tasks too with
    /// `retry_failed`). Succeeded tasks never run again.
    pub fn resume(&self, run: &str, retry_failed: bool) -> Result<(RunHandle, ResumeInfo), EngineError> {
        let run_id = self.store.resolve(Some(run))?;
        let mut record = self.store.run(&run_id)?.ok_or_else(|| StoreError::NoSuchRun(run_id.clone()))?;
        if record.state == RunState::Running {
            if let Some(owner) = record.owner.as_ref().filter(|o| owner_status(o).is_alive()) {
                return Err(EngineError::StillDriven { run_id, pid: owner.pid, host: owner.host.clone() });
            }
        }
        let gateway = self.gateway_for(&record.spec)?;
        let lease = self.take_over(&run_id).map_err(|e| match e {
            StoreError::Fenced { holder, .. } => EngineError::TakenOver { run_id: run_id.clone(), holder },
            e => EngineError::Store(e),
        })?;
        let mut tasks = self.store.tasks(&run_id)?;
        let host = hostname();
        let mut restored = Vec::with_capacity(tasks.len());
        let mut reaped = 0;
        for t in &mut tasks {
            if t.state == TaskState::Running {
                for a in t.attempts.iter_mut().filter(|a| a.ended_at.is_none()) {
                    // The attempt outlived its orchestrator: end it before retrying, if the
                    // recorded pid is still the attempt's (pids are reused).
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
        // Whatever else of the run still runs here (detached from its group, or its group's
        // leader gone) carries the run's marker.
        reaper::end(&Marker::run(&run_id), Scope::All, Duration::ZERO);
        self.store.clear_cancel(&run_id)?;
        if let Some(g) = &record.git {
            // Merges happen in the integration branch's worktree: back if it went away.
            let tree = self.run_dir(&run_id).integration_worktree();
            if !tree.is_dir() {
                git::fresh_worktree(Path::new(&g.repo), &tree, &g.integration_branch, None).map_err(|e| {
                    EngineError::Invalid(format!("cannot restore the integration worktree: {e}"))
                })?;
            }
        }
        record.state = RunState::Running;
        let succeeded = tasks.iter().filter(|t| t.state == TaskState::Succeeded).count();
        let info = ResumeInfo { succeeded, total: tasks.len(), reaped };
        let ledger = Ledger::new(&self.config, false);
        Ok((self.launch(record, tasks, Some(restored), retry_failed, lease, (gateway, ledger)), info))
    }

    /// The run's git side, when its plan lies in a repository and a task works in a worktree:
    /// the base commit, the integration branch `swarm/<RUN_ID>` made at it, and the worktree
    /// merges happen in. The user's checkout is only read.
    fn prepare_git(
        &self,
        plan: &Plan,
        workdir: &Path,
        run_id: &str,
        base: Option<&str>,
    ) -> Result<Option<RunGit>, EngineError> {
        let Some(repo) = git::repo_of(workdir) else {
            if base.is_some() {
                return Err(EngineError::Invalid(format!(
                    "--base: {} is in no git repository",
                    workdir.display()
                )));
            }
            return Ok(None);
        };
        if !plan.tasks.iter().any(|t| t.workdir(true) == Workdir::Worktree) {
            return Ok(None);
        }
        let base_commit = match git::commit_of(&repo, base.unwrap_or("HEAD")) {
            Ok(c) => c,
            // A repository without a commit yet: nothing to branch from.
            Err(_) if base.is_none() && plan.tasks.iter().all(|t| t.workdir.is_none()) => return Ok(None),
            Err(e) => {
                return Err(EngineError::Invalid(format!(
                    "worktree tasks start from a commit: {e} (commit first, or name one with --base)"
                )))
            }
        };
        let branch = format!("swarm/{run_id}");
        let invalid =
            |e: git::GitError| EngineError::Invalid(format!("cannot prepare the run's git branch: {e}"));
        git::git_ok(&repo, &["branch", &branch, &base_commit], git::DEFAULT_AUTHOR).map_err(invalid)?;
        let tree = self.run_dir(run_id).integration_worktree();
        git::fresh_worktree(&repo, &tree, &branch, None).map_err(invalid)?;
        let repo = repo.display().to_string();
        Ok(Some(RunGit { repo, base_commit, integration_branch: branch }))
    }

    /// Takes the run's lease, from its holder only if that one is known dead.
    fn take_over(&self, run_id: &str) -> Result<String, StoreError> {
        let lease = lease_token();
        let take_over = self.store.lease_holder(run_id)?.filter(|h| lease_holder_dead(h));
        self.store.acquire_lease(run_id, &lease, crate::LEASE_TTL, take_over.as_deref())?;
        Ok(lease)
    }

    /// The model gateway, started now if the config declares a hierarchy and a task of `plan`
    /// gets its model from it.
    fn gateway_for(&self, plan: &Plan) -> Result<Option<Arc<Gateway>>, EngineError> {
        let needed = plan.tasks.iter().any(|t| t.model.is_none() && t.runs_agent());
        if !needed || self.config.models.as_ref().is_none_or(|m| m.layers.is_empty()) {
            return Ok(None);
        }
        let mut slot = self.gateway.lock().expect("gateway");
        if slot.is_none() {
            let gateway = Gateway::start(self.store.clone(), &self.config)
                .map_err(|e| EngineError::Invalid(format!("cannot start the model gateway: {e}")))?;
            *slot = Some(Arc::new(gateway));
        }
        Ok(slot.clone())
    }

    fn launch(
        &self,
        record: RunRecord,
        tasks: Vec<TaskReport>,
        restored: Option<Vec<Restored>>,
        retry_failed: bool,
        lease: String,
        (gateway, ledger): (Option<Arc<Gateway>>, Arc<Ledger>),
    ) -> RunHandle {
        let run_dir = self.run_dir(&record.run_id);
        dispatcher::spawn(RunSetup {
            gateway,
            ledger,
            store: self.store.clone(),
            record,
            tasks,
            restored,
            retry_failed,
            executors: Arc::new(self.executors.clone()),
            config: self.config.clone(),
            run_dir,
            store_env: self.store_env.clone(),
            lease,
            project_root: self.project_root.clone(),
        })
    }

    /// Stops a run from anywhere: through the store when its orchestrator lives (waiting up to
    /// the grace period and some for it to wind down); when none does, stops what the run left
    /// running here and records the cancel itself. Blocking.
    pub fn cancel(&self, run: &str) -> Result<(String, CancelOutcome), EngineError> {
        let run_id = self.store.resolve(Some(run))?;
        let mut record = self.store.run(&run_id)?.ok_or_else(|| StoreError::NoSuchRun(run_id.clone()))?;
        if record.state != RunState::Running {
            return Ok((run_id, CancelOutcome::AlreadyFinished(record.state)));
        }
        self.store.request_cancel(&run_id)?;
        if record.owner.as_ref().is_some_and(|o| owner_status(o).is_alive()) {
            let deadline = Instant::now() + self.config.grace() + Duration::from_secs(15);
            while Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
                if let Some(r) = self.store.run(&run_id)?.filter(|r| r.state != RunState::Running) {
                    return Ok((run_id, CancelOutcome::Stopped(r.state)));
                }
            }
            return Ok((run_id, CancelOutcome::Requested("the orchestrator is still stopping".into())));
        }
        // Nobody drives the run: take its lease from the dead holder (a resume racing us would
        // otherwise write over what we record, or we over it).
        let lease = match self.take_over(&run_id) {
            Ok(lease) => lease,
            Err(StoreError::Fenced { .. }) => {
                // Someone drives it now (a resume won the race): it sees the cancel request.
                let why = "another swarm process took the run over".to_string();
                return Ok((run_id, CancelOutcome::Requested(why)));
            }
            Err(e) => return Err(e.into()),
        };
        let host = hostname();
        let mut tasks = self.store.tasks(&run_id)?;
        let mut batch = Batch { lease: Some(lease), ..Batch::default() };
        let now = Utc::now();
        for t in &mut tasks {
            if t.state.is_terminal() {
                continue;
            }
            for a in t.attempts.iter_mut().filter(|a| a.ended_at.is_none()) {
                if let (Some(pid), true) = (a.pid, a.host.as_deref() == Some(host.as_str())) {
                    // Only if the pid is still the attempt's: pids are reused.
                    let marker = Marker::attempt(&run_id, &t.id, a.n);
                    reaper::signal_group_of(pid, &marker, nix::sys::signal::Signal::SIGKILL);
                }
                a.ended_at = Some(now);
                a.reason = Some(Reason::Cancelled);
            }
            t.state = TaskState::Cancelled;
            t.reason = Some(Reason::Cancelled);
            t.detail = Some("run cancelled (its orchestrator was gone)".into());
            let kind = EventKind::TaskState {
                task: t.id.clone(),
                state: TaskState::Cancelled,
                reason: t.reason,
                detail: t.detail.clone(),
            };
            batch.events.push(Event { run_id: run_id.clone(), timestamp: now, elapsed_ms: 0, kind });
            batch.tasks.push(t.clone());
        }
        reaper::end(&Marker::run(&run_id), Scope::All, Duration::ZERO);
        record.state = RunState::Cancelled;
        record.ended_at = Some(now);
        batch.run = Some(record);
        self.store.apply(&run_id, &batch)?;
        Ok((run_id, CancelOutcome::Closed))
    }

    /// A run's record and its report as it stands (live while it runs).
    pub fn status(&self, run: Option<&str>) -> Result<(RunRecord, RunReport), EngineError> {
        let run_id = self.store.resolve(run)?;
        let record = self.store.run(&run_id)?.ok_or_else(|| StoreError::NoSuchRun(run_id.clone()))?;
        let tasks = self.store.tasks(&run_id)?;
        let report = RunReport::build(&record, tasks);
        Ok((record, report))
    }
}

pub fn new_run_id() -> String {
    format!("{}-{:04x}", Utc::now().format("%Y%m%d-%H%M%S"), fastrand::u16(..))
}
