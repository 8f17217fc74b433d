//! One agent request through the gateway, in whichever format the agent speaks, as named
//! steps: [`route`] it to the best allowed model (waiting, within `max_wait`, while every
//! allowed one is cooling or full), translate it for that model's provider
//! ([`upstream::outbound`]), [`reserve`] a slot on the store, forward it
//! ([`super::upstream`]), and [`absorb`] a failure the model is to blame for (cool it down for
//! everyone, go on to the next model) before the agent sees it.

use super::face::{self, Ask};
use super::upstream::{self, Answer, Outbound};
use super::Hold;
use super::{GatewayEvent, Grant, Shared};
use crate::hierarchy::{self, Hierarchy, Picture};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_core::failure::FailureClass;
use swarm_core::router::{self, Policy, Route, RouteRequest};
use swarm_store::{ModelLimits, Reservation};

fn store_error(flight: &Flight, e: impl std::fmt::Display) -> Response {
    let message = format!("swarm gateway: store: {e}");
    face::refuse(flight.ask.agent, StatusCode::SERVICE_UNAVAILABLE, &message, "store")
}

/// One request on its way: what it is and what became of it so far.
pub(super) struct Flight {
    pub grant: Grant,
    /// The models it may go to: the hierarchy, or the one its task is pinned to.
    pub h: Arc<Hierarchy>,
    /// The agent's token (its waits are remembered under it).
    token: String,
    pub ask: Ask,
    pub est_tokens: u64,
    pub started: Instant,
    /// `started` on this host's wall clock (ms since the epoch), for the request log.
    pub arrived_ms: u64,
    /// Models that failed this very request.
    tried: Vec<usize>,
    /// After `context_too_long`: only models with a window larger than this.
    needs_larger_than: Option<u64>,
    /// Why the request moved on from its first model, if it did.
    pub fallback: Option<FailureClass>,
    /// Failures in a row per model, for the cooldown's growth.
    repeats: HashMap<usize, u32>,
}

impl Flight {
    pub(super) fn new(shared: &Shared, grant: Grant, token: String, ask: Ask, size: usize) -> Flight {
        Flight {
            h: shared.hierarchy_for(&grant),
            grant,
            token,
            ask,
            est_tokens: router::estimate_tokens(size),
            started: Instant::now(),
            arrived_ms: wall_ms(),
            tried: vec![],
            needs_larger_than: None,
            fallback: None,
            repeats: HashMap::new(),
        }
    }

    fn send(&self, ev: GatewayEvent) {
        let _ = self.grant.events.send(ev);
    }
}

/// What to do after a step.
pub(super) enum Next {
    /// Route the request again (another model, or the same one on fresh standings).
    Retry,
    /// This is the agent's answer.
    Answer(Response),
}

/// The pipeline every face's requests go through, whatever the agent's format.
pub(super) async fn serve(
    shared: &Arc<Shared>,
    token: String,
    grant: Grant,
    ask: Ask,
    size: usize,
) -> Response {
    let mut flight = Flight::new(shared, grant, token, ask, size);
    // What the run's other hosts spent counts against its budget too.
    flight.grant.ledger.refresh().await;
    loop {
        let (model, limits) = match route(shared, &flight).await {
            Ok(chosen) => chosen,
            Err(answer) => return answer,
        };
        let outbound = match upstream::outbound(&flight.h, model, &flight.ask) {
            Ok(outbound) => outbound,
            Err(e) => {
                let message = format!("swarm gateway: {e}");
                return face::refuse(flight.ask.agent, StatusCode::BAD_REQUEST, &message, "invalid_request");
            }
        };
        match reserve(shared, &flight, model, limits).await {
            Slot::Taken => {}
            Slot::Gone => continue,
            Slot::Failed(answer) => return answer,
        }
        let hold = match hold(&flight, model) {
            Ok(hold) => hold,
            Err(why) => return exhausted(&flight, why),
        };
        let sent = Instant::now();
        let answer = upstream::forward(shared, &flight.h, model, &outbound).await;
        if let Next::Answer(answer) =
            absorb(shared, &mut flight, model, answer, &outbound, (sent, hold)).await
        {
            return answer;
        }
    }
}

