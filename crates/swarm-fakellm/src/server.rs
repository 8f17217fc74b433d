//! The HTTP server: the routes of the four wire formats, per-model request counters, streaming,
//! and the handle that stops it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body as HttpBody, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use crate::limits::Window;
use crate::log::{RequestLog, RequestRecord, ResponseKind};
use crate::request::{Format, Request};
use crate::scenario::{LimitKind, ModelScript, Scenario};
use crate::turn::{self, Answer, Reply};
use crate::wire::{estimate, Body, Failure, Meta, Tokens};
use crate::Error;

/// Agents send their whole conversation every turn; don't refuse long ones.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// A running fake model server. Dropping it stops the server too (without waiting).
#[derive(Debug)]
pub struct FakeLlm {
    addr: SocketAddr,
    log: RequestLog,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

struct AppState {
    scenario: Scenario,
    /// Requests seen per model, for `rate_limit.first` and `error.first`.
    counters: HashMap<String, AtomicU64>,
    /// Requests served per model in the last 24 h, for `limits`.
    windows: HashMap<String, Window>,
    /// The same per group of models, for their shared limits.
    group_windows: HashMap<String, Window>,
    log: RequestLog,
    shutdown: watch::Receiver<bool>,
}

type Shared = State<Arc<AppState>>;

/// Starts serving `scenario` on `addr` (port 0 picks a free port) and returns once it listens.
pub async fn serve(scenario: Scenario, addr: SocketAddr) -> Result<FakeLlm, Error> {
    scenario.validate()?;
    let log = RequestLog::new(scenario.log.as_deref())?;
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr, source })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind { addr, source })?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let counters = scenario.models.keys().map(|name| (name.clone(), AtomicU64::new(0))).collect();
    let windows = scenario.models.keys().map(|name| (name.clone(), Window::default())).collect();
    let group_windows = scenario.groups.keys().map(|name| (name.clone(), Window::default())).collect();
    let state = Arc::new(AppState {
        scenario,
        counters,
        windows,
        group_windows,
        log: log.clone(),
        shutdown: shutdown_rx.clone(),
    });
    let app = router().layer(DefaultBodyLimit::max(BODY_LIMIT)).with_state(state);
    let mut stop = shutdown_rx;
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|&stopped| stopped).await;
            })
            .await
    });
    Ok(FakeLlm { addr, log, shutdown, task: Some(task) })
}

/// Base URLs are configured with or without `/v1`; OpenAI and Anthropic paths answer both.
fn router() -> Router<Arc<AppState>> {
    let mut router = Router::new();
    for prefix in ["/v1", ""] {
        router = router
            .route(&format!("{prefix}/models"), get(models))
            .route(&format!("{prefix}/chat/completions"), post(chat))
            .route(&format!("{prefix}/messages"), post(messages))
            .route(&format!("{prefix}/messages/count_tokens"), post(count_tokens))
            .route(&format!("{prefix}/responses"), post(responses));
    }
    router
        .route("/v1beta/models", get(gemini_models))
        .route("/v1beta/models/{*call}", post(gemini))
        // Claude Code's connectivity probe.
        .route("/api/hello", any(|| async { StatusCode::OK }))
}

impl FakeLlm {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/v1`, the base URL to give an OpenAI-compatible client (Anthropic clients take
    /// `http://ADDR`, Gemini clients `http://ADDR` too).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The request log (a cheap clone of a shared handle).
    pub fn log(&self) -> &RequestLog {
        &self.log
    }

