//! A finished run with fixed ids and times, and the events of it, for the snapshot tests of its
//! renderings (`swarm status`, the progress lines, report.md): the same run everywhere, so the
//! snapshots only change when a rendering does.

use chrono::{DateTime, Duration, TimeZone, Utc};
use swarm_core::event::{Event, EventKind};
use swarm_core::failure::FailureClass;
use swarm_core::plan::Plan;
use swarm_core::report::{
    AttemptReport, MergeState, ModelRequests, ModelWaitSpan, RunGit, RunRecord, RunReport, TaskReport,
};
use swarm_core::state::{Reason, RunState, TaskState};

pub const RUN_ID: &str = "20261205-101500-a1b2";

/// When the fixed run started: 2026-12-05 10:15:00 UTC.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, 10, 15, 0).unwrap()
}

fn at(ms: i64) -> DateTime<Utc> {
    t0() + Duration::milliseconds(ms)
}

/// A worktree run of four tasks, ended failed: `schema` merged (through the gateway, two models
/// of two layers), `api` failed after a retry, `docs` blocked by it, `ui` a merge conflict.
pub fn finished_run() -> (RunRecord, RunReport) {
    let record = RunRecord {
        run_id: RUN_ID.into(),
        plan: "webapp".into(),
        namespace: "webapp".into(),
        plan_file: "/work/webapp/plan.md".into(),
        workdir: "/work/webapp".into(),
        state: RunState::Failed,
        started_at: t0(),
        ended_at: Some(at(754_300)),
        concurrency: 4,
        fail_fast: false,
        allow_paid: false,
        workers: false,
        owner: None,
        spec: Plan {
            name: "webapp".into(),
            namespace: "webapp".into(),
            concurrency: Some(4),
            brief: String::new(),
            state: None,
            tasks: vec![],
        },
        git: Some(RunGit {
            repo: "/work/webapp".into(),
            base_commit: "0123456789abcdef0123456789abcdef01234567".into(),
            integration_branch: format!("swarm/{RUN_ID}"),
            remote: None,
        }),
    };
    let tasks = vec![schema(), api(), docs(), ui()];
    let report = RunReport::build(&record, tasks);
    (record, report)
}

fn task(id: &str, title: &str, agent: &str, state: TaskState) -> TaskReport {
    TaskReport { title: title.into(), state, ..TaskReport::new(id, agent) }
}

fn attempt(n: u32, agent: &str, from_ms: i64, to_ms: i64) -> AttemptReport {
    let mut a = AttemptReport::new(n, agent, at(from_ms));
    a.ended_at = Some(at(to_ms));
    a.log = Some(format!(".swarm/runs/{RUN_ID}/logs/{agent}-{n}.log"));
    a
}

fn schema() -> TaskReport {
    let mut t = task("schema", "Define the schema", "opencode", TaskState::Succeeded);
    let mut a = attempt(1, "opencode", 1_200, 184_900);
    a.exit_code = Some(0);
    a.queued_at = Some(at(200));
    a.model_waits = vec![ModelWaitSpan {
        from: at(40_000),
        to: Some(at(52_000)),
        model: Some("gemini/gemini-2.5-flash".into()),
    }];
    a.checks_at = Some(at(170_000));
    a.merging_at = Some(at(182_000));
    (a.tokens_in, a.tokens_out, a.cost_usd) = (5_200, 830, 0.0);
    a.requests = vec![
        ModelRequests {
            model: "gemini/gemini-2.5-flash".into(),
            layer: 1,
            count: 3,
            tokens_in: 4_000,
            tokens_out: 600,
            cost_usd: 0.0,
            wait_ms: 12_000,
        },
        ModelRequests {
            model: "groq/llama-3.3-70b".into(),
            layer: 2,
            count: 1,
            tokens_in: 1_200,
            tokens_out: 230,
            cost_usd: 0.0,
            wait_ms: 0,
        },
    ];
    t.attempts = vec![a];
    t.branch = Some(format!("swarm/{RUN_ID}--schema"));
    t.commit = Some("89abcdef0123456789abcdef0123456789abcdef".into());
    t.merge = Some(MergeState::Merged);
    t.files_changed = vec!["db/schema.sql".into(), "db/README.md".into()];
    t
}

fn api() -> TaskReport {
    let mut t = task("api", "Build the API", "claude", TaskState::Failed);
    t.depends = vec!["schema".into()];
    let mut first = attempt(1, "claude", 185_000, 400_000);
    first.model = Some("anthropic/claude-sonnet-4".into());
    (first.tokens_in, first.tokens_out, first.cost_usd) = (12_000, 2_100, 0.0675);
    first.reason = Some(Reason::ExitCode);
    first.exit_code = Some(1);
    first.failure_class = Some(FailureClass::RateLimited);
    first.queued_at = Some(at(184_900));
    let mut second = attempt(2, "claude", 402_000, 690_500);
    second.model = Some("anthropic/claude-sonnet-4".into());
    (second.tokens_in, second.tokens_out, second.cost_usd) = (9_500, 1_700, 0.054);
    second.reason = Some(Reason::CheckFailed);
    second.queued_at = Some(at(400_000));
    second.checks_at = Some(at(660_000));
    second.exit_code = Some(0);
    t.attempts = vec![first, second];
    t.reason = Some(Reason::CheckFailed);
    t.detail = Some("`cargo test` failed: 2 tests failed".into());
    t
}

