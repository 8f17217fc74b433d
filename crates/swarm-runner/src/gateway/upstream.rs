//! The gateway's side toward providers: a request forwarded with the provider's key and model
//! id, a failure read and classified, a success streamed back to the agent and metered.

use super::proxy::Flight;
use super::usage::{self, Usage};
use super::{GatewayEvent, Served, Shared};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_core::failure::{self, FailureClass};

/// What a provider answered.
pub(super) enum Answer {
    /// A 2xx, not read yet: it streams to the agent.
    Success(reqwest::Response),
    Failed(Failed),
}

/// A provider's failure, read whole and classified.
pub(super) struct Failed {
    pub status: u16,
    pub class: FailureClass,
    /// The provider's `retry-after` (or `retry-after-ms`).
    pub retry_after: Option<Duration>,
    /// The answer as the provider gave it; `None` when it could not be reached.
    reply: Option<(reqwest::header::HeaderMap, Bytes)>,
}

impl Failed {
    /// The provider's answer as text (empty when it could not be reached).
    pub(super) fn text(&self) -> String {
        self.reply.as_ref().map(|(_, b)| String::from_utf8_lossy(b).into_owned()).unwrap_or_default()
    }

    /// The failure as the agent gets it when it is its own (a bad request, say).
    pub(super) fn into_response(self) -> Response {
        let (headers, bytes) = self.reply.unwrap_or_default();
        let mut out = Response::new(Body::from(bytes));
        *out.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_GATEWAY);
        copy_content_type(headers.get(reqwest::header::CONTENT_TYPE), &mut out);
        out
    }
}

/// Sends the agent's request to model `model`'s provider, with the provider's key and model id.
pub(super) async fn forward(shared: &Shared, model: usize, request: &Map<String, Value>) -> Answer {
    let h = &shared.hierarchy;
    let entry = &h.catalog.models[model];
    let provider = h.config.providers.get(&entry.provider);
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
    match req.send().await {
        Ok(r) if r.status().is_success() => Answer::Success(r),
        Ok(r) => Answer::Failed(read_failure(r).await),
        // Unreachable or broken connection: the provider is away; try the next one.
        Err(_) => Answer::Failed(Failed {
            status: 503,
            class: FailureClass::Overloaded,
            retry_after: None,
            reply: None,
        }),
    }
}

async fn read_failure(r: reqwest::Response) -> Failed {
    let status = r.status().as_u16();
    let retry_after = retry_after(r.headers());
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap_or_default();
    let class = failure::from_status(status, &String::from_utf8_lossy(&bytes));
    Failed { status, class, retry_after, reply: Some((headers, bytes)) }
}

/// `retry-after-ms` (milliseconds) or `retry-after` (seconds).
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = value("retry-after-ms").and_then(failure::parse_retry_after) {
        // Parsed as seconds: the number was milliseconds.
        return Some(ms / 1000);
    }
    value("retry-after").and_then(failure::parse_retry_after)
}

/// Streams (or returns) the provider's answer to the agent and meters it.
pub(super) async fn pass_through(
    response: reqwest::Response,
    flight: &Flight,
    shared: &Arc<Shared>,
    model: usize,
    sent: Instant,
) -> Response {
    let status = response.status().as_u16();
    let content_type = response.headers().get(reqwest::header::CONTENT_TYPE).cloned();
    let entry = shared.hierarchy.catalog.models[model].clone();
    let (grant, shared, fallback) = (flight.grant.clone(), shared.clone(), flight.fallback);
    let (arrived_ms, waited_ms) = (flight.arrived_ms, sent.duration_since(flight.started).as_millis() as u64);
    let meter = move |u: Usage| {
        let cost = shared.hierarchy.catalog.cost_usd(model, u.tokens_in, u.tokens_out);
        grant.ledger.add(cost, u.tokens_in + u.tokens_out);
        let _ = grant.events.send(GatewayEvent::Served(Served {
            task: grant.task,
            attempt: grant.attempt,
            model: entry.id.clone(),
            layer: entry.layer,
            status,
            tokens_in: u.tokens_in,
            tokens_out: u.tokens_out,
            cost_usd: cost,
            arrived_ms,
            waited_ms,
            latency_ms: sent.elapsed().as_millis() as u64,
            fallback,
        }));
    };
    let mut out = if flight.streaming {
        Response::new(Body::from_stream(stream(response, meter)))
    } else {
        let bytes = response.bytes().await.unwrap_or_default();
        meter(usage::from_completion(&bytes));
        Response::new(Body::from(bytes))
    };
    *out.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    copy_content_type(content_type.as_ref(), &mut out);
    out
}

/// The provider's stream as it comes, read for its usage; metered when it ends.
fn stream(
    mut response: reqwest::Response,
    meter: impl FnOnce(Usage) + Send + 'static,
) -> tokio_stream::wrappers::ReceiverStream<Result<Bytes, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
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
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

fn copy_content_type(ct: Option<&reqwest::header::HeaderValue>, out: &mut Response) {
    if let Some(v) = ct.and_then(|ct| HeaderValue::from_bytes(ct.as_bytes()).ok()) {
        out.headers_mut().insert(header::CONTENT_TYPE, v);
    }
}
