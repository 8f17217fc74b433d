//! Why an attempt or a provider request failed: the class decides whether a retry (or another
//! model) can help, and how long to wait before it. Providers' answers (HTTP status, message
//! text, `retry-after`) are classified here, table-driven; agents' outputs by swarm-agents.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// HTTP 429 or "rate limit": wait (retry-after) and try again.
    RateLimited,
    /// The account's quota is used up: another model/provider, not a retry.
    QuotaExhausted,
    /// Payment required / insufficient credits.
    Billing,
    /// The provider is overloaded or failing (5xx, 529).
    Overloaded,
    /// Missing or rejected credentials (401, 403).
    Auth,
    /// The prompt does not fit the model's context window.
    ContextTooLong,
    /// The provider does not know the model (404).
    ModelNotFound,
    /// The agent reported an error that fits no other class.
    AgentError,
    /// The agent died without saying why (signal, non-zero exit with no error).
    Crashed,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::RateLimited => "rate_limited",
            FailureClass::QuotaExhausted => "quota_exhausted",
            FailureClass::Billing => "billing",
            FailureClass::Overloaded => "overloaded",
            FailureClass::Auth => "auth",
            FailureClass::ContextTooLong => "context_too_long",
            FailureClass::ModelNotFound => "model_not_found",
            FailureClass::AgentError => "agent_error",
            FailureClass::Crashed => "crashed",
        }
    }
}

impl FailureClass {
    /// The model's (or its provider's) fault, not the task's: another model may well do. The
    /// classes the router's [`policy`](crate::router::policy) acts on instead of passing them
    /// to the agent.
    pub fn is_model_level(self) -> bool {
        !matches!(self, FailureClass::AgentError | FailureClass::Crashed)
    }
}

impl std::fmt::Display for FailureClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// Providers' answers: status codes and message text → class.

/// Message fragments (lowercase) and the class they mean, most specific first.
const TEXT_RULES: &[(&str, FailureClass)] = &[
    ("insufficient_quota", FailureClass::QuotaExhausted),
    ("quota", FailureClass::QuotaExhausted),
    ("resource_exhausted", FailureClass::QuotaExhausted),
    ("payment required", FailureClass::Billing),
    ("billing", FailureClass::Billing),
    ("insufficient credits", FailureClass::Billing),
    ("credit balance", FailureClass::Billing),
    ("context_length", FailureClass::ContextTooLong),
    ("context length", FailureClass::ContextTooLong),
    ("context window", FailureClass::ContextTooLong),
    ("maximum context", FailureClass::ContextTooLong),
    ("prompt is too long", FailureClass::ContextTooLong),
    ("too many tokens", FailureClass::ContextTooLong),
    ("rate limit", FailureClass::RateLimited),
    ("rate_limit", FailureClass::RateLimited),
    ("ratelimit", FailureClass::RateLimited),
    ("too many requests", FailureClass::RateLimited),
    ("model_not_found", FailureClass::ModelNotFound),
    ("model not found", FailureClass::ModelNotFound),
    ("unknown model", FailureClass::ModelNotFound),
    ("no such model", FailureClass::ModelNotFound),
    // OpenAI's 404 text: "The model `x` does not exist or you do not have access to it."
    ("does not exist or you do not have access", FailureClass::ModelNotFound),
    ("invalid api key", FailureClass::Auth),
    ("invalid_api_key", FailureClass::Auth),
    ("incorrect api key", FailureClass::Auth),
    ("unauthorized", FailureClass::Auth),
    ("authentication", FailureClass::Auth),
    ("forbidden", FailureClass::Auth),
    ("overloaded", FailureClass::Overloaded),
    ("service unavailable", FailureClass::Overloaded),
    ("bad gateway", FailureClass::Overloaded),
    ("gateway timeout", FailureClass::Overloaded),
];

