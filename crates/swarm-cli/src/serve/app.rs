//! What the orchestrator's faces (MCP tools, JSON API, dashboard) can do, once: input parsed
//! (a plan given as a file or inline), the engine asked, its answers put in the faces' shapes.
//! Runs started here are ordinary runs (`swarm status` sees them, `swarm resume` continues them
//! after this server is gone).

use crate::project::Project;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use swarm_core::plan::{Plan, PlanContext};
use swarm_core::report::RunReport;
use swarm_runner::{Engine, EngineError, ErrorKind, StartRequest};

/// An operation's failure: its kind (how faces answer it) and a sentence.
#[derive(Debug, Clone)]
pub struct OpError {
    pub kind: ErrorKind,
    pub message: String,
}

impl OpError {
    pub fn invalid(message: impl Into<String>) -> OpError {
        OpError { kind: ErrorKind::Invalid, message: message.into() }
    }

    pub fn failed(message: impl Into<String>) -> OpError {
        OpError { kind: ErrorKind::Failed { unavailable: false }, message: message.into() }
    }
}

impl From<EngineError> for OpError {
    fn from(e: EngineError) -> OpError {
        OpError { kind: e.kind(), message: e.to_string() }
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
    /// Path of a plan file (`.md` or `.json`) inside the project, relative to its root (or
    /// absolute).
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

/// `run_cancel`'s answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Cancelled {
    pub run_id: String,
    /// The run's state after the cancel (`cancelled`, or how it had already ended).
    pub state: String,
    pub how: String,
}

/// The longest a status call waits: MCP clients cut calls off at 60 s.
pub const MAX_WAIT: Duration = Duration::from_secs(50);

/// A status call's `wait_s` as a wait, at most [`MAX_WAIT`]; not a number of seconds (NaN, an
/// infinity) is bad input.
pub fn wait_of(wait_s: Option<f64>) -> OpResult<Duration> {
    match wait_s {
        None => Ok(Duration::ZERO),
        Some(s) if s.is_finite() => Ok(Duration::from_secs_f64(s.clamp(0.0, MAX_WAIT.as_secs_f64()))),
        Some(s) => Err(OpError::invalid(format!("wait_s must be a number of seconds, not {s}"))),
    }
}

pub struct App {
    pub project: Project,
    pub engine: Engine,
    /// The ends of the runs started here, awaited on shutdown.
    waiters: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    runtime: tokio::runtime::Handle,
}

impl App {
    pub fn new(project: Project, engine: Engine, runtime: tokio::runtime::Handle) -> Arc<App> {
        Arc::new(App { project, engine, waiters: Mutex::new(Vec::new()), runtime })
    }

    fn plan_context(&self, file: &Path) -> PlanContext {
        PlanContext { plan_dir: file.parent().map(Path::to_path_buf), ..self.project.plan_context(file) }
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
                let file = self.project.plan_inside(path).map_err(OpError::invalid)?;
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
    pub fn run_start(&self, input: &PlanInput, concurrency: Option<usize>) -> OpResult<String> {
        let (plan, plan_file) = match self.load_plan(input)? {
            Ok(p) => p,
            Err(check) => {
                return Err(OpError::invalid(format!("the plan is invalid:\n{}", check.errors.join("\n"))))
            }
        };
        let run = &self.engine.config().run;
        let request = StartRequest {
            plan,
            plan_file,
            concurrency,
            fail_fast: false,
            allow_paid: false,
            base: None,
            workers: run.workers,
            repo: run.repo.clone().filter(|_| run.workers),
        };
        let handle = self.engine.start(&self.runtime, request)?;
        let run_id = handle.run_id().to_string();
        let waiter = self.runtime.spawn(async move {
            handle.wait().await;
        });
        self.waiters.lock().expect("waiters").push(waiter);
        Ok(run_id)
    }

    /// The run's report once it changes (a task's or the run's state) or ends, or after
    /// `wait` (at most [`MAX_WAIT`]); at once without a wait.
    pub fn run_status(&self, run: Option<&str>, wait: Duration) -> OpResult<RunReport> {
        Ok(self.engine.wait_change(run, wait.min(MAX_WAIT))?)
    }

    pub fn run_cancel(&self, run: &str) -> OpResult<Cancelled> {
        let (run_id, outcome) = self.engine.cancel(run, "swarm serve")?;
        Ok(Cancelled { run_id, state: outcome.state().to_string(), how: outcome.how() })
    }

    /// The workers of the project's namespace (a store without workers is an error).
    pub fn workers_list(&self) -> OpResult<Vec<Value>> {
        let workers = self.engine.workers(&self.namespace())?;
        Ok(workers.iter().map(|w| serde_json::to_value(w).expect("a worker serializes")).collect())
    }

    pub fn runs_list(&self, limit: usize) -> OpResult<Vec<RunRow>> {
        let runs = self.engine.runs(limit)?;
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
        let log = self.engine.task_log(run, task, None)?;
        let text = log.path.as_ref().and_then(|p| std::fs::read(p).ok()).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(tail.clamp(1, 5000));
        Ok(TaskLogs {
            run_id: log.run_id,
            task_id: log.task_id,
            attempt: log.attempt,
            state: log.task_state.to_string(),
            completion: log.completion.as_ref().and_then(|c| serde_json::to_value(c).ok()),
            log: lines[from..].join("\n"),
            truncated: from > 0,
        })
    }

    /// The server is going away: its live runs are cancelled gracefully (a cancelled run can
    /// be continued with `swarm resume`) and awaited.
    pub async fn shutdown(&self) {
        for run_id in self.engine.cancel_live("server shutdown") {
            eprintln!("swarm: cancelling run {run_id} (the server is stopping; `swarm resume {run_id}` continues it)");
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
