//! The dispatcher's side of attempts: starting one (its record, its job, its executor) and
//! taking in what its executor says, until the attempt's end goes to the scheduler.

use super::{Dispatcher, LiveAttempt, LiveRoute};
use crate::dispatcher::launch::{Launcher, RouteChoice};
use crate::dispatcher::sweeper::{Request, Swept};
use crate::gateway::Grant;
use crate::job::StopRequest;
use crate::job::{AttemptEvent, Evidence};
use crate::os::git::MergeOutcome;
use crate::os::reaper::Marker;
use chrono::{TimeZone, Utc};
use swarm_core::event::EventKind;
use swarm_core::report::AttemptReport;
use swarm_core::report::MergeState;
use swarm_core::scheduler::{self, Failure, Input};
use swarm_core::state::Reason;
use tokio::sync::watch;

impl Dispatcher {
    /// Starts attempt `attempt` of task `task`: records it, builds its job and hands that to an
    /// executor. Returns an input for the scheduler when the job could not even be built.
    pub(super) fn start(&mut self, task: u32, attempt: u32) -> Option<Input> {
        let i = task as usize;
        let (route, token) = self.route_for(task, attempt);
        let gateway_url = self.models.gateway.as_ref().map(|g| g.base_url());
        let launcher = Launcher {
            record: &self.record,
            plan: &self.record.spec,
            config: &self.ctx.config,
            run_dir: &self.ctx.run_dir,
            store_env: &self.ctx.store_env,
            project_root: &self.ctx.project_root,
            gateway_url: gateway_url.as_deref(),
            tasks: &self.docs,
        };
        let choice = match (&route, &token) {
            (LiveRoute::Gateway, Some(token)) => RouteChoice::Gateway { token },
            (LiveRoute::Hierarchy { .. }, _) => RouteChoice::Hierarchy {
                exclude: self.failed_models(task),
                allow_paid: self.models.ledger.allow_paid,
            },
            _ => RouteChoice::Task,
        };
        // The spend gate: once the run's budget is spent, no new attempt starts on it; a task
        // pinned to a paid model starts only when the run allows paid models.
        let spent = match route {
            LiveRoute::Task => self.pinned_paid(task),
            _ => self.pinned_paid(task).or_else(|| self.models.ledger.budget_spent()),
        };
        let job = match &spent {
            Some(why) => Err(why.clone()),
            None => launcher.job(task, attempt, self.docs[i].attempts.last(), choice),
        };
        let queued = self.queued_since(task, attempt);
        let t = &self.record.spec.tasks[i];
        let mut doc = AttemptReport::new(attempt, &t.agent, Utc::now());
        doc.queued_at = queued;
        (doc.model, doc.layer) = match route {
            LiveRoute::Task => (t.model.clone(), t.tier),
            // Pinned, through the gateway: its model is known now.
            LiveRoute::Gateway if t.model.is_some() => (t.model.clone(), t.tier),
            _ => (None, t.tier),
        };
        doc.fallback_reason = self.models.fell_back.remove(&task);
        doc.host = Some(self.ctx.host.clone());
        doc.log = Some(self.ctx.run_dir.log(&t.id, attempt).display().to_string());
        doc.workdir = job.as_ref().ok().map(|j| j.workspace.workdir().display().to_string());
        if let Ok(job) = &job {
            self.docs[i].handoff_from = job.handoff_from.clone();
        }
        let (id, agent, model) = (t.id.clone(), t.agent.clone(), doc.model.clone());
        self.docs[i].attempts.push(doc);
        self.save_task(task);
        self.emit(EventKind::AttemptStarted { task: id.clone(), attempt, agent, model, pid: None });
        match job {
            Ok(job) => {
                let (stop_tx, stop_rx) = watch::channel(StopRequest::None);
                let live = LiveAttempt { n: attempt, stop: stop_tx, route, token, exhausted: None };
                self.running.insert(task, live);
                self.ctx.executors.spawn(job, stop_rx, self.tx.exec.clone());
                None
            }
            Err(message) => {
                if let (Some(gateway), Some(token)) = (&self.models.gateway, &token) {
                    gateway.revoke(token);
                }
                let reason = if spent.is_some() { Reason::ModelsExhausted } else { Reason::SpawnError };
                let (logs, log) = (self.ctx.run_dir.logs(), self.ctx.run_dir.log(&id, attempt));
                let line = format!("swarm: could not start the attempt: {message}\n");
                // `swarm logs` says why; off the loop.
                tokio::task::spawn_blocking(move || {
                    let _ = std::fs::create_dir_all(logs);
                    let _ = std::fs::write(log, line);
                });
                let outcome = Err(Failure { reason, detail: Some(message) });
                self.attempt_ended(task, attempt, None, outcome, Box::default(), None)
            }
        }
    }