    /// Stops accepting, releases hanging requests, and waits for open connections to finish.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        self.shutdown.send_replace(true);
        match self.task.take() {
            Some(task) => match task.await {
                Ok(result) => result.map_err(Error::Serve),
                Err(join) => Err(Error::Serve(std::io::Error::other(join))),
            },
            None => Ok(()),
        }
    }

    /// Runs until the server fails (or is shut down from elsewhere); for the command-line server.
    pub async fn wait(mut self) -> Result<(), Error> {
        match self.task.take() {
            Some(task) => {
                task.await.map_err(|join| Error::Serve(std::io::Error::other(join)))?.map_err(Error::Serve)
            }
            None => Ok(()),
        }
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

/// One request on its way through: where it came in and what it carried.
struct Incoming {
    format: Format,
    /// Gemini names the model in the path.
    path_model: Option<String>,
    /// Gemini says "stream" in the path (`:streamGenerateContent`) …
    path_stream: bool,
    /// … and "as server-sent events" in the query (`alt=sse`); the others always stream as SSE.
    sse: bool,
    uri: Uri,
    bearer: Option<String>,
    body: Bytes,
}

impl Incoming {
    fn new(format: Format, uri: Uri, headers: &HeaderMap, body: Bytes) -> Incoming {
        let bearer = key_of(headers, &uri);
        Incoming { format, path_model: None, path_stream: false, sse: true, uri, bearer, body }
    }

    /// A log record of this request, before its answer is known.
    fn record(&self, body: &Value, request: Option<&Request>) -> RequestRecord {
        RequestRecord {
            seq: 0,
            at_ms: 0,
            path: self.uri.path().to_string(),
            query: self.uri.query().map(String::from),
            format: self.format,
            model: request.map(|r| r.model.clone()).or_else(|| self.path_model.clone()),
            stream: request.is_some_and(|r| r.stream),
            tools: request.map(|r| r.tools.iter().map(|t| t.name.clone()).collect()).unwrap_or_default(),
            turn: None,
            user: request.map(|r| r.user_messages.clone()).unwrap_or_default(),
            bearer: self.bearer.clone(),
            response: ResponseKind::Models,
            body: body.clone(),
        }
    }
}

/// The key the client sent, however its provider sends keys.
fn key_of(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty());
    header(header::AUTHORIZATION.as_str())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| header("x-api-key"))
        .or_else(|| header("x-goog-api-key"))
        .map(String::from)
        .or_else(|| uri.query()?.split('&').find_map(|pair| pair.strip_prefix("key=")).map(String::from))
}

async fn chat(state: Shared, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    model_request(state, Incoming::new(Format::Chat, uri, &headers, body)).await
}

async fn messages(state: Shared, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    model_request(state, Incoming::new(Format::Anthropic, uri, &headers, body)).await
}

async fn responses(state: Shared, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    model_request(state, Incoming::new(Format::Responses, uri, &headers, body)).await
}

async fn count_tokens(state: Shared, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    token_count(state, Incoming::new(Format::Anthropic, uri, &headers, body))
}

/// `/v1beta/models/{model}:{method}`.
async fn gemini(
    state: Shared,
    Path(call): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut incoming = Incoming::new(Format::Gemini, uri, &headers, body);
    let (model, method) = call.rsplit_once(':').unwrap_or((call.as_str(), ""));
    incoming.path_model = Some(model.to_string());
    incoming.path_stream = method == "streamGenerateContent";
    incoming.sse = incoming.uri.query().is_some_and(|q| q.split('&').any(|p| p == "alt=sse"));
    match method {
        "generateContent" | "streamGenerateContent" => model_request(state, incoming).await,
        "countTokens" => token_count(state, incoming),
        _ => {
            let failure = Failure::BadRequest(format!("Method `{method}` is not supported by fake-llm."));
            failure_response(Format::Gemini, &failure, None)
        }
    }
}

async fn models(State(state): Shared, uri: Uri) -> Response {
    let incoming = Incoming::new(Format::Chat, uri, &HeaderMap::new(), Bytes::new());
    state.log.push(incoming.record(&Value::Null, None));
    let data: Vec<Value> = state
        .scenario
        .models
        .keys()
        .map(|id| json!({ "id": id, "object": "model", "created": 0, "owned_by": "swarm-fakellm" }))
        .collect();
    Json(json!({ "object": "list", "data": data })).into_response()
}

