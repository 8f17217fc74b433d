//! `swarm cancel`: asks the run's orchestrator to stop (through the store, so it works from any
//! terminal); if the orchestrator is gone, stops the leftover attempts and closes the run itself.

use crate::cli::CancelArgs;
use crate::error::{CliError, CliResult};
use crate::project::Project;
use anyhow::anyhow;
use chrono::Utc;
use std::path::Path;
use std::time::{Duration, Instant};
use swarm_core::event::{Event, EventKind};
use swarm_core::state::{Reason, RunState, TaskState};
use swarm_runner::process::{hostname, lease_holder_dead, lease_token, owner_status};
use swarm_runner::reaper::{self, Marker, Scope};
use swarm_store::{Batch, StoreError};

pub fn cancel(store: Option<&str>, config: Option<&Path>, args: CancelArgs) -> CliResult {
    let project = Project::discover(store, config)?;
    let store = project.open_store()?;
    let run_id = store.resolve(Some(&args.run)).map_err(CliError::from_store)?;
    let mut record = store
        .run(&run_id)
        .map_err(CliError::from_store)?
        .ok_or_else(|| CliError::invalid(anyhow!("no run `{run_id}`")))?;
    let say = |state: RunState, how: &str| {
        if args.json {
            println!("{}", serde_json::json!({ "run_id": run_id, "state": state, "how": how }));
        } else {
            println!("run {run_id} {state} ({how})");
        }
    };
    if record.state != RunState::Running {
        say(record.state, "already finished");
        return Ok(0);
    }
    store.request_cancel(&run_id).map_err(CliError::from_store)?;
    let host = hostname();
    let owner_alive = record.owner.as_ref().is_some_and(|o| owner_status(o).is_alive());
    if owner_alive {
        // The orchestrator polls the store; wait for it to wind down (grace period plus slack).
        let deadline = Instant::now() + project.config.grace() + Duration::from_secs(15);
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            if let Some(r) = store.run(&run_id).map_err(CliError::from_store)? {
                if r.state != RunState::Running {
                    say(r.state, "stopped by its orchestrator");
                    return Ok(0);
                }
            }
        }
        say(RunState::Running, "cancel requested; the orchestrator is still stopping");
        return Ok(0);
    }
    // Nobody drives the run: take its lease from the dead holder (a `swarm resume` racing us
    // would otherwise write over what we record, or we over it), then stop what it left running
    // and record the cancel ourselves.
    let lease = lease_token();
    let take_over =
        store.lease_holder(&run_id).map_err(CliError::from_store)?.filter(|h| lease_holder_dead(h));
    match store.acquire_lease(&run_id, &lease, swarm_runner::LEASE_TTL, take_over.as_deref()) {
        Ok(()) => {}
        Err(StoreError::Fenced { .. }) => {
            // Someone drives it now (a resume won the race): it sees the cancel request.
            say(RunState::Running, "cancel requested; another swarm process took the run over");
            return Ok(0);
        }
        Err(e) => return Err(CliError::from_store(e)),
    }
    let mut tasks = store.tasks(&run_id).map_err(CliError::from_store)?;
    let mut batch = Batch { lease: Some(lease), ..Batch::default() };
    let now = Utc::now();
    for t in &mut tasks {
        if t.state.is_terminal() {
            continue;
        }
        for a in t.attempts.iter_mut().filter(|a| a.ended_at.is_none()) {
            if let (Some(pid), true) = (a.pid, a.host.as_deref() == Some(host.as_str())) {
                // Only if the pid is still the attempt's: pids are reused.
                let marker = Marker::attempt(&run_id, &t.id, a.n);
                reaper::signal_group_of(pid, &marker, nix::sys::signal::Signal::SIGKILL);
            }
            a.ended_at = Some(now);
            a.reason = Some(Reason::Cancelled);
        }
        t.state = TaskState::Cancelled;
        t.reason = Some(Reason::Cancelled);
        t.detail = Some("run cancelled (its orchestrator was gone)".into());
        batch.events.push(Event {
            run_id: run_id.clone(),
            timestamp: now,
            elapsed_ms: 0,
            kind: EventKind::TaskState {
                task: t.id.clone(),
                state: TaskState::Cancelled,
                reason: t.reason,
                detail: t.detail.clone(),
            },
        });
        batch.tasks.push(t.clone());
    }
    reaper::end(&Marker::run(&run_id), Scope::All, Duration::ZERO);
    record.state = RunState::Cancelled;
    record.ended_at = Some(now);
    batch.run = Some(record);
    store.apply(&run_id, &batch).map_err(CliError::from_store)?;
    say(RunState::Cancelled, "orchestrator was gone; leftover attempts stopped");
    Ok(0)
}