    /// Why `task` may not start on its pinned model: it is paid and the run does not allow paid
    /// models.
    fn pinned_paid(&self, task: u32) -> Option<String> {
        let model = self.record.spec.tasks[task as usize].model.as_deref()?;
        (!self.models.ledger.allow_paid && crate::executor::provider::pinned_paid(&self.ctx.config, model))
            .then(|| {
                format!(
                    "model `{model}` is paid and the run does not allow paid models \
                 ([models] allow_paid = true or `swarm run --allow-paid`; or say `paid = false` for it)"
                )
            })
    }

    /// Where attempt `attempt` of `task` gets its model: the gateway (per request; with the
    /// attempt's token), for the hierarchy or for a pinned model whose key it keeps from the
    /// agent; one model of the hierarchy picked by its executor (an agent that cannot use the
    /// gateway); or the task's own model, given to the agent as it is.
    fn route_for(&self, task: u32, attempt: u32) -> (LiveRoute, Option<String>) {
        let t = &self.record.spec.tasks[task as usize];
        let pinned = match &t.model {
            _ if !t.runs_agent() => return (LiveRoute::Task, None),
            Some(m) if crate::executor::provider::gateway_keeps_key(&self.ctx.config, m) => Some(m.clone()),
            Some(_) => return (LiveRoute::Task, None),
            None if self.models.catalog.is_empty() => return (LiveRoute::Task, None),
            None => None,
        };
        let speaks = self.ctx.executors.speaks_gateway(&t.agent);
        match (&self.models.gateway, speaks) {
            (Some(gateway), true) => {
                let token = gateway.grant(Grant {
                    run_id: self.record.run_id.clone(),
                    namespace: self.record.namespace.clone(),
                    task,
                    attempt,
                    start_layer: if pinned.is_some() { 0 } else { t.tier.unwrap_or(1) },
                    pinned,
                    events: self.tx.gw.clone(),
                    ledger: self.models.ledger.clone(),
                });
                (LiveRoute::Gateway, Some(token))
            }
            _ if pinned.is_some() => (LiveRoute::Task, None),
            (None, true) => (LiveRoute::Task, None),
            (_, false) => (LiveRoute::Hierarchy { picked: None }, None),
        }
    }

    /// What an attempt's executor said.
    pub(super) fn on_attempt(&mut self, task: u32, attempt: u32, ev: AttemptEvent) -> Option<Input> {
        match ev {
            AttemptEvent::Finished { exit_code, outcome, evidence } => {
                self.on_finished(task, attempt, exit_code, outcome, evidence)
            }
            AttemptEvent::Warning { message } => {
                let message = format!("task {}: {message}", self.id(task));
                self.emit(EventKind::Warning { message });
                None
            }
            AttemptEvent::Gateway { event } => {
                // Another host's gateway served it: its spend counts against the run's budget.
                if let crate::gateway::GatewayEvent::Served(s) = &event {
                    self.models.ledger.observe(s.cost_usd, s.tokens_in + s.tokens_out);
                }
                self.on_gateway(event);
                None
            }
            AttemptEvent::Output { stream, line } => {
                let task = self.id(task).to_string();
                self.emit(EventKind::Output { task, attempt, stream, line });
                None
            }
            AttemptEvent::ModelWait { model, until_ms } => {
                self.wait_began(task, attempt, &model);
                let until = Utc.timestamp_millis_opt(until_ms as i64).single().unwrap_or_else(Utc::now);
                let task = self.id(task).to_string();
                self.emit(EventKind::ModelWait { task, attempt, model, until });
                None
            }
            AttemptEvent::ModelPicked { model, layer } => {
                self.wait_over(task, attempt);
                if let Some(LiveRoute::Hierarchy { picked }) = self.live_route(task, attempt) {
                    *picked = Some(model.clone());
                }
                if let Some(a) = self.docs[task as usize].attempts.iter_mut().find(|a| a.n == attempt) {
                    (a.model, a.layer) = (Some(model.clone()), Some(layer));
                }
                self.save_task(task);
                let task = self.id(task).to_string();
                self.emit(EventKind::ModelServing { task, attempt, model, layer });
                None
            }
            AttemptEvent::Merging => {
                self.merging_began(task, attempt);
                None
            }
            AttemptEvent::Taken { worker, host, fence } => {
                self.taken(task, attempt, worker, host, fence);
                None
            }
            ev => {
                self.note_attempt(task, attempt, ev);
                None
            }
        }
    }

