//! `swarm serve`: MCP (streamable HTTP) at `/mcp`, the JSON API under `/api/`, a run's events as
//! Server-Sent Events, and the dashboard at `/`, on one axum server. Loopback by default; every
//! request carries a bearer token (the dashboard: a cookie). Browsers' requests from other
//! origins are refused (DNS rebinding), and so are requests naming a host that is not this
//! server's.

use super::app::{off_loop, App, OpError, PlanInput};
use super::mcp::SwarmMcp;
use super::sessions::{SessionLimits, Sessions, SessionsError};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use swarm_runner::Followed;

/// Who may talk to the server.
#[derive(Clone)]
pub struct Guard {
    /// `Authorization: Bearer <token>` (or the dashboard's cookie) required on every request but
    /// the dashboard's page itself.
    pub token: String,
    /// The dashboard keeps the token in this cookie (one per port: cookies ignore ports).
    pub cookie: String,
    /// The addresses this server answers as (`Host`), loopback names included.
    pub hosts: Vec<String>,
    /// The browser origins allowed (the dashboard's own).
    pub origins: Vec<String>,
}

/// Why a request is refused.
type Refusal = (StatusCode, &'static str);

impl Guard {
    pub fn new(bind: SocketAddr, token: String) -> Guard {
        let port = bind.port();
        let mut hosts =
            vec![format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")];
        if !bind.ip().is_loopback() && !bind.ip().is_unspecified() {
            hosts.push(bind.to_string());
        }
        let origins = hosts.iter().map(|h| format!("http://{h}")).collect();
        Guard { token, cookie: format!("swarm_token_{port}"), hosts, origins }
    }

    fn matches(&self, given: &str) -> bool {
        subtle::ConstantTimeEq::ct_eq(given.as_bytes(), self.token.as_bytes()).into()
    }

    /// The bearer token, or the dashboard's cookie on a request from the dashboard's own origin
    /// (a browser sends cookies with other sites' requests too).
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if let Some(given) = bearer {
            return self.matches(given);
        }
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        let same_origin = match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            None => true,
            Some(origin) => origin == format!("http://{host}") || self.origins.iter().any(|o| o == origin),
        };
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(name, _)| *name == self.cookie)
            .map(|(_, value)| value);
        same_origin && cookie.is_some_and(|c| self.matches(c))
    }

    /// Whether a request may pass: its token (the dashboard's page needs none: it holds no data
    /// and reads the token from its address), its `Origin` (a browser's request from a page this
    /// server did not serve is refused), and on a loopback server its `Host` (a DNS-rebound name
    /// is refused).
    fn check(&self, page: bool, headers: &HeaderMap, open_bind: bool) -> Result<(), Refusal> {
        if !page && !self.authorized(headers) {
            return Err((
                StatusCode::UNAUTHORIZED,
                "a bearer token is required (Authorization: Bearer …; see .swarm/serve-token)",
            ));
        }
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            if !open_bind && !self.origins.iter().any(|o| o == origin) {
                return Err((StatusCode::FORBIDDEN, "requests from other origins are refused"));
            }
        }
        if !open_bind {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !host.is_empty() && !self.hosts.iter().any(|h| h == host) {
                return Err((StatusCode::FORBIDDEN, "unknown Host (this server answers on loopback only)"));
            }
        }
        Ok(())
    }
}

#[derive(Clone)]
struct Shared {
    app: Arc<App>,
    guard: Guard,
    open_bind: bool,
    sessions: Arc<Sessions>,
}

async fn guard(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let page = req.method() == axum::http::Method::GET && req.uri().path() == "/";
    if let Err((status, why)) = s.guard.check(page, req.headers(), s.open_bind) {
        return (status, Json(json!({ "error": why }))).into_response();
    }
    match admit(&s.sessions, req).await {
        Ok(req) => next.run(req).await,
        Err(refused) => refused,
    }
}

