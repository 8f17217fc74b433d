//! The gateway's faces toward agents: a route per wire format an agent CLI speaks (OpenAI Chat,
//! Anthropic Messages, OpenAI Responses, Gemini) that reads the agent's token and request into
//! an [`Ask`] for the one pipeline of [`super::proxy`], and the gateway's own answers (refusals,
//! waits, give-ups) written so the agent's client understands them.

use super::{proxy, Grant, Shared};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use swarm_wire::gemini::{self, Method};
use swarm_wire::{signal, Call, Context, Failure, FailureKind, Format, Reply, Signal, Translator};

/// An agent's request, in its own format, as the pipeline takes it.
pub(super) struct Ask {
    pub agent: Format,
    /// A JSON object.
    pub body: Value,
    /// The model and streaming as the URL says (Gemini); otherwise the body says.
    pub url_model: Option<String>,
    pub url_stream: Option<bool>,
    /// The agent's `anthropic-version` and `anthropic-beta`, for an Anthropic upstream.
    pub anthropic_headers: Vec<(String, String)>,
    /// The id the answer's message, response and item ids derive from.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
}

impl Ask {
    pub(super) fn new(agent: Format, body: Value) -> Ask {
        let created =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Ask {
            agent,
            body,
            url_model: None,
            url_stream: None,
            anthropic_headers: Vec::new(),
            id: format!("swarm{:016x}", fastrand::u64(..)),
            created,
        }
    }

    pub(super) fn call(&self) -> Call {
        Call {
            model: self.url_model.clone(),
            stream: self.url_stream,
            id: self.id.clone(),
            created: self.created,
        }
    }

    /// The context the gateway's own answers to this request are written in.
    fn context(&self) -> Context {
        Translator { agent: self.agent, upstream: Format::Chat }.context(&self.body, self.call())
    }
}

/// How long a request may be held without an answer while the gateway waits for a model to
/// free up, before the agent's own client would give up on it (issue 19 captures `*-hang`):
/// Gemini CLI's fetch fails after 65–100 s, Codex waits 300 s for a whole answer
/// (`OPENAI_TIMEOUT_MS`), Claude Code about 6 minutes. A longer wait is the agent's to do:
/// it gets its own "wait" signal. Chat agents are held up to `max_wait`, as they always were.
pub(super) fn hold_limit(agent: Format) -> Duration {
    match agent {
        Format::Gemini => Duration::from_secs(45),
        Format::Responses => Duration::from_secs(240),
        Format::Anthropic => Duration::from_secs(300),
        Format::Chat => Duration::MAX,
    }
}

/// The grant of whichever token the agent sent (`x-api-key`, `Authorization: Bearer`,
/// `x-goog-api-key`, or Gemini's `?key=`), and that token.
fn grant_of(shared: &Shared, headers: &HeaderMap, uri: &Uri) -> Option<(String, Grant)> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let bearer = header(header::AUTHORIZATION.as_str()).and_then(|v| v.strip_prefix("Bearer "));
    let query = uri.query().unwrap_or("").split('&').find_map(|kv| kv.strip_prefix("key="));
    let grants = shared.grants.lock().expect("grants");
    [header("x-api-key"), bearer, header("x-goog-api-key"), query]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find_map(|token| grants.get(token).map(|g| (token.to_string(), g.clone())))
}

fn unauthorized(agent: Format) -> Response {
    refuse(agent, StatusCode::UNAUTHORIZED, "swarm gateway: unknown or expired token", "invalid_api_key")
}

/// The gateway's own error answer in the agent's format (`code` names it for OpenAI clients).
pub(super) fn refuse(agent: Format, status: StatusCode, message: &str, code: &str) -> Response {
    if matches!(agent, Format::Chat | Format::Responses) {
        let body = json!({ "error": { "message": message, "type": "swarm_gateway", "code": code } });
        return (status, Json(body)).into_response();
    }
    let kind = match status.as_u16() {
        401 | 403 => FailureKind::Auth,
        404 => FailureKind::NotFound,
        400..=499 => FailureKind::BadRequest,
        503 => FailureKind::Overloaded,
        _ => FailureKind::Server,
    };
    reply(Failure::new(status.as_u16(), kind, message).reply(agent))
}

/// An error answer of swarm-wire's, as HTTP.
pub(super) fn reply(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = (status, Json(reply.body)).into_response();
    for (name, value) in reply.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            out.headers_mut().insert(n, v);
        }
    }
    out
}

fn signal_response(signal: Signal) -> Response {
    match signal {
        Signal::Reply(r) => reply(r),
        Signal::Stream(bytes) => {
            let mut out = Response::new(Body::from(bytes));
            out.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            out
        }
    }
}

