//! The model hierarchy in a run: what the gateway says about its attempts (which model serves
//! them, at which layer, for what tokens and cost, what it absorbed, when no model could serve),
//! and, for agents that cannot use the gateway, one model per attempt with a fallback to the
//! next when the model is to blame.

use super::Dispatcher;
use crate::gateway::GatewayEvent;
use chrono::{TimeZone, Utc};
use swarm_core::event::EventKind;
use swarm_core::failure::FailureClass;
use swarm_core::report::ModelRequests;
use swarm_core::router::{self, Policy};
use swarm_core::scheduler::{Failure, Input};
use swarm_core::state::Reason;

impl Dispatcher {
    pub(super) fn on_gateway(&mut self, ev: GatewayEvent) {
        match ev {
            GatewayEvent::Served {
                task,
                attempt,
                model,
                layer,
                tokens_in,
                tokens_out,
                cost_usd,
                fallback,
                ..
            } => {
                let Some(a) = self.docs[task as usize].attempts.iter_mut().find(|a| a.n == attempt) else {
                    return;
                };
                let changed = a.model.as_deref() != Some(model.as_str());
                a.model = Some(model.clone());
                a.layer = Some(layer);
                a.tokens_in += tokens_in;
                a.tokens_out += tokens_out;
                if cost_usd.is_finite() && cost_usd > 0.0 {
                    a.cost_usd += cost_usd;
                }
                if let Some(class) = fallback {
                    a.fallback_reason = Some(class.to_string());
                }
                match a.requests.iter_mut().find(|r| r.model == model) {
                    Some(r) => {
                        r.count += 1;
                        r.tokens_in += tokens_in;
                        r.tokens_out += tokens_out;
                        r.cost_usd += cost_usd;
                    }
                    None => a.requests.push(ModelRequests {
                        model: model.clone(),
                        layer,
                        count: 1,
                        tokens_in,
                        tokens_out,
                        cost_usd,
                    }),
                }
                self.save_task(task);
                if changed {
                    let task = self.id(task).to_string();
                    self.emit(EventKind::ModelServing { task, attempt, model, layer });
                }
            }
            GatewayEvent::Absorbed { task, attempt, model, class, action, .. } => {
                if action.starts_with("disabled") {
                    // Said once, loudly: this model is no use to the run.
                    self.emit(EventKind::Warning { message: format!("model {model} {action}") });
                }
                let task = self.id(task).to_string();
                self.emit(EventKind::ModelFallback { task, attempt, model, class, action });
            }
            GatewayEvent::Waiting { task, attempt, model, until_ms } => {
                let until = Utc.timestamp_millis_opt(until_ms as i64).single().unwrap_or_else(Utc::now);
                let task = self.id(task).to_string();
                self.emit(EventKind::ModelWait { task, attempt, model, until });
            }
            GatewayEvent::Exhausted { task, attempt, why } => {
                self.exhausted.insert((task, attempt), why);
            }
        }
    }
}

/// Failure classes that are the model's (or its provider's), not the task's: another model
/// may well do.
fn model_level(class: FailureClass) -> bool {
    matches!(
        class,
        FailureClass::RateLimited
            | FailureClass::QuotaExhausted
            | FailureClass::Overloaded
            | FailureClass::Billing
            | FailureClass::Auth
            | FailureClass::ModelNotFound
            | FailureClass::ContextTooLong
    )
}

impl Dispatcher {
    /// The model of the hierarchy for the next attempt of `task`, for an agent that cannot use
    /// the gateway: the first of the task's layers on that no earlier attempt of it failed on
    /// for the model's sake, and that the run may pay for. `Err` says why none is left.
    pub(super) fn pick_model(&self, task: u32) -> Result<(String, u8), String> {
        let tier = self.plan.tasks[task as usize].tier.unwrap_or(1);
        let failed: Vec<&str> = self.docs[task as usize]
            .attempts
            .iter()
            .filter(|a| a.failure_class.is_some_and(model_level))
            .filter_map(|a| a.model.as_deref())
            .collect();
        let mut paid_left = false;
        for m in self.catalog.models.iter().filter(|m| m.layer >= tier && !failed.contains(&m.id.as_str())) {
            if m.paid && !self.ledger.allow_paid {
                paid_left = true;
                continue;
            }
            return Ok((m.id.clone(), m.layer));
        }
        Err(if paid_left {
            "every free model of the hierarchy failed this task and allow_paid is off".into()
        } else {
            "every model of the hierarchy from the task's tier on failed this task".into()
        })
    }

    /// An attempt on a picked model failed: when the model is to blame, cool it down for every
    /// process on the store (as the gateway would) and, if another model is left, move the
    /// next attempt to it without spending a retry.
    pub(super) fn fall_back(
        &mut self,
        task: u32,
        attempt: u32,
        model: &str,
        failure: Failure,
        class: Option<FailureClass>,
        retry_after: Option<std::time::Duration>,
    ) -> Option<Input> {
        let class = class.filter(|c| model_level(*c) && failure.reason != Reason::Cancelled)?;
        let now_ms = Utc::now().timestamp_millis() as u64;
        let cooling = match router::policy(
            class,
            retry_after.map(|d| d.as_millis() as u64),
            0,
            now_ms,
            fastrand::f64(),
        ) {
            Policy::CoolUntil { until_ms } => Some((until_ms, class.to_string())),
            Policy::Disable { reason } => Some((now_ms + 15 * 60 * 1000, format!("disabled: {reason}"))),
            Policy::TryLarger | Policy::PassThrough => None,
        };
        if let Some((until_ms, why)) = cooling {
            let (store, ns, id) = (self.store.clone(), self.record.namespace.clone(), model.to_string());
            // Off the loop; the next attempt does not wait for it.
            tokio::task::spawn_blocking(move || {
                let _ = store.model_cool(&ns, &id, until_ms, &why);
            });
        }
        let next = self.pick_model(task).ok()?;
        let id = self.id(task).to_string();
        self.emit(EventKind::ModelFallback {
            task: id,
            attempt,
            model: model.to_string(),
            class,
            action: format!("the next attempt moves to {}", next.0),
        });
        self.fell_back.insert(task, class.to_string());
        Some(Input::FellBack { task, attempt, failure })
    }
}