/// The largest MCP request body read (rmcp's own limit).
const MAX_MCP_BODY: usize = 4 * 1024 * 1024;

/// An MCP `initialize` (a new session) when no session can be had is refused with 503, saying
/// why (rmcp would answer 500); every other request passes.
async fn admit(sessions: &Sessions, req: Request) -> Result<Request, Response> {
    let new_session = req.method() == axum::http::Method::POST
        && req.uri().path() == "/mcp"
        && !req.headers().contains_key("mcp-session-id");
    if !new_session || sessions.has_room() {
        return Ok(req);
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_MCP_BODY).await else {
        let too_large =
            json!({ "error": format!("an MCP request body may be at most {MAX_MCP_BODY} bytes") });
        return Err((StatusCode::PAYLOAD_TOO_LARGE, Json(too_large)).into_response());
    };
    let initialize =
        serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| v["method"] == "initialize");
    if !initialize {
        return Ok(Request::from_parts(parts, axum::body::Body::from(bytes)));
    }
    let why = SessionsError::Full { max: sessions.limits().max }.to_string();
    Err((StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "60")], Json(json!({ "error": why })))
        .into_response())
}

pub(super) fn op_error(e: OpError) -> Response {
    let status = StatusCode::from_u16(e.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(json!({ "error": e.message }))).into_response()
}

async fn blocking<T: serde::Serialize + Send + 'static>(
    app: &Arc<App>,
    ok: StatusCode,
    f: impl FnOnce(&Arc<App>) -> Result<T, OpError> + Send + 'static,
) -> Response {
    match off_loop(app, f).await {
        Ok(v) => (ok, Json(v)).into_response(),
        Err(e) => op_error(e),
    }
}

#[derive(Deserialize)]
struct StartBody {
    #[serde(flatten)]
    plan: PlanInput,
    #[serde(default)]
    concurrency: Option<usize>,
}

#[derive(Deserialize)]
struct TailQuery {
    #[serde(default)]
    tail: Option<usize>,
}

#[derive(Deserialize)]
struct WaitQuery {
    #[serde(default)]
    wait_s: Option<f64>,
}

pub fn router(app: Arc<App>, guard_cfg: Guard, open_bind: bool, limits: SessionLimits) -> Router {
    let sessions = Arc::new(Sessions::new(limits));
    let shared = Shared { app: app.clone(), guard: guard_cfg.clone(), open_bind, sessions: sessions.clone() };
    let mut mcp_config = StreamableHttpServerConfig::default();
    // Our own guard checks Host and Origin for every route; rmcp's would refuse a non-loopback
    // bind's own name.
    mcp_config.allowed_hosts = vec![];
    mcp_config.sse_keep_alive = Some(Duration::from_secs(15));
    let mcp_app = app.clone();
    let mcp = StreamableHttpService::new(move || Ok(SwarmMcp::new(mcp_app.clone())), sessions, mcp_config);
    Router::new()
        .route("/", get(dashboard))
        .route("/api/runs", get(list_runs).post(start_run))
        .route("/api/runs/{run_id}", get(run_report))
        .route("/api/runs/{run_id}/events", get(run_events))
        .route("/api/runs/{run_id}/cancel", post(cancel_run))
        .route("/api/runs/{run_id}/tasks/{task_id}/logs", get(task_logs))
        .route("/api/workers", get(list_workers))
        .route("/api/runs/{run_id}/tasks/{task_id}/log", get(task_log_stream))
        .route("/api/runs/{run_id}/timeline", get(run_timeline))
        .route("/api/models", get(models_panel))
        .nest_service("/mcp", mcp)
        .layer(axum::middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared)
}

async fn dashboard() -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Html(super::dashboard::page())).into_response()
}

async fn run_timeline(State(s): State<Shared>, Path(run_id): Path<String>) -> Response {
    blocking(&s.app, StatusCode::OK, move |app| app.run_timeline(&run_id)).await
}

#[derive(Deserialize)]
struct ModelsQuery {
    #[serde(default)]
    run: Option<String>,
}