async fn gemini_models(State(state): Shared, uri: Uri) -> Response {
    let incoming = Incoming::new(Format::Gemini, uri, &HeaderMap::new(), Bytes::new());
    state.log.push(incoming.record(&Value::Null, None));
    let methods = ["generateContent", "streamGenerateContent", "countTokens"];
    let models: Vec<Value> = state
        .scenario
        .models
        .keys()
        .map(|id| json!({ "name": format!("models/{id}"), "displayName": id, "supportedGenerationMethods": methods }))
        .collect();
    Json(json!({ "models": models })).into_response()
}

/// The body as JSON, and the request read from it (or the message of a 400).
fn read(incoming: &Incoming, counting: bool) -> (Value, Result<Request, String>) {
    let body = match serde_json::from_slice::<Value>(&incoming.body) {
        Ok(body) => body,
        Err(err) => {
            let text = Value::String(String::from_utf8_lossy(&incoming.body).into_owned());
            return (text, Err(format!("request body is not valid JSON: {err}")));
        }
    };
    let model = incoming.path_model.as_deref();
    let request = if counting {
        incoming.format.parse_count(&body, model)
    } else {
        incoming.format.parse(&body, model, incoming.path_stream)
    };
    (body, request)
}

/// Reads a request and finds its model's script; a 400 or 404 is logged here and returned as the
/// failure to answer.
fn admit<'a>(
    state: &'a AppState,
    incoming: &Incoming,
    counting: bool,
) -> Result<(Request, &'a ModelScript, RequestRecord), Failure> {
    let (body, parsed) = read(incoming, counting);
    let request = match parsed {
        Ok(request) => request,
        Err(message) => {
            let record = incoming.record(&body, None);
            state.log.push(RequestRecord {
                response: ResponseKind::BadRequest { message: message.clone() },
                ..record
            });
            return Err(Failure::BadRequest(message));
        }
    };
    let record = incoming.record(&body, Some(&request));
    match state.scenario.models.get(&request.model) {
        Some(script) => Ok((request, script, record)),
        None => {
            state.log.push(RequestRecord { response: ResponseKind::ModelNotFound, ..record });
            Err(Failure::ModelNotFound(request.model))
        }
    }
}

async fn model_request(State(state): Shared, incoming: Incoming) -> Response {
    let (request, script, record) = match admit(&state, &incoming, false) {
        Ok(admitted) => admitted,
        Err(failure) => return failure_response(incoming.format, &failure, None),
    };
    if let Some(message) = request.unsigned_call.clone().filter(|_| script.thought_signatures) {
        state.log.push(RequestRecord {
            response: ResponseKind::BadRequest { message: message.clone() },
            ..record
        });
        return failure_response(incoming.format, &Failure::BadRequest(message), None);
    }
    let nth = state.counters.get(&request.model).map_or(0, |c| c.fetch_add(1, Ordering::SeqCst) + 1);
    let over = over_limits(&state, script, &request);
    let reply = match over {
        Some((what, retry_after)) => Reply::RateLimited {
            retry_after,
            message: Some(format!(
                "Rate limit reached for model `{}` (fake-llm): {what}. Please try again in {retry_after}s.",
                request.model
            )),
            kind: LimitKind::Rate,
            header: true,
            stream: false,
        },
        None => turn::decide(script, &request, nth),
    };
    let format = incoming.format;
    let push =
        |turn: Option<usize>, response| state.log.push(RequestRecord { turn, response, ..record.clone() });
    match reply {
        Reply::Hang => {
            push(None, ResponseKind::Hang);
            let mut stop = state.shutdown.clone();
            let _ = stop.wait_for(|&stopped| stopped).await;
            failure_response(format, &Failure::Unavailable, None)
        }
        Reply::RateLimited { retry_after, message, kind, header, stream } => {
            let failure = Failure::RateLimited { model: request.model.clone(), retry_after, message, kind };
            if stream && request.stream && incoming.sse && format.fails_in_stream() {
                let seq = push(None, ResponseKind::RateLimitedInStream { retry_after });
                let meta = Meta { seq, model: request.model.clone(), created: now(), signed: false };
                return stream_response(format.stream_failure(&meta, &failure), Duration::ZERO);
            }
            push(None, ResponseKind::RateLimited { retry_after });
            failure_response(format, &failure, header.then_some(retry_after))
        }
        Reply::Error { status, message, retry_after } => {
            push(None, ResponseKind::Error { status });
            failure_response(format, &Failure::Error { status, message }, retry_after)
        }
        Reply::Answer { delay, chunk_delay, turn, answer } => {
            let seq = push(Some(turn), answer_kind(&answer));
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let tokens = Tokens::of(script.usage, &request, &answer);
            let meta =
                Meta { seq, model: request.model.clone(), created: now(), signed: script.thought_signatures };
            answer_response(&incoming, &request, &meta, &answer, tokens, chunk_delay)
        }
    }
}

