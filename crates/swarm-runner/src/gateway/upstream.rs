//! The gateway's side toward providers: a request forwarded with the provider's key and model
//! id, a failure read and classified, a success streamed back to the agent and metered.

use super::proxy::Flight;
use super::usage::{self, Usage};
use super::{GatewayEvent, Hold, Served, Shared};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_core::failure::{self, FailureClass};

/// A failure's body is read up to this much: enough to classify it and pass it on. More is not
/// kept (six 100 MB error bodies once held 1.17 GB of the gateway's memory).
const FAILURE_CAP: usize = 1 << 20;
/// A whole (not streamed) answer is read up to this much before it goes to the agent.
const ANSWER_CAP: usize = 64 << 20;

/// What a provider answered.
pub(super) enum Answer {
    Success(Success),
    Failed(Failed),
}

/// A 2xx answer, as far as it had to be read before the agent sees it.
pub(super) enum Success {
    /// A stream whose first chunk came: the rest streams to the agent as it comes.
    Stream { response: reqwest::Response, first: Bytes },
    /// A whole answer, read (within its timeouts and [`ANSWER_CAP`]).
    Whole { status: u16, content_type: Option<HeaderValue>, bytes: Bytes },
}

/// A provider's failure, read (at most [`FAILURE_CAP`]) and classified.
pub(super) struct Failed {
    pub status: u16,
    pub class: FailureClass,
    /// The provider's `retry-after` (or `retry-after-ms`).
    pub retry_after: Option<Duration>,
    /// Why, when the provider did not answer with an error of its own: "cannot connect to …:
    /// Connection refused", "no answer within 60s", "`GEMINI_API_KEY` is not set".
    pub cause: Option<String>,
    /// The answer as the provider gave it; `None` when it did not answer.
    reply: Option<(reqwest::header::HeaderMap, Bytes)>,
    /// The provider's key, kept out of what the agent is passed.
    key: Option<String>,
}

impl Failed {
    /// The provider did not answer (unreachable, too slow, cut off): the model counts as
    /// overloaded and the request moves on.
    fn away(cause: String) -> Failed {
        Failed {
            status: 503,
            class: FailureClass::Overloaded,
            retry_after: None,
            cause: Some(cause),
            reply: None,
            key: None,
        }
    }

    /// The provider's answer as text (empty when it did not answer).
    pub(super) fn text(&self) -> String {
        self.reply.as_ref().map(|(_, b)| String::from_utf8_lossy(b).into_owned()).unwrap_or_default()
    }

    /// The failure as the agent gets it when it is its own (a bad request, say), with anything
    /// that looks like a key taken out.
    pub(super) fn into_response(self) -> Response {
        let (headers, bytes) = self.reply.unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let mut out = Response::new(Body::from(scrub(&text, self.key.as_deref())));
        *out.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_GATEWAY);
        copy_content_type(headers.get(reqwest::header::CONTENT_TYPE), &mut out);
        out
    }
}

/// Sends the agent's request to model `model`'s provider, with the provider's key and model id,
/// and reads what must be read before the agent may see any of it: a failure, a whole answer, a
/// stream's first chunk. A provider that does not answer in time, or breaks off before that,
/// is a failure the request can move on from.
pub(super) async fn forward(shared: &Shared, model: usize, request: &Map<String, Value>) -> Answer {
    let h = &shared.hierarchy;
    let entry = &h.catalog.models[model];
    let provider = h.config.providers.get(&entry.provider).cloned().unwrap_or_default();
    let base = provider.base_url.clone().unwrap_or_default();
    let url = format!("{}/chat/completions", base.trim_end_matches('/'));
    let key = match provider.api_key_env.as_deref() {
        Some(var) => match std::env::var(var) {
            Ok(key) => Some(key),
            // A local server may need no key; any other provider refuses the request anyway.
            Err(_) if crate::os::net::is_loopback(&base) => None,
            Err(_) => return Answer::Failed(unset_key(var)),
        },
        None => None,
    };
    let streaming = request.get("stream").and_then(Value::as_bool) == Some(true);
    let mut req = shared.client.post(&url).json(&upstream_body(&entry.provider_model, request, streaming));
    if let Some(key) = &key {
        req = req.bearer_auth(key);
    }
    let (first_byte, idle) = (provider.first_byte_timeout(streaming), provider.idle_timeout());
    let response = match tokio::time::timeout(first_byte, req.send()).await {
        Err(_) => {
            return Answer::Failed(Failed::away(format!("no answer from {url} within {}", fmt(first_byte))))
        }
        Ok(Err(e)) => return Answer::Failed(Failed::away(unreachable(&url, &e))),
        Ok(Ok(response)) => response,
    };
    if !response.status().is_success() {
        let mut failed = read_failure(response, idle).await;
        failed.key = key;
        return Answer::Failed(failed);
    }
    if streaming {
        first_chunk(response, first_byte).await
    } else {
        whole(response, idle).await
    }
}

