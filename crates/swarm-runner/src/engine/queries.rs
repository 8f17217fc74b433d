//! The engine's read side, for every face: a run's record and report, the runs, its events
//! followed live, a change awaited, an attempt's log, the models' standings, and the
//! namespace's shared state (written with the writer's identity). Faces render what comes back.

use super::{Engine, EngineError};
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_core::completion::Completion;
use swarm_core::event::Event;
use swarm_core::report::{RunRecord, RunReport};
use swarm_core::router::{Catalog, CooldownKind};
use swarm_core::state::{RunState, TaskState};
use swarm_core::state_doc::{Actor, StateChange, StateEntry};
use swarm_core::team::StateDecl;
use swarm_store::{Learned, ModelStanding, Store, StoreError};

/// Events read from the store at a time.
const FOLLOW_BATCH: usize = 1000;

/// One attempt's log, as `swarm logs` and `task_logs` show it.
#[derive(Debug, Clone)]
pub struct TaskLog {
    pub run_id: String,
    pub task_id: String,
    pub task_state: TaskState,
    /// 0 when the task has not started.
    pub attempt: u32,
    /// None: the attempt has printed nothing yet (logs are made on first output).
    pub path: Option<PathBuf>,
    pub ended: bool,
    pub completion: Option<Completion>,
}

/// How a model stands now, as every process on the store sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelRow {
    pub model: String,
    pub layer: u8,
    pub state: ModelState,
    pub paid: bool,
    pub rpm: Option<u32>,
    pub rpd: Option<u32>,
    pub tpm: Option<u64>,
    pub context: Option<u64>,
    pub minute_requests: u64,
    pub minute_tokens: u64,
    /// Requests and tokens in the provider's day.
    pub day_requests: u64,
    pub day_tokens: u64,
    /// When the provider's day ends and its daily quota is whole again, and in which time zone
    /// its days are counted (`America/Los_Angeles` for Gemini, `UTC` otherwise).
    pub resets_at: DateTime<Utc>,
    pub day_reset: &'static str,
    /// The groups whose shared limits it counts against (`[models.groups.NAME]`).
    pub groups: Vec<String>,
    /// The provider's own word on its limits (from its 429s), which routing goes by.
    pub learned: Option<Learned>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ModelState {
    Ok,
    Cooling { until: DateTime<Utc>, reason: String },
    Disabled { until: DateTime<Utc>, reason: String },
}

impl ModelState {
    pub fn as_str(&self) -> &'static str {
        match self {
            ModelState::Ok => "ok",
            ModelState::Cooling { .. } => "cooling",
            ModelState::Disabled { .. } => "disabled",
        }
    }
}

/// What following a run's events gave.
#[derive(Debug)]
pub enum Followed {
    Events(Vec<(u64, Event)>),
    /// Nothing new within the wait; the run goes on.
    Idle,
    /// The run ended and every event was delivered.
    Ended,
}

/// A run's stored events, from a sequence number on, then live until the run ends: one stream
/// for `swarm events -f` and the API's Server-Sent Events.
pub struct Follow {
    store: Arc<dyn Store>,
    pub run_id: String,
    after: u64,
}

impl Follow {
    /// The next events, waiting up to `wait` for some (polling the store). Blocking.
    pub fn next(&mut self, wait: Duration) -> Result<Followed, EngineError> {
        let deadline = Instant::now() + wait;
        loop {
            let batch = self.store.events(&self.run_id, self.after, FOLLOW_BATCH)?;
            if let Some((seq, _)) = batch.last() {
                self.after = *seq;
                return Ok(Followed::Events(batch));
            }
            let running = self.store.run(&self.run_id)?.is_some_and(|r| r.state == RunState::Running);
            // A run that ended has all its events stored: nothing more comes.
            if !running && self.store.events(&self.run_id, self.after, 1)?.is_empty() {
                return Ok(Followed::Ended);
            }
            if Instant::now() >= deadline {
                return Ok(Followed::Idle);
            }
            std::thread::sleep(Duration::from_millis(100).min(deadline - Instant::now()));
        }
    }
}

