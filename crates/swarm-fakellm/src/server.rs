//! The HTTP server: routes, per-model request counters, streaming, and the handle that stops it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use crate::log::{RequestLog, RequestRecord, ResponseKind};
use crate::openai::{self, ChatRequest, Meta};
use crate::scenario::Scenario;
use crate::turn::{self, Answer, Reply};
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
    /// Requests served per model in the last 24 h (when, tokens), for `limits`.
    windows: HashMap<String, std::sync::Mutex<std::collections::VecDeque<(std::time::Instant, u64)>>>,
    log: RequestLog,
    shutdown: watch::Receiver<bool>,
}

/// Starts serving `scenario` on `addr` (port 0 picks a free port) and returns once it listens.
pub async fn serve(scenario: Scenario, addr: SocketAddr) -> Result<FakeLlm, Error> {
    scenario.validate()?;
    let log = RequestLog::new(scenario.log.as_deref())?;
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr, source })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind { addr, source })?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let counters = scenario.models.keys().map(|name| (name.clone(), AtomicU64::new(0))).collect();
    let windows = scenario.models.keys().map(|name| (name.clone(), Default::default())).collect();
    let state =
        Arc::new(AppState { scenario, counters, windows, log: log.clone(), shutdown: shutdown_rx.clone() });
    // Base URLs are configured with or without `/v1`; answer both.
    let app = Router::new()
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/chat/completions", post(chat_completions))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state);
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