/// The model for the request now and the limits a request to it is held to, waiting while
/// every allowed model is cooling or full (until the moment the first frees, all the request's
/// waits together within `max_wait`); `Err` is the agent's answer (`models_exhausted`, a store
/// failure, or a wait longer than the agent's client holds a request: its own "wait" signal,
/// the time already waited remembered for its next try).
pub(super) async fn route(shared: &Arc<Shared>, flight: &Flight) -> Result<(usize, ModelLimits), Response> {
    let h = &flight.h;
    let max_wait_ms = h.max_wait.as_millis() as u64;
    let since = waiting_since(shared, flight);
    loop {
        let picture = standings(shared, flight).await.map_err(|e| store_error(flight, e))?;
        let (now_ms, standings) = h.standings(&picture, &flight.grant.ledger.disabled(&h.catalog));
        let req = route_request(h, flight, now_ms);
        let waited = since.elapsed().as_millis() as u64;
        match router::route(&h.catalog, &standings, &req) {
            Route::Use { model, .. } => {
                shared.waiting.lock().expect("waiting").remove(&flight.token);
                return Ok((model, h.limits(model, now_ms, picture.models[model].learned.as_ref())));
            }
            Route::Wait { until_ms, model } if waited + until_ms.saturating_sub(now_ms) <= max_wait_ms => {
                let model_id = h.catalog.models[model].id.clone();
                let (task, attempt) = (flight.grant.task, flight.grant.attempt);
                flight.send(GatewayEvent::Waiting { task, attempt, model: model_id.clone(), until_ms });
                let pause = Duration::from_millis(until_ms.saturating_sub(now_ms));
                if flight.started.elapsed() + pause > face::hold_limit(flight.ask.agent) {
                    shared.waiting.lock().expect("waiting").entry(flight.token.clone()).or_insert(since);
                    let why = format!(
                        "every allowed model is cooling down or at its limit; {model_id} frees up first."
                    );
                    return Err(face::wait(&flight.ask, pause, &why));
                }
                tokio::time::sleep(pause.clamp(Duration::from_millis(50), Duration::from_secs(60))).await;
            }
            Route::Wait { until_ms, model } => {
                // This request has waited already: all its waits together stay within max_wait.
                let why = format!(
                    "every allowed model is cooling down or at its limit; the first ({}) frees up at {} UTC, \
                     past max_wait {}",
                    h.catalog.models[model].id,
                    chrono::DateTime::from_timestamp_millis(until_ms as i64).unwrap_or_default().format("%H:%M:%S"),
                    swarm_core::duration::format(h.max_wait)
                );
                return Err(exhausted(flight, why));
            }
            Route::Exhausted { why, .. } => return Err(exhausted(flight, why)),
        }
    }
}

/// Since when the request has been waiting: since it arrived, or since an earlier try of the
/// same attempt was told to wait and come back (a wait the agent did counts toward `max_wait`).
fn waiting_since(shared: &Shared, flight: &Flight) -> Instant {
    let earlier = shared.waiting.lock().expect("waiting").get(&flight.token).copied();
    earlier.map_or(flight.started, |e| e.min(flight.started))
}

fn route_request(h: &Hierarchy, flight: &Flight, now_ms: u64) -> RouteRequest {
    let ledger = &flight.grant.ledger;
    let (spent_usd, spent_tokens) = ledger.spent();
    RouteRequest {
        start_layer: flight.grant.start_layer,
        est_tokens: flight.est_tokens,
        now_ms,
        allow_paid: ledger.allow_paid,
        tried: flight.tried.clone(),
        needs_larger_than: flight.needs_larger_than,
        spent_usd,
        budget_usd: ledger.budget_usd,
        spent_tokens,
        budget_tokens: ledger.budget_tokens,
        max_wait_ms: h.max_wait.as_millis() as u64,
    }
}