    /// A worker runs the attempt now; a later owner means the one before lost its lease.
    fn taken(&mut self, task: u32, attempt: u32, worker: String, host: Option<String>, fence: u64) {
        let Some(a) = self.docs[task as usize].attempts.iter_mut().find(|a| a.n == attempt) else { return };
        let before = a.worker.replace(worker.clone());
        a.host = host;
        self.save_task(task);
        if fence > 1 {
            let task = self.id(task).to_string();
            let from = before.map_or_else(|| "its worker".to_string(), |w| format!("worker {w}"));
            self.emit(EventKind::Warning {
                message: format!(
                    "lease_lost: {from} stopped renewing attempt {attempt} of task `{task}`; worker {worker} runs it again (fencing token {fence})"
                ),
            });
        }
    }

    /// What the attempt's record keeps of an event: its process group, usage, session.
    fn note_attempt(&mut self, task: u32, attempt: u32, ev: AttemptEvent) {
        // The gateway meters what its attempts use, request by request.
        let metered = matches!(self.live_route(task, attempt), Some(LiveRoute::Gateway));
        let declared = match &ev {
            AttemptEvent::Usage { tokens_in, tokens_out, .. } => {
                self.declared_cost(task, attempt, *tokens_in, *tokens_out)
            }
            _ => None,
        };
        let Some(a) = self.docs[task as usize].attempts.iter_mut().find(|a| a.n == attempt) else { return };
        match ev {
            AttemptEvent::Started { pid, workdir } => {
                // `resume` and `cancel` stop the recorded group of an attempt left running.
                a.pid = pid;
                a.workdir = Some(workdir.display().to_string());
            }
            AttemptEvent::CheckStarted { pgid } => {
                a.pid = pgid;
                a.checks_at.get_or_insert_with(Utc::now);
            }
            AttemptEvent::Usage { tokens_in, tokens_out, cost_usd } if !metered => {
                let cost_usd = declared.unwrap_or(cost_usd);
                a.tokens_in += tokens_in;
                a.tokens_out += tokens_out;
                if cost_usd.is_finite() && cost_usd > 0.0 {
                    a.cost_usd += cost_usd;
                }
            }
            AttemptEvent::Session { id } if a.session_id.as_deref() != Some(id.as_str()) => {
                a.session_id = Some(id)
            }
            _ => return,
        }
        self.save_task(task);
    }

    /// What `tokens_in`/`tokens_out` of the attempt's model cost when swarm.toml declares its
    /// provider: its `[models.limits]` prices, or nothing. An agent's own figure for such an
    /// endpoint is its vendor's list price for a model it does not know (Claude Code prices a
    /// rehearsal's fake model as an Anthropic one); `None` (the agent's own provider): its figure.
    fn declared_cost(&self, task: u32, attempt: u32, tokens_in: u64, tokens_out: u64) -> Option<f64> {
        let a = self.docs[task as usize].attempts.iter().find(|a| a.n == attempt)?;
        let model = a.model.as_deref()?;
        let (provider, _) = model.split_once('/')?;
        let config = &self.ctx.config;
        config
            .providers
            .contains_key(provider)
            .then(|| swarm_core::router::Catalog::pinned(config, model).cost_usd(0, tokens_in, tokens_out))
    }

    /// The attempt ended: its leftovers are swept, its token revoked, its outcome recorded and
    /// told to the scheduler (or, when the model was to blame, the next attempt moves on).
    fn on_finished(
        &mut self,
        task: u32,
        attempt: u32,
        exit_code: Option<i32>,
        outcome: Result<(), Failure>,
        evidence: Box<Evidence>,
    ) -> Option<Input> {
        let id = self.id(task).to_string();
        self.sweeper.sweep(Request {
            task,
            attempt,
            marker: Marker::attempt(&self.record.run_id, &id, attempt),
            grace: self.ctx.config.grace(),
            log: Some(self.ctx.run_dir.log(&id, attempt)),
        });
        let live = self.running.remove(&task).filter(|r| r.n == attempt);
        let mut live = live.unwrap_or_else(|| LiveAttempt::ended(attempt));
        if let (Some(gateway), Some(token)) = (&self.models.gateway, live.token.take()) {
            gateway.revoke(&token);
        }
        let class = evidence.failure_class;
        let input = self.attempt_ended(task, attempt, exit_code, outcome, evidence, live.exhausted);
        match (live.route, &input) {
            (
                LiveRoute::Hierarchy { picked: Some(model) },
                Some(Input::AttemptEnded { outcome: Err(f), .. }),
            ) => self.fall_back(task, attempt, &model, f.clone(), class).or(input),
            _ => input,
        }
    }

