//! A provider's success on its way to the agent: translated into the agent's format (passed
//! through unchanged when both speak the same one), metered from the usage the provider
//! reported, and a stream that stalls midway ended and its model cooled.

use super::face;
use super::proxy::Flight;
use super::upstream::{copy_content_type, fmt, Outbound, Success};
use super::usage::{self, Usage};
use super::{GatewayEvent, Hold, Served};
use crate::hierarchy::Hierarchy;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_core::failure::FailureClass;
use swarm_wire::{Failure, FailureKind, StreamConverter};

/// What an answer is charged, once its usage is known.
struct Meter {
    h: Arc<Hierarchy>,
    model: usize,
    flight: (super::Grant, Option<FailureClass>, u64, u64),
    est_in: u64,
    status: u16,
    sent: Instant,
    hold: Hold,
}

impl Meter {
    /// Settles the hold and tells the run. A provider that reports no usage is charged what the
    /// request and answer weigh.
    fn settle(self, reported: Option<swarm_wire::Usage>, bytes: usize) {
        let u = reported.map(Usage::from).unwrap_or_default();
        let u = if u.tokens_in + u.tokens_out == 0 {
            Usage { tokens_in: self.est_in, tokens_out: (bytes as u64).div_ceil(4) }
        } else {
            u
        };
        let (grant, fallback, arrived_ms, waited_ms) = self.flight;
        let entry = &self.h.catalog.models[self.model];
        let cost = self.h.catalog.cost_usd(self.model, u.tokens_in, u.tokens_out);
        self.hold.settle(cost, u.tokens_in + u.tokens_out);
        let _ = grant.events.send(GatewayEvent::Served(Served {
            task: grant.task,
            attempt: grant.attempt,
            model: entry.id.clone(),
            layer: entry.layer,
            status: self.status,
            tokens_in: u.tokens_in,
            tokens_out: u.tokens_out,
            cost_usd: cost,
            arrived_ms,
            waited_ms,
            latency_ms: self.sent.elapsed().as_millis() as u64,
            fallback,
        }));
    }
}

/// Streams (or returns) the provider's answer to the agent in the agent's format, and meters it.
pub(super) async fn deliver(
    answer: Success,
    flight: &Flight,
    model: usize,
    (out, sent, hold): (&Outbound, Instant, Hold),
) -> Response {
    let status = match &answer {
        Success::Stream { response, .. } => response.status().as_u16(),
        Success::Whole { status, .. } => *status,
    };
    let waited_ms = sent.duration_since(flight.started).as_millis() as u64;
    let meter = Meter {
        h: flight.h.clone(),
        model,
        flight: (flight.grant.clone(), flight.fallback, flight.arrived_ms, waited_ms),
        est_in: flight.est_tokens,
        status,
        sent,
        hold,
    };
    match answer {
        Success::Stream { response, first } => {
            let content_type = response.headers().get(reqwest::header::CONTENT_TYPE).cloned();
            let stall = Stall { h: flight.h.clone(), namespace: flight.grant.namespace.clone(), model };
            let converter = out.translator.stream(&out.ctx);
            let mut answer =
                Response::new(Body::from_stream(stream(response, first, converter, stall, meter)));
            *answer.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            if out.translator.passthrough() {
                copy_content_type(content_type.as_ref(), &mut answer);
            } else {
                let sse = HeaderValue::from_static("text/event-stream");
                answer.headers_mut().insert(header::CONTENT_TYPE, sse);
            }
            answer
        }
        Success::Whole { content_type, bytes, .. } => whole(out, content_type, bytes, meter),
    }
}

/// A whole answer: the provider's bytes when the agent speaks its format, else translated.
fn whole(out: &Outbound, content_type: Option<HeaderValue>, bytes: Bytes, meter: Meter) -> Response {
    let parsed = serde_json::from_slice::<Value>(&bytes).ok();
    let reported = parsed.as_ref().and_then(|v| usage::of_answer(out.translator.upstream, v));
    let (len, status) = (bytes.len(), meter.status);
    meter.settle(reported, len);
    if out.translator.passthrough() {
        let mut answer = Response::new(Body::from(bytes));
        *answer.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        copy_content_type(content_type.as_ref(), &mut answer);
        return answer;
    }
    let translated = match parsed {
        Some(v) => out.translator.response(&v, &out.ctx).map_err(|e| e.to_string()),
        None => Err("it is not JSON".to_string()),
    };
    match translated {
        Ok(v) => Json(v).into_response(),
        Err(why) => {
            let message = format!("swarm gateway: the provider's answer cannot be read: {why}");
            face::refuse(out.translator.agent, StatusCode::BAD_GATEWAY, &message, "bad_gateway")
        }
    }
}

