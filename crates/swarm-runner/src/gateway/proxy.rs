//! One agent request through the gateway: route, reserve, forward, and fail over before the
//! agent sees an error.

use super::usage::{self, Usage};
use super::{GatewayEvent, Grant, Shared};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_core::failure::FailureClass;
use swarm_core::router::{self, Policy, Route, RouteRequest, Standing};
use swarm_store::{ModelLimits, ModelStanding, Reservation};

/// How long a model disabled by one run (auth, billing, unknown model) is left alone by the
/// others on the store.
const DISABLED_FOR: Duration = Duration::from_secs(15 * 60);

/// An OpenAI-shaped error answer.
fn error(status: StatusCode, message: &str, code: &str) -> Response {
    let body = json!({ "error": { "message": message, "type": "swarm_gateway", "code": code } });
    (status, Json(body)).into_response()
}

fn grant_of(shared: &Shared, headers: &HeaderMap) -> Option<Grant> {
    let token = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")?.trim();
    shared.grants.lock().expect("grants").get(token).cloned()
}

pub(super) async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if grant_of(&shared, &headers).is_none() {
        return error(StatusCode::UNAUTHORIZED, "swarm gateway: unknown or expired token", "invalid_api_key");
    }
    let mut data = vec![json!({ "id": "auto", "object": "model", "owned_by": "swarm" })];
    data.extend(
        shared
            .catalog
            .models
            .iter()
            .map(|m| json!({ "id": m.id, "object": "model", "owned_by": m.provider })),
    );
    Json(json!({ "object": "list", "data": data })).into_response()
}

/// How long the models' standings read from the store are reused for routing. Routing on a
/// slightly old picture is safe: the reservation itself checks cooldowns and limits atomically,
/// and a refused one sends the request back to routing with the picture forgotten.
const STANDINGS_FRESH: Duration = Duration::from_millis(250);

/// The standings of `ids` in namespace `ns`, from the store or the short-lived cache, with the
/// store's clock moved on by the time the cached picture has aged.
async fn standings(shared: &Arc<Shared>, ns: &str, ids: &[String]) -> Result<Vec<ModelStanding>, String> {
    if let Some((at, cached)) = shared.standings.lock().expect("standings").get(ns) {
        if at.elapsed() < STANDINGS_FRESH {
            let aged = at.elapsed().as_millis() as u64;
            return Ok(cached
                .iter()
                .map(|s| ModelStanding { now_ms: s.now_ms + aged, ..s.clone() })
                .collect());
        }
    }
    let (store, ns_owned, ids) = (shared.store.clone(), ns.to_string(), ids.to_vec());
    let fresh = blocking(move || store.model_standings(&ns_owned, &ids))
        .await
        .ok_or_else(|| "the store call failed".to_string())?
        .map_err(|e| e.to_string())?;
    shared.standings.lock().expect("standings").insert(ns.to_string(), (Instant::now(), fresh.clone()));
    Ok(fresh)
}

fn forget_standings(shared: &Shared, ns: &str) {
    shared.standings.lock().expect("standings").remove(ns);
}

/// Runs `f` against the store off the runtime's threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