impl Engine {
    /// The id `run` names (`latest`, an id, a unique prefix or suffix) and its record.
    pub(crate) fn load(&self, run: Option<&str>) -> Result<RunRecord, EngineError> {
        let run_id = self.store.resolve(run)?;
        self.store.run(&run_id)?.ok_or(EngineError::Store(StoreError::NoSuchRun(run_id)))
    }

    /// A run's record and its report as it stands (live while it runs).
    pub fn record(&self, run: Option<&str>) -> Result<(RunRecord, RunReport), EngineError> {
        let record = self.load(run)?;
        let tasks = self.store.tasks(&record.run_id)?;
        let report = RunReport::build(&record, tasks);
        Ok((record, report))
    }

    /// The newest runs first, at most `limit`; none when the store does not exist yet.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, EngineError> {
        match self.store.runs(limit) {
            Err(StoreError::Missing { .. }) => Ok(vec![]),
            other => Ok(other?),
        }
    }

    /// `run`'s events after sequence number `after`, then as they come.
    pub fn follow(&self, run: Option<&str>, after: u64) -> Result<Follow, EngineError> {
        let record = self.load(run)?;
        Ok(Follow { store: self.store.clone(), run_id: record.run_id, after })
    }

    /// The run's report once a task's or the run's state changes, or the run ends, or after
    /// `wait`; at once without a wait. A run this process drives is heard through its events;
    /// another's through the store. Blocking.
    pub fn wait_change(&self, run: Option<&str>, wait: Duration) -> Result<RunReport, EngineError> {
        let (record, first) = self.record(run)?;
        if first.state != RunState::Running || wait.is_zero() {
            return Ok(first);
        }
        let deadline = Instant::now() + wait;
        let states = |r: &RunReport| -> Vec<TaskState> { r.tasks.iter().map(|t| t.state).collect() };
        let before = states(&first);
        let mut local = self.live.subscribe(&record.run_id);
        loop {
            match &mut local {
                // Any state change of the run is an event on its bus.
                Some(rx) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let changed = rx.recv_timeout(left);
                    if changed.is_none() {
                        local = None; // the run ended here (or the wait is over): read the store
                    }
                }
                None => std::thread::sleep(Duration::from_millis(200)),
            }
            let (_, now) = self.record(Some(&record.run_id))?;
            if now.state != RunState::Running || states(&now) != before || Instant::now() >= deadline {
                return Ok(now);
            }
        }
    }

    /// The log of attempt `attempt` of `task` (default: its latest).
    pub fn task_log(&self, run: &str, task: &str, attempt: Option<u32>) -> Result<TaskLog, EngineError> {
        let record = self.load(Some(run))?;
        let run_id = record.run_id;
        let tasks = self.store.tasks(&run_id)?;
        let Some(t) = tasks.iter().find(|t| t.id == task) else {
            let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
            let why = format!("run {run_id} has no task `{task}` (tasks: {})", ids.join(", "));
            return Err(EngineError::NotFound(why));
        };
        let a = match attempt {
            Some(n) => Some(
                t.attempts
                    .iter()
                    .find(|a| a.n == n)
                    .ok_or_else(|| EngineError::NotFound(format!("task `{task}` has no attempt {n}")))?,
            ),
            None => t.attempts.last(),
        };
        Ok(TaskLog {
            run_id: run_id.clone(),
            task_id: task.to_string(),
            task_state: t.state,
            attempt: a.map_or(0, |a| a.n),
            path: a.and_then(|a| a.log.as_ref()).map(PathBuf::from),
            ended: a.is_some_and(|a| !a.is_running()),
            completion: a.and_then(|a| a.completion.clone()),
        })
    }

    /// The output lines attempt `attempt` of `task` said on its run's feed after feed entry
    /// `after` (`0-0`: from the start), and the entry to read on after: how an attempt a
    /// worker ran is read on a host without its log file. `None` when the run's attempts are
    /// not run by workers.
    pub fn feed_output(
        &self,
        run_id: &str,
        (task, attempt): (&str, u32),
        after: &str,
    ) -> Result<Option<(Vec<String>, String)>, EngineError> {
        let record = self.load(Some(run_id))?;
        let Some(queue) = self.store.clone().work_queue().filter(|_| record.workers) else { return Ok(None) };
        let (mut lines, mut after) = (Vec::new(), after.to_string());
        loop {
            let entries = queue.feed(&record.namespace, run_id, &after, FOLLOW_BATCH, None)?;
            let Some(last) = entries.last() else { break };
            after = last.id.clone();
            for entry in entries.iter().filter(|e| e.task == task && e.attempt == attempt) {
                let swarm_store::Said::Events(json) = &entry.said else { continue };
                let events: Vec<crate::job::AttemptEvent> = serde_json::from_str(json).unwrap_or_default();
                lines.extend(events.into_iter().filter_map(|ev| match ev {
                    crate::job::AttemptEvent::Output { line, .. } => Some(line),
                    _ => None,
                }));
            }
        }
        Ok(Some((lines, after)))
    }

    /// Whether `run_id` is over (or gone).
    pub fn run_over(&self, run_id: &str) -> bool {
        self.store.run(run_id).ok().flatten().is_none_or(|r| r.state != RunState::Running)
    }

    /// Every model of the hierarchy with its standing in namespace `ns` (default: the
    /// project's); a store that does not exist yet is a hierarchy at rest.
    pub fn models(&self, ns: &str) -> Result<Vec<ModelRow>, EngineError> {
        let Some(h) = &self.executors.hierarchy else { return Ok(vec![]) };
        let standings = match h.read(ns) {
            Err(StoreError::Missing { .. }) => return Ok(Engine::idle_models(&self.config)),
            other => other?.models,
        };
        let now = standings.first().map(|s| s.now_ms).filter(|n| *n > 0);
        let now = now.unwrap_or_else(|| Utc::now().timestamp_millis() as u64);
        Ok(h.catalog.models.iter().zip(standings).map(|(m, s)| row(&h.catalog, m, s, now)).collect())
    }

    /// The hierarchy at rest, for a project with no store yet: every model ok, nothing used.
    pub fn idle_models(config: &swarm_core::config::Config) -> Vec<ModelRow> {
        let catalog = Catalog::from_config(config);
        let now = Utc::now().timestamp_millis() as u64;
        catalog
            .models
            .iter()
            .map(|m| row(&catalog, m, ModelStanding { model: m.id.clone(), ..Default::default() }, now))
            .collect()
    }

    /// The namespace `ns`'s shared state, written as `actor`.
    pub fn shared_state(&self, ns: &str, actor: Actor) -> SharedState<'_> {
        SharedState { store: &*self.store, ns: ns.to_string(), actor, configured: self.config.state.as_ref() }
    }
}

