//! The MCP face (docs/contract.md §10): a small tool set an orchestrating agent (Antigravity, Claude Code,
//! Cursor …) drives swarm with, over stdio (`swarm mcp`) or streamable HTTP (`/mcp` of
//! `swarm serve`). Every call answers within 50 s; a run goes on in the server's engine.

use super::app::{wait_of, App, Cancelled, OpError, PlanCheck, PlanInput, RunRow, TaskLogs};
use crate::commands::state::actor;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{Implementation, ProgressNotificationParam, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_handler, tool_router, RoleServer, ServerHandler};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use swarm_core::report::RunReport;

#[derive(Clone)]
pub struct SwarmMcp {
    app: Arc<App>,
    tool_router: ToolRouter<SwarmMcp>,
}

/// A blocking operation of the app, off the async threads; its error a tool error.
async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&Arc<App>) -> Result<T, OpError> + Send + 'static,
) -> Result<T, String> {
    super::app::off_loop(app, f).await.map_err(|e| e.message)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RunStartArgs {
    #[serde(flatten)]
    pub plan: PlanInput,
    /// Max tasks running at once (default: the plan's `concurrency`, else the CPU count).
    #[serde(default)]
    pub concurrency: Option<usize>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Started {
    pub run_id: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RunStatusArgs {
    /// A run id (or a unique prefix/suffix, or `latest`); default: the latest run.
    #[serde(default)]
    pub run_id: Option<String>,
    /// Wait up to this many seconds (at most 50) for the run to change (a task's state) or end.
    #[serde(default)]
    pub wait_s: Option<f64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RunIdArgs {
    pub run_id: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema, Default)]
pub struct Empty {}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Runs {
    pub runs: Vec<RunRow>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct TaskLogsArgs {
    pub run_id: String,
    pub task_id: String,
    /// How many of the last lines (default 200).
    #[serde(default)]
    pub tail: Option<usize>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct KeyArgs {
    /// A shared-state key of the project's namespace.
    pub key: String,
    /// Wait up to this many seconds (at most 50) for the key to exist, or, with
    /// `after_version`, to pass that version: one agent waits for another's key.
    #[serde(default)]
    pub wait_s: Option<f64>,
    /// With `wait_s`: answer once the key's version is greater than this (default 0).
    #[serde(default)]
    pub after_version: Option<u64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct StateSetArgs {
    pub key: String,
    /// Any JSON value.
    pub value: Value,
    /// Compare-and-set: write only if the key is at this version (0: only if it does not exist).
    #[serde(default)]
    pub if_version: Option<u64>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct StateEntryOut {
    pub key: String,
    /// Absent: no such key.
    pub value: Option<Value>,
    /// 0 when the key does not exist.
    pub version: u64,
}

impl From<swarm_core::state_doc::StateEntry> for StateEntryOut {
    fn from(e: swarm_core::state_doc::StateEntry) -> StateEntryOut {
        StateEntryOut { key: e.key, value: Some(e.value), version: e.version }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema, Default)]
pub struct StateListArgs {
    #[serde(default)]
    pub prefix: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct StateEntries {
    pub entries: Vec<StateEntryOut>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Workers {
    /// Every worker of the project's namespace as it last said: name, host, alive, state
    /// (`running`, `draining`, `stopped`), agents with versions, labels, capacity, running
    /// attempts, last heartbeat.
    pub workers: Vec<Value>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Models {
    /// Every model of the hierarchy: layer, state (`ok`, `cooling`, `disabled`) with until when
    /// and why, limits and usage.
    pub models: Vec<Value>,
}

#[tool_router]
impl SwarmMcp {
    pub fn new(app: Arc<App>) -> SwarmMcp {
        SwarmMcp { app, tool_router: Self::tool_router() }
    }

    #[tool(
        description = "Validate a swarm plan (markdown or JSON) without running it. Give `plan_path` (a file, relative to the project) or `plan` (the text). Returns ok, the plan's name and task count, or every error with file:line:column."
    )]
    async fn plan_check(&self, Parameters(input): Parameters<PlanInput>) -> Result<Json<PlanCheck>, String> {
        blocking(&self.app, move |app| app.plan_check(&input)).await.map(Json)
    }

    #[tool(
        description = "Start a swarm run of a plan and return its run_id at once; the run goes on in the background (its agents run in parallel as dependencies succeed). Follow it with run_status."
    )]
    async fn run_start(&self, Parameters(args): Parameters<RunStartArgs>) -> Result<Json<Started>, String> {
        blocking(&self.app, move |app| app.run_start(&args.plan, args.concurrency))
            .await
            .map(|run_id| Json(Started { run_id }))
    }

    #[tool(
        description = "A run's status (report.json's shape: state, every task's state, reason, attempts with agent, model, layer, tokens, cost). With wait_s (at most 50) it waits until a task's state changes or the run ends, then answers; call again to keep watching."
    )]
    async fn run_status(
        &self,
        Parameters(args): Parameters<RunStatusArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<RunReport>, String> {
        let wait = wait_of(args.wait_s).map_err(|e| e.message)?;
        let token = ctx.meta.get_progress_token();
        let run = args.run_id.clone();
        let work = blocking(&self.app, move |app| app.run_status(run.as_deref(), wait));
        let Some(token) = token.filter(|_| !wait.is_zero()) else { return work.await.map(Json) };
        // Long waits tell a client that listens how long they have waited.
        tokio::pin!(work);
        let started = std::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.tick().await;
        loop {
            tokio::select! {
                r = &mut work => return r.map(Json),
                _ = tick.tick() => {
                    let waited = started.elapsed().as_secs_f64();
                    let note = ProgressNotificationParam::new(token.clone(), waited)
                        .with_total(wait.as_secs_f64())
                        .with_message(format!("waiting for the run to change ({waited:.0}s)"));
                    let _ = ctx.peer.notify_progress(note).await;
                }
            }
        }
    }

    #[tool(
        description = "Cancel a run: its agents are stopped (SIGTERM, then SIGKILL after the grace period), nothing new starts."
    )]
    async fn run_cancel(&self, Parameters(args): Parameters<RunIdArgs>) -> Result<Json<Cancelled>, String> {
        blocking(&self.app, move |app| app.run_cancel(&args.run_id)).await.map(Json)
    }

    #[tool(description = "List the project's runs, newest first (id, plan, state, times, task count).")]
    async fn runs_list(&self, Parameters(_): Parameters<Empty>) -> Result<Json<Runs>, String> {
        blocking(&self.app, |app| app.runs_list(50)).await.map(|runs| Json(Runs { runs }))
    }

    #[tool(
        description = "The workers that run queued attempts of the project's namespace on any host (runs started with workers): name, host, alive, state, agents and versions, labels, capacity, running attempts, last heartbeat. An error on a store without workers (only Redis has them)."
    )]
    async fn workers_list(&self, Parameters(_): Parameters<Empty>) -> Result<Json<Workers>, String> {
        blocking(&self.app, |app| app.workers_list()).await.map(|workers| Json(Workers { workers }))
    }

    #[tool(
        description = "A task's latest attempt: the tail of its output (default the last 200 lines), its state and its completion report (completion.json) when the agent wrote one."
    )]
    async fn task_logs(&self, Parameters(args): Parameters<TaskLogsArgs>) -> Result<Json<TaskLogs>, String> {
        blocking(&self.app, move |app| app.task_logs(&args.run_id, &args.task_id, args.tail.unwrap_or(200)))
            .await
            .map(Json)
    }

    #[tool(
        description = "Read a key of the shared state agents share (versioned JSON documents of the project's namespace). With wait_s (at most 50) it waits for the key to exist (or, with after_version, to pass that version) instead of polling."
    )]
    async fn state_get(&self, Parameters(args): Parameters<KeyArgs>) -> Result<Json<StateEntryOut>, String> {
        blocking(&self.app, move |app| {
            let state = app.engine.shared_state(&app.namespace(), actor());
            let wait = wait_of(args.wait_s)?;
            let e = state.wait(&args.key, args.after_version.unwrap_or(0), wait)?;
            Ok(match e {
                Some(e) => e.into(),
                None => StateEntryOut { key: args.key, value: None, version: 0 },
            })
        })
        .await
        .map(Json)
    }

    #[tool(
        description = "Write a shared-state key. With if_version it is a compare-and-set: it fails, changing nothing, unless the key is at that version (0: does not exist yet). Returns the new version."
    )]
    async fn state_set(
        &self,
        Parameters(args): Parameters<StateSetArgs>,
    ) -> Result<Json<StateEntryOut>, String> {
        blocking(&self.app, move |app| {
            let state = app.engine.shared_state(&app.namespace(), actor());
            Ok(state.set(&args.key, &args.value, args.if_version)?.into())
        })
        .await
        .map(Json)
    }

    #[tool(
        description = "List shared-state keys (with their values and versions), optionally only those starting with a prefix."
    )]
    async fn state_list(
        &self,
        Parameters(args): Parameters<StateListArgs>,
    ) -> Result<Json<StateEntries>, String> {
        blocking(&self.app, move |app| {
            let state = app.engine.shared_state(&app.namespace(), actor());
            let entries = state.list(args.prefix.as_deref().unwrap_or(""))?;
            Ok(StateEntries { entries: entries.into_iter().map(StateEntryOut::from).collect() })
        })
        .await
        .map(Json)
    }

    #[tool(
        description = "The model hierarchy as every swarm process on the store sees it: each model's layer, state (ok, cooling until when and why, disabled), limits and usage."
    )]
    async fn models(&self, Parameters(_): Parameters<Empty>) -> Result<Json<Models>, String> {
        blocking(&self.app, |app| Ok(app.engine.models(&app.namespace())?))
            .await
            .map(|rows| Json(Models { models: rows.iter().map(crate::commands::models::row_json).collect() }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for SwarmMcp {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "swarm runs many AI coding agents in parallel on one markdown plan. Check a plan with plan_check, \
             start it with run_start (returns at once), follow it with run_status (wait_s up to 50), read a \
             task's output with task_logs, stop it with run_cancel. Agents share versioned JSON state \
             (state_get/state_set/state_list); models shows the model hierarchy's cooldowns; workers_list the workers of runs on many hosts.",
        );
        info.server_info = Implementation::new("swarm", env!("CARGO_PKG_VERSION"));
        info
    }
}
