//! An attempt as a job: everything needed to run one attempt of one task, serializable, so the
//! executor that runs it today on this host can be a worker on another tomorrow; and the
//! attempt's events, also serializable, which are all the executor ever says back.

pub use crate::os::git::{Integration, MergeOutcome, Merged, Strategy};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use swarm_agents::ProviderSpec;
use swarm_core::completion::Completion;
use swarm_core::event::Stream;
use swarm_core::failure::FailureClass;
use swarm_core::plan::Task;
use swarm_core::scheduler::Failure;

/// What the dispatcher asks of a running attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StopRequest {
    None,
    /// SIGTERM, then SIGKILL after the grace period.
    Terminate,
    /// SIGKILL now.
    Kill,
}

/// Where an executor sends its attempt's events: (task index, attempt, event).
pub type Events = tokio::sync::mpsc::UnboundedSender<(u32, u32, AttemptEvent)>;

/// One attempt of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptJob {
    pub run_id: String,
    /// The task's place in the plan: how the dispatcher names it in its scheduler.
    pub task_index: u32,
    pub task: Task,
    pub attempt: u32,
    /// What the agent is told: the brief, the task prompt, the last failure, the report footer.
    pub prompt: String,
    /// Where the attempt's model comes from.
    pub route: ModelRoute,
    /// Where the attempt runs.
    pub workspace: WorkspaceSpec,
    /// Environment the agent gets on top of the executor's own (`SWARM_*`, a placeholder key
    /// for a local endpoint, a per-attempt gateway token); never a real secret.
    pub env: Vec<(String, String)>,
    /// Variables taken out of the executor's environment (the providers' keys, for an agent
    /// that talks to the gateway instead).
    #[serde(default)]
    pub env_remove: Vec<String>,
    pub limits: Limits,
    /// The task's `check`, run in the attempt's working directory after it succeeded.
    pub check: Option<String>,
    pub report: ReportSpec,
    /// `[agents.NAME] setup`: run (`sh -c`) in the working directory before the agent starts.
    pub pre_step: Option<String>,
    /// The attempt's log file.
    pub log: PathBuf,
    /// A directory private to the attempt (agent config, isolated HOME, …).
    pub attempt_dir: PathBuf,
    /// The project's root: agent binaries are also looked up under it, hooks run in it.
    pub project_root: PathBuf,
    /// Files written into the working directory before the agent starts (the declared state's
    /// doc, `[state] doc`); in a worktree, never committed unless the branch already had them.
    #[serde(default)]
    pub files: Vec<AgentFile>,
    /// The dependencies whose reports the prompt carries (report.json `handoff_from`).
    #[serde(default)]
    pub handoff_from: Vec<String>,
    /// Dependencies of a `handoff: full` task whose written state keys the executor reads from
    /// the store and puts in the prompt when the attempt starts.
    #[serde(default)]
    pub handoff_state: Vec<String>,
    /// `on_conflict: agent`: the agent of the resolver attempt a conflicting merge starts.
    #[serde(default)]
    pub resolver: Option<String>,
}

/// A file swarm writes for the agent, relative to its working directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentFile {
    pub path: String,
    pub text: String,
}

/// Where an attempt's model comes from. Providers are named, never their keys (only the
/// variables that hold them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelRoute {
    /// The task's own `model:` (`None`: the agent's default), served by `provider` when
    /// swarm.toml declares it.
    Task { model: Option<String>, provider: Option<ProviderSpec> },
    /// Every request through the model gateway at `url` (`http://127.0.0.1:PORT/v1`), each
    /// routed on its own; the attempt's token is in its environment.
    Gateway { url: String },
    /// One model of the hierarchy for the whole attempt (an agent that talks to providers
    /// itself), picked when the attempt starts from the standings every process on the store
    /// shares, from layer `start_layer` on, leaving out the models in `exclude` (an earlier
    /// attempt failed on them for the model's sake).
    Hierarchy { namespace: String, start_layer: u8, exclude: Vec<String>, allow_paid: bool },
}

impl ModelRoute {
    /// The model the agent is told to use, when the route fixes it before the attempt starts.
    pub fn fixed_model(&self) -> Option<String> {
        match self {
            ModelRoute::Task { model, .. } => model.clone(),
            ModelRoute::Gateway { .. } => Some(format!("{GATEWAY_PROVIDER}/{GATEWAY_MODEL}")),
            ModelRoute::Hierarchy { .. } => None,
        }
    }

    /// The provider an agent of a gateway route is given: the gateway itself, its key the
    /// attempt's token.
    pub fn gateway_provider(url: &str) -> ProviderSpec {
        ProviderSpec {
            name: GATEWAY_PROVIDER.into(),
            kind: "openai-compatible".into(),
            base_url: Some(url.to_string()),
            model: GATEWAY_MODEL.into(),
            api_key_env: GATEWAY_TOKEN_ENV.into(),
        }
    }
}

/// The name agents know the gateway by, as a provider, and its one model (`swarm/auto`).
pub const GATEWAY_PROVIDER: &str = "swarm";
pub const GATEWAY_MODEL: &str = "auto";
/// The variable an agent of a gateway route finds its per-attempt token in.
pub const GATEWAY_TOKEN_ENV: &str = "SWARM_GATEWAY_TOKEN";

