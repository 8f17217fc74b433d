//! Failure classification, table-driven: HTTP status codes and provider message text → class.

use crate::adapter::AgentOutput;
use std::time::Duration;
use swarm_core::failure::FailureClass;

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

/// The default classification: the first error the agent reported; else what the stderr tail
/// says; else a non-zero exit or a signal without explanation is a crash.
pub fn classify(
    exit_code: Option<i32>,
    errors: &[AgentOutput],
    stderr_tail: &[String],
) -> Option<(FailureClass, Option<Duration>)> {
    // Prefer a specific class over agent_error when several errors were reported.
    let mut found: Option<(FailureClass, Option<Duration>)> = None;
    for e in errors {
        if let AgentOutput::Error { class, retry_after, .. } = e {
            match found {
                None => found = Some((*class, *retry_after)),
                Some((FailureClass::AgentError, _)) if *class != FailureClass::AgentError => {
                    found = Some((*class, *retry_after))
                }
                Some((c, None)) if c == *class && retry_after.is_some() => found = Some((c, *retry_after)),
                _ => {}
            }
        }
    }
    if found.is_some() {
        return found;
    }
    let tail = stderr_tail.join("\n");
    if let Some(c) = from_text(&tail) {
        return Some((c, retry_after_in_text(&tail)));
    }
    match exit_code {
        Some(0) => None,
        _ => Some((FailureClass::Crashed, None)),
    }
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
    fn retry_after_values() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after_in_text("Please try again in 1s."), Some(Duration::from_secs(1)));
        assert_eq!(retry_after_in_text("try again in 300ms"), Some(Duration::from_millis(300)));
        assert_eq!(retry_after_in_text("nothing"), None);
    }

    #[test]
    fn default_classification() {
        assert_eq!(classify(Some(1), &[], &[]), Some((FailureClass::Crashed, None)));
        assert_eq!(classify(Some(0), &[], &[]), None);
        assert_eq!(
            classify(Some(1), &[], &["Error: 429 Too Many Requests".into()]),
            Some((FailureClass::RateLimited, None))
        );
        let errors = [
            AgentOutput::Error { class: FailureClass::AgentError, message: "x".into(), retry_after: None },
            AgentOutput::Error {
                class: FailureClass::RateLimited,
                message: "y".into(),
                retry_after: Some(Duration::from_secs(1)),
            },
        ];
        assert_eq!(
            classify(Some(1), &errors, &[]),
            Some((FailureClass::RateLimited, Some(Duration::from_secs(1))))
        );
    }
}