pub(super) async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(grant) = grant_of(&shared, &headers) else {
        return error(StatusCode::UNAUTHORIZED, "swarm gateway: unknown or expired token", "invalid_api_key");
    };
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "swarm gateway: the body is not a JSON object",
            "invalid_request",
        );
    };
    let streaming = request.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let est_tokens = router::estimate_tokens(body.len());
    let catalog = &shared.catalog;
    let ids: Vec<String> = catalog.models.iter().map(|m| m.id.clone()).collect();
    let send = |ev: GatewayEvent| {
        let _ = grant.events.send(ev);
    };
    let started = Instant::now();
    let mut tried: Vec<usize> = Vec::new();
    let mut needs_larger_than: Option<u64> = None;
    let mut fallback: Option<FailureClass> = None;
    let mut repeats: std::collections::HashMap<usize, u32> = Default::default();
    loop {
        let standings = match standings(&shared, &grant.namespace, &ids).await {
            Ok(s) => s,
            Err(e) => {
                return error(StatusCode::SERVICE_UNAVAILABLE, &format!("swarm gateway: store: {e}"), "store")
            }
        };
        let now_ms = standings.first().map_or_else(now_ms, |s| s.now_ms);
        let disabled = grant.ledger.disabled.lock().expect("ledger").clone();
        let standings: Vec<Standing> = standings
            .into_iter()
            .enumerate()
            .map(|(i, s)| Standing {
                cooling_until_ms: s.cooling_until_ms.filter(|u| *u > now_ms),
                cooling_reason: s.cooling_reason,
                disabled: disabled.get(&i).cloned(),
                minute_requests: s.minute_requests,
                minute_tokens: s.minute_tokens,
                day_requests: s.day_requests,
                minute_frees_at_ms: None,
            })
            .collect();
        let (spent_usd, spent_tokens) = grant.ledger.spent();
        let waited = started.elapsed().as_millis() as u64;
        let req = RouteRequest {
            start_layer: grant.start_layer,
            est_tokens,
            now_ms,
            allow_paid: grant.ledger.allow_paid,
            tried: tried.clone(),
            needs_larger_than,
            spent_usd,
            budget_usd: grant.ledger.budget_usd,
            spent_tokens,
            budget_tokens: grant.ledger.budget_tokens,
            max_wait_ms: shared.max_wait.as_millis() as u64,
        };
        let model = match router::route(catalog, &standings, &req) {
            Route::Use { model, .. } => model,
            Route::Wait { until_ms, model } if waited + until_ms.saturating_sub(now_ms) > req.max_wait_ms => {
                // This request has waited already: all the waits together stay within max_wait.
                let at = chrono::DateTime::from_timestamp_millis(until_ms as i64).unwrap_or_default();
                let why = format!(
                    "every allowed model is cooling down or at its limit; the first ({}) frees up at {} UTC, \
                     past max_wait {}",
                    ids[model],
                    at.format("%H:%M:%S"),
                    swarm_core::duration::format(shared.max_wait)
                );
                send(GatewayEvent::Exhausted { task: grant.task, attempt: grant.attempt, why: why.clone() });
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("swarm: models_exhausted: {why}"),
                    "models_exhausted",
                );
            }
            Route::Wait { until_ms, model } => {
                send(GatewayEvent::Waiting {
                    task: grant.task,
                    attempt: grant.attempt,
                    model: ids[model].clone(),
                    until_ms,
                });
                let wait = Duration::from_millis(until_ms.saturating_sub(now_ms).clamp(50, 60_000));
                tokio::time::sleep(wait).await;
                continue;
            }
            Route::Exhausted { why, .. } => {
                send(GatewayEvent::Exhausted { task: grant.task, attempt: grant.attempt, why: why.clone() });
                // Not a 429: an agent would only retry it, and nothing will free up in time.
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("swarm: models_exhausted: {why}"),
                    "models_exhausted",
                );
            }
        };
        let entry = &catalog.models[model];
        let limits = ModelLimits { rpm: entry.rpm, rpd: entry.rpd, tpm: entry.tpm };
        let (store, ns, id) = (shared.store.clone(), grant.namespace.clone(), entry.id.clone());
        match blocking(move || store.model_reserve(&ns, &id, est_tokens, &limits)).await {
            Some(Ok(Reservation::Granted { .. })) => {}
            // Another process took the last slot or cooled it down meanwhile: route again, on
            // fresh standings.
            Some(Ok(Reservation::Cooling { .. } | Reservation::Full { .. })) => {
                forget_standings(&shared, &grant.namespace);
                continue;
            }
            Some(Err(e)) => {
                return error(StatusCode::SERVICE_UNAVAILABLE, &format!("swarm gateway: store: {e}"), "store")
            }
            None => {
                return error(StatusCode::SERVICE_UNAVAILABLE, "swarm gateway: store call failed", "store")
            }
        }
        let sent = Instant::now();
        let answer = forward(&shared, entry, &request).await;
        let (status, response) = match answer {
            Ok(r) => (r.status().as_u16(), Some(r)),
            // Unreachable or broken connection: the provider is away; try the next one.
            Err(_) => (503, None),
        };
        if (200..300).contains(&status) {
            let response = response.expect("a status came from a response");
            return pass_through(response, streaming, &grant, &shared, model, fallback, sent).await;
        }
        let retry_after = response.as_ref().and_then(|r| {
            let h = r.headers();
            let v = h.get("retry-after-ms").or_else(|| h.get("retry-after"))?.to_str().ok()?;
            let ms = h.contains_key("retry-after-ms");
            swarm_agents::classify::parse_retry_after(v).map(|d| {
                if ms {
                    d.as_millis() as u64 / 1000
                } else {
                    d.as_millis() as u64
                }
            })
        });
        let (response, text) = match response {
            Some(r) => {
                let headers = r.headers().clone();
                let bytes = r.bytes().await.unwrap_or_default();
                (Some((headers, bytes.clone())), String::from_utf8_lossy(&bytes).into_owned())
            }
            None => (None, "the provider could not be reached".to_string()),
        };
        let class = if status == 503 && response.is_none() {
            FailureClass::Overloaded
        } else {
            swarm_agents::classify::from_status(status, &text)
        };
        let n = repeats.entry(model).or_insert(0);
        let policy = router::policy(class, retry_after, *n, now_ms, fastrand::f64());
        *n += 1;
        let action = match policy {
            Policy::CoolUntil { until_ms } => {
                let (store, ns, id, why) =
                    (shared.store.clone(), grant.namespace.clone(), entry.id.clone(), class.to_string());
                let _ = blocking(move || store.model_cool(&ns, &id, until_ms, &why)).await;
                forget_standings(&shared, &grant.namespace);
                format!("cooling down for {}s", until_ms.saturating_sub(now_ms).div_ceil(1000))
            }
            Policy::Disable { reason } => {
                grant.ledger.disabled.lock().expect("ledger").insert(model, reason.clone());
                // Other runs on the store leave it alone for a while too (a bad key, a closed
                // account and an unknown model do not mend themselves within minutes).
                let until_ms = now_ms + DISABLED_FOR.as_millis() as u64;
                let (store, ns, id, why) = (
                    shared.store.clone(),
                    grant.namespace.clone(),
                    entry.id.clone(),
                    format!("disabled: {reason}"),
                );
                let _ = blocking(move || store.model_cool(&ns, &id, until_ms, &why)).await;
                forget_standings(&shared, &grant.namespace);
                format!("disabled for the run: {reason}")
            }
            Policy::TryLarger => {
                needs_larger_than = Some(entry.context.unwrap_or(est_tokens));
                "the request needs a larger context window".to_string()
            }
            Policy::PassThrough => {
                // Not the model's fault (a bad request, say): the agent gets the answer as is.
                let (headers, bytes) = response.unwrap_or_default();
                let mut out = Response::new(Body::from(bytes));
                *out.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                if let Some(ct) = headers.get(reqwest::header::CONTENT_TYPE) {
                    if let Ok(v) = HeaderValue::from_bytes(ct.as_bytes()) {
                        out.headers_mut().insert(header::CONTENT_TYPE, v);
                    }
                }
                return out;
            }
        };
        send(GatewayEvent::Absorbed {
            task: grant.task,
            attempt: grant.attempt,
            model: entry.id.clone(),
            status,
            class,
            action,
        });
        tried.push(model);
        fallback = Some(class);
    }
}