/// Output tokens assumed for a request that sets no `max_tokens` / `max_completion_tokens`,
/// to hold its cost before it is known.
const ASSUMED_OUTPUT_TOKENS: u64 = 4096;

/// Holds the request's estimated cost on model `model` (its prompt, and its output at most
/// `max_tokens`) against the run's budget until the answer is metered.
fn hold(flight: &Flight, model: usize) -> Result<Hold, String> {
    let out = max_output(&flight.ask.body).unwrap_or(ASSUMED_OUTPUT_TOKENS);
    let usd = flight.h.catalog.cost_usd(model, flight.est_tokens, out);
    flight.grant.ledger.hold(usd, flight.est_tokens + out)
}

/// The most output tokens the agent asked for, in any format's words.
fn max_output(body: &Value) -> Option<u64> {
    ["/max_completion_tokens", "/max_tokens", "/max_output_tokens", "/generationConfig/maxOutputTokens"]
        .iter()
        .find_map(|p| body.pointer(p).and_then(Value::as_u64))
}

/// No model can serve the request in time: the run hears why, the agent gets an answer its
/// client takes as final (not "wait": nothing will free up in time).
fn exhausted(flight: &Flight, why: String) -> Response {
    let (task, attempt) = (flight.grant.task, flight.grant.attempt);
    flight.send(GatewayEvent::Exhausted { task, attempt, why: why.clone() });
    face::give_up(&flight.ask, &why)
}

/// What became of a reservation.
pub(super) enum Slot {
    /// The request may go to the model.
    Taken,
    /// Another process took the last slot or cooled the model meanwhile: route again.
    Gone,
    /// The store failed: the agent's answer.
    Failed(Response),
}

/// Takes a slot of `model` (and of the groups it shares a bucket with) on the store, held to
/// `limits` (its limits and cooldown are checked atomically there, shared by every process);
/// when it is gone, the standings are read afresh for the next route.
pub(super) async fn reserve(
    shared: &Arc<Shared>,
    flight: &Flight,
    model: usize,
    limits: ModelLimits,
) -> Slot {
    let h = &flight.h;
    let groups = h.buckets(model, limits.day.map_or(0, |d| d.start_ms));
    let (store, ns, id, tokens) = (
        h.store.clone(),
        flight.grant.namespace.clone(),
        h.catalog.models[model].id.clone(),
        flight.est_tokens,
    );
    match blocking(move || store.model_reserve(&ns, &id, tokens, &limits, &groups)).await {
        Some(Ok(Reservation::Granted { .. })) => Slot::Taken,
        Some(Ok(Reservation::Cooling(_) | Reservation::Full { .. })) => {
            forget_standings(shared, &flight.grant.namespace);
            Slot::Gone
        }
        Some(Err(e)) => Slot::Failed(store_error(flight, e)),
        None => Slot::Failed(store_error(flight, "the store call failed")),
    }
}

