//! The gateway's side toward providers: a request translated into the provider's format
//! ([`outbound`]) and forwarded with its key and model id, a failure read and classified.

use super::face::{self, Ask};
use crate::hierarchy::Hierarchy;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use std::time::Duration;
use swarm_core::failure::{self, FailureClass};
use swarm_wire::{Context, Format, Translated, Translator, WireError};

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
    /// that looks like a key taken out: as the provider said it when the agent speaks the
    /// provider's format, else read and written in the agent's.
    pub(super) fn into_response(self, t: Translator) -> Response {
        let (headers, bytes) = self.reply.unwrap_or_default();
        let text = scrub(&String::from_utf8_lossy(&bytes), self.key.as_deref());
        if !t.passthrough() {
            return face::reply(t.error(&t.read_failure(self.status, text.as_bytes(), self.retry_after)));
        }
        let mut out = Response::new(Body::from(text));
        *out.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_GATEWAY);
        copy_content_type(headers.get(reqwest::header::CONTENT_TYPE), &mut out);
        out
    }
}

/// The wire format a provider speaks, by its kind (`swarm_core::config::PROVIDER_KINDS`); a
/// `gemini` provider at Gemini's OpenAI-compatible endpoint (`…/v1beta/openai`) speaks Chat.
pub(super) fn format_of(provider: Option<&swarm_core::config::ProviderConfig>) -> Format {
    let Some(p) = provider else { return Format::Chat };
    let openai_path = p.base_url.as_deref().is_some_and(|u| u.trim_end_matches('/').ends_with("/openai"));
    match p.kind.as_str() {
        "anthropic" => Format::Anthropic,
        "gemini" if !openai_path => Format::Gemini,
        _ => Format::Chat,
    }
}

/// A request in its provider's format, ready to send, and how to read its answer back.
pub(super) struct Outbound {
    pub translator: Translator,
    pub body: Value,
    pub ctx: Context,
    /// The agent's `anthropic-*` headers, for an Anthropic provider.
    anthropic_headers: Vec<(String, String)>,
}

/// The agent's request translated for model `model`'s provider: its format, its model id, and
/// a streamed answer's usage asked for (the gateway meters every request). The rest passes
/// untouched where agent and provider speak the same format.
pub(super) fn outbound(h: &Hierarchy, model: usize, ask: &Ask) -> Result<Outbound, WireError> {
    let entry = &h.catalog.models[model];
    let translator = Translator::new(ask.agent, format_of(h.config.providers.get(&entry.provider)))?;
    let Translated { mut body, ctx } = translator.request(&ask.body, ask.call())?;
    if let Value::Object(o) = &mut body {
        if translator.upstream != Format::Gemini {
            o.insert("model".into(), Value::String(entry.provider_model.clone()));
        }
        if translator.upstream == Format::Chat && ctx.stream {
            let opts = o.entry("stream_options").or_insert_with(|| json!({}));
            if let Value::Object(opts) = opts {
                opts.insert("include_usage".into(), Value::Bool(true));
            }
        }
    }
    Ok(Outbound { translator, body, ctx, anthropic_headers: ask.anthropic_headers.clone() })
}

/// The request to the provider at `base` for its model `model`: the URL its format takes it at,
/// and the key in the header that format reads it from.
fn request(
    client: &reqwest::Client,
    base: &str,
    model: &str,
    out: &Outbound,
    key: Option<&str>,
) -> (String, reqwest::RequestBuilder) {
    let base = base.trim_end_matches('/');
    let url = match out.translator.upstream {
        Format::Anthropic => format!("{base}/messages"),
        Format::Gemini => format!("{base}{}", swarm_wire::gemini::upstream_path(model, out.ctx.stream)),
        _ => format!("{base}/chat/completions"),
    };
    let mut req = client.post(&url).json(&out.body);
    match (out.translator.upstream, key) {
        (Format::Anthropic, key) => {
            if let Some(key) = key {
                req = req.header("x-api-key", key);
            }
            let mut version = "2023-06-01";
            for (name, value) in &out.anthropic_headers {
                match name.as_str() {
                    "anthropic-version" => version = value,
                    _ => req = req.header(name, value),
                }
            }
            req = req.header("anthropic-version", version);
        }
        (Format::Gemini, Some(key)) => req = req.header("x-goog-api-key", key),
        (_, Some(key)) => req = req.bearer_auth(key),
        (_, None) => {}
    }
    (url, req)
}

/// Sends the translated request to model `model`'s provider, with the provider's key and model
/// id, and reads what must be read before the agent may see any of it: a failure, a whole
/// answer, a stream's first chunk. A provider that does not answer in time, or breaks off
/// before that, is a failure the request can move on from.
pub(super) async fn forward(shared: &super::Shared, h: &Hierarchy, model: usize, out: &Outbound) -> Answer {
    let entry = &h.catalog.models[model];
    let provider = h.config.providers.get(&entry.provider).cloned().unwrap_or_default();
    let base = provider.base_url.clone().unwrap_or_default();
    let key = match provider.api_key_env.as_deref() {
        Some(var) => match std::env::var(var) {
            Ok(key) => Some(key),
            // A local server may need no key; any other provider refuses the request anyway.
            Err(_) if crate::os::net::is_loopback(&base) => None,
            Err(_) => return Answer::Failed(unset_key(var)),
        },
        None => None,
    };
    let streaming = out.ctx.stream;
    let (url, req) = request(&shared.client, &base, &entry.provider_model, out, key.as_deref());
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

pub(super) fn fmt(d: Duration) -> String {
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

pub(super) fn copy_content_type(ct: Option<&reqwest::header::HeaderValue>, out: &mut Response) {
    if let Some(v) = ct.and_then(|ct| HeaderValue::from_bytes(ct.as_bytes()).ok()) {
        out.headers_mut().insert(axum::http::header::CONTENT_TYPE, v);
    }
}

#[cfg(test)]
mod format_of_tests {
    use super::format_of;
    use swarm_core::config::ProviderConfig;
    use swarm_wire::Format;

    fn provider(kind: &str, base_url: &str) -> ProviderConfig {
        ProviderConfig { kind: kind.into(), base_url: Some(base_url.into()), ..ProviderConfig::default() }
    }

    #[test]
    fn a_provider_speaks_its_kinds_format_and_geminis_openai_endpoint_speaks_chat() {
        let gemini = "https://generativelanguage.googleapis.com/v1beta";
        assert_eq!(format_of(Some(&provider("gemini", gemini))), Format::Gemini);
        assert_eq!(format_of(Some(&provider("gemini", &format!("{gemini}/openai/")))), Format::Chat);
        assert_eq!(
            format_of(Some(&provider("anthropic", "https://api.anthropic.com/v1"))),
            Format::Anthropic
        );
        assert_eq!(format_of(Some(&provider("ollama", "http://127.0.0.1:11434/v1"))), Format::Chat);
        assert_eq!(format_of(None), Format::Chat);
    }
}
