//! Upstream failures: read from any format's error body, and written in the agent's format.

use crate::Format;
use serde_json::{json, Value};
use std::time::Duration;

/// What kind of failure, as far as an agent's retry logic cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Per-minute limits: waiting helps.
    RateLimited,
    /// Per-day or billing quota: waiting a minute does not help.
    QuotaExhausted,
    Overloaded,
    ContextTooLong,
    Auth,
    NotFound,
    BadRequest,
    Server,
}

/// An upstream failure in no particular format.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub status: u16,
    pub kind: FailureKind,
    pub message: String,
    pub retry_after: Option<Duration>,
}

/// An error answer in an agent's format: status, extra headers, JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Failure {
    pub fn new(status: u16, kind: FailureKind, message: impl Into<String>) -> Self {
        Failure { status, kind, message: message.into(), retry_after: None }
    }

    /// Reads an upstream error answer in any format (any body: JSON or not). `retry_after` is the
    /// answer's `retry-after` header when the caller has one; hints in the body (Gemini's
    /// `RetryInfo`, "retry in 17s") are used when it has not.
    pub fn from_upstream(status: u16, body: &[u8], retry_after: Option<Duration>) -> Failure {
        let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let err = if json.is_array() { &json[0]["error"] } else { &json["error"] };
        let message = err["message"]
            .as_str()
            .or_else(|| err.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned());
        let code = [&err["code"], &err["type"], &err["status"]]
            .iter()
            .filter_map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let per_day = quota_ids(err).iter().any(|q| q.contains("PerDay") || q.contains("Daily"));
        let kind = classify(status, &format!("{code} {message}"), per_day);
        let retry_after = retry_after.or_else(|| retry_info(err)).or_else(|| retry_in(&message));
        Failure { status, kind, message, retry_after }
    }

    /// The answer `agent` understands for this failure.
    pub fn reply(&self, agent: Format) -> Reply {
        match agent {
            Format::Chat | Format::Responses => self.openai_reply(),
            Format::Anthropic => self.anthropic_reply(),
            Format::Gemini => self.gemini_reply(),
        }
    }

    fn retry_headers(&self) -> Vec<(String, String)> {
        match self.retry_after {
            Some(d) => vec![
                ("retry-after".into(), d.as_secs_f64().ceil().to_string()),
                ("retry-after-ms".into(), d.as_millis().to_string()),
            ],
            None => Vec::new(),
        }
    }

    fn openai_reply(&self) -> Reply {
        let (kind, code) = match self.kind {
            FailureKind::RateLimited => ("rate_limit_exceeded", "rate_limit_exceeded"),
            FailureKind::QuotaExhausted => ("insufficient_quota", "insufficient_quota"),
            FailureKind::Overloaded => ("server_error", "server_is_overloaded"),
            FailureKind::ContextTooLong => ("invalid_request_error", "context_length_exceeded"),
            FailureKind::Auth => ("authentication_error", "invalid_api_key"),
            FailureKind::NotFound => ("invalid_request_error", "model_not_found"),
            FailureKind::BadRequest => ("invalid_request_error", "invalid_request"),
            FailureKind::Server => ("server_error", "server_error"),
        };
        let body = json!({ "error": { "message": self.message, "type": kind, "code": code, "param": null } });
        Reply { status: self.status, headers: self.retry_headers(), body }
    }

    fn anthropic_reply(&self) -> Reply {
        let (status, kind) = match self.kind {
            FailureKind::RateLimited | FailureKind::QuotaExhausted => (429, "rate_limit_error"),
            FailureKind::Overloaded => (529, "overloaded_error"),
            FailureKind::ContextTooLong | FailureKind::BadRequest => (400, "invalid_request_error"),
            FailureKind::Auth if self.status == 403 => (403, "permission_error"),
            FailureKind::Auth => (401, "authentication_error"),
            FailureKind::NotFound => (404, "not_found_error"),
            FailureKind::Server => (self.status.max(500), "api_error"),
        };
        let body = json!({ "type": "error", "error": { "type": kind, "message": self.message } });
        Reply { status, headers: self.retry_headers(), body }
    }

    fn gemini_reply(&self) -> Reply {
        let (status, name) = match self.kind {
            FailureKind::RateLimited | FailureKind::QuotaExhausted => (429, "RESOURCE_EXHAUSTED"),
            FailureKind::Overloaded => (503, "UNAVAILABLE"),
            FailureKind::ContextTooLong | FailureKind::BadRequest => (400, "INVALID_ARGUMENT"),
            FailureKind::Auth if self.status == 403 => (403, "PERMISSION_DENIED"),
            FailureKind::Auth => (401, "UNAUTHENTICATED"),
            FailureKind::NotFound => (404, "NOT_FOUND"),
            FailureKind::Server => (500, "INTERNAL"),
        };
        let mut details = Vec::new();
        let quota = match self.kind {
            FailureKind::RateLimited => Some("GenerateRequestsPerMinutePerProjectPerModel"),
            FailureKind::QuotaExhausted => Some("GenerateRequestsPerDayPerProjectPerModel"),
            _ => None,
        };
        if let Some(quota_id) = quota {
            details.push(json!({
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{ "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests", "quotaId": quota_id }],
            }));
        }
        if let Some(d) = self.retry_after.filter(|_| self.kind != FailureKind::QuotaExhausted) {
            details.push(json!({
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": format!("{}s", d.as_secs_f64().ceil()),
            }));
        }
        let body = json!({ "error": { "code": status, "message": self.message, "status": name, "details": details } });
        Reply { status, headers: self.retry_headers(), body }
    }
}