/// What the provider answered, as the agent will see it or not: a success goes through
/// (metered); a failure the model is to blame for cools it (or disables it) for every process
/// and the request goes on to the next model (`Retry`); any other failure is the agent's.
pub(super) async fn absorb(
    shared: &Arc<Shared>,
    flight: &mut Flight,
    model: usize,
    answer: Answer,
    outbound: &Outbound,
    (sent, hold): (Instant, Hold),
) -> Next {
    let failed = match answer {
        Answer::Success(success) => {
            let delivery = (outbound, sent, hold);
            return Next::Answer(super::answer::deliver(success, flight, model, delivery).await);
        }
        Answer::Failed(failed) => failed,
    };
    let h = &flight.h;
    let store = h.store.clone();
    let now_ms = blocking(move || store.now_ms()).await.and_then(Result::ok).unwrap_or_else(wall_ms);
    let repeats = flight.repeats.entry(model).or_insert(0);
    let mut policy = h.policy_for(model, failed.class, failed.retry_after, *repeats, now_ms);
    if let (Policy::Cool(cooldown), Some(cause)) = (&mut policy, &failed.cause) {
        // Said where people look (`swarm models`, the run's events): "connection refused".
        cooldown.reason = format!("{}: {cause}", failed.class);
    }
    *repeats += 1;
    learn(flight, model, &failed).await;
    let entry = &h.catalog.models[model];
    match &policy {
        Policy::PassThrough => return Next::Answer(failed.into_response(outbound.translator)),
        Policy::TryLarger => flight.needs_larger_than = Some(entry.context.unwrap_or(flight.est_tokens)),
        Policy::Cool(cooldown) => {
            if cooldown.is_disabled() {
                flight.grant.ledger.disable(&entry.id, cooldown.reason.clone());
            }
            let (store, ns, id, p) =
                (h.store.clone(), flight.grant.namespace.clone(), entry.id.clone(), policy.clone());
            let _ = blocking(move || hierarchy::apply_policy(&*store, &ns, &id, &p)).await;
            forget_standings(shared, &flight.grant.namespace);
        }
    }
    let (task, attempt, class, status) =
        (flight.grant.task, flight.grant.attempt, failed.class, failed.status);
    let model_id = entry.id.clone();
    flight.send(GatewayEvent::Absorbed {
        task,
        attempt,
        model: model_id,
        status,
        class,
        policy,
        at_ms: now_ms,
    });
    flight.tried.push(model);
    flight.fallback = Some(class);
    Next::Retry
}

/// What a provider said of its limits in a quota answer is kept for every process.
async fn learn(flight: &Flight, model: usize, failed: &upstream::Failed) {
    let h = &flight.h;
    let Some(learned) = h.learned_from(model, &failed.text()) else { return };
    let (store, ns, id) =
        (h.store.clone(), flight.grant.namespace.clone(), h.catalog.models[model].id.clone());
    let _ = blocking(move || store.model_learn(&ns, &id, &learned)).await;
}

/// How long the models' standings read from the store are reused for routing. Routing on a
/// slightly old picture is safe: the reservation itself checks cooldowns and limits atomically,
/// and a refused one sends the request back to routing with the picture forgotten.
const STANDINGS_FRESH: Duration = Duration::from_millis(250);

/// The hierarchy's picture in namespace `ns`, from the store or the short-lived cache, with the
/// store's clock moved on by the time the cached picture has aged.
async fn standings(shared: &Arc<Shared>, flight: &Flight) -> Result<Picture, String> {
    // Cached per namespace and per set of models (the hierarchy, or one pinned model).
    let ns = &flight.grant.namespace;
    let key = format!("{ns}\n{}", flight.grant.pinned.as_deref().unwrap_or(""));
    if let Some((at, cached)) = shared.standings.lock().expect("standings").get(&key) {
        if at.elapsed() < STANDINGS_FRESH {
            return Ok(cached.aged(at.elapsed().as_millis() as u64));
        }
    }
    let (h, ns_owned) = (flight.h.clone(), ns.to_string());
    let fresh = blocking(move || h.read(&ns_owned))
        .await
        .ok_or_else(|| "the store call failed".to_string())?
        .map_err(|e| e.to_string())?;
    shared.standings.lock().expect("standings").insert(key, (Instant::now(), fresh.clone()));
    Ok(fresh)
}

/// Every cached picture of namespace `ns` (a model changed that any of them may hold).
fn forget_standings(shared: &Shared, ns: &str) {
    let prefix = format!("{ns}\n");
    shared.standings.lock().expect("standings").retain(|k, _| !k.starts_with(&prefix));
}

/// Runs `f` against the store off the runtime's threads.
pub(super) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