/// The agent's body as the provider gets it: the provider's model id, and a streamed answer's
/// usage asked for (the gateway meters every request). Everything else passes untouched.
fn upstream_body(model: &str, request: &Map<String, Value>, streaming: bool) -> Map<String, Value> {
    let mut body = request.clone();
    body.insert("model".into(), Value::String(model.to_string()));
    if streaming {
        let opts = body.entry("stream_options").or_insert_with(|| json!({}));
        if let Value::Object(o) = opts {
            o.insert("include_usage".into(), Value::Bool(true));
        }
    }
    body
}

fn unset_key(var: &str) -> Failed {
    Failed {
        status: 401,
        class: FailureClass::Auth,
        retry_after: None,
        cause: Some(format!("`{var}` is not set in swarm's environment")),
        reply: None,
        key: None,
    }
}

/// Why `url` could not be reached, down to the root cause ("Connection refused").
fn unreachable(url: &str, e: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    let what = if e.is_connect() { "cannot connect to" } else { "the request to" };
    format!("{what} {url} failed: {root}")
}

fn fmt(d: Duration) -> String {
    swarm_core::duration::format(d)
}

/// A stream's first chunk, within `first_byte`: only then does the agent see the answer.
async fn first_chunk(mut response: reqwest::Response, first_byte: Duration) -> Answer {
    let url = response.url().to_string();
    match tokio::time::timeout(first_byte, response.chunk()).await {
        Ok(Ok(Some(first))) => Answer::Success(Success::Stream { response, first }),
        Ok(Ok(None)) => {
            Answer::Failed(Failed::away(format!("{url} closed the answer before its first byte")))
        }
        Ok(Err(e)) => {
            Answer::Failed(Failed::away(format!("{url} broke off the answer before its first byte: {e}")))
        }
        Err(_) => {
            Answer::Failed(Failed::away(format!("no first chunk from {url} within {}", fmt(first_byte))))
        }
    }
}

/// A whole answer, each chunk within `idle`, at most [`ANSWER_CAP`].
async fn whole(response: reqwest::Response, idle: Duration) -> Answer {
    let status = response.status().as_u16();
    let content_type = response.headers().get(reqwest::header::CONTENT_TYPE).cloned();
    let url = response.url().to_string();
    match read_capped(response, idle, ANSWER_CAP).await {
        Ok((bytes, false)) if !bytes.is_empty() => {
            Answer::Success(Success::Whole { status, content_type, bytes })
        }
        Ok((_, false)) => Answer::Failed(Failed::away(format!("{url} answered with an empty body"))),
        Ok((_, true)) => Answer::Failed(Failed::away(format!("{url} answered with more than 64 MiB"))),
        Err(cause) => Answer::Failed(Failed::away(format!("{url}: {cause}"))),
    }
}

/// Reads a body chunk by chunk, each within `idle`, keeping at most `cap` bytes; whether more
/// came. `Err` says why it broke off.
async fn read_capped(
    mut response: reqwest::Response,
    idle: Duration,
    cap: usize,
) -> Result<(Bytes, bool), String> {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(idle, response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                let room = cap - out.len();
                out.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if chunk.len() > room {
                    return Ok((out.into(), true));
                }
            }
            Ok(Ok(None)) => return Ok((out.into(), false)),
            Ok(Err(e)) => return Err(format!("the answer broke off: {e}")),
            Err(_) => return Err(format!("the answer stalled for {}", fmt(idle))),
        }
    }
}

async fn read_failure(r: reqwest::Response, idle: Duration) -> Failed {
    let status = r.status().as_u16();
    let retry_after = retry_after(r.headers());
    let headers = r.headers().clone();
    // What came before a stall or the cap is what the provider said.
    let bytes = match read_capped(r, idle, FAILURE_CAP).await {
        Ok((bytes, _)) => bytes,
        Err(_) => Bytes::new(),
    };
    let class = failure::from_status(status, &String::from_utf8_lossy(&bytes));
    Failed { status, class, retry_after, cause: None, reply: Some((headers, bytes)), key: None }
}

