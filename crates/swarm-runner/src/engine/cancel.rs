//! Stopping a run from anywhere: a run this process drives is stopped directly; one another
//! orchestrator drives is asked through the store; one nobody drives is closed here, its
//! leftovers stopped.

use super::{Engine, EngineError};
use crate::os::process::{hostname, owner_status};
use crate::os::reaper::{self, Marker, Scope};
use chrono::Utc;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use swarm_core::event::{Event, EventKind};
use swarm_core::plan::Plan;
use swarm_core::report::{AttemptReport, TaskReport};
use swarm_core::state::{Reason, RunState, TaskState};
use swarm_store::{Batch, StoreError};

/// What `cancel` did.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelOutcome {
    AlreadyFinished(RunState),
    /// Its orchestrator stopped it.
    Stopped(RunState),
    /// Asked; the orchestrator is still winding down (or another one took the run over).
    Requested(String),
    /// Nobody drove it: its leftovers were stopped and the cancel recorded here.
    Closed,
}

impl CancelOutcome {
    /// The run's state after the cancel.
    pub fn state(&self) -> RunState {
        match self {
            CancelOutcome::AlreadyFinished(s) | CancelOutcome::Stopped(s) => *s,
            CancelOutcome::Requested(_) => RunState::Running,
            CancelOutcome::Closed => RunState::Cancelled,
        }
    }

    /// How it came about, for people.
    pub fn how(&self) -> String {
        match self {
            CancelOutcome::AlreadyFinished(_) => "already finished".into(),
            CancelOutcome::Stopped(_) => "stopped by its orchestrator".into(),
            CancelOutcome::Requested(why) => format!("cancel requested; {why}"),
            CancelOutcome::Closed => "orchestrator was gone; leftover attempts stopped".into(),
        }
    }
}

impl Engine {
    /// Stops a run from anywhere (`source` says who asked): directly when this process drives
    /// it, through the store when another orchestrator lives (waiting up to the grace period
    /// and some for it to wind down); when none does, stops what the run left running here and
    /// records the cancel itself. Blocking.
    pub fn cancel(&self, run: &str, source: &str) -> Result<(String, CancelOutcome), EngineError> {
        let mut record = self.load(Some(run))?;
        let run_id = record.run_id.clone();
        if record.state != RunState::Running {
            return Ok((run_id, CancelOutcome::AlreadyFinished(record.state)));
        }
        let deadline = Instant::now() + self.config.grace() + Duration::from_secs(15);
        if let Some(canceller) = self.live.canceller(&run_id) {
            canceller.cancel(source);
            return Ok((run_id.clone(), self.wait_stopped(&run_id, deadline)?));
        }
        self.store.request_cancel(&run_id)?;
        if record.owner.as_ref().is_some_and(|o| owner_status(o).is_alive()) {
            return Ok((run_id.clone(), self.wait_stopped(&run_id, deadline)?));
        }
        // Nobody drives the run: take its lease from the dead holder (a resume racing us would
        // otherwise write over what we record, or we over it).
        let lease = match self.take_over(&run_id) {
            Ok(lease) => lease,
            Err(StoreError::Fenced { .. }) => {
                // Someone drives it now (a resume won the race): it sees the cancel request.
                let why = "another swarm process took the run over".to_string();
                return Ok((run_id, CancelOutcome::Requested(why)));
            }
            Err(e) => return Err(e.into()),
        };
        let queued = self.stop_on_workers(&record);
        let mut tasks = self.store.tasks(&run_id)?;
        let mut batch = Batch { lease: Some(lease), ..Batch::default() };
        let now = Utc::now();
        for t in &mut tasks {
            if t.state.is_terminal() {
                continue;
            }
            add_unrecorded(t, &record.spec, &queued);
            end_open_attempts(&run_id, t, Reason::Cancelled, None);
            t.state = TaskState::Cancelled;
            t.reason = Some(Reason::Cancelled);
            t.detail = Some("run cancelled (its orchestrator was gone)".into());
            let kind = EventKind::TaskState {
                task: t.id.clone(),
                state: TaskState::Cancelled,
                reason: t.reason,
                detail: t.detail.clone(),
            };
            batch.events.push(Event { run_id: run_id.clone(), timestamp: now, elapsed_ms: 0, kind });
            batch.tasks.push(t.clone());
        }
        reaper::end(&Marker::run(&run_id), Scope::All, Duration::ZERO);
        record.state = RunState::Cancelled;
        record.ended_at = Some(now);
        batch.run = Some(record);
        self.store.apply(&run_id, &batch)?;
        Ok((run_id, CancelOutcome::Closed))
    }

    /// Waits until `run_id` is no longer running, or `deadline`.
    fn wait_stopped(&self, run_id: &str, deadline: Instant) -> Result<CancelOutcome, EngineError> {
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            if let Some(r) = self.store.run(run_id)?.filter(|r| r.state != RunState::Running) {
                return Ok(CancelOutcome::Stopped(r.state));
            }
        }
        Ok(CancelOutcome::Requested("the orchestrator is still stopping".into()))
    }
}

/// Adds to `t` the attempts its dead orchestrator queued for workers (`queued`: each task's
/// last) and died before recording: open, so that they are ended as its recorded open
/// attempts are, and the task's next attempt is numbered past them. Whether it added one (the
/// task was running, though its record says otherwise).
pub(crate) fn add_unrecorded(t: &mut TaskReport, plan: &Plan, queued: &HashMap<String, u32>) -> bool {
    let (Some(&last), Some(spec)) = (queued.get(&t.id), plan.tasks.iter().find(|s| s.id == t.id)) else {
        return false;
    };
    let recorded = t.attempts.len() as u32;
    for n in recorded + 1..=last {
        let mut a = AttemptReport::new(n, &spec.agent, Utc::now());
        a.detail = Some("queued for the workers by an orchestrator that died before recording it".into());
        t.attempts.push(a);
    }
    last > recorded
}

/// Ends `task`'s attempts left open by an orchestrator that is gone: a process group still
/// running here is killed (only if its recorded pid still carries the attempt's marker: pids
/// are reused), and the attempt ends with `reason`. How many groups were killed.
pub(crate) fn end_open_attempts(
    run_id: &str,
    t: &mut TaskReport,
    reason: Reason,
    detail: Option<&str>,
) -> usize {
    let host = hostname();
    let mut killed = 0;
    for a in t.attempts.iter_mut().filter(|a| a.is_running()) {
        if let (Some(pid), true) = (a.pid, a.host.as_deref() == Some(host.as_str())) {
            let marker = Marker::attempt(run_id, &t.id, a.n);
            if reaper::signal_group_of(pid, &marker, nix::sys::signal::Signal::SIGKILL) {
                killed += 1;
            }
        }
        a.ended_at = Some(Utc::now());
        a.reason = Some(reason);
        if let Some(d) = detail {
            a.detail = Some(d.to_string());
        }
    }
    killed
}