/// What of the model's own limits or its groups' shared ones this request would pass, if any;
/// else it is counted in all of them.
fn over_limits(state: &AppState, script: &ModelScript, request: &Request) -> Option<(String, u64)> {
    let own = script.limits.as_ref().and_then(|l| Some((state.windows.get(&request.model)?, l, "")));
    let groups = state.scenario.groups.iter().filter(|(_, g)| g.models.contains(&request.model));
    let shared =
        groups.filter_map(|(name, g)| Some((state.group_windows.get(name)?, &g.limits, name.as_str())));
    let windows: Vec<_> = own.into_iter().chain(shared).collect();
    if windows.is_empty() {
        return None;
    }
    crate::limits::admit_all(&windows, estimate(request.prompt_bytes))
}

fn answer_kind(answer: &Answer) -> ResponseKind {
    match answer {
        Answer::Text(text) => ResponseKind::Text { text: text.clone() },
        Answer::ToolCall(call) => ResponseKind::ToolCall {
            tool: call.name.clone(),
            arguments: match &call.arguments {
                Value::String(input) if call.custom => input.clone(),
                arguments => arguments.to_string(),
            },
        },
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn answer_response(
    incoming: &Incoming,
    request: &Request,
    meta: &Meta,
    answer: &Answer,
    tokens: Tokens,
    chunk_delay: Duration,
) -> Response {
    let events = request.stream && incoming.sse;
    match incoming.format.answer(meta, answer, tokens, request, events) {
        Body::Events(frames) => stream_response(frames, chunk_delay),
        // Gemini's `:streamGenerateContent` without `alt=sse` is a JSON array of chunks.
        Body::Json(value) if request.stream => Json(json!([value])).into_response(),
        Body::Json(value) => Json(value).into_response(),
    }
}

/// `count_tokens` / `countTokens`: not subject to the model's script (real providers count
/// tokens even when generation is rate limited).
fn token_count(State(state): Shared, incoming: Incoming) -> Response {
    let (request, _, record) = match admit(&state, &incoming, true) {
        Ok(admitted) => admitted,
        Err(failure) => return failure_response(incoming.format, &failure, None),
    };
    let tokens = estimate(request.prompt_bytes);
    state.log.push(RequestRecord { response: ResponseKind::TokenCount { tokens }, ..record });
    Json(incoming.format.token_count(tokens)).into_response()
}

fn failure_response(format: Format, failure: &Failure, retry_after: Option<u64>) -> Response {
    let (status, body) = format.error(failure);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Json(body)).into_response();
    if let Some(secs) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Server-sent events: the frames in order, `chunk_delay` apart.
fn stream_response(frames: Vec<String>, chunk_delay: Duration) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(4);
    tokio::spawn(async move {
        for (index, frame) in frames.into_iter().enumerate() {
            if index > 0 && !chunk_delay.is_zero() {
                tokio::time::sleep(chunk_delay).await;
            }
            if tx.send(Ok(Bytes::from(frame))).await.is_err() {
                return; // the client went away
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(HttpBody::from_stream(ReceiverStream::new(rx)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
