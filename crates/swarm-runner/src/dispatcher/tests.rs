//! The dispatcher's reactions, without processes: a stand-in executor records the jobs it is
//! given, the tests feed what executors, the gateway, the store writer and faces would say, and
//! check the task documents, the public events and what the attempts are asked to do. The store
//! is a real SQLite file; no agent runs.

use super::*;
use crate::dispatcher::sweeper::Swept;
use crate::gateway::{GatewayEvent, Served};
use crate::job::{AttemptJob, Evidence, ModelRoute};
use crate::os::reaper::Ended;
use std::sync::Mutex;
use swarm_core::failure::FailureClass;
use swarm_core::plan::{parse_markdown, PlanContext};
use swarm_store::SqliteStore;

/// Records the jobs it is given, with the stop channel of each.
#[derive(Default)]
struct Recorder {
    jobs: Mutex<Vec<(AttemptJob, watch::Receiver<StopRequest>)>>,
}

impl Executors for Arc<Recorder> {
    fn spawn(&self, job: AttemptJob, stop: watch::Receiver<StopRequest>, _events: Events) {
        self.jobs.lock().unwrap().push((job, stop));
    }

    fn speaks_gateway(&self, _agent: &str) -> bool {
        false
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    d: Dispatcher,
    sched: Scheduler,
    _inbox: Inbox,
    events: mpsc::UnboundedReceiver<Arc<Event>>,
    jobs: Arc<Recorder>,
}

const HIERARCHY: &str = "[providers.p]\nkind = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:9/v1\"\npaid = false\n\n[models]\nlayers = [[\"p/a\"], [\"p/b\"]]\n";

/// A dispatcher for the markdown plan `plan` under config `config`, begun.
fn harness(plan: &str, config: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let ctx = PlanContext {
        default_name: "p".into(),
        default_namespace: "ns".into(),
        agents: ["exec", "opencode"].map(String::from).to_vec(),
        ..Default::default()
    };
    let plan = parse_markdown("p.md", plan, &ctx).expect("a valid plan");
    let config = Config::parse(config, std::path::Path::new("swarm.toml")).expect("a valid config");
    let store: Arc<dyn swarm_store::Store> = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let record = RunRecord {
        run_id: "r1".into(),
        plan: plan.name.clone(),
        namespace: plan.namespace.clone(),
        plan_file: dir.path().join("p.md").display().to_string(),
        workdir: dir.path().display().to_string(),
        state: RunState::Running,
        started_at: Utc::now(),
        ended_at: None,
        concurrency: 1,
        fail_fast: false,
        allow_paid: false,
        workers: false,
        owner: None,
        spec: plan.clone(),
        git: None,
    };
    let tasks: Vec<TaskReport> = plan.tasks.iter().map(TaskReport::pending).collect();
    store.create_run(&record, &tasks).unwrap();
    store.acquire_lease("r1", "lease", crate::LEASE_TTL, None).unwrap();
    let jobs = Arc::new(Recorder::default());
    let setup = RunSetup {
        store,
        record,
        tasks,
        restored: None,
        retry_failed: false,
        executors: Arc::new(jobs.clone()),
        ledger: crate::gateway::Ledger::new(&config, false),
        config,
        run_dir: RunDir::new(&dir.path().join(".swarm"), "r1"),
        store_env: "sqlite:test".into(),
        lease: "lease".into(),
        project_root: dir.path().to_path_buf(),
        gateway: None,
    };
    let bus = EventBus::default();
    let events = bus.subscribe();
    let (ctl, _) = mpsc::unbounded_channel();
    let (mut d, mut sched, inbox) = Dispatcher::new(setup, bus, ctl);
    d.begin(&mut sched);
    Harness { _dir: dir, d, sched, _inbox: inbox, events, jobs }
}

impl Harness {
    /// What the executor of attempt `attempt` of `task` says.
    fn say(&mut self, task: u32, attempt: u32, ev: AttemptEvent) {
        let input = self.d.on_attempt(task, attempt, ev);
        self.d.feed(&mut self.sched, input);
    }

    fn finished(&mut self, task: u32, attempt: u32, outcome: Result<(), Failure>, evidence: Evidence) {
        let code = if outcome.is_ok() { Some(0) } else { Some(1) };
        let ev = AttemptEvent::Finished { exit_code: code, outcome, evidence: Box::new(evidence) };
        self.say(task, attempt, ev);
    }

