//! The model hierarchy in a run: what the gateway says about its attempts (which model serves
//! them, at which layer, for what tokens and cost, what it absorbed, when no model could serve),
//! and, for agents that cannot use the gateway (their executor picks one model per attempt),
//! the move to the next model when the model is to blame.

use super::Dispatcher;
use crate::gateway::{GatewayEvent, Served};
use chrono::{TimeZone, Utc};
use swarm_core::event::EventKind;
use swarm_core::failure::FailureClass;
use swarm_core::report::ModelRequests;
use swarm_core::router::Policy;
use swarm_core::scheduler::{Failure, Input};
use swarm_core::state::Reason;

impl Dispatcher {
    pub(super) fn on_gateway(&mut self, ev: GatewayEvent) {
        match ev {
            GatewayEvent::Served(served) => self.served(served),
            GatewayEvent::Absorbed { task, attempt, model, class, policy, at_ms, .. } => {
                let action = describe(&policy, at_ms);
                if matches!(&policy, Policy::Cool(c) if c.is_disabled()) {
                    // Said once, loudly: this model is no use to the run.
                    self.emit(EventKind::Warning { message: format!("model {model} {action}") });
                }
                let task = self.id(task).to_string();
                self.emit(EventKind::ModelFallback { task, attempt, model, class, action });
            }
            GatewayEvent::Waiting { task, attempt, model, until_ms } => {
                self.wait_began(task, attempt, &model);
                let until = Utc.timestamp_millis_opt(until_ms as i64).single().unwrap_or_else(Utc::now);
                let task = self.id(task).to_string();
                self.emit(EventKind::ModelWait { task, attempt, model, until });
            }
            GatewayEvent::Exhausted { task, attempt, why } => {
                if let Some(live) = self.running.get_mut(&task).filter(|r| r.n == attempt) {
                    live.exhausted = Some(why);
                }
            }
        }
    }
}

impl Dispatcher {
    /// A request answered for an attempt: metered on the attempt (per model), said when the
    /// model changed, and logged in the run's request log.
    fn served(&mut self, s: Served) {
        self.wait_served(s.task, s.attempt, s.arrived_ms, s.waited_ms);
        let Some(a) = self.docs[s.task as usize].attempts.iter_mut().find(|a| a.n == s.attempt) else {
            return;
        };
        let changed = a.model.as_deref() != Some(s.model.as_str());
        a.model = Some(s.model.clone());
        // Layer 0: a pinned model outside the hierarchy's layers.
        a.layer = (s.layer > 0).then_some(s.layer).or(a.layer);
        a.tokens_in += s.tokens_in;
        a.tokens_out += s.tokens_out;
        let cost = if s.cost_usd.is_finite() && s.cost_usd > 0.0 { s.cost_usd } else { 0.0 };
        a.cost_usd += cost;
        if let Some(class) = s.fallback {
            a.fallback_reason = Some(class.to_string());
        }
        match a.requests.iter_mut().find(|r| r.model == s.model) {
            Some(r) => {
                r.count += 1;
                r.tokens_in += s.tokens_in;
                r.tokens_out += s.tokens_out;
                r.cost_usd += cost;
                r.wait_ms += s.waited_ms;
            }
            None => a.requests.push(ModelRequests {
                model: s.model.clone(),
                layer: s.layer,
                count: 1,
                tokens_in: s.tokens_in,
                tokens_out: s.tokens_out,
                cost_usd: cost,
                wait_ms: s.waited_ms,
            }),
        }
        self.save_task(s.task);
        let task = self.id(s.task).to_string();
        self.log_request(&task, &s);
        if changed {
            let (attempt, model, layer) = (s.attempt, s.model, s.layer);
            self.emit(EventKind::ModelServing { task, attempt, model, layer });
        }
    }

    /// One line in `.swarm/runs/<RUN_ID>/requests.jsonl` per request a model answered: when it
    /// arrived, how long it waited for a model, which one answered, at what cost. Best effort: a
    /// full disk costs the log, not the run.
    fn log_request(&self, task: &str, s: &Served) {
        use std::io::Write;
        let line = serde_json::json!({
            "arrived_ms": s.arrived_ms, "task": task, "attempt": s.attempt, "model": s.model,
            "layer": s.layer, "status": s.status, "waited_ms": s.waited_ms, "latency_ms": s.latency_ms,
            "tokens_in": s.tokens_in, "tokens_out": s.tokens_out, "cost_usd": s.cost_usd,
            "fallback": s.fallback,
        });
        let path = self.ctx.run_dir.requests_log();
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path);
        if let Ok(mut file) = file {
            let _ = writeln!(file, "{line}");
        }
    }
}

/// What became of a model, for people: "cooling down for 30s", "disabled for the run: …".
fn describe(policy: &Policy, now_ms: u64) -> String {
    match policy {
        Policy::Cool(c) if c.is_disabled() => format!("disabled for the run: {}", c.reason),
        Policy::Cool(c) => {
            let how_long = format!("cooling down for {}s", c.until_ms.saturating_sub(now_ms).div_ceil(1000));
            match c.reason.split_once(": ") {
                Some((_, cause)) => format!("{how_long}: {cause}"),
                None => how_long,
            }
        }
        Policy::TryLarger => "the request needs a larger context window".into(),
        Policy::PassThrough => "passed to the agent".into(),
    }
}

impl Dispatcher {
    /// The models of the hierarchy an earlier attempt of `task` failed on for the model's sake:
    /// the next attempt leaves them out.
    pub(super) fn failed_models(&self, task: u32) -> Vec<String> {
        self.docs[task as usize]
            .attempts
            .iter()
            .filter(|a| a.failure_class.is_some_and(FailureClass::is_model_level))
            .filter_map(|a| a.model.clone())
            .collect()
    }

    /// An attempt on a picked model failed. When the model is to blame (its executor cooled it
    /// down on the store already) and another model of the task's layers is left, the next
    /// attempt moves to it without spending a retry.
    pub(super) fn fall_back(
        &mut self,
        task: u32,
        attempt: u32,
        model: &str,
        failure: Failure,
        class: Option<FailureClass>,
    ) -> Option<Input> {
        let class = class.filter(|c| c.is_model_level() && failure.reason != Reason::Cancelled)?;
        let tier = self.record.spec.tasks[task as usize].tier.unwrap_or(1);
        let failed = self.failed_models(task);
        let allow_paid = self.models.ledger.allow_paid;
        let left = self
            .models
            .catalog
            .models
            .iter()
            .any(|m| m.layer >= tier && !failed.contains(&m.id) && (allow_paid || !m.paid));
        if !left {
            return None;
        }
        let id = self.id(task).to_string();
        let action = "the next attempt moves to the next model of the hierarchy".to_string();
        self.emit(EventKind::ModelFallback { task: id, attempt, model: model.to_string(), class, action });
        self.models.fell_back.insert(task, class.to_string());
        Some(Input::FellBack { task, attempt, failure })
    }
}