/// No model can serve the request in time (or the budget is spent): the answer the agent's
/// client takes as final. Chat agents get a 400 `models_exhausted` (they would retry a 429).
pub(super) fn give_up(ask: &Ask, why: &str) -> Response {
    let message = format!("swarm: models_exhausted: {why}");
    match ask.agent {
        Format::Chat => refuse(Format::Chat, StatusCode::BAD_REQUEST, &message, "models_exhausted"),
        _ => signal_response(signal::give_up(&ask.context(), &message)),
    }
}

/// The answer that makes the agent's client send the request again in `delay`.
pub(super) fn wait(ask: &Ask, delay: Duration, why: &str) -> Response {
    signal_response(signal::wait(&ask.context(), delay, &format!("swarm gateway: {why}")))
}

/// Why a request was turned away at the door.
enum Refused {
    Token,
    Body,
}

impl Refused {
    fn answer(self, agent: Format) -> Response {
        match self {
            Refused::Token => unauthorized(agent),
            Refused::Body => {
                let message = "swarm gateway: the body is not a JSON object";
                refuse(agent, StatusCode::BAD_REQUEST, message, "invalid_request")
            }
        }
    }
}

/// Reads the agent's token and body.
fn admit(
    shared: &Shared,
    headers: &HeaderMap,
    uri: &Uri,
    body: &Bytes,
) -> Result<(String, Grant, Value), Refused> {
    let (token, grant) = grant_of(shared, headers, uri).ok_or(Refused::Token)?;
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok((token, grant, v)),
        _ => Err(Refused::Body),
    }
}

async fn enter(
    shared: Arc<Shared>,
    agent: Format,
    (headers, uri, body): (HeaderMap, Uri, Bytes),
    url: Option<(String, bool)>,
) -> Response {
    let (token, grant, value) = match admit(&shared, &headers, &uri, &body) {
        Ok(admitted) => admitted,
        Err(refused) => return refused.answer(agent),
    };
    let mut ask = Ask::new(agent, value);
    if let Some((model, stream)) = url {
        (ask.url_model, ask.url_stream) = (Some(model), Some(stream));
    }
    for name in ["anthropic-version", "anthropic-beta"] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            ask.anthropic_headers.push((name.to_string(), v.to_string()));
        }
    }
    proxy::serve(&shared, token, grant, ask, body.len()).await
}

/// A token count, estimated here: counting spends no request of any model's limits.
fn count(shared: &Shared, agent: Format, headers: &HeaderMap, uri: &Uri, body: &Bytes) -> Response {
    let value = match admit(shared, headers, uri, body) {
        Ok((_, _, value)) => value,
        Err(refused) => return refused.answer(agent),
    };
    match swarm_wire::tokens::count_answer(agent, &value) {
        Ok(answer) => Json(answer).into_response(),
        Err(e) => refuse(agent, StatusCode::BAD_REQUEST, &format!("swarm gateway: {e}"), "invalid_request"),
    }
}

pub(super) async fn chat(State(s): State<Arc<Shared>>, h: HeaderMap, uri: Uri, body: Bytes) -> Response {
    enter(s, Format::Chat, (h, uri, body), None).await
}

pub(super) async fn messages(State(s): State<Arc<Shared>>, h: HeaderMap, uri: Uri, body: Bytes) -> Response {
    enter(s, Format::Anthropic, (h, uri, body), None).await
}

pub(super) async fn count_tokens(
    State(s): State<Arc<Shared>>,
    h: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    count(&s, Format::Anthropic, &h, &uri, &body)
}

pub(super) async fn responses(State(s): State<Arc<Shared>>, h: HeaderMap, uri: Uri, body: Bytes) -> Response {
    enter(s, Format::Responses, (h, uri, body), None).await
}

/// `models/{m}:generateContent`, `:streamGenerateContent`, `:countTokens`.
pub(super) async fn gemini(State(s): State<Arc<Shared>>, h: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let Some((model, method)) = gemini::parse_path(uri.path()) else {
        let message = format!("swarm gateway: no such Gemini method: {}", uri.path());
        return refuse(Format::Gemini, StatusCode::NOT_FOUND, &message, "not_found");
    };
    match method {
        Method::CountTokens => count(&s, Format::Gemini, &h, &uri, &body),
        Method::Generate => enter(s, Format::Gemini, (h, uri, body), Some((model, false))).await,
        Method::StreamGenerate => enter(s, Format::Gemini, (h, uri, body), Some((model, true))).await,
    }
}

/// Claude Code's connectivity probe (`HEAD /api/hello`, `HEAD /`).
pub(super) async fn hello() -> StatusCode {
    StatusCode::OK
}

pub(super) async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap, uri: Uri) -> Response {
    if grant_of(&shared, &headers, &uri).is_none() {
        return unauthorized(Format::Chat);
    }
    let mut data = vec![json!({ "id": "auto", "object": "model", "owned_by": "swarm" })];
    let catalog = &shared.hierarchy.catalog;
    data.extend(
        catalog.models.iter().map(|m| json!({ "id": m.id, "object": "model", "owned_by": m.provider })),
    );
    Json(json!({ "object": "list", "data": data })).into_response()
}