/// Where an attempt works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkspaceSpec {
    /// The plan's own directory, shared with the user and other tasks.
    Shared { dir: PathBuf },
    /// A fresh git worktree of `repo` at `path` on `branch`, reset to `start` (the run's
    /// integration branch: a task starts from its dependencies' merged work), the task working
    /// in its `subdir` (where the plan lies inside the repository); `setup` runs in it first.
    /// After a success its work is committed and brought into `integration`.
    Worktree {
        repo: PathBuf,
        path: PathBuf,
        branch: String,
        start: String,
        subdir: PathBuf,
        setup: Option<String>,
        /// Boxed: the variant stays near the size of `Shared`.
        integration: Box<Integration>,
        /// The run's repository for workers on hosts without the checkout (`--repo URL`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remote: Option<Remote>,
    },
}

/// Where workers without the checkout get a worktree task's start and leave its work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remote {
    pub url: String,
    /// Set by a worker that works in its own clone: the ref its commit is pushed to. The
    /// orchestrator merges it (a worker never merges into a clone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_to: Option<String>,
}

impl WorkspaceSpec {
    /// The directory the agent works in.
    pub fn workdir(&self) -> PathBuf {
        match self {
            WorkspaceSpec::Shared { dir } => dir.clone(),
            WorkspaceSpec::Worktree { path, subdir, .. } => path.join(subdir),
        }
    }
}

/// Time limits of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Wall clock for the agent.
    #[serde(with = "opt_ms")]
    pub timeout: Option<Duration>,
    /// Longest time without output.
    #[serde(with = "opt_ms")]
    pub stall: Option<Duration>,
    /// Between SIGTERM and SIGKILL.
    #[serde(with = "ms")]
    pub grace: Duration,
    /// Wall clock for the check.
    #[serde(with = "ms")]
    pub check_timeout: Duration,
    /// Wall clock for the workspace's setup command and the agent's pre-steps, each.
    #[serde(with = "ms")]
    pub setup_timeout: Duration,
    /// Bytes of log kept.
    pub log_limit: u64,
}

/// What the agent is expected to report, and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportSpec {
    pub path: PathBuf,
    /// Whether a missing report fails the attempt (`no_report`).
    pub required: bool,
    pub run_id: String,
    pub task_id: String,
}

/// What an executor says about the attempt it runs, in order (an attempt run by workers: each
/// owner's events after its `Taken`): for a hierarchy route any number
/// of `ModelWait` then `ModelPicked`; `Started` (or straight `Finished` when it could not
/// start); any number of `Output`, `Usage`, `Session`, `AgentError` and `CheckStarted`; for a
/// succeeded worktree task `Merging`; then `Finished`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttemptEvent {
    /// The agent's process runs: `pid` leads its process group.
    Started {
        pid: Option<u32>,
        workdir: PathBuf,
    },
    /// A line worth showing (bounded; the log has everything).
    Output {
        stream: Stream,
        line: String,
    },
    /// Tokens and cost to add to the attempt's totals.
    Usage {
        tokens_in: u64,
        tokens_out: u64,
        cost_usd: f64,
    },
    /// The agent's session or conversation id.
    Session {
        id: String,
    },
    /// The agent reported an error.
    AgentError {
        class: FailureClass,
        message: String,
    },
    /// A hierarchy route picked `model` (of `layer`) for the attempt.
    ModelPicked {
        model: String,
        layer: u8,
    },
    /// Every model the attempt may use is cooling or at its limit: it waits until `until_ms`
    /// (store clock) for `model`, the first to free up.
    ModelWait {
        model: String,
        until_ms: u64,
    },
    /// The check runs in its own process group `pgid` (the one to stop if the orchestrator dies).
    CheckStarted {
        pgid: Option<u32>,
    },
    /// The task's work waits for the merge queue and is merged into the integration branch.
    Merging,
    /// A worker (`swarm worker`, on `host`) owns the attempt with fencing token `fence`; a
    /// later owner of the same attempt means the one before lost its lease (`lease_lost`).
    Taken {
        worker: String,
        host: Option<String>,
        fence: u64,
    },
    /// Something the run should hear about the attempt while it waits or runs (a warning).
    Warning {
        message: String,
    },
    /// What the gateway of the worker running the attempt said of its requests (a local
    /// attempt's gateway tells the run directly).
    Gateway {
        event: crate::gateway::GatewayEvent,
    },
    Finished {
        exit_code: Option<i32>,
        outcome: Result<(), Failure>,
        evidence: Box<Evidence>,
    },
}

/// Everything beyond the exit code that decided (or annotates) an attempt's outcome.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The agent's completion report, bounded for the store.
    pub completion: Option<Completion>,
    /// The report file as written (valid ones only), for the mirror.
    pub completion_bytes: Option<Vec<u8>>,
    pub check_output: Option<String>,
    pub warnings: Vec<String>,
    /// Why the attempt failed per the agent's output (failed attempts only).
    pub failure_class: Option<FailureClass>,
    #[serde(with = "opt_ms")]
    pub retry_after: Option<Duration>,
    /// A worktree task's work brought back into the integration branch (or the conflict).
    #[serde(default)]
    pub merged: Option<Merged>,
    /// The resolver attempt a conflicting merge started (`on_conflict: agent`).
    #[serde(default)]
    pub resolver: Option<ResolverRun>,
    /// A worker in its own clone pushed the task's work here, for the orchestrator to merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed: Option<crate::os::git_remote::Pushed>,
}

/// How a resolver attempt went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolverRun {
    pub agent: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub ended_at: chrono::DateTime<chrono::Utc>,
    pub exit_code: Option<i32>,
    /// `None` when it resolved the conflict (markers gone, the check passed, merged).
    pub failure: Option<swarm_core::scheduler::Failure>,
    pub log: PathBuf,
}

mod ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

mod opt_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}