/// Sends the agent's request to `entry`'s provider, with the provider's key and model id.
async fn forward(
    shared: &Shared,
    entry: &swarm_core::router::ModelEntry,
    request: &serde_json::Map<String, Value>,
) -> Result<reqwest::Response, reqwest::Error> {
    let provider = shared.providers.get(&entry.provider);
    let base = provider.and_then(|p| p.base_url.clone()).unwrap_or_default();
    let mut body = request.clone();
    body.insert("model".into(), Value::String(entry.provider_model.clone()));
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        // Ask for the usage chunk: the gateway meters every request.
        let opts = body.entry("stream_options").or_insert_with(|| json!({}));
        if let Value::Object(o) = opts {
            o.insert("include_usage".into(), Value::Bool(true));
        }
    }
    let mut req = shared.client.post(format!("{}/chat/completions", base.trim_end_matches('/'))).json(&body);
    if let Some(key) = provider.and_then(|p| p.api_key_env.as_deref()).and_then(|v| std::env::var(v).ok()) {
        req = req.bearer_auth(key);
    }
    req.send().await
}

/// Streams (or returns) the provider's answer to the agent and meters it.
async fn pass_through(
    response: reqwest::Response,
    streaming: bool,
    grant: &Grant,
    shared: &Arc<Shared>,
    model: usize,
    fallback: Option<FailureClass>,
    sent: Instant,
) -> Response {
    let status = response.status().as_u16();
    let content_type = response.headers().get(reqwest::header::CONTENT_TYPE).cloned();
    let entry = shared.catalog.models[model].clone();
    let (grant, catalog_cost) = (grant.clone(), shared.clone());
    let meter = move |u: Usage| {
        let cost = catalog_cost.catalog.cost_usd(model, u.tokens_in, u.tokens_out);
        grant.ledger.add(cost, u.tokens_in + u.tokens_out);
        let _ = grant.events.send(GatewayEvent::Served {
            task: grant.task,
            attempt: grant.attempt,
            model: entry.id.clone(),
            layer: entry.layer,
            status,
            tokens_in: u.tokens_in,
            tokens_out: u.tokens_out,
            cost_usd: cost,
            latency_ms: sent.elapsed().as_millis() as u64,
            fallback,
        });
    };
    let mut out = if streaming {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
        tokio::spawn(async move {
            let mut response = response;
            let mut scan = usage::SseUsage::default();
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        scan.feed(&chunk);
                        if tx.send(Ok(chunk)).await.is_err() {
                            break; // the agent went away
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        // A failure after streaming began is passed through as it is.
                        let _ = tx.send(Err(std::io::Error::other(e))).await;
                        break;
                    }
                }
            }
            meter(scan.usage());
        });
        Response::new(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)))
    } else {
        let bytes = response.bytes().await.unwrap_or_default();
        meter(usage::from_completion(&bytes));
        Response::new(Body::from(bytes))
    };
    *out.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if let Some(v) = content_type.and_then(|ct| HeaderValue::from_bytes(ct.as_bytes()).ok()) {
        out.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    out
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