impl FakeLlm {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/v1`, the base URL to give an OpenAI-compatible client.
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

async fn models(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    state.log.push(record(&uri, None, false, Vec::new(), None, ResponseKind::Models));
    let data: Vec<Value> = state
        .scenario
        .models
        .keys()
        .map(|id| json!({ "id": id, "object": "model", "created": 0, "owned_by": "swarm-fakellm" }))
        .collect();
    Json(json!({ "object": "list", "data": data })).into_response()
}

async fn chat_completions(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(String::from);
    let request = match ChatRequest::parse(&body) {
        Ok(request) => request,
        Err(message) => {
            let kind = ResponseKind::BadRequest { message: message.clone() };
            state.log.push(record(&uri, None, false, Vec::new(), None, kind));
            return error_response(
                StatusCode::BAD_REQUEST,
                openai::error_body(&message, "invalid_request_error", None),
            );
        }
    };
    let tools: Vec<String> = request.tools.iter().map(|tool| tool.name.clone()).collect();
    let model = Some(request.model.clone());
    let user = request.user_messages.clone();
    let record = |uri: &Uri, model, stream, tools, turn, kind| RequestRecord {
        user: user.clone(),
        bearer: bearer.clone(),
        ..record(uri, model, stream, tools, turn, kind)
    };
    let (Some(script), Some(counter)) =
        (state.scenario.models.get(&request.model), state.counters.get(&request.model))
    else {
        state.log.push(record(&uri, model, request.stream, tools, None, ResponseKind::ModelNotFound));
        let message =
            format!("The model `{}` does not exist or you do not have access to it.", request.model);
        return error_response(
            StatusCode::NOT_FOUND,
            openai::error_body(&message, "invalid_request_error", Some("model_not_found")),
        );
    };
    let nth = counter.fetch_add(1, Ordering::SeqCst) + 1;
    let over = script.limits.and_then(|limits| {
        let window = state.windows.get(&request.model)?;
        over_limit(window, &limits, request.prompt_bytes.div_ceil(4) as u64)
    });
    let reply = match over {
        Some((what, retry_after)) => Reply::RateLimited {
            retry_after,
            message: format!(
                "Rate limit reached for model `{}` (fake-llm): {what}. Please try again in {retry_after}s.",
                request.model
            ),
        },
        None => turn::decide(&request.model, script, &request, nth),
    };
    match reply {
        Reply::Hang => {
            state.log.push(record(&uri, model, request.stream, tools, None, ResponseKind::Hang));
            let mut stop = state.shutdown.clone();
            let _ = stop.wait_for(|&stopped| stopped).await;
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                openai::error_body("fake-llm is shutting down", "server_error", None),
            )
        }
        Reply::RateLimited { retry_after, message } => {
            state.log.push(record(
                &uri,
                model,
                request.stream,
                tools,
                None,
                ResponseKind::RateLimited { retry_after },
            ));
            let mut response = error_response(
                StatusCode::TOO_MANY_REQUESTS,
                openai::error_body(&message, "rate_limit_error", Some("rate_limit_exceeded")),
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            response
        }
        Reply::Error { status, message, retry_after } => {
            state.log.push(record(&uri, model, request.stream, tools, None, ResponseKind::Error { status }));
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = error_response(
                status,
                openai::error_body(&message, openai::error_type(status.as_u16()), None),
            );
            if let Some(secs) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
        Reply::Answer { delay, chunk_delay, turn, answer } => {
            let kind = match &answer {
                Answer::Text(text) => ResponseKind::Text { text: text.clone() },
                Answer::ToolCall(call) => {
                    ResponseKind::ToolCall { tool: call.name.clone(), arguments: call.arguments.to_string() }
                }
            };
            let seq = state.log.push(record(&uri, model, request.stream, tools, Some(turn), kind));
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let meta = Meta {
                id: format!("chatcmpl-fake-{seq}"),
                tool_call_id: format!("call_fake_{seq}"),
                model: request.model.clone(),
                created: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            };
            let usage = openai::usage(script.usage, &request, &answer);
            if request.stream {
                let usage = request.include_usage.then_some(usage);
                stream_response(openai::chunks(&meta, &answer, usage), chunk_delay)
            } else {
                Json(openai::completion(&meta, &answer, usage)).into_response()
            }
        }
    }
}

/// Server-sent events: one `data: {chunk}` per chunk, then `data: [DONE]`.
fn stream_response(chunks: Vec<Value>, chunk_delay: Duration) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(4);
    tokio::spawn(async move {
        let events =
            chunks.iter().map(|chunk| format!("data: {chunk}\n\n")).chain(["data: [DONE]\n\n".to_string()]);
        for (index, event) in events.enumerate() {
            if index > 0 && !chunk_delay.is_zero() {
                tokio::time::sleep(chunk_delay).await;
            }
            if tx.send(Ok(Bytes::from(event))).await.is_err() {
                return; // the client went away
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn error_response(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn record(
    uri: &Uri,
    model: Option<String>,
    stream: bool,
    tools: Vec<String>,
    turn: Option<usize>,
    response: ResponseKind,
) -> RequestRecord {
    RequestRecord {
        seq: 0,
        at_ms: 0,
        path: uri.path().to_string(),
        model,
        stream,
        tools,
        turn,
        user: Vec::new(),
        bearer: None,
        response,
    }
}

/// Whether one more request of `tokens` passes a limit of `limits` (sliding windows of a minute
/// and a day); if not, it is recorded. `Some((what, seconds until enough of the window frees))`.
fn over_limit(
    window: &std::sync::Mutex<std::collections::VecDeque<(std::time::Instant, u64)>>,
    limits: &crate::scenario::Limits,
    tokens: u64,
) -> Option<(String, u64)> {
    use std::time::{Duration, Instant};
    let now = Instant::now();
    let (minute, day) = (Duration::from_secs(60), Duration::from_secs(86_400));
    let mut w = window.lock().unwrap_or_else(|e| e.into_inner());
    while w.front().is_some_and(|(at, _)| now.duration_since(*at) >= day) {
        w.pop_front();
    }
    let recent: Vec<(Instant, u64)> =
        w.iter().copied().filter(|(at, _)| now.duration_since(*at) < minute).collect();
    let secs_until = |at: Instant, span: Duration| {
        (span.saturating_sub(now.duration_since(at)).as_millis() as u64).div_ceil(1000).max(1)
    };
    if let Some(rpm) = limits.rpm.filter(|&l| recent.len() as u64 >= l) {
        let oldest = recent[recent.len() - rpm as usize].0;
        return Some((format!("limit {rpm} requests per minute"), secs_until(oldest, minute)));
    }
    if let Some(rpd) = limits.rpd.filter(|&l| w.len() as u64 >= l) {
        let oldest = w[w.len() - rpd as usize].0;
        return Some((format!("limit {rpd} requests per day"), secs_until(oldest, day)));
    }
    if let Some(tpm) = limits.tpm {
        let used: u64 = recent.iter().map(|(_, t)| t).sum();
        if used + tokens > tpm {
            // When enough of the minute's tokens have aged out.
            let mut freed = 0;
            let need = used + tokens - tpm;
            let at = recent.iter().find(|(_, t)| {
                freed += t;
                freed >= need
            });
            let wait = at.map_or(60, |(at, _)| secs_until(*at, minute));
            return Some((format!("limit {tpm} tokens per minute"), wait));
        }
    }
    w.push_back((now, tokens));
    None
}