/// Status codes that may appear as bare numbers in a message.
const CODE_RULES: &[(u16, FailureClass)] = &[
    (429, FailureClass::RateLimited),
    (402, FailureClass::Billing),
    (401, FailureClass::Auth),
    (403, FailureClass::Auth),
    (413, FailureClass::ContextTooLong),
    (529, FailureClass::Overloaded),
    (503, FailureClass::Overloaded),
    (502, FailureClass::Overloaded),
];

/// The class of an HTTP status, refined by the message (a 429 about quota is quota, a 400 about
/// the context length is context_too_long).
pub fn from_status(status: u16, message: &str) -> FailureClass {
    let by_text = from_text(message);
    match status {
        // A quota the provider counts per minute passes within a minute: a rate limit, not a
        // day's quota (Gemini says `quota` for both, and names the window in the quota id).
        429 if quota_hint(message).is_some_and(|q| !q.per_day) => FailureClass::RateLimited,
        429 if quota_hint(message).is_some_and(|q| q.per_day) => FailureClass::QuotaExhausted,
        429 => match by_text {
            Some(c @ (FailureClass::QuotaExhausted | FailureClass::Billing)) => c,
            _ => FailureClass::RateLimited,
        },
        402 => FailureClass::Billing,
        401 | 403 => FailureClass::Auth,
        404 => by_text.filter(|c| *c != FailureClass::Auth).unwrap_or(FailureClass::ModelNotFound),
        413 => FailureClass::ContextTooLong,
        // A plain 500 is a fault the tables cannot place; 502/503/504/529 are capacity.
        500 => by_text.unwrap_or(FailureClass::AgentError),
        501..=599 => FailureClass::Overloaded,
        _ => by_text.unwrap_or(FailureClass::AgentError),
    }
}

/// What a provider's quota answer says of the limit it enforces: per day or per minute, and the
/// limit itself when it names it (Gemini: `quotaId` …`PerDay`… / …`PerMinute`… and `limit: 20`
/// in the message; OpenRouter: `free-models-per-day` / `free-models-per-min`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaHint {
    pub per_day: bool,
    pub limit: Option<u64>,
}

/// The quota a 429's body names, if it names one.
pub fn quota_hint(body: &str) -> Option<QuotaHint> {
    let lower = body.to_lowercase();
    let day =
        ["perday", "per_day", "per-day", "per day", "requests per day"].iter().any(|m| lower.contains(m));
    let minute = ["perminute", "per_minute", "per-min", "per minute"].iter().any(|m| lower.contains(m));
    let per_day = match (day, minute) {
        (true, _) => true,
        (false, true) => false,
        (false, false) => return None,
    };
    Some(QuotaHint { per_day, limit: limit_in(&lower) })
}

/// `limit: 20` (Gemini's "Quota exceeded for metric: …, limit: 20, model: …").
fn limit_in(lower: &str) -> Option<u64> {
    let rest = &lower[lower.find("limit: ")? + "limit: ".len()..];
    rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}

/// The class a message's text suggests, if any.
pub fn from_text(message: &str) -> Option<FailureClass> {
    let lower = message.to_lowercase();
    TEXT_RULES
        .iter()
        .find(|(needle, _)| lower.contains(needle))
        .map(|(_, c)| *c)
        .or_else(|| CODE_RULES.iter().find(|(code, _)| has_code(&lower, *code)).map(|(_, c)| *c))
}

/// `code` as a whole number in `text` (not part of a longer number).
fn has_code(text: &str, code: u16) -> bool {
    let needle = code.to_string();
    let bytes = text.as_bytes();
    text.match_indices(&needle).any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + needle.len()).copied();
        !before.is_some_and(|b| b.is_ascii_digit() || b == b'.')
            && !after.is_some_and(|b| b.is_ascii_digit() || b == b'.')
    })
}

/// A `retry-after` header value: seconds (possibly fractional). HTTP dates are not parsed.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_millis((secs * 1000.0) as u64))
}

