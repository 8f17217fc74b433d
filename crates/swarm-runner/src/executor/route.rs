//! The attempt's model: the one its route fixes, or — for an agent that talks to providers
//! itself — one model of the hierarchy picked as the attempt starts, on the standings every
//! process on the store shares (cooldowns, disabled models, rpm/rpd), waiting within
//! `max_wait` when every allowed model is cooling or full.

use crate::executor::provider::resolve_provider;
use crate::hierarchy::{Hierarchy, Picture};
use crate::job::{AttemptEvent, AttemptJob, ModelRoute, StopRequest};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_agents::ProviderSpec;
use swarm_core::router::{route_attempt, AttemptRequest, Route};
use swarm_core::scheduler::Failure;
use swarm_core::state::Reason;
use tokio::sync::watch;

/// The model and provider the agent is given, and variables to set for it.
#[derive(Debug, Default)]
pub(super) struct Resolved {
    pub model: Option<String>,
    pub provider: Option<ProviderSpec>,
    pub env: Vec<(String, String)>,
}

/// Resolves `job`'s route. `send` gets the hierarchy's `ModelWait`/`ModelPicked`.
pub(super) async fn resolve(
    job: &AttemptJob,
    hierarchy: Option<&Arc<Hierarchy>>,
    stop: &mut watch::Receiver<StopRequest>,
    send: impl Fn(AttemptEvent),
) -> Result<Resolved, Failure> {
    match &job.route {
        ModelRoute::Task { model, provider } => {
            Ok(Resolved { model: model.clone(), provider: provider.clone(), env: vec![] })
        }
        ModelRoute::Gateway { url } => Ok(Resolved {
            model: job.route.fixed_model(),
            provider: Some(ModelRoute::gateway_provider(url)),
            env: vec![],
        }),
        ModelRoute::Hierarchy { .. } => {
            let Some(h) = hierarchy else {
                return Err(exhausted("no model hierarchy is configured ([models] layers is empty)".into()));
            };
            let (model, layer) = pick(job, h, stop, &send).await?;
            let (provider, key_env) = resolve_provider(&h.config, &model)
                .map_err(|e| Failure { reason: Reason::SpawnError, detail: Some(e) })?;
            send(AttemptEvent::ModelPicked { model: model.clone(), layer });
            Ok(Resolved { model: Some(model), provider, env: key_env.into_iter().collect() })
        }
    }
}

/// The model of the hierarchy for the attempt: routed on fresh standings, waiting (stoppably,
/// all waits together within `max_wait`) while every allowed model is cooling or full.
async fn pick(
    job: &AttemptJob,
    h: &Arc<Hierarchy>,
    stop: &mut watch::Receiver<StopRequest>,
    send: &impl Fn(AttemptEvent),
) -> Result<(String, u8), Failure> {
    let ModelRoute::Hierarchy { namespace, start_layer, exclude, allow_paid } = &job.route else {
        unreachable!("pick is for hierarchy routes")
    };
    let failed: Vec<usize> = exclude.iter().filter_map(|id| h.catalog.index(id)).collect();
    let started = Instant::now();
    let max_wait_ms = h.max_wait.as_millis() as u64;
    loop {
        let picture = read(h, namespace).await?;
        let (now_ms, standings) = h.standings(&picture, &HashMap::new());
        let waited = started.elapsed().as_millis() as u64;
        let req = AttemptRequest {
            start_layer: *start_layer,
            now_ms,
            allow_paid: *allow_paid,
            failed: failed.clone(),
            max_wait_ms: max_wait_ms.saturating_sub(waited),
            spent_usd: 0.0,
            budget_usd: None,
            spent_tokens: 0,
            budget_tokens: None,
        };
        match route_attempt(&h.catalog, &standings, &req) {
            Route::Use { model, .. } => {
                let m = &h.catalog.models[model];
                return Ok((m.id.clone(), m.layer));
            }
            Route::Wait { until_ms, model } => {
                send(AttemptEvent::ModelWait { model: h.catalog.models[model].id.clone(), until_ms });
                let wait = Duration::from_millis(until_ms.saturating_sub(now_ms).clamp(50, 60_000));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|s| *s != StopRequest::None) => {
                        return Err(Failure { reason: Reason::Cancelled, detail: Some("run cancelled".into()) });
                    }
                }
            }
            Route::Exhausted { why, .. } => return Err(exhausted(why)),
        }
    }
}

/// The hierarchy's picture in `ns`, read off the runtime's threads.
async fn read(h: &Arc<Hierarchy>, ns: &str) -> Result<Picture, Failure> {
    let (h, ns) = (h.clone(), ns.to_string());
    match tokio::task::spawn_blocking(move || h.read(&ns)).await {
        Ok(Ok(picture)) => Ok(picture),
        Ok(Err(e)) => Err(spawn_error(format!("cannot read the models' standings: {e}"))),
        Err(e) => Err(spawn_error(format!("cannot read the models' standings: {e}"))),
    }
}

fn exhausted(why: String) -> Failure {
    Failure { reason: Reason::ModelsExhausted, detail: Some(why) }
}

fn spawn_error(detail: String) -> Failure {
    Failure { reason: Reason::SpawnError, detail: Some(detail) }
}