    /// Records how the attempt ended, mirrors its report and tells the scheduler.
    fn attempt_ended(
        &mut self,
        task: u32,
        attempt: u32,
        exit_code: Option<i32>,
        outcome: Result<(), Failure>,
        evidence: Box<Evidence>,
        exhausted: Option<String>,
    ) -> Option<Input> {
        let outcome = scheduler::settle(outcome, self.ending.store_lost.as_deref(), exhausted);
        let i = task as usize;
        let evidence = *evidence;
        let retry_after = evidence.retry_after;
        if let Some(m) = &evidence.merged {
            let doc = &mut self.docs[i];
            doc.branch = Some(m.branch.clone());
            doc.commit = Some(m.commit.clone());
            doc.start_commit = Some(m.start.clone());
            doc.files_changed = m.files_changed.clone();
            (doc.merge, doc.conflict_paths) = match &m.outcome {
                MergeOutcome::Merged => (Some(MergeState::Merged), vec![]),
                MergeOutcome::Skipped => (Some(MergeState::Skipped), vec![]),
                MergeOutcome::Conflict { paths } => (Some(MergeState::Conflict), paths.clone()),
            };
        }
        self.wait_over(task, attempt);
        if let Some(a) = self.docs[i].attempts.iter_mut().find(|a| a.n == attempt) {
            a.ended_at = Some(Utc::now());
            a.exit_code = exit_code;
            if let Err(f) = &outcome {
                a.reason = Some(f.reason);
                a.detail = f.detail.clone();
            }
            a.completion = evidence.completion;
            a.check_output = evidence.check_output;
            a.warnings.extend(evidence.warnings);
            a.failure_class = evidence.failure_class;
            a.retry_after_ms = evidence.retry_after.map(|d| d.as_millis() as u64);
        }
        if let Some(r) = &evidence.resolver {
            let doc = &mut self.docs[i];
            if r.failure.is_none() {
                doc.merge = Some(MergeState::Resolved);
            }
            doc.attempts.push(resolver_attempt(attempt, r, &self.ctx.host));
        }
        let id = self.id(task).to_string();
        if let Some(bytes) = &evidence.completion_bytes {
            if let Err(e) = self.mirror.completion(&self.record.run_id, &id, bytes) {
                self.emit(EventKind::Warning { message: e.to_string() });
            }
        }
        self.save_task(task);
        let (reason, detail) = match &outcome {
            Ok(()) => (None, None),
            Err(f) => (Some(f.reason), f.detail.clone()),
        };
        self.emit(EventKind::AttemptFinished { task: id, attempt, exit_code, reason, detail });
        Some(Input::AttemptEnded { task, attempt, outcome, retry_after })
    }

    /// An attempt left processes running outside its group; they are ended now.
    pub(super) fn on_swept(&mut self, s: Swept) {
        let warning = format!(
            "swarm ended {} process(es) the attempt left running outside its process group{}",
            s.ended.found,
            if s.ended.killed > 0 { format!(" ({} needed SIGKILL)", s.ended.killed) } else { String::new() }
        );
        if let Some(a) = self.docs[s.task as usize].attempts.iter_mut().find(|a| a.n == s.attempt) {
            a.warnings.push(warning.clone());
        }
        self.save_task(s.task);
        let task = self.id(s.task).to_string();
        self.emit(EventKind::Warning { message: format!("{task} (attempt {}): {warning}", s.attempt) });
    }
}

/// The report of a resolver attempt (`kind: resolver`), numbered as the attempt it resolved.
fn resolver_attempt(n: u32, r: &crate::job::ResolverRun, host: &str) -> AttemptReport {
    let mut a = AttemptReport::new(n, &r.agent, r.started_at);
    a.kind = Some(swarm_core::report::AttemptKind::Resolver);
    a.ended_at = Some(r.ended_at);
    a.exit_code = r.exit_code;
    a.host = Some(host.to_string());
    a.log = Some(r.log.display().to_string());
    if let Some(f) = &r.failure {
        a.reason = Some(f.reason);
        a.detail = f.detail.clone();
    }
    a
}