fn docs() -> TaskReport {
    let mut t = task("docs", "Write the docs", "exec", TaskState::Blocked);
    t.depends = vec!["api".into()];
    t.reason = Some(Reason::DependencyFailed);
    t.detail = Some("`api` failed".into());
    t
}

fn ui() -> TaskReport {
    let mut t = task("ui", "Build the UI", "codex", TaskState::Failed);
    let mut a = attempt(1, "codex", 1_300, 752_000);
    a.model = Some("openai/gpt-5-mini".into());
    a.exit_code = Some(0);
    (a.tokens_in, a.tokens_out, a.cost_usd) = (20_000, 4_000, 0.013);
    a.reason = Some(Reason::MergeConflict);
    a.queued_at = Some(at(200));
    a.merging_at = Some(at(745_000));
    t.attempts = vec![a];
    t.reason = Some(Reason::MergeConflict);
    t.detail = Some("its work conflicts with the integration branch in src/app.tsx".into());
    t.branch = Some(format!("swarm/{RUN_ID}--ui"));
    t.commit = Some("fedcba9876543210fedcba9876543210fedcba98".into());
    t.merge = Some(MergeState::Conflict);
    t.conflict_paths = vec!["src/app.tsx".into()];
    t.files_changed = vec!["src/app.tsx".into(), "src/ui/button.tsx".into()];
    t
}

/// What the run said as it went, one event of every kind the progress lines show (and a few
/// they leave out), in order.
pub fn run_events() -> Vec<Event> {
    let mut events = vec![ev(0, run_started())];
    events.extend(schema_events());
    events.extend(api_events());
    events.extend([
        ev(690_600, state("docs", TaskState::Blocked, Some(Reason::DependencyFailed), Some("`api` failed"))),
        ev(
            752_000,
            state(
                "ui",
                TaskState::Failed,
                Some(Reason::MergeConflict),
                Some("its work conflicts with the integration branch in src/app.tsx"),
            ),
        ),
        ev(753_000, EventKind::CancelRequested { source: "SIGINT".into() }),
        ev(
            754_300,
            EventKind::RunFinished {
                state: RunState::Failed,
                succeeded: 1,
                failed: 2,
                blocked: 1,
                cancelled: 0,
            },
        ),
    ]);
    events
}

fn ev(ms: i64, kind: EventKind) -> Event {
    Event { run_id: RUN_ID.into(), timestamp: at(ms), elapsed_ms: ms as u64, kind }
}

fn run_started() -> EventKind {
    EventKind::RunStarted {
        plan: "webapp".into(),
        namespace: "webapp".into(),
        tasks: 4,
        concurrency: 4,
        resumed: false,
    }
}

fn started(task: &str, attempt: u32, agent: &str, model: Option<&str>) -> EventKind {
    EventKind::AttemptStarted {
        task: task.into(),
        attempt,
        agent: agent.into(),
        model: model.map(String::from),
        pid: Some(4242),
    }
}

fn state(task: &str, state: TaskState, reason: Option<Reason>, detail: Option<&str>) -> EventKind {
    EventKind::TaskState { task: task.into(), state, reason, detail: detail.map(String::from) }
}

fn serving(model: &str, layer: u8) -> EventKind {
    EventKind::ModelServing { task: "schema".into(), attempt: 1, model: model.into(), layer }
}

/// `schema` (and `ui` beside it) starts; the gateway moves `schema` from layer 1 to layer 2.
fn schema_events() -> Vec<Event> {
    vec![
        ev(1_200, started("schema", 1, "opencode", None)),
        ev(1_300, started("ui", 1, "codex", Some("openai/gpt-5-mini"))),
        ev(2_000, serving("gemini/gemini-2.5-flash", 1)),
        ev(
            2_100,
            EventKind::Output {
                task: "schema".into(),
                attempt: 1,
                stream: swarm_core::event::Stream::Stdout,
                line: "writing db/schema.sql".into(),
            },
        ),
        ev(
            60_000,
            EventKind::ModelFallback {
                task: "schema".into(),
                attempt: 1,
                model: "gemini/gemini-2.5-flash".into(),
                class: FailureClass::RateLimited,
                action: "cooling until 10:16:30 UTC".into(),
            },
        ),
        ev(60_100, serving("groq/llama-3.3-70b", 2)),
        ev(
            120_000,
            EventKind::ModelWait {
                task: "schema".into(),
                attempt: 1,
                model: "groq/llama-3.3-70b".into(),
                until: at(125_000),
            },
        ),
        ev(184_900, state("schema", TaskState::Succeeded, None, None)),
    ]
}

/// `api` fails, is retried, and fails its check.
fn api_events() -> Vec<Event> {
    let sonnet = Some("anthropic/claude-sonnet-4");
    vec![
        ev(185_000, started("api", 1, "claude", sonnet)),
        ev(400_000, EventKind::RetryScheduled { task: "api".into(), next_attempt: 2, delay_ms: 2_000 }),
        ev(402_000, started("api", 2, "claude", sonnet)),
        ev(500_000, EventKind::Warning { message: "hook on_task_end `notify.sh` exited with code 3".into() }),
        ev(
            690_500,
            state(
                "api",
                TaskState::Failed,
                Some(Reason::CheckFailed),
                Some("`cargo test` failed: 2 tests failed"),
            ),
        ),
    ]
}
