//! The dispatcher's side of attempts: starting one (its record, its job, its executor) and
//! taking in what its executor says, until the attempt's end goes to the scheduler.

use super::{Dispatcher, Running};
use crate::dispatcher::launch::{Launcher, ModelRoute};
use crate::dispatcher::sweeper::{Request, Swept};
use crate::gateway::Grant;
use crate::job::StopRequest;
use crate::job::{AttemptEvent, Evidence};
use crate::os::git::MergeOutcome;
use crate::os::reaper::Marker;
use chrono::Utc;
use swarm_core::event::EventKind;
use swarm_core::report::AttemptReport;
use swarm_core::report::MergeState;
use swarm_core::scheduler::{Failure, Input};
use swarm_core::state::Reason;
use tokio::sync::watch;

impl Dispatcher {
    /// Starts attempt `attempt` of task `task`: records it, builds its job and hands that to an
    /// executor. Returns an input for the scheduler when the job could not even be built.
    pub(super) fn start(&mut self, task: u32, attempt: u32) -> Option<Input> {
        let i = task as usize;
        let t = &self.plan.tasks[i];
        let gateway_url = self.gateway.as_ref().map(|g| g.base_url());
        let launcher = Launcher {
            record: &self.record,
            plan: &self.plan,
            config: &self.config,
            run_dir: &self.run_dir,
            store_env: &self.store_env,
            project_root: &self.project_root,
            gateway_url: gateway_url.as_deref(),
        };
        // Where the attempt's model comes from: the task's own, the gateway (per request), or
        // one model of the hierarchy picked for the whole attempt (an agent that cannot use
        // the gateway).
        let hierarchy = t.model.is_none() && t.agent != "exec" && !self.catalog.is_empty();
        let speaks = self.executors.registry.get(&t.agent).is_ok_and(|a| a.speaks_gateway());
        let via_gateway = hierarchy && speaks && self.gateway.is_some();
        let picked = (hierarchy && !speaks).then(|| self.pick_model(task));
        let token = match (&self.gateway, via_gateway) {
            (Some(gateway), true) => Some(gateway.grant(Grant {
                run_id: self.record.run_id.clone(),
                namespace: self.record.namespace.clone(),
                task,
                attempt,
                start_layer: t.tier.unwrap_or(1),
                events: self.gw_tx.clone(),
                ledger: self.ledger.clone(),
            })),
            _ => None,
        };
        // The spend gate: once the run's budget is spent, no new attempt starts on it; nor one
        // that has no model of the hierarchy left.
        let spent = match &picked {
            Some(Err(why)) => Some(why.clone()),
            _ => hierarchy.then(|| self.ledger.budget_spent()).flatten(),
        };
        let route = match (&token, &picked) {
            (Some(token), _) => ModelRoute::Gateway { token },
            (None, Some(Ok((model, _)))) => ModelRoute::Picked { model },
            _ => ModelRoute::Task,
        };
        let job = match &spent {
            Some(why) => Err(why.clone()),
            None => launcher.job(task, attempt, self.docs[i].attempts.last(), route),
        };
        let doc = AttemptReport {
            n: attempt,
            agent: t.agent.clone(),
            model: match &picked {
                Some(Ok((model, _))) => Some(model.clone()),
                _ => t.model.clone(),
            },
            layer: match &picked {
                Some(Ok((_, layer))) => Some(*layer),
                _ => t.tier,
            },
            exit_code: None,
            started_at: Utc::now(),
            ended_at: None,
            tokens_in: 0,
            tokens_out: 0,
            cost_usd: 0.0,
            fallback_reason: self.fell_back.remove(&task),
            reason: None,
            detail: None,
            pid: None,
            host: Some(self.host.clone()),
            log: Some(self.run_dir.log(&t.id, attempt).display().to_string()),
            workdir: job.as_ref().ok().map(|j| j.workspace.workdir().display().to_string()),
            completion: None,
            check_output: None,
            warnings: vec![],
            failure_class: None,
            retry_after_ms: None,
            session_id: None,
            requests: vec![],
        };
        let (id, agent, model) = (t.id.clone(), t.agent.clone(), doc.model.clone());
        self.docs[i].attempts.push(doc);
        self.save_task(task);
        self.emit(EventKind::AttemptStarted { task: id.clone(), attempt, agent, model, pid: None });
        match job {
            Ok(job) => {
                let (stop_tx, stop_rx) = watch::channel(StopRequest::None);
                if via_gateway {
                    self.via_gateway.insert((task, attempt));
                }
                if let Some(Ok((model, _))) = picked {
                    self.picked.insert((task, attempt), model);
                }
                self.running.insert(task, Running { attempt, stop: stop_tx, token });
                let run = crate::executor::run(job, self.executors.clone(), stop_rx, self.exec_tx.clone());
                tokio::spawn(run);
                None
            }
            Err(message) => {
                if let (Some(gateway), Some(token)) = (&self.gateway, &token) {
                    gateway.revoke(token);
                }
                let reason = if spent.is_some() { Reason::ModelsExhausted } else { Reason::SpawnError };
                let _ = std::fs::create_dir_all(self.run_dir.logs());
                let log = self.run_dir.log(&id, attempt);
                let _ = std::fs::write(&log, format!("swarm: could not start the attempt: {message}\n"));
                let outcome = Err(Failure { reason, detail: Some(message) });
                self.attempt_ended(task, attempt, None, outcome, Box::default())
            }
        }
    }

