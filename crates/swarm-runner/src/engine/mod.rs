//! The engine: the one way to start, resume, cancel and look at runs, for every face. A face
//! parses its input and renders what comes back; the run's record, lease, takeover and cleanup
//! are decided here. Nothing here prints or installs a signal handler: a face turns its signals
//! into [`Canceller`](crate::Canceller) calls and subscribes to the public events.

mod cancel;
mod error;
pub(crate) mod handle;
pub(crate) mod integration;
mod live;
mod queries;
mod workers;

pub use cancel::CancelOutcome;
pub use error::{EngineError, ErrorKind};
pub use queries::{Follow, Followed, ModelRow, ModelState, SharedState, TaskLog};
pub use workers::WorkerView;

use crate::dispatcher::{self, RunSetup};
use crate::engine::handle::RunHandle;
use crate::executor::ExecutorContext;
use crate::gateway::{Gateway, Ledger};
use crate::hierarchy::Hierarchy;
use crate::os::lease::{lease_holder_dead, lease_token, LEASE_TTL};
use crate::os::paths::RunDir;
use crate::os::process::owner_status;
use crate::os::reaper::{self, Marker, Scope};
use crate::os::{git, git_remote};
use crate::remote::queued::Queued;
use chrono::Utc;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use swarm_agents::Registry;
use swarm_core::config::Config;
use swarm_core::plan::Plan;
use swarm_core::plan::Workdir;
use swarm_core::report::{RunGit, RunRecord, TaskReport};
use swarm_core::scheduler::Restored;
use swarm_core::state::{Reason, RunState, TaskState};
use swarm_store::{Store, StoreError};

/// Everything the engine works with: one project's store, config and agents, and the runs this
/// process drives.
pub struct Engine {
    store: Arc<dyn Store>,
    config: Config,
    /// The project's root (git root or current directory): hooks run and the mirror lives there.
    project_root: PathBuf,
    /// The project's `.swarm` directory: per-run files live under `runs/`.
    state_dir: PathBuf,
    /// The store address agents get as `SWARM_STORE` (any secret masked).
    store_env: String,
    executors: Arc<ExecutorContext>,
    /// The model gateway, started with the first run that needs it.
    gateway: std::sync::Mutex<Option<Arc<Gateway>>>,
    live: live::LiveRuns,
}

/// Attempts queued for workers at once when nothing says how many: the workers' own
/// concurrency bounds what runs.
const WORKERS_CONCURRENCY: usize = 256;

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
    /// Queue the attempts for `swarm worker`s instead of running them here (`--workers`).
    pub workers: bool,
    /// The repository workers on hosts without the checkout clone (`--repo URL`).
    pub repo: Option<String>,
}

impl StartRequest {
    /// What makes a request impossible before anything is made (faces may ask first, so that
    /// bad input creates no store).
    pub fn check(&self) -> Result<(), EngineError> {
        if self.concurrency == Some(0) {
            return Err(EngineError::Invalid("concurrency must be at least 1".into()));
        }
        if let Some(url) = &self.repo {
            if !self.workers {
                return Err(EngineError::Invalid(
                    "--repo is where workers on other hosts find the run's repository: it needs --workers"
                        .into(),
                ));
            }
            git_remote::check_url(url).map_err(EngineError::Invalid)?;
        }
        Ok(())
    }

    /// What `concurrency` is when nothing says: the CPU count here, or, for attempts queued
    /// for workers (who bound what runs at once), plenty.
    fn default_concurrency(&self) -> usize {
        if self.workers {
            return WORKERS_CONCURRENCY;
        }
        std::thread::available_parallelism().map_or(4, |n| n.get())
    }
}

/// How a resumed run stood.
#[derive(Debug, Clone, Copy)]
pub struct ResumeInfo {
    pub succeeded: usize,
    pub total: usize,
    /// Interrupted attempts whose processes were still running and were stopped.
    pub reaped: usize,
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
        let mut executors = ExecutorContext::new(registry, store_secret, hierarchy);
        executors.store = Some(store.clone());
        let executors = Arc::new(executors);
        let (gateway, live) = Default::default();
        Engine { store, config, project_root, state_dir, store_env, executors, gateway, live }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Cancels every run this process drives (`source` says why); their ids.
    pub fn cancel_live(&self, source: &str) -> Vec<String> {
        let ids = self.live.ids();
        for id in &ids {
            if let Some(c) = self.live.canceller(id) {
                c.cancel(source);
            }
        }
        ids
    }

