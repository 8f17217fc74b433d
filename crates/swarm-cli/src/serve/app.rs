//! What the orchestrator's faces (MCP tools, JSON API, dashboard) can do, once: every operation
//! goes through the one engine; runs started here are ordinary runs (`swarm status` sees them,
//! `swarm resume` continues them after this server is gone).

use crate::project::Project;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use swarm_core::plan::{Plan, PlanContext};
use swarm_core::report::RunReport;
use swarm_core::state::RunState;
use swarm_runner::{CancelOutcome, Canceller, Engine, StartRequest};
use swarm_store::{Store, StoreError};

/// An operation's failure, said in a sentence: invalid input, or something that went wrong.
#[derive(Debug, Clone)]
pub struct OpError {
    pub invalid: bool,
    pub message: String,
}

impl OpError {
    pub fn invalid(message: impl Into<String>) -> OpError {
        OpError { invalid: true, message: message.into() }
    }
    pub fn failed(message: impl Into<String>) -> OpError {
        OpError { invalid: false, message: message.into() }
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> OpError {
        let invalid = !matches!(e, StoreError::Backend { .. } | StoreError::Corrupt { .. });
        OpError { invalid, message: e.to_string() }
    }
}

impl From<swarm_runner::EngineError> for OpError {
    fn from(e: swarm_runner::EngineError) -> OpError {
        match e {
            swarm_runner::EngineError::Store(e) => e.into(),
            e => OpError::invalid(e.to_string()),
        }
    }
}

pub type OpResult<T> = Result<T, OpError>;

/// Runs a blocking operation of the app (store calls, waits) off the async threads: how every
/// face calls it.
pub async fn off_loop<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&Arc<App>) -> OpResult<T> + Send + 'static,
) -> OpResult<T> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || f(&app))
        .await
        .unwrap_or_else(|e| Err(OpError::failed(format!("internal error: {e}"))))
}

/// A plan given either as a file or inline.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
pub struct PlanInput {
    /// Path of a plan file (`.md` or `.json`), relative to the project root or absolute.
    #[serde(default)]
    pub plan_path: Option<String>,
    /// The plan's text itself (markdown, or JSON when it starts with `{`); its tasks work in the
    /// project root.
    #[serde(default)]
    pub plan: Option<String>,
}

/// `plan_check`'s answer.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PlanCheck {
    pub ok: bool,
    pub name: Option<String>,
    pub tasks: usize,
    /// Every problem, each with where it is (`file:line:column`) and what to do.
    pub errors: Vec<String>,
}

/// One row of `runs_list`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RunRow {
    pub run_id: String,
    pub plan: String,
    pub namespace: String,
    pub state: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub tasks: usize,
}

/// The tail of a task's attempt log.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TaskLogs {
    pub run_id: String,
    pub task_id: String,
    /// The attempt shown (the latest unless asked), 0 when the task has not started.
    pub attempt: u32,
    pub state: String,
    /// Its completion report (`completion.json`), when the agent wrote a valid one.
    pub completion: Option<Value>,
    /// The last `tail` lines of the attempt's output.
    pub log: String,
    pub truncated: bool,
}

/// The longest a status call waits: MCP clients cut calls off at 60 s.
pub const MAX_WAIT: Duration = Duration::from_secs(50);

pub struct App {
    pub project: Project,
    pub engine: Arc<Engine>,
    /// Runs this process drives: their cancellers.
    live: Mutex<HashMap<String, Canceller>>,
    /// Their ends, awaited on shutdown.
    waiters: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    runtime: tokio::runtime::Handle,
}

