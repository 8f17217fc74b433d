//! The engine as a library: runs started in-process behave like `swarm run`, and two of them in
//! one process never mix their events or their cancels.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use swarm_core::event::EventKind;
use swarm_core::plan::{parse_markdown, PlanContext};
use swarm_core::state::{RunState, TaskState};
use swarm_runner::{Engine, StartRequest};
use swarm_store::{SqliteStore, Store};

fn engine(dir: &Path) -> Engine {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join(".swarm/state.db")).unwrap());
    let config = swarm_core::config::Config::default();
    let registry = swarm_agents::Registry::from_config(&config).unwrap();
    Engine::new(store, config, registry, dir.into(), dir.join(".swarm"), "sqlite:test".into(), None)
}

fn plan(dir: &Path, name: &str, text: &str) -> StartRequest {
    let ctx = PlanContext {
        default_name: name.into(),
        default_namespace: "engine-test".into(),
        agents: swarm_agents::agent_names(&swarm_core::config::Config::default()),
        ..Default::default()
    };
    let file = dir.join(format!("{name}.md"));
    std::fs::write(&file, text).unwrap();
    let plan = parse_markdown(&file.display().to_string(), text, &ctx).expect("a valid plan");
    StartRequest {
        plan,
        plan_file: file,
        concurrency: None,
        fail_fast: false,
        allow_paid: false,
        base: None,
        workers: false,
        repo: None,
    }
}

#[test]
fn two_runs_in_one_process_one_cancelled_the_other_unharmed() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let engine = engine(dir.path());
    let mut slow = engine
        .start(
            rt.handle(),
            plan(
            dir.path(),
            "slow",
            "## wait: Sleeps\n- agent: exec\n- command: sleep 30\n\n## after: Never starts\n- agent: exec\n- depends: wait\n- command: true\n",
        ))
        .unwrap();
    let mut quick = engine
        .start(
            rt.handle(),
            plan(
            dir.path(),
            "quick",
            "## one: Quick\n- agent: exec\n- command: sleep 1; echo one\n\n## two: After one\n- agent: exec\n- depends: one\n- command: echo two\n",
        ))
        .unwrap();
    assert_ne!(slow.run_id(), quick.run_id());
    let (slow_id, quick_id) = (slow.run_id().to_string(), quick.run_id().to_string());
    let (mut slow_events, mut quick_events) = (slow.events().unwrap(), quick.events().unwrap());
    let canceller = slow.canceller();
    let (slow_report, quick_report, slow_seen, quick_seen) = rt.block_on(async move {
        // Cancel the slow run once its task runs; the quick one goes on.
        let collect_slow = async {
            let mut seen = Vec::new();
            while let Some(ev) = slow_events.recv().await {
                if matches!(ev.kind, EventKind::AttemptStarted { .. }) {
                    canceller.cancel("test");
                }
                seen.push(ev);
            }
            seen
        };
        let collect_quick = async {
            let mut seen = Vec::new();
            while let Some(ev) = quick_events.recv().await {
                seen.push(ev);
            }
            seen
        };
        let (slow_seen, quick_seen) = tokio::join!(collect_slow, collect_quick);
        let (s, q) = tokio::join!(slow.wait(), quick.wait());
        (s, q, slow_seen, quick_seen)
    });
    assert_eq!(slow_report.state, RunState::Cancelled);
    assert_eq!(quick_report.state, RunState::Succeeded, "{quick_report:#?}");
    assert!(quick_report.tasks.iter().all(|t| t.state == TaskState::Succeeded));
    assert!(slow_seen.iter().all(|e| e.run_id == slow_id), "only the slow run's events on its stream");
    assert!(quick_seen.iter().all(|e| e.run_id == quick_id), "only the quick run's events on its stream");
    assert!(quick_seen
        .iter()
        .any(|e| matches!(&e.kind, EventKind::RunFinished { state: RunState::Succeeded, .. })));
    assert!(!quick_seen.iter().any(|e| matches!(e.kind, EventKind::CancelRequested { .. })));
    assert!(slow_seen
        .iter()
        .any(|e| matches!(&e.kind, EventKind::CancelRequested { source } if source == "test")));
    // What the store says matches: the engine's runs are ordinary runs.
    let (_, stored) = engine.record(Some(&quick_id)).unwrap();
    assert_eq!(stored.state, RunState::Succeeded);
    assert!(engine.run_dir(&quick_id).report_json().is_file());
    let _ = Duration::ZERO;
}