    pub fn run_dir(&self, run_id: &str) -> RunDir {
        RunDir::new(&self.state_dir, run_id)
    }

    /// Records a new run of `req.plan`, takes its lease and starts it on runtime `rt`. The run
    /// goes on whether or not the handle is waited on.
    pub fn start(&self, rt: &tokio::runtime::Handle, req: StartRequest) -> Result<RunHandle, EngineError> {
        req.check()?;
        let _on_rt = rt.enter();
        let default_concurrency = req.default_concurrency();
        let plan = req.plan;
        let concurrency = req
            .concurrency
            .or(plan.concurrency.map(|c| c as usize))
            .or(self.config.run.concurrency)
            .unwrap_or(default_concurrency);
        if req.workers && self.store.clone().work_queue().is_none() {
            return Err(EngineError::Invalid(format!(
                "--workers needs a Redis store, whose queue workers read (--store redis://…); {} is not one",
                self.store.describe()
            )));
        }
        let plan_file = std::fs::canonicalize(&req.plan_file).unwrap_or(req.plan_file);
        let workdir = plan_file.parent().map(Path::to_path_buf).unwrap_or_else(|| self.project_root.clone());
        let run_id = new_run_id();
        let git = self.prepare_git(&plan, &workdir, &run_id, (req.base.as_deref(), req.repo.as_deref()))?;
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
            allow_paid: req.allow_paid,
            workers: req.workers,
            owner: None,
            spec: plan.clone(),
            git,
        };
        let tasks: Vec<TaskReport> = plan.tasks.iter().map(TaskReport::pending).collect();
        // Everything that can fail before the run exists: a failure stores nothing.
        let gateway = self.gateway_for(&plan)?;
        self.store.create_run(&record, &tasks)?;
        let lease = lease_token();
        self.store.acquire_lease(&run_id, &lease, LEASE_TTL, None)?;
        let ledger = self.ledger_for(&record, (0.0, 0))?;
        Ok(self.launch(record, tasks, None, false, lease, (gateway, ledger)))
    }

    /// Continues a run whose orchestrator is gone: takes its lease from the dead holder before
    /// touching anything (of two resumes at once, one gets it, the other changes nothing), stops
    /// what it left running here, and runs what is not done (failed tasks too with
    /// `retry_failed`). Succeeded tasks never run again.
    pub fn resume(
        &self,
        rt: &tokio::runtime::Handle,
        run: &str,
        retry_failed: bool,
    ) -> Result<(RunHandle, ResumeInfo), EngineError> {
        let _on_rt = rt.enter();
        let mut record = self.load(Some(run))?;
        let run_id = record.run_id.clone();
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
        let queued = self.stop_on_workers(&record);
        let mut tasks = self.store.tasks(&run_id)?;
        let mut restored = Vec::with_capacity(tasks.len());
        let mut reaped = 0;
        for t in &mut tasks {
            // An attempt queued and never recorded ran too: the task was running.
            let unrecorded = cancel::add_unrecorded(t, &record.spec, &queued);
            let state = if unrecorded { TaskState::Running } else { t.state };
            if state == TaskState::Running {
                // Its attempt outlived its orchestrator: ended before the task runs again.
                let why = "the orchestrator died while this attempt ran";
                reaped += cancel::end_open_attempts(&run_id, t, Reason::LeaseLost, Some(why));
            }
            restored.push(Restored { state, attempts: t.attempts.len() as u32 });
        }
        // Whatever else of the run still runs here (detached from its group, or its group's
        // leader gone) carries the run's marker.
        reaper::end(&Marker::run(&run_id), Scope::All, Duration::ZERO);
        self.store.clear_cancel(&run_id)?;
        if let Some(g) = &record.git {
            // Merges happen in the integration branch's worktree: back if it went away.
            let tree = self.run_dir(&run_id).integration_worktree();
            if !tree.is_dir() {
                git::fresh_worktree(Path::new(&g.repo), &tree, &g.integration_branch, None).map_err(
                    |source| EngineError::Git {
                        what: "cannot restore the integration worktree".into(),
                        source,
                    },
                )?;
            }
        }
        record.state = RunState::Running;
        let succeeded = tasks.iter().filter(|t| t.state == TaskState::Succeeded).count();
        let info = ResumeInfo { succeeded, total: tasks.len(), reaped };
        // What the run spent before counts against its budget still.
        let spent = tasks
            .iter()
            .flat_map(|t| &t.attempts)
            .fold((0.0, 0), |(usd, tokens), a| (usd + a.cost_usd, tokens + a.tokens_in + a.tokens_out));
        let ledger = self.ledger_for(&record, spent)?;
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
        (base, remote): (Option<&str>, Option<&str>),
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
            |source| EngineError::Git { what: "cannot prepare the run's git branch".into(), source };
        git::git_ok(&repo, &["branch", &branch, &base_commit], git::DEFAULT_AUTHOR).map_err(invalid)?;
        let tree = self.run_dir(run_id).integration_worktree();
        git::fresh_worktree(&repo, &tree, &branch, None).map_err(invalid)?;
        if let Some(url) = remote {
            // Workers elsewhere start from it; an unreachable repository fails the run now.
            let _one_at_a_time = git::RepoLock::take(&repo).map_err(invalid)?;
            git_remote::push_branch(&repo, url, &branch).map_err(|source| EngineError::Git {
                what: format!("cannot push the run's branch to --repo {url}"),
                source,
            })?;
        }
        let repo = repo.display().to_string();
        let remote = remote.map(String::from);
        Ok(Some(RunGit { repo, base_commit, integration_branch: branch, remote }))
    }

    /// The attempts of a run whose orchestrator died (cancelled or resumed) that workers may
    /// still run, recorded or not (it may have died between queuing an attempt and storing
    /// it): stopped there (dropped if no live worker has one), so nothing of them counts or
    /// runs on. Each task's last attempt queued, which the run's own record may lack.
    fn stop_on_workers(&self, record: &RunRecord) -> HashMap<String, u32> {
        let Some(queue) = self.store.clone().work_queue().filter(|_| record.workers) else {
            return HashMap::new();
        };
        let queued = queue.queued_attempts(&record.namespace, &record.run_id).unwrap_or_default();
        let _ = queue.stop_run(&record.namespace, &record.run_id, &queued, true);
        queued
    }

    /// The run's ledger, starting from what it spent (`spent`); on workers, its budget is one
    /// tally on the store for the workers' gateways and this one.
    fn ledger_for(&self, record: &RunRecord, spent: (f64, u64)) -> Result<Arc<Ledger>, EngineError> {
        let ledger = Ledger::seeded(&self.config, record.allow_paid, spent);
        if let Some(queue) = self.store.clone().work_queue().filter(|_| record.workers) {
            ledger.share(queue, &record.namespace, &record.run_id)?;
        }
        Ok(ledger)
    }

    /// Takes the run's lease, from its holder only if that one is known dead.
    fn take_over(&self, run_id: &str) -> Result<String, StoreError> {
        let lease = lease_token();
        let take_over = self.store.lease_holder(run_id)?.filter(|h| lease_holder_dead(h));
        self.store.acquire_lease(run_id, &lease, LEASE_TTL, take_over.as_deref())?;
        Ok(lease)
    }

    /// The model gateway, started now if a task of `plan` gets its model from the config's
    /// hierarchy, or is pinned to a model whose key the gateway keeps from its agent.
    fn gateway_for(&self, plan: &Plan) -> Result<Option<Arc<Gateway>>, EngineError> {
        let layers = self.config.models.as_ref().is_some_and(|m| !m.layers.is_empty());
        let needed = plan.tasks.iter().filter(|t| t.runs_agent()).any(|t| match &t.model {
            None => layers,
            Some(m) => crate::executor::provider::gateway_keeps_key(&self.config, m),
        });
        if !needed {
            return Ok(None);
        }
        let mut slot = self.gateway.lock().expect("gateway");
        if slot.is_none() {
            let gateway = Gateway::start(self.store.clone(), &self.config).map_err(EngineError::Gateway)?;
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
        let executors: Arc<dyn dispatcher::Executors> = match self.store.clone().work_queue() {
            Some(queue) if record.workers => {
                let queue = Arc::new(queue.sibling());
                Arc::new(Queued::new(queue, &record.namespace, &record.run_id, self.executors.clone()))
            }
            _ => Arc::new(self.executors.clone()),
        };
        let handle = dispatcher::spawn(RunSetup {
            gateway,
            ledger,
            store: self.store.clone(),
            record,
            tasks,
            restored,
            retry_failed,
            executors,
            config: self.config.clone(),
            run_dir,
            store_env: self.store_env.clone(),
            lease,
            project_root: self.project_root.clone(),
        });
        self.live.add(handle.run_id(), handle.canceller(), handle.bus());
        handle
    }
}

pub fn new_run_id() -> String {
    format!("{}-{:04x}", Utc::now().format("%Y%m%d-%H%M%S"), fastrand::u16(..))
}