async fn models_panel(State(s): State<Shared>, Query(q): Query<ModelsQuery>) -> Response {
    blocking(&s.app, StatusCode::OK, move |app| app.models_panel(q.run.as_deref())).await
}

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default)]
    offset: u64,
    #[serde(default)]
    attempt: Option<u32>,
}

/// The task's log as it is written (Server-Sent Events), from `offset`.
async fn task_log_stream(
    State(s): State<Shared>,
    Path((run_id, task_id)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Response {
    super::live_log::stream(s.app.clone(), run_id, task_id, q.attempt, q.offset).await
}

async fn list_runs(State(s): State<Shared>) -> Response {
    blocking(&s.app, StatusCode::OK, |app| app.runs_list(100).map(|runs| json!({ "runs": runs }))).await
}

async fn list_workers(State(s): State<Shared>) -> Response {
    blocking(&s.app, StatusCode::OK, |app| app.workers_list().map(|workers| json!({ "workers": workers })))
        .await
}

async fn start_run(
    State(s): State<Shared>,
    body: Result<Json<StartBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => {
            return op_error(OpError::invalid(format!(
                "a JSON body {{\"plan_path\" | \"plan\", \"concurrency\"?}} is required: {e}"
            )))
        }
    };
    blocking(&s.app, StatusCode::CREATED, move |app| {
        app.run_start(&body.plan, body.concurrency).map(|run_id| json!({ "run_id": run_id }))
    })
    .await
}

async fn run_report(
    State(s): State<Shared>,
    Path(run_id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Response {
    let wait = match super::app::wait_of(q.wait_s) {
        Ok(w) => w,
        Err(e) => return op_error(e),
    };
    blocking(&s.app, StatusCode::OK, move |app| app.run_status(Some(&run_id), wait)).await
}

async fn cancel_run(State(s): State<Shared>, Path(run_id): Path<String>) -> Response {
    blocking(&s.app, StatusCode::OK, move |app| app.run_cancel(&run_id)).await
}

async fn task_logs(
    State(s): State<Shared>,
    Path((run_id, task_id)): Path<(String, String)>,
    Query(q): Query<TailQuery>,
) -> Response {
    blocking(&s.app, StatusCode::OK, move |app| app.task_logs(&run_id, &task_id, q.tail.unwrap_or(200))).await
}

/// The run's events from the start (or after `Last-Event-ID`), then live until it ends: one
/// `data: <event JSON>` per event, its id the event's sequence number in the store.
async fn run_events(State(s): State<Shared>, Path(run): Path<String>, headers: HeaderMap) -> Response {
    let after: u64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let app = s.app.clone();
    let follow = off_loop(&app, move |app| Ok(app.engine.follow(Some(&run), after)?)).await;
    let mut follow = match follow {
        Ok(f) => f,
        Err(e) => return op_error(e),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<SseEvent, Infallible>>(256);
    tokio::spawn(async move {
        loop {
            // The engine waits up to a second for events, off the async threads; between waits
            // the client's leaving is noticed.
            let next = tokio::task::spawn_blocking(move || {
                let r = follow.next(Duration::from_secs(1));
                (follow, r)
            })
            .await;
            let Ok((back, Ok(next))) = next else { break };
            follow = back;
            let events = match next {
                Followed::Events(events) => events,
                Followed::Idle if tx.is_closed() => break,
                Followed::Idle => continue,
                Followed::Ended => {
                    let end = json!({ "run_id": follow.run_id });
                    let _ = tx.send(Ok(SseEvent::default().event("end").data(end.to_string()))).await;
                    break;
                }
            };
            for (seq, ev) in events {
                let data = serde_json::to_string(&ev).unwrap_or_default();
                if tx.send(Ok(SseEvent::default().id(seq.to_string()).data(data))).await.is_err() {
                    return;
                }
            }
        }
    });
    Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx)).keep_alive(KeepAlive::default()).into_response()
}