/// A stream that stalls after the agent read part of it, or that the provider ends with a rate
/// limit or an overload of its own, cannot move to another model; its model is cooled so the
/// next requests go elsewhere.
struct Stall {
    h: Arc<Hierarchy>,
    namespace: String,
    model: usize,
}

impl Stall {
    fn idle(&self) -> Duration {
        let h = &self.h;
        let provider = h.config.providers.get(&h.catalog.models[self.model].provider);
        provider.map_or(swarm_core::config::IDLE_TIMEOUT, swarm_core::config::ProviderConfig::idle_timeout)
    }

    async fn cool(&self, class: FailureClass, retry_after: Option<Duration>) {
        let h = &self.h;
        let now = h.store.now_ms().unwrap_or(0);
        let policy = h.policy_for(self.model, class, retry_after, 0, now);
        let (store, id) = (h.store.clone(), h.catalog.models[self.model].id.clone());
        let ns = self.namespace.clone();
        let _ =
            tokio::task::spawn_blocking(move || crate::hierarchy::apply_policy(&*store, &ns, &id, &policy))
                .await;
    }
}

type Sender = tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>;

/// Ends the agent's stream after a failure: with the agent's own error event where its format
/// has one, else (a passed-through stream) by breaking it off.
async fn break_off(tx: &Sender, converter: &mut StreamConverter, why: String) {
    let event = converter.fail(&Failure::new(502, FailureKind::Server, why.clone()));
    let last = if event.is_empty() { Err(std::io::Error::other(why)) } else { Ok(event.into()) };
    let _ = tx.send(last).await;
}

/// The provider's stream as it comes (its first chunk already read), translated as it passes
/// and read for its usage; metered when it ends. A chunk that does not come within the
/// provider's `idle_timeout` ends the stream with an error for the agent, and cools the model.
fn stream(
    mut response: reqwest::Response,
    first: Bytes,
    mut converter: StreamConverter,
    stall: Stall,
    meter: Meter,
) -> tokio_stream::wrappers::ReceiverStream<Result<Bytes, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let idle = stall.idle();
    tokio::spawn(async move {
        let mut bytes = 0;
        let mut next = Some(first);
        loop {
            let chunk = match next.take() {
                Some(chunk) => chunk,
                None => match tokio::time::timeout(idle, response.chunk()).await {
                    Ok(Ok(Some(chunk))) => chunk,
                    Ok(Ok(None)) => {
                        match converter.finish() {
                            Ok(end) if end.is_empty() => {}
                            Ok(end) => drop(tx.send(Ok(end.into())).await),
                            Err(e) => break_off(&tx, &mut converter, format!("swarm gateway: {e}")).await,
                        }
                        break;
                    }
                    Ok(Err(e)) => {
                        break_off(&tx, &mut converter, format!("the provider's answer broke off: {e}")).await;
                        break;
                    }
                    Err(_) => {
                        // Cooled before the agent hears of it: its next request goes elsewhere.
                        stall.cool(FailureClass::Overloaded, None).await;
                        let why = format!("swarm gateway: the provider's answer stalled for {}", fmt(idle));
                        break_off(&tx, &mut converter, why).await;
                        break;
                    }
                },
            };
            bytes += chunk.len();
            let out = match converter.feed(&chunk) {
                Ok(out) => out,
                Err(e) => {
                    break_off(&tx, &mut converter, format!("swarm gateway: {e}")).await;
                    break;
                }
            };
            if !out.is_empty() && tx.send(Ok(out.into())).await.is_err() {
                break; // the agent went away
            }
        }
        if let Some((class, retry_after)) = converter.upstream_failure().and_then(blame) {
            stall.cool(class, retry_after).await;
        }
        meter.settle(converter.usage(), bytes);
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// The model's part in a failure its provider reported inside a stream: a limit or an overload
/// cools it; anything else is the request's own.
fn blame(f: &Failure) -> Option<(FailureClass, Option<Duration>)> {
    let class = match f.kind {
        FailureKind::RateLimited => FailureClass::RateLimited,
        FailureKind::QuotaExhausted => FailureClass::QuotaExhausted,
        FailureKind::Overloaded => FailureClass::Overloaded,
        _ => return None,
    };
    Some((class, f.retry_after))
}