impl App {
    pub fn new(project: Project, engine: Engine, runtime: tokio::runtime::Handle) -> Arc<App> {
        Arc::new(App {
            project,
            engine: Arc::new(engine),
            live: Mutex::new(HashMap::new()),
            waiters: Mutex::new(Vec::new()),
            runtime,
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.engine.store
    }

    fn plan_context(&self, file: &Path) -> PlanContext {
        PlanContext {
            default_name: file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "plan".into()),
            default_namespace: self.project.default_namespace(),
            agents: swarm_agents::agent_names(&self.project.config),
        }
    }

    /// The plan and the file its tasks work beside (an inline plan: the project root).
    fn load_plan(&self, input: &PlanInput) -> OpResult<Result<(Plan, PathBuf), PlanCheck>> {
        let (file, parsed) = match (&input.plan_path, &input.plan) {
            (Some(_), Some(_)) => {
                return Err(OpError::invalid("give either `plan_path` or `plan`, not both"))
            }
            (None, None) => {
                return Err(OpError::invalid("give a plan: `plan_path` (a file) or `plan` (its text)"))
            }
            (Some(path), None) => {
                let file = self.project.root.join(path);
                let parsed = swarm_core::plan::load(&file, &self.plan_context(&file));
                (file, parsed)
            }
            (None, Some(text)) => {
                let json = text.trim_start().starts_with('{');
                let name = if json { "inline-plan.json" } else { "inline-plan.md" };
                let file = self.project.root.join(name);
                let ctx = self.plan_context(&file);
                let parsed = if json {
                    swarm_core::plan::parse_json(name, text, &ctx)
                } else {
                    swarm_core::plan::parse_markdown(name, text, &ctx)
                };
                (file, parsed)
            }
        };
        Ok(match parsed {
            Ok(plan) => Ok((plan, file)),
            Err(diags) => {
                let errors = diags.render_items(false);
                Err(PlanCheck { ok: false, name: None, tasks: 0, errors })
            }
        })
    }

    pub fn plan_check(&self, input: &PlanInput) -> OpResult<PlanCheck> {
        Ok(match self.load_plan(input)? {
            Ok((plan, _)) => {
                PlanCheck { ok: true, name: Some(plan.name), tasks: plan.tasks.len(), errors: vec![] }
            }
            Err(check) => check,
        })
    }

    /// Starts a run in this process and returns its id at once; the run goes on in the
    /// background.
    pub fn run_start(self: &Arc<Self>, input: &PlanInput, concurrency: Option<usize>) -> OpResult<String> {
        let (plan, plan_file) = match self.load_plan(input)? {
            Ok(p) => p,
            Err(check) => {
                return Err(OpError::invalid(format!("the plan is invalid:\n{}", check.errors.join("\n"))))
            }
        };
        swarm_agents::Registry::from_config(&self.project.config)
            .map_err(|e| OpError::invalid(e.to_string()))?;
        if concurrency == Some(0) {
            return Err(OpError::invalid("concurrency must be at least 1"));
        }
        let request =
            StartRequest { plan, plan_file, concurrency, fail_fast: false, allow_paid: false, base: None };
        let _in_runtime = self.runtime.enter();
        let handle = self.engine.start(request)?;
        let run_id = handle.run_id().to_string();
        self.live.lock().expect("live runs").insert(run_id.clone(), handle.canceller());
        let (app, id) = (self.clone(), run_id.clone());
        let waiter = self.runtime.spawn(async move {
            handle.wait().await;
            app.live.lock().expect("live runs").remove(&id);
        });
        self.waiters.lock().expect("waiters").push(waiter);
        Ok(run_id)
    }

    /// The run's report (report.json's shape), as the store has it now.
    pub fn report(&self, run: Option<&str>) -> OpResult<RunReport> {
        let store = self.store();
        let run_id = store.resolve(run)?;
        let record = store.run(&run_id)?.ok_or_else(|| OpError::invalid(format!("no run `{run_id}`")))?;
        let tasks = store.tasks(&run_id)?;
        Ok(RunReport::build(&record, tasks))
    }

    /// The run's report once it changes (a task's or the run's state) or ends, or after
    /// `wait` (at most [`MAX_WAIT`]); at once without a wait. `progress` hears of each change.
    pub fn run_status(&self, run: Option<&str>, wait: Duration) -> OpResult<RunReport> {
        let first = self.report(run)?;
        let deadline = Instant::now() + wait.min(MAX_WAIT);
        if first.state != RunState::Running || wait.is_zero() {
            return Ok(first);
        }
        let print = |r: &RunReport| -> Vec<(String, String)> {
            r.tasks.iter().map(|t| (t.id.clone(), t.state.to_string())).collect()
        };
        let before = print(&first);
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let now = self.report(Some(&first.run_id))?;
            if now.state != RunState::Running || print(&now) != before || Instant::now() >= deadline {
                return Ok(now);
            }
        }
    }

