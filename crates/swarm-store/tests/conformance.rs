//! The store conformance suite: every backend must pass the same checks. A new backend is a new
//! `backend_tests!` line at the bottom.

use chrono::{Duration, Utc};
use serde_json::json;
use std::sync::Arc;
use swarm_core::event::{Event, EventKind};
use swarm_core::plan::{Plan, Task, Workdir};
use swarm_core::report::{AttemptReport, RunRecord, TaskReport};
use swarm_core::router::Cooldown;
use swarm_core::state::{Reason, RunState, TaskState};
use swarm_core::state_doc::{Actor, StateOp};
use swarm_store::{
    Batch, Bucket, DayWindow, Learned, ModelLimits, Reservation, StandingQuery, Store, StoreError, DAY_MS,
    MINUTE_MS, NEVER, TRIM_MS,
};

#[path = "conformance/backends.rs"]
mod backends;
#[path = "conformance/models.rs"]
mod models;
#[path = "conformance/runs.rs"]
mod runs;
#[path = "conformance/state.rs"]
mod state;

use models::*;
use runs::*;
use state::*;

/// Opens another handle on the same backing store (another connection, as another process would).
type Reopen = Arc<dyn Fn() -> Arc<dyn Store> + Send + Sync>;

fn plan(ids: &[&str]) -> Plan {
    Plan {
        name: "p".into(),
        namespace: "ns".into(),
        concurrency: Some(2),
        brief: String::new(),
        state: None,
        tasks: ids
            .iter()
            .map(|id| Task {
                id: id.to_string(),
                title: format!("task {id}"),
                agent: "exec".into(),
                model: None,
                tier: None,
                depends: vec![],
                timeout: None,
                stall: None,
                retries: 0,
                check: None,
                command: Some("true".into()),
                paths: vec![],
                workdir: Some(Workdir::Shared),
                role: None,
                handoff: None,
                on_conflict: None,
                labels: Default::default(),
                prompt: String::new(),
            })
            .collect(),
    }
}

fn record(run_id: &str, minutes_ago: i64, ids: &[&str]) -> RunRecord {
    RunRecord {
        run_id: run_id.into(),
        plan: "p".into(),
        namespace: "ns".into(),
        plan_file: "/tmp/plan.md".into(),
        workdir: "/tmp".into(),
        state: RunState::Running,
        started_at: Utc::now() - Duration::minutes(minutes_ago),
        ended_at: None,
        concurrency: 2,
        fail_fast: false,
        allow_paid: false,
        workers: false,
        owner: None,
        spec: plan(ids),
        git: None,
    }
}

fn task(id: &str, state: TaskState) -> TaskReport {
    TaskReport { state, ..TaskReport::new(id, "exec") }
}

fn event(run_id: &str, task: &str, state: TaskState) -> Event {
    Event {
        run_id: run_id.into(),
        timestamp: Utc::now(),
        elapsed_ms: 1,
        kind: EventKind::TaskState { task: task.into(), state, reason: None, detail: None },
    }
}

fn create(store: &dyn Store, run_id: &str, minutes_ago: i64, ids: &[&str]) {
    let tasks: Vec<_> = ids.iter().map(|id| task(id, TaskState::Pending)).collect();
    store.create_run(&record(run_id, minutes_ago, ids), &tasks).unwrap();
}

/// The checks every backend runs, each a test of `mod $backend`: `store:` checks take the
/// store, `reopen:` checks open more handles on it.
macro_rules! checks {
    (store: $($s:ident),* ; reopen: $($r:ident),* $(,)?) => {
        $(
            #[test]
            fn $s() {
                let (s, _guard, _) = fixture();
                super::$s(&*s);
            }
        )*
        $(
            #[test]
            fn $r() {
                let (_s, _guard, reopen) = fixture();
                super::$r(&reopen);
            }
        )*
    };
}

macro_rules! backend_tests {
    ($backend:ident, $open:expr) => {
        mod $backend {
            use super::*;
            fn fixture() -> (Arc<dyn Store>, Box<dyn std::any::Any>, Reopen) {
                $open
            }
            checks!(
                store: round_trips_runs_and_tasks,
                applies_batches_atomically_and_in_order,
                cancel_flag,
                fences_stale_lease_holders,
                leases_expire_by_the_store_clock,
                resolves_run_ids,
                state_get_set_delete_list,
                state_compare_and_set,
                state_change_feed,
                state_refusals_are_in_the_feed_and_write_nothing,
                state_changes_reach_the_run_events,
                replayed_batches_apply_once,
                huge_batches_apply,
                model_rpm_is_a_sliding_minute,
                model_tpm_sums_tokens,
                model_rpd_counts_the_day,
                model_limits_none_are_unlimited,
                model_budgets_are_per_namespace_and_model,
                model_cooldowns_keep_the_longer_and_end,
                model_cooldowns_keep_their_kind,
                model_day_window_counts_the_providers_day,
                model_groups_share_one_budget,
                model_standings_say_when_a_full_window_frees,
                model_learned_limits_are_kept_and_merged,
                now_ms_is_the_wall_clock,
                racing_processes_share_one_budget;
                reopen: concurrent_transitions_have_exactly_one_winner,
                state_cas_has_no_lost_updates,
                racing_reservers_share_one_budget
            );
        }
    };
}

backend_tests!(sqlite, {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store: Arc<dyn Store> = Arc::new(swarm_store::SqliteStore::open(&path).unwrap());
    let reopen: Reopen = Arc::new(move || Arc::new(swarm_store::SqliteStore::open(&path).unwrap()));
    (store, Box::new(dir), reopen)
});

backend_tests!(redis, {
    let server = swarm_testkit::RedisServer::start();
    let url = server.url();
    let store: Arc<dyn Store> = Arc::new(swarm_store::RedisStore::open(&url).unwrap());
    let reopen: Reopen = Arc::new(move || Arc::new(swarm_store::RedisStore::open(&url).unwrap()));
    (store, Box::new(server), reopen)
});

backend_tests!(redis_cluster, {
    let cluster = swarm_testkit::RedisCluster::start();
    let url = cluster.url();
    let store = swarm_store::RedisStore::open(&url).unwrap();
    assert!(store.is_cluster());
    let store: Arc<dyn Store> = Arc::new(store);
    let reopen: Reopen = Arc::new(move || Arc::new(swarm_store::RedisStore::open(&url).unwrap()));
    (store, Box::new(cluster), reopen)
});