#[test]
fn an_attempt_job_and_its_events_survive_a_trip_through_json() {
    use swarm_runner::job::{
        AttemptEvent, AttemptJob, Evidence, Limits, ModelRoute, ReportSpec, WorkspaceSpec,
    };
    let ctx = PlanContext {
        default_name: "p".into(),
        default_namespace: "n".into(),
        agents: vec!["opencode".into()],
        ..Default::default()
    };
    let plan = parse_markdown(
        "p.md",
        "## t: T\n- agent: opencode\n- model: local/ok\n- timeout: 20m\n\nDo it.\n",
        &ctx,
    )
    .unwrap();
    let job = AttemptJob {
        run_id: "r".into(),
        task_index: 0,
        task: plan.tasks[0].clone(),
        attempt: 2,
        prompt: "Do it. \"quoted\" $X".into(),
        route: ModelRoute::Task {
            model: Some("local/ok".into()),
            provider: Some(swarm_agents::ProviderSpec {
                name: "local".into(),
                kind: "openai-compatible".into(),
                base_url: Some("http://127.0.0.1:1/v1".into()),
                model: "ok".into(),
                api_key_env: "LOCAL_KEY".into(),
            }),
        },
        workspace: WorkspaceSpec::Worktree {
            repo: "/repo".into(),
            path: "/repo/.swarm/runs/r/worktrees/t".into(),
            branch: "swarm/r/t".into(),
            start: "swarm/r".into(),
            subdir: "sub".into(),
            setup: Some("npm ci".into()),
            integration: Box::new(swarm_runner::job::Integration {
                branch: "swarm/r".into(),
                worktree: "/repo/.swarm/worktrees/r/_integration".into(),
                strategy: swarm_runner::job::Strategy::Squash,
                author: "swarm <swarm@localhost>".into(),
                max_file_size: 1024,
            }),
            remote: Some(swarm_runner::job::Remote {
                url: "ssh://git.example.com/app.git".into(),
                push_to: Some("refs/swarm/r/t/2-7".into()),
            }),
        },
        env: vec![("SWARM_RUN_ID".into(), "r".into())],
        env_remove: vec!["LOCAL_KEY".into()],
        limits: Limits {
            timeout: Some(Duration::from_secs(1200)),
            stall: None,
            grace: Duration::from_secs(5),
            check_timeout: Duration::from_secs(600),
            setup_timeout: Duration::from_secs(600),
            log_limit: 1 << 20,
        },
        check: Some("cargo test".into()),
        report: ReportSpec {
            path: "/c.json".into(),
            required: true,
            run_id: "r".into(),
            task_id: "t".into(),
        },
        pre_step: None,
        log: "/l.log".into(),
        attempt_dir: "/a".into(),
        project_root: "/repo".into(),
        files: vec![swarm_runner::job::AgentFile { path: ".rules/state.md".into(), text: "# keys".into() }],
        handoff_from: vec!["research".into()],
        resolver: Some("opencode".into()),
        handoff_state: vec![],
    };
    let text = serde_json::to_string(&job).unwrap();
    assert!(
        !text.contains("LOCAL_KEY=") && text.contains("\"api_key_env\":\"LOCAL_KEY\""),
        "names, never keys"
    );
    assert_eq!(serde_json::from_str::<AttemptJob>(&text).unwrap(), job);
    for route in [
        ModelRoute::Gateway { url: "http://127.0.0.1:9/v1".into() },
        ModelRoute::Hierarchy {
            namespace: "n".into(),
            start_layer: 2,
            exclude: vec!["a/b".into()],
            allow_paid: false,
        },
    ] {
        let job = AttemptJob { route, ..job.clone() };
        let text = serde_json::to_string(&job).unwrap();
        assert_eq!(serde_json::from_str::<AttemptJob>(&text).unwrap(), job);
    }
    assert_eq!(job.workspace.workdir(), Path::new("/repo/.swarm/runs/r/worktrees/t/sub"));
    let ev = AttemptEvent::Finished {
        exit_code: Some(1),
        outcome: Err(swarm_core::scheduler::Failure {
            reason: swarm_core::state::Reason::CheckFailed,
            detail: Some("check failed".into()),
        }),
        evidence: Box::new(Evidence {
            warnings: vec!["w".into()],
            retry_after: Some(Duration::from_secs(3)),
            ..Default::default()
        }),
    };
    let text = serde_json::to_string(&ev).unwrap();
    assert_eq!(serde_json::from_str::<AttemptEvent>(&text).unwrap(), ev);
}