fn classify(status: u16, text: &str, per_day: bool) -> FailureKind {
    let t = text.to_ascii_lowercase();
    let quota = per_day
        || [
            "insufficient_quota",
            "quota exceeded for quota metric",
            "per day",
            "daily",
            "billing",
            "credit balance",
        ]
        .iter()
        .any(|k| t.contains(k));
    let context =
        ["context_length", "context length", "prompt is too long", "too many tokens", "maximum context"]
            .iter()
            .any(|k| t.contains(k));
    match status {
        429 if quota => FailureKind::QuotaExhausted,
        429 => FailureKind::RateLimited,
        402 => FailureKind::QuotaExhausted,
        401 | 403 => FailureKind::Auth,
        404 => FailureKind::NotFound,
        400 | 413 | 422 if context => FailureKind::ContextTooLong,
        413 => FailureKind::ContextTooLong,
        503 | 529 => FailureKind::Overloaded,
        500..=599 if t.contains("overloaded") => FailureKind::Overloaded,
        500..=599 => FailureKind::Server,
        _ => FailureKind::BadRequest,
    }
}

/// Gemini's `QuotaFailure` quota ids.
fn quota_ids(err: &Value) -> Vec<String> {
    let details = err["details"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    details
        .iter()
        .flat_map(|d| d["violations"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v["quotaId"].as_str().map(str::to_string))
        .collect()
}

/// Gemini's `RetryInfo.retryDelay` ("17s", "1.5s", "900ms").
fn retry_info(err: &Value) -> Option<Duration> {
    let details = err["details"].as_array()?;
    let delay = details.iter().find_map(|d| d["retryDelay"].as_str())?;
    parse_delay(delay)
}

pub(crate) fn parse_delay(text: &str) -> Option<Duration> {
    let (number, ms) = match text.strip_suffix("ms") {
        Some(n) => (n, true),
        None => (text.strip_suffix('s')?, false),
    };
    let n: f64 = number.trim().parse().ok().filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    Some(Duration::from_secs_f64(if ms { n / 1000.0 } else { n.min(1e9) }))
}

/// "Please retry in 17.75s" (Gemini) or "Please try again in 20s" (OpenAI).
fn retry_in(message: &str) -> Option<Duration> {
    let lower = message.to_ascii_lowercase();
    let at =
        lower.find("retry in ").map(|i| i + 9).or_else(|| lower.find("try again in ").map(|i| i + 13))?;
    let rest = &lower[at..];
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let unit = rest[end..].trim_start();
    let unit = if unit.starts_with("ms") {
        "ms"
    } else if unit.starts_with('s') {
        "s"
    } else {
        return None;
    };
    parse_delay(&format!("{}{unit}", &rest[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemini_per_day_quota_is_exhaustion_and_per_minute_waits() {
        let body = br#"{"error":{"code":429,"message":"Quota exceeded. Please retry in 17.75s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"10s"}]}}"#;
        let f = Failure::from_upstream(429, body, None);
        assert_eq!((f.kind, f.retry_after), (FailureKind::RateLimited, Some(Duration::from_secs(10))));
        let day = String::from_utf8_lossy(body).replace("PerMinute", "PerDay");
        let f = Failure::from_upstream(429, day.as_bytes(), None);
        assert_eq!(f.kind, FailureKind::QuotaExhausted);
    }

    #[test]
    fn retry_hints_in_messages_and_garbage_bodies() {
        let body = br#"{"error":{"message":"Rate limit reached. Please try again in 1.5s.","type":"requests","code":"rate_limit_exceeded"}}"#;
        let f = Failure::from_upstream(429, body, None);
        assert_eq!(f.retry_after, Some(Duration::from_millis(1500)));
        let f = Failure::from_upstream(529, b"\xff not json", None);
        assert_eq!(f.kind, FailureKind::Overloaded);
        assert_eq!(parse_delay("900ms"), Some(Duration::from_millis(900)));
        assert_eq!(parse_delay("-1s"), None);
        let f = Failure::from_upstream(
            400,
            br#"{"error":{"message":"This model's maximum context length is 8192"}}"#,
            None,
        );
        assert_eq!(f.kind, FailureKind::ContextTooLong);
    }
}