/// `text` with the provider's `key` and anything shaped like an API key replaced, before a
/// provider's error reaches an agent (some echo the key they refused).
fn scrub(text: &str, key: Option<&str>) -> String {
    const PREFIXES: [&str; 6] = ["sk-", "sk_", "AIza", "gsk_", "xai-", "Bearer "];
    let mut out = match key.filter(|k| k.len() >= 8) {
        Some(key) => text.replace(key, "[redacted]"),
        None => text.to_string(),
    };
    for prefix in PREFIXES {
        let mut from = 0;
        while let Some(at) = out[from..].find(prefix).map(|i| i + from) {
            let start = at + prefix.len();
            let len = out[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
                .unwrap_or(out.len() - start);
            if len >= 16 {
                out.replace_range(start..start + len, "[redacted]");
            }
            from = start;
        }
    }
    out
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
    answer: Success,
    flight: &Flight,
    shared: &Arc<Shared>,
    model: usize,
    (sent, hold): (Instant, Hold),
) -> Response {
    let (status, content_type) = match &answer {
        Success::Stream { response, .. } => {
            (response.status().as_u16(), response.headers().get(reqwest::header::CONTENT_TYPE).cloned())
        }
        Success::Whole { status, content_type, .. } => (*status, content_type.clone()),
    };
    let entry = shared.hierarchy.catalog.models[model].clone();
    let (grant, fallback) = (flight.grant.clone(), flight.fallback);
    let (arrived_ms, waited_ms) = (flight.arrived_ms, sent.duration_since(flight.started).as_millis() as u64);
    let metering = shared.clone();
    let est_in = flight.est_tokens;
    let meter = move |u: Usage, bytes: usize| {
        // A provider that reports no usage is charged what the request and answer weigh.
        let u = if u.tokens_in + u.tokens_out == 0 {
            Usage { tokens_in: est_in, tokens_out: (bytes as u64).div_ceil(4) }
        } else {
            u
        };
        let cost = metering.hierarchy.catalog.cost_usd(model, u.tokens_in, u.tokens_out);
        hold.settle(cost, u.tokens_in + u.tokens_out);
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
    let mut out = match answer {
        Success::Stream { response, first } => {
            let stall = Stall { shared: shared.clone(), namespace: flight.grant.namespace.clone(), model };
            Response::new(Body::from_stream(stream(response, first, stall, meter)))
        }
        Success::Whole { bytes, .. } => {
            meter(usage::from_completion(&bytes), bytes.len());
            Response::new(Body::from(bytes))
        }
    };
    *out.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    copy_content_type(content_type.as_ref(), &mut out);
    out
}

/// A stream that stalls after the agent read part of it cannot move to another model; its model
/// is cooled (`overloaded`) so the next requests go elsewhere.
struct Stall {
    shared: Arc<Shared>,
    namespace: String,
    model: usize,
}

impl Stall {
    fn idle(&self) -> Duration {
        let h = &self.shared.hierarchy;
        let provider = h.config.providers.get(&h.catalog.models[self.model].provider);
        provider.map_or(swarm_core::config::IDLE_TIMEOUT, swarm_core::config::ProviderConfig::idle_timeout)
    }

    async fn cool(self) {
        let h = &self.shared.hierarchy;
        let now = h.store.now_ms().unwrap_or(0);
        let policy = h.policy_for(self.model, FailureClass::Overloaded, None, 0, now);
        let (store, id) = (h.store.clone(), h.catalog.models[self.model].id.clone());
        let ns = self.namespace;
        let _ =
            tokio::task::spawn_blocking(move || crate::hierarchy::apply_policy(&*store, &ns, &id, &policy))
                .await;
    }
}

/// The provider's stream as it comes (its first chunk already read), read for its usage;
/// metered when it ends. A chunk that does not come within the provider's `idle_timeout` ends
/// the stream with an error for the agent, and cools the model.
fn stream(
    mut response: reqwest::Response,
    first: Bytes,
    stall: Stall,
    meter: impl FnOnce(Usage, usize) + Send + 'static,
) -> tokio_stream::wrappers::ReceiverStream<Result<Bytes, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let idle = stall.idle();
    tokio::spawn(async move {
        let mut scan = usage::SseUsage::default();
        let mut bytes = 0;
        let mut next = Some(first);
        loop {
            let chunk = match next.take() {
                Some(chunk) => chunk,
                None => match tokio::time::timeout(idle, response.chunk()).await {
                    Ok(Ok(Some(chunk))) => chunk,
                    Ok(Ok(None)) => break,
                    // A failure after streaming began is passed through as it is.
                    Ok(Err(e)) => {
                        let _ = tx.send(Err(std::io::Error::other(e))).await;
                        break;
                    }
                    Err(_) => {
                        // Cooled before the agent hears of it: its next request goes elsewhere.
                        stall.cool().await;
                        let why = format!("swarm gateway: the provider's answer stalled for {}", fmt(idle));
                        let _ = tx.send(Err(std::io::Error::other(why))).await;
                        break;
                    }
                },
            };
            scan.feed(&chunk);
            bytes += chunk.len();
            if tx.send(Ok(chunk)).await.is_err() {
                break; // the agent went away
            }
        }
        meter(scan.usage(), bytes);
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

fn copy_content_type(ct: Option<&reqwest::header::HeaderValue>, out: &mut Response) {
    if let Some(v) = ct.and_then(|ct| HeaderValue::from_bytes(ct.as_bytes()).ok()) {
        out.headers_mut().insert(header::CONTENT_TYPE, v);
    }
}