fn row(catalog: &Catalog, m: &swarm_core::router::ModelEntry, s: ModelStanding, now: u64) -> ModelRow {
    let state = match s.cooldown.filter(|c| c.lasts(now)) {
        None => ModelState::Ok,
        Some(c) => {
            let until =
                Utc.timestamp_millis_opt(c.until_ms.min(i64::MAX as u64) as i64).single().unwrap_or_default();
            match c.kind {
                CooldownKind::Cooling => ModelState::Cooling { until, reason: c.reason },
                CooldownKind::Disabled => ModelState::Disabled { until, reason: c.reason },
            }
        }
    };
    let resets = m.day_reset.next_reset(now);
    ModelRow {
        resets_at: Utc.timestamp_millis_opt(resets.min(i64::MAX as u64) as i64).single().unwrap_or_default(),
        day_reset: m.day_reset.name(),
        groups: m.groups.iter().map(|&g| catalog.groups[g].name.clone()).collect(),
        learned: s.learned,
        model: m.id.clone(),
        layer: m.layer,
        state,
        paid: m.paid,
        rpm: m.rpm,
        rpd: m.rpd,
        tpm: m.tpm,
        context: m.context,
        minute_requests: s.minute_requests,
        minute_tokens: s.minute_tokens,
        day_requests: s.day_requests,
        day_tokens: s.day_tokens,
    }
}

