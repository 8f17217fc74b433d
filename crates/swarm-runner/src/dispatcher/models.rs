//! What the model gateway says about a run's attempts: which model serves them (and at which
//! layer, for what tokens and cost), what it absorbed on their behalf, and when no model could
//! serve them.

use super::Dispatcher;
use crate::gateway::GatewayEvent;
use chrono::{TimeZone, Utc};
use swarm_core::event::EventKind;
use swarm_core::report::ModelRequests;

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