    pub fn run_cancel(&self, run: &str) -> OpResult<Value> {
        let run_id = self.store().resolve(Some(run))?;
        let live = self.live.lock().expect("live runs").get(&run_id).cloned();
        let Some(canceller) = live else {
            // Driven by another process (or by none): through the store, as `swarm cancel`.
            let (run_id, outcome) = self.engine.cancel(&run_id)?;
            let (state, how) = match outcome {
                CancelOutcome::AlreadyFinished(s) => (s, "already finished".to_string()),
                CancelOutcome::Stopped(s) => (s, "stopped by its orchestrator".to_string()),
                CancelOutcome::Requested(why) => (RunState::Running, format!("cancel requested; {why}")),
                CancelOutcome::Closed => {
                    (RunState::Cancelled, "orchestrator was gone; leftovers stopped".to_string())
                }
            };
            return Ok(serde_json::json!({ "run_id": run_id, "state": state.to_string(), "how": how }));
        };
        // Driven here: stop it and wait (the grace period, and some) for it to end.
        canceller.cancel("swarm serve");
        let deadline = Instant::now() + self.engine.config.grace() + Duration::from_secs(15);
        loop {
            let state = self.store().run(&run_id)?.map(|r| r.state).unwrap_or(RunState::Cancelled);
            if state != RunState::Running {
                return Ok(
                    serde_json::json!({ "run_id": run_id, "state": state.to_string(), "how": "stopped by this server" }),
                );
            }
            if Instant::now() >= deadline {
                return Ok(
                    serde_json::json!({ "run_id": run_id, "state": "running", "how": "cancel requested; still stopping" }),
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn runs_list(&self, limit: usize) -> OpResult<Vec<RunRow>> {
        let runs = match self.store().runs(limit) {
            Ok(r) => r,
            Err(StoreError::Missing { .. }) => vec![],
            Err(e) => return Err(e.into()),
        };
        Ok(runs
            .iter()
            .map(|r| RunRow {
                run_id: r.run_id.clone(),
                plan: r.plan.clone(),
                namespace: r.namespace.clone(),
                state: r.state.to_string(),
                started_at: r.started_at.to_rfc3339(),
                ended_at: r.ended_at.map(|e| e.to_rfc3339()),
                tasks: r.spec.tasks.len(),
            })
            .collect())
    }

    pub fn task_logs(&self, run: &str, task: &str, tail: usize) -> OpResult<TaskLogs> {
        let store = self.store();
        let run_id = store.resolve(Some(run))?;
        let tasks = store.tasks(&run_id)?;
        let t = tasks.iter().find(|t| t.id == task).ok_or_else(|| {
            let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
            OpError::invalid(format!("run {run_id} has no task `{task}` (tasks: {})", ids.join(", ")))
        })?;
        let last = t.attempts.last();
        let text = last.and_then(|a| a.log.as_ref()).and_then(|p| std::fs::read(p).ok()).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<&str> = text.lines().collect();
        let tail = tail.clamp(1, 5000);
        let from = lines.len().saturating_sub(tail);
        Ok(TaskLogs {
            run_id: run_id.clone(),
            task_id: task.to_string(),
            attempt: last.map(|a| a.n).unwrap_or(0),
            state: t.state.to_string(),
            completion: last.and_then(|a| a.completion.as_ref()).and_then(|c| serde_json::to_value(c).ok()),
            log: lines[from..].join("\n"),
            truncated: from > 0,
        })
    }

    /// The server is going away: its live runs are cancelled gracefully (a cancelled run can
    /// be continued with `swarm resume`) and awaited.
    pub async fn shutdown(&self) {
        for (run_id, c) in self.live.lock().expect("live runs").iter() {
            eprintln!("swarm: cancelling run {run_id} (the server is stopping; `swarm resume {run_id}` continues it)");
            c.cancel("server shutdown");
        }
        let waiters: Vec<_> = std::mem::take(&mut *self.waiters.lock().expect("waiters"));
        for w in waiters {
            let _ = w.await;
        }
    }

    pub fn namespace(&self) -> String {
        self.project.default_namespace()
    }
}