/// "try again in 1s" / "retry after 2.5 seconds" / "try again in 300ms" in a message.
pub fn retry_after_in_text(message: &str) -> Option<Duration> {
    let lower = message.to_lowercase();
    for marker in ["try again in ", "retry after ", "retry in "] {
        if let Some(i) = lower.find(marker) {
            let rest = &lower[i + marker.len()..];
            let num: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
            let Ok(n) = num.parse::<f64>() else { continue };
            let unit = rest[num.len()..].trim_start();
            let ms = if unit.starts_with("ms") || unit.starts_with("millisecond") {
                n
            } else if unit.starts_with('m') && !unit.starts_with("ms") {
                n * 60_000.0
            } else {
                n * 1000.0
            };
            return Some(Duration::from_millis(ms as u64));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_text_tables() {
        assert_eq!(from_status(429, "slow down"), FailureClass::RateLimited);
        assert_eq!(from_status(429, "You exceeded your current quota"), FailureClass::QuotaExhausted);
        assert_eq!(from_status(401, ""), FailureClass::Auth);
        assert_eq!(from_status(404, "model `x` not found"), FailureClass::ModelNotFound);
        assert_eq!(from_status(503, ""), FailureClass::Overloaded);
        assert_eq!(from_status(500, "The server had an error"), FailureClass::AgentError);
        assert_eq!(from_status(500, "The server is overloaded"), FailureClass::Overloaded);
        assert_eq!(
            from_text("The model `x` does not exist or you do not have access to it."),
            Some(FailureClass::ModelNotFound)
        );
        assert_eq!(from_status(400, "maximum context length is 8192 tokens"), FailureClass::ContextTooLong);
        assert_eq!(from_text("HTTP 429 from provider"), Some(FailureClass::RateLimited));
        assert_eq!(from_text("took 14290 ms"), None);
        assert_eq!(from_text("Rate limit reached for model"), Some(FailureClass::RateLimited));
        assert_eq!(from_text("all fine"), None);
    }

    #[test]
    fn gemini_quota_bodies_say_which_window_and_the_limit() {
        let day = r#"{"error":{"code":429,"message":"You exceeded your current quota ... Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 20, model: gemini-2.5-flash\nPlease retry in 17.7s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}"#;
        assert_eq!(quota_hint(day), Some(QuotaHint { per_day: true, limit: Some(20) }));
        assert_eq!(from_status(429, day), FailureClass::QuotaExhausted);
        let minute = day.replace("PerDay", "PerMinute").replace("limit: 20", "limit: 10");
        assert_eq!(quota_hint(&minute), Some(QuotaHint { per_day: false, limit: Some(10) }));
        assert_eq!(
            from_status(429, &minute),
            FailureClass::RateLimited,
            "a minute's quota passes in a minute"
        );
        let none = day.replace("limit: 20", "limit: 0");
        assert_eq!(quota_hint(&none).and_then(|q| q.limit), Some(0), "no free tier");
        assert_eq!(
            quota_hint("Rate limit exceeded: free-models-per-day"),
            Some(QuotaHint { per_day: true, limit: None })
        );
        assert_eq!(quota_hint("slow down"), None);
    }

    #[test]
    fn retry_after_values() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after_in_text("Please try again in 1s."), Some(Duration::from_secs(1)));
        assert_eq!(retry_after_in_text("try again in 300ms"), Some(Duration::from_millis(300)));
        assert_eq!(retry_after_in_text("nothing"), None);
    }

    #[test]
    fn serializes_snake_case() {
        assert_eq!(serde_json::to_string(&FailureClass::RateLimited).unwrap(), "\"rate_limited\"");
        assert_eq!(serde_json::to_string(&FailureClass::ContextTooLong).unwrap(), "\"context_too_long\"");
        let c: FailureClass = serde_json::from_str("\"model_not_found\"").unwrap();
        assert_eq!(c, FailureClass::ModelNotFound);
        assert_eq!(c.to_string(), "model_not_found");
    }
}