/// A namespace's shared state: versioned JSON documents agents read and write, every change
/// recorded with who made it.
pub struct SharedState<'a> {
    store: &'a dyn Store,
    ns: String,
    actor: Actor,
    /// swarm.toml's `[state]`, for a namespace no run has declared state for.
    configured: Option<&'a StateDecl>,
}

impl SharedState<'_> {
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    pub fn get(&self, key: &str) -> Result<Option<StateEntry>, EngineError> {
        Ok(self.store.state_get(&self.ns, key)?)
    }

    /// Writes `key`; with `if_version`, only if the key is at that version now (0: absent).
    pub fn set(
        &self,
        key: &str,
        value: &serde_json::Value,
        if_version: Option<u64>,
    ) -> Result<StateEntry, EngineError> {
        self.guard(key, Some(value))?;
        Ok(self.store.state_set(&self.ns, key, value, if_version, Some(&self.actor))?)
    }

    /// Whether the key existed.
    pub fn delete(&self, key: &str, if_version: Option<u64>) -> Result<bool, EngineError> {
        self.guard(key, None)?;
        Ok(self.store.state_delete(&self.ns, key, if_version, Some(&self.actor))?)
    }

    /// The declared state that governs this namespace for the writer: its run's (an agent),
    /// else the namespace's latest run's (the user), else swarm.toml's `[state]`.
    pub fn declaration(&self) -> Result<Option<StateDecl>, EngineError> {
        let run = match self.actor.run_id.as_deref() {
            Some(id) => self.store.run(id)?,
            None => self.store.runs(usize::MAX)?.into_iter().find(|r| r.namespace == self.ns),
        };
        let declared = run.filter(|r| r.namespace == self.ns).and_then(|r| r.spec.state);
        Ok(declared.or_else(|| self.configured.cloned()))
    }

    /// Refuses (and records in the change feed) a write the declaration does not allow.
    fn guard(&self, key: &str, value: Option<&serde_json::Value>) -> Result<(), EngineError> {
        let Some(decl) = self.declaration()? else { return Ok(()) };
        let Err(refusal) = decl.check_write(self.actor.task_id.as_deref(), key, value) else {
            return Ok(());
        };
        self.store.state_refuse(&self.ns, key, &refusal.to_string(), Some(&self.actor))?;
        Err(EngineError::Refused(refusal))
    }

    /// `key` once its version is past `after` (0: once it exists), or as it is when `wait`
    /// runs out. Follows the change feed, so one agent can wait for another's key.
    pub fn wait(&self, key: &str, after: u64, wait: Duration) -> Result<Option<StateEntry>, EngineError> {
        let deadline = Instant::now() + wait;
        let mut seen = self.store.state_last_seq(&self.ns)?;
        loop {
            let entry = self.get(key)?;
            if entry.as_ref().is_some_and(|e| e.version > after) || Instant::now() >= deadline {
                return Ok(entry);
            }
            // Only a change of this key is worth another read.
            while Instant::now() < deadline {
                let changes = self.store.state_changes(&self.ns, seen, 1000)?;
                seen = changes.last().map_or(seen, |c| c.seq);
                if changes.iter().any(|c| c.key == key && c.op != swarm_core::state_doc::StateOp::Refused) {
                    break;
                }
                std::thread::sleep(
                    Duration::from_millis(100).min(deadline.saturating_duration_since(Instant::now())),
                );
            }
        }
    }

    pub fn list(&self, prefix: &str) -> Result<Vec<StateEntry>, EngineError> {
        Ok(self.store.state_list(&self.ns, prefix)?)
    }

    /// Changes after sequence number `after`, oldest first, at most `limit`.
    pub fn changes(&self, after: u64, limit: usize) -> Result<Vec<StateChange>, EngineError> {
        Ok(self.store.state_changes(&self.ns, after, limit)?)
    }

    /// The newest change's sequence number (0: none).
    pub fn last_seq(&self) -> Result<u64, EngineError> {
        Ok(self.store.state_last_seq(&self.ns)?)
    }
}
