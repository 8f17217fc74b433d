//! Command-line interface definition.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "swarm",
    version,
    about = "Run many AI coding agents in parallel on one plan, without stepping on each other."
)]
#[command(
    after_help = "Exit codes: 0 every task succeeded · 1 a task did not succeed · 2 invalid input or configuration · 130 cancelled.\nDocs: README.md; plan format: docs/plan-format.md."
)]
pub struct Cli {
    /// Store address: sqlite:PATH or redis://[user:pass@]host:port[/db]. Default: sqlite:.swarm/state.db under the git root.
    #[arg(long, global = true, env = "SWARM_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// Config file (default: swarm.toml at the git root, if present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a plan: tasks start in parallel as their dependencies succeed.
    Run(RunArgs),
    /// Validate or print a plan without running it.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Show the state of a run (default: the latest), live while it runs.
    Status(StatusArgs),
    /// List runs, newest first.
    Runs(RunsArgs),
    /// Continue a run whose orchestrator died; succeeded tasks never run again.
    Resume(ResumeArgs),
    /// Cancel a run: running agents are terminated, nothing new starts.
    Cancel(CancelArgs),
    /// Print an attempt's output.
    Logs(LogsArgs),
    /// Check the store, config, agent CLIs and provider credentials.
    Doctor(DoctorArgs),
    /// List the agent adapters: CLI found, version, pinned version.
    Agents(AgentsArgs),
    /// The model hierarchy: every model's layer, state (ok, cooling until …, disabled), limits
    /// and usage this minute and today, as every swarm process on the store sees it.
    Models(ModelsArgs),
    /// Serve swarm's scripted fake model (OpenAI-compatible) for rehearsals and tests.
    FakeLlm(FakeLlmArgs),
    /// Print the JSON Schemas (2020-12) of stored documents and of completion.json.
    Schema(SchemaArgs),
    /// Print a run's events (state changes, attempts, warnings), optionally following new ones.
    Events(EventsArgs),
    /// Read, write (compare-and-set) and watch the namespace's shared state: versioned JSON documents agents share.
    State(crate::commands::state::StateArgs),
    /// Write this task's completion report (run by an agent inside a swarm task), or check one.
    Report(crate::commands::report::ReportArgs),
    /// What a worktree task changed: its commit against where it started (or, while it works,
    /// its worktree).
    Diff(DiffArgs),
    /// Bring a run's integration branch `swarm/RUN` into a branch of yours (only when asked; a
    /// checkout with uncommitted changes is refused, a conflict changes nothing).
    Merge(MergeArgs),
    /// Remove a run's worktrees (`--branches`: its branches too).
    Clean(CleanArgs),
    /// Serve MCP over stdio, for an orchestrating agent (Antigravity, Claude Code, Cursor …):
    /// check plans, start runs, watch them, read logs, cancel, shared state, model cooldowns.
    Mcp(McpArgs),
    /// Serve the dashboard, the JSON API, live events (SSE) and MCP over HTTP (`/mcp`).
    Serve(ServeArgs),
    /// Run attempts of `swarm run --workers` runs on this host: takes them from the Redis
    /// store's queue for the agents found here. Ctrl-C drains (a second hands back).
    Worker(WorkerArgs),
    /// List the namespace's workers: host, agents, capacity, running attempts, heartbeat.
    Workers(WorkersArgs),
    /// (internal) Ends a worker's agents when the worker dies.
    #[command(hide = true)]
    WorkerGuard,
}