    /// What an attempt's executor said.
    pub(super) fn on_attempt(&mut self, task: u32, attempt: u32, ev: AttemptEvent) -> Option<Input> {
        let i = task as usize;
        let a = self.docs[i].attempts.iter_mut().find(|a| a.n == attempt)?;
        match ev {
            AttemptEvent::Started { pid, workdir } => {
                // `resume` and `cancel` stop the recorded group of an attempt left running.
                a.pid = pid;
                a.workdir = Some(workdir.display().to_string());
            }
            AttemptEvent::CheckStarted { pgid } => a.pid = pgid,
            // The gateway meters what its attempts use, request by request.
            AttemptEvent::Usage { .. } if self.via_gateway.contains(&(task, attempt)) => return None,
            AttemptEvent::Usage { tokens_in, tokens_out, cost_usd } => {
                a.tokens_in += tokens_in;
                a.tokens_out += tokens_out;
                if cost_usd.is_finite() && cost_usd > 0.0 {
                    a.cost_usd += cost_usd;
                }
            }
            AttemptEvent::Session { id } => {
                if a.session_id.as_deref() == Some(id.as_str()) {
                    return None;
                }
                a.session_id = Some(id);
            }
            AttemptEvent::AgentError { .. } => return None,
            AttemptEvent::Output { stream, line } => {
                let task = self.id(task).to_string();
                self.emit(EventKind::Output { task, attempt, stream, line });
                return None;
            }
            AttemptEvent::Finished { exit_code, outcome, evidence } => {
                let id = self.id(task).to_string();
                self.sweeper.sweep(Request {
                    task,
                    attempt,
                    marker: Marker::attempt(&self.record.run_id, &id, attempt),
                    grace: self.config.grace(),
                    log: Some(self.run_dir.log(&id, attempt)),
                });
                if self.running.get(&task).is_some_and(|r| r.attempt == attempt) {
                    let running = self.running.remove(&task);
                    if let (Some(gateway), Some(token)) = (&self.gateway, running.and_then(|r| r.token)) {
                        gateway.revoke(&token);
                    }
                }
                let mut outcome = outcome;
                if let (Some(why), Err(f)) = (self.exhausted.remove(&(task, attempt)), &mut outcome) {
                    if f.reason != Reason::Cancelled {
                        *f = Failure { reason: Reason::ModelsExhausted, detail: Some(why) };
                    }
                }
                let class = evidence.failure_class;
                let retry_after = evidence.retry_after;
                let input = self.attempt_ended(task, attempt, exit_code, outcome, evidence);
                return match (self.picked.remove(&(task, attempt)), &input) {
                    (Some(model), Some(Input::AttemptEnded { outcome: Err(f), .. })) => {
                        self.fall_back(task, attempt, &model, f.clone(), class, retry_after).or(input)
                    }
                    _ => input,
                };
            }
        }
        self.save_task(task);
        None
    }

    /// Records how the attempt ended, mirrors its report and tells the scheduler.
    fn attempt_ended(
        &mut self,
        task: u32,
        attempt: u32,
        exit_code: Option<i32>,
        mut outcome: Result<(), Failure>,
        evidence: Box<Evidence>,
    ) -> Option<Input> {
        if let (Some(message), Err(f)) = (&self.store_lost, &mut outcome) {
            if f.reason == Reason::Cancelled {
                // Stopped because the store was lost, not by a user.
                *f = Failure { reason: Reason::LeaseLost, detail: Some(message.clone()) };
            }
        }
        let i = task as usize;
        let evidence = *evidence;
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
        Some(Input::AttemptEnded { task, attempt, outcome })
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