    /// The public events since the last call.
    fn drain(&mut self) -> Vec<EventKind> {
        let mut out = vec![];
        while let Ok(ev) = self.events.try_recv() {
            out.push(ev.kind.clone());
        }
        out
    }

    fn job(&self, n: usize) -> AttemptJob {
        self.jobs.jobs.lock().unwrap()[n].0.clone()
    }

    fn stop_asked(&self, n: usize) -> StopRequest {
        *self.jobs.jobs.lock().unwrap()[n].1.borrow()
    }

    fn started(&self) -> usize {
        self.jobs.jobs.lock().unwrap().len()
    }
}

fn failed(reason: Reason, detail: &str) -> Result<(), Failure> {
    Err(Failure { reason, detail: Some(detail.into()) })
}

const TWO_EXEC: &str =
    "## a: A\n- agent: exec\n- command: true\n- retries: 1\n\n## b: B\n- agent: exec\n- command: true\n";

#[tokio::test]
async fn a_failed_attempt_is_retried_no_sooner_than_the_provider_asked() {
    let mut h = harness(TWO_EXEC, "");
    assert_eq!(h.started(), 1, "concurrency 1: one attempt at a time");
    h.drain();
    let evidence = Evidence { retry_after: Some(Duration::from_secs(9)), ..Default::default() };
    h.finished(0, 1, failed(Reason::ExitCode, "exit 1"), evidence);
    let events = h.drain();
    let delay = events.iter().find_map(|e| match e {
        EventKind::RetryScheduled { task, next_attempt: 2, delay_ms } if task == "a" => Some(*delay_ms),
        _ => None,
    });
    assert!(delay.is_some_and(|d| d >= 9_000), "{events:?}");
    let doc = &h.d.docs[0];
    assert_eq!((doc.state, doc.reason), (TaskState::Pending, None), "waiting, not failed");
    assert_eq!(doc.detail.as_deref(), Some("attempt 1 failed (exit_code): exit 1; retrying"));
    assert_eq!(doc.attempts[0].retry_after_ms, Some(9_000));
    // Meanwhile the next task took the free slot.
    assert_eq!(h.started(), 2);
    assert_eq!(h.job(1).task.id, "b");
}

#[tokio::test]
async fn a_lost_store_stops_the_attempts_and_fails_them_with_lease_lost() {
    let mut h = harness(TWO_EXEC, "");
    let input = h.d.on_note(Note::LeaseLost("the run's lease was taken by another swarm".into()));
    h.d.feed(&mut h.sched, input);
    assert_eq!(h.stop_asked(0), StopRequest::Terminate, "the running attempt is stopped");
    assert_eq!(h.d.docs[1].state, TaskState::Failed, "what never started fails too, not cancelled");
    assert_eq!(h.d.docs[1].reason, Some(Reason::LeaseLost));
    h.finished(0, 1, failed(Reason::Cancelled, "stopped"), Evidence::default());
    let a = &h.d.docs[0];
    assert_eq!((a.state, a.reason), (TaskState::Failed, Some(Reason::LeaseLost)));
    assert_eq!(a.attempts[0].reason, Some(Reason::LeaseLost), "the attempt says why, not `cancelled`");
    assert_eq!(h.d.ending.finished, Some(RunState::Failed));
    assert_eq!(h.started(), 1, "no retry after the store is lost");
}

#[tokio::test]
async fn the_gateways_word_makes_an_attempt_models_exhausted() {
    let mut h = harness("## a: A\n- agent: exec\n- command: true\n", "");
    h.d.on_gateway(GatewayEvent::Exhausted {
        task: 0,
        attempt: 1,
        why: "every allowed model is cooling".into(),
    });
    h.finished(0, 1, failed(Reason::ExitCode, "the agent gave up"), Evidence::default());
    let a = &h.d.docs[0];
    assert_eq!(a.attempts[0].reason, Some(Reason::ModelsExhausted));
    assert_eq!(a.attempts[0].detail.as_deref(), Some("every allowed model is cooling"));
    assert_eq!((a.state, a.reason), (TaskState::Failed, Some(Reason::ModelsExhausted)));
}

#[tokio::test]
async fn a_cancel_stops_what_runs_and_starts_nothing_more() {
    let mut h = harness(TWO_EXEC, "");
    let input = h.d.on_control(Control::Cancel("test".into()));
    h.d.feed(&mut h.sched, input);
    assert_eq!(h.stop_asked(0), StopRequest::Terminate);
    assert!(h.drain().contains(&EventKind::CancelRequested { source: "test".into() }));
    assert_eq!(h.d.docs[1].state, TaskState::Cancelled);
    h.finished(0, 1, failed(Reason::Cancelled, "run cancelled"), Evidence::default());
    assert_eq!(h.d.ending.finished, Some(RunState::Cancelled));
    assert_eq!(h.started(), 1);
    // A second Ctrl-C kills.
    let input = h.d.on_control(Control::Kill);
    assert_eq!(input, None, "already cancelling");
}

#[tokio::test]
async fn usage_is_counted_once_whoever_meters_it() {
    let mut h = harness("## a: A\n- agent: exec\n- command: true\n", "");
    h.say(0, 1, AttemptEvent::Usage { tokens_in: 10, tokens_out: 5, cost_usd: 0.5 });
    assert_eq!((h.d.docs[0].attempts[0].tokens_in, h.d.docs[0].attempts[0].cost_usd), (10, 0.5));
    // An attempt whose requests go through the gateway: the gateway's metering is the count.
    h.d.running.get_mut(&0).unwrap().route = LiveRoute::Gateway;
    h.say(0, 1, AttemptEvent::Usage { tokens_in: 1000, tokens_out: 1000, cost_usd: 9.0 });
    h.d.on_gateway(GatewayEvent::Served(Served {
        task: 0,
        attempt: 1,
        model: "p/a".into(),
        layer: 1,
        status: 200,
        tokens_in: 7,
        tokens_out: 3,
        cost_usd: 0.0,
        arrived_ms: 1,
        waited_ms: 2,
        latency_ms: 5,
        fallback: None,
    }));
    let a = &h.d.docs[0].attempts[0];
    assert_eq!((a.tokens_in, a.tokens_out, a.model.as_deref()), (17, 8, Some("p/a")));
    assert_eq!((a.requests.len(), a.requests[0].wait_ms), (1, 2));
    let log = std::fs::read_to_string(h.d.ctx.run_dir.requests_log()).expect("the request log");
    let line: serde_json::Value = serde_json::from_str(log.trim()).unwrap();
    assert_eq!(
        (line["task"].as_str(), line["waited_ms"].as_u64(), line["arrived_ms"].as_u64()),
        (Some("a"), Some(2), Some(1))
    );
}

#[tokio::test]
async fn processes_left_behind_are_a_warning_on_the_attempt() {
    let mut h = harness("## a: A\n- agent: exec\n- command: true\n", "");
    h.drain();
    h.d.on_swept(Swept { task: 0, attempt: 1, ended: Ended { found: 2, killed: 1 } });
    let warning = &h.d.docs[0].attempts[0].warnings[0];
    assert!(warning.contains("2 process(es)") && warning.contains("1 needed SIGKILL"), "{warning}");
    assert!(
        matches!(&h.drain()[..], [EventKind::Warning { message }] if message.starts_with("a (attempt 1)"))
    );
}

#[tokio::test]
async fn a_model_to_blame_moves_the_next_attempt_on_without_spending_a_retry() {
    // opencode here "cannot use the gateway" (the stand-in says so): its executor picks one
    // model of the hierarchy per attempt.
    let mut h = harness("## a: A\n- agent: opencode\n", HIERARCHY);
    let first = h.job(0);
    let ModelRoute::Hierarchy { ref exclude, start_layer: 1, .. } = first.route else {
        panic!("{:?}", first.route)
    };
    assert!(exclude.is_empty());
    h.say(0, 1, AttemptEvent::ModelPicked { model: "p/a".into(), layer: 1 });
    assert_eq!(h.d.docs[0].attempts[0].model.as_deref(), Some("p/a"));
    let evidence = Evidence { failure_class: Some(FailureClass::RateLimited), ..Default::default() };
    h.finished(0, 1, failed(Reason::ExitCode, "429"), evidence);
    let retry = EventKind::RetryScheduled { task: "a".into(), next_attempt: 2, delay_ms: 0 };
    assert!(h.drain().contains(&retry), "a second attempt at once, though the task has no retries");
    h.d.feed(&mut h.sched, Some(Input::RetryDue { task: 0 }));
    assert_eq!(h.started(), 2);
    let ModelRoute::Hierarchy { exclude, .. } = h.job(1).route else { panic!() };
    assert_eq!(exclude, ["p/a"], "on another model");
    assert_eq!(h.d.docs[0].attempts[1].fallback_reason.as_deref(), Some("rate_limited"));
    // The task's own failure is no model's: no fallback, and no retries left.
    h.say(0, 2, AttemptEvent::ModelPicked { model: "p/b".into(), layer: 2 });
    let evidence = Evidence { failure_class: Some(FailureClass::AgentError), ..Default::default() };
    h.finished(0, 2, failed(Reason::ExitCode, "gave up"), evidence);
    assert_eq!(h.started(), 2);
    assert_eq!(h.d.docs[0].state, TaskState::Failed);
}

#[tokio::test]
async fn the_last_model_left_failing_spends_the_tasks_own_retries() {
    let mut h = harness("## a: A\n- agent: opencode\n- tier: 2\n", HIERARCHY);
    h.say(0, 1, AttemptEvent::ModelPicked { model: "p/b".into(), layer: 2 });
    let evidence = Evidence { failure_class: Some(FailureClass::RateLimited), ..Default::default() };
    h.finished(0, 1, failed(Reason::ExitCode, "429"), evidence);
    assert!(
        !h.drain().iter().any(|e| matches!(e, EventKind::RetryScheduled { .. })),
        "no model of layer 2 or later is left to move to"
    );
    assert_eq!(h.d.docs[0].state, TaskState::Failed);
}

#[tokio::test]
async fn an_attempts_phases_are_recorded_for_the_timeline() {
    let mut h = harness("## a: A\n- agent: exec\n- command: true\n- retries: 1\n", "");
    let first = h.d.docs[0].attempts[0].clone();
    assert!(first.queued_at.is_some_and(|q| q <= first.started_at), "queued since it became ready");
    // A request waits for a model (the gateway says so), then is served after 3 s.
    h.d.on_gateway(GatewayEvent::Waiting { task: 0, attempt: 1, model: "p/a".into(), until_ms: 0 });
    h.d.on_gateway(GatewayEvent::Waiting { task: 0, attempt: 1, model: "p/a".into(), until_ms: 0 });
    let open = &h.d.docs[0].attempts[0].model_waits;
    assert_eq!((open.len(), open[0].to, open[0].model.as_deref()), (1, None, Some("p/a")), "one wait open");
    let served = |arrived_ms, waited_ms| Served {
        task: 0,
        attempt: 1,
        model: "p/a".into(),
        layer: 1,
        status: 200,
        tokens_in: 1,
        tokens_out: 1,
        cost_usd: 0.0,
        arrived_ms,
        waited_ms,
        latency_ms: 5,
        fallback: None,
    };
    let arrived = first.started_at.timestamp_millis() as u64;
    h.d.on_gateway(GatewayEvent::Served(served(arrived, 3_000)));
    // A wait the gateway did not announce but that held the request up counts too; a refusal
    // absorbed in passing does not.
    h.d.on_gateway(GatewayEvent::Served(served(arrived + 10_000, 1_000)));
    h.d.on_gateway(GatewayEvent::Served(served(arrived + 20_000, 20)));
    let waits = &h.d.docs[0].attempts[0].model_waits;
    let ms = |d: Option<chrono::DateTime<Utc>>| d.map(|d| d.timestamp_millis() as u64);
    assert_eq!(waits.len(), 2, "{waits:?}");
    assert_eq!(ms(waits[0].to), Some(arrived + 3_000));
    assert_eq!((ms(Some(waits[1].from)), ms(waits[1].to)), (Some(arrived + 10_000), Some(arrived + 11_000)));
    h.say(0, 1, AttemptEvent::CheckStarted { pgid: None });
    h.say(0, 1, AttemptEvent::Merging);
    let a = &h.d.docs[0].attempts[0];
    assert!(a.checks_at.is_some() && a.merging_at >= a.checks_at, "{a:?}");
    // The retry was queued from the moment the first attempt ended.
    h.finished(0, 1, failed(Reason::ExitCode, "exit 1"), Evidence::default());
    h.d.feed(&mut h.sched, Some(Input::RetryDue { task: 0 }));
    let (first, second) = (&h.d.docs[0].attempts[0], &h.d.docs[0].attempts[1]);
    assert_eq!(second.queued_at, first.ended_at);
    assert!(second.checks_at.is_none() && second.model_waits.is_empty());
}