impl Command {
    /// Whether the command supervises processes or serves, and so must not die of SIGPIPE: a run
    /// goes on when its stdout is closed (see `output`). Every new command has to choose.
    pub fn outlives_its_stdout(&self) -> bool {
        match self {
            Command::Run(_)
            | Command::Resume(_)
            | Command::FakeLlm(_)
            | Command::Mcp(_)
            | Command::Serve(_)
            | Command::Worker(_)
            | Command::WorkerGuard => true,
            Command::Plan(_)
            | Command::Status(_)
            | Command::Runs(_)
            | Command::Cancel(_)
            | Command::Logs(_)
            | Command::Doctor(_)
            | Command::Agents(_)
            | Command::Models(_)
            | Command::Schema(_)
            | Command::Events(_)
            | Command::State(_)
            | Command::Report(_)
            | Command::Diff(_)
            | Command::Merge(_)
            | Command::Clean(_)
            | Command::Workers(_) => false,
        }
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Plan file: markdown (`.md`) or JSON (`.json`).
    pub plan: PathBuf,
    /// Max tasks running at once (overrides the plan's `concurrency`).
    #[arg(long, short = 'j')]
    pub concurrency: Option<usize>,
    /// Print one JSON event per line instead of progress.
    #[arg(long)]
    pub json: bool,
    /// Stop starting new tasks after the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// Let paid models of the hierarchy serve (overrides `[models] allow_paid = false`).
    #[arg(long)]
    pub allow_paid: bool,
    /// Worktree tasks start from this commit, branch or tag (default: HEAD).
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    /// Plain log lines even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    /// Rehearsal: run the real agent CLIs against swarm's own scripted fake model (no tokens
    /// spent). Every AI task's model is pointed at it.
    #[arg(long)]
    pub rehearse: bool,
    /// Scenario for `--rehearse` (default: every model reports done, then answers DONE).
    #[arg(long, requires = "rehearse", value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Queue the attempts for `swarm worker`s (on any host) instead of running them here;
    /// needs a Redis store. Default: `[run] workers` in swarm.toml.
    #[arg(long)]
    pub workers: bool,
    /// With --workers: the repository (a URL git can push to) where workers on hosts without
    /// this checkout get worktree tasks' start and leave their work, which is merged here.
    /// Default: `[run] repo` in swarm.toml.
    #[arg(long, value_name = "URL")]
    pub repo: Option<String>,
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// Attempts run at once (default: the CPU count).
    #[arg(long, short = 'j')]
    pub concurrency: Option<usize>,
    /// Agents to run, comma-separated (default: every agent whose CLI is found here, and exec).
    #[arg(long, value_delimiter = ',')]
    pub agents: Vec<String>,
    /// Work in this host's own clone of URL (under --clones) for worktree tasks, even when the
    /// run's checkout is here (default: the run's `--repo`, when its checkout is not here).
    #[arg(long, value_name = "URL")]
    pub repo: Option<String>,
    /// Where this host's clones live (default: ~/.swarm/clones).
    #[arg(long, value_name = "DIR")]
    pub clones: Option<PathBuf>,
    /// Labels shown by `swarm workers`: `key=value`, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// The worker's name (default: HOST-PID).
    #[arg(long)]
    pub name: Option<String>,
    /// Run only this namespace's attempts (default: every namespace of the store this user may
    /// read, the project's included).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Lease on an attempt without renewal: a worker silent this long loses its attempts.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub lease: std::time::Duration,
    /// After the first Ctrl-C or SIGTERM, how long running attempts may finish before they are
    /// handed back to the queue.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub drain_timeout: std::time::Duration,
    /// One JSON object per line for what the worker does.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct WorkersArgs {
    /// Namespace whose workers to list (default: the project's).
    #[arg(long)]
    pub namespace: Option<String>,
    #[arg(long)]
    pub json: bool,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    swarm_core::duration::parse(text).map_err(|e| e.to_string())
}

#[derive(Subcommand, Debug)]
pub enum PlanCommand {
    /// Validate a plan; errors name file:line:column.
    Check {
        plan: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Print the parsed plan (with `--json`, the form `swarm run` also accepts).
    Show {
        plan: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Run id, unique prefix/suffix, or `latest` (default).
    pub run: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RunsArgs {
    #[arg(long)]
    pub json: bool,
    /// Show at most this many runs.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(Args, Debug)]
pub struct ResumeArgs {
    pub run: String,
    /// Also run failed and blocked tasks again.
    #[arg(long)]
    pub retry_failed: bool,
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Args, Debug)]
pub struct McpArgs {
    /// The project to serve (a directory in it; default: the current directory). IDEs often
    /// start MCP servers elsewhere.
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; anything but loopback needs `--token-env`. Every request needs a
    /// bearer token: `--token-env`'s, or else one swarm keeps in `.swarm/serve-token`.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub bind: String,
    /// Name of the environment variable holding the bearer token every request must carry.
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    /// Print `{"listening": "ADDR"}` on stdout once listening (useful with `--bind 127.0.0.1:0`).
    #[arg(long)]
    pub json: bool,
    /// The project to serve (a directory in it; default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// Run id, unique prefix/suffix, or `latest`.
    pub run: String,
    pub task: String,
    /// A diffstat instead of the patch.
    #[arg(long)]
    pub stat: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Run id, unique prefix/suffix, or `latest`.
    pub run: String,
    /// The branch to merge into (default: the branch checked out in the repository).
    #[arg(long, value_name = "BRANCH")]
    pub into: Option<String>,
    /// One new commit on the target instead of a merge commit.
    #[arg(long)]
    pub squash: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CleanArgs {
    /// Run id, unique prefix/suffix, or `latest`.
    pub run: String,
    /// Also delete the run's branches: `swarm/RUN` and every `swarm/RUN--TASK` (and, for a run with
    /// `--repo`, `swarm/RUN` and what workers pushed on that repository).
    #[arg(long)]
    pub branches: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CancelArgs {
    pub run: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    pub run: String,
    pub task: String,
    /// Keep printing new output until the attempt ends.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Attempt number (default: the latest).
    #[arg(long)]
    pub attempt: Option<u32>,
}

#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// One of: completion, event, plan, report, run, state_change, state_entry, task (default: all, as one JSON object).
    pub name: Option<String>,
    /// List the schema names.
    #[arg(long)]
    pub list: bool,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Run id, unique prefix/suffix, or `latest` (default).
    pub run: Option<String>,
    /// Keep printing new events until the run ends.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// One JSON event per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DoctorArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ModelsArgs {
    #[arg(long)]
    pub json: bool,
    /// Print the built-in 7-layer default hierarchy (free Gemini first, paid last), why each
    /// layer is where it is, and the swarm.toml snippet that declares it.
    #[arg(long)]
    pub defaults: bool,
    /// The namespace whose cooldowns and usage to show (default: the project's).
    #[arg(long)]
    pub namespace: Option<String>,
}

#[derive(Args, Debug)]
pub struct AgentsArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct FakeLlmArgs {
    /// Scenario file (TOML; see docs/fake-llm.md).
    #[arg(long)]
    pub scenario: PathBuf,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8999)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Append one JSON line per request to this file.
    #[arg(long)]
    pub log: Option<PathBuf>,
}
