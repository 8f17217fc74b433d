//! What adapters share to read an agent's output: its JSON lines, and the class, status and
//! retry-after of the errors it prints.

use crate::adapter::AgentOutput;
use crate::classify;
use serde_json::Value;
use std::time::Duration;
use swarm_core::failure::FailureClass;

/// An HTTP status quoted in an error message: `API Error: 429`, `status: 429`, `status 503`,
/// `Error code: 401`, `"code":429`, `[429 Too Many Requests]`.
pub(crate) fn status_in_text(message: &str) -> Option<u16> {
    let lower = message.to_lowercase();
    for marker in [
        "api error: ",
        "status: ",
        "status code: ",
        "status code ",
        "status ",
        "error code: ",
        "\"code\":",
        "\"code\": ",
        "'code': ",
        "http ",
    ] {
        for (i, _) in lower.match_indices(marker) {
            let rest = &lower[i + marker.len()..];
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            if digits.len() == 3 {
                if let Ok(code) = digits.parse::<u16>() {
                    if (400..=599).contains(&code) {
                        return Some(code);
                    }
                }
            }
        }
    }
    None
}

/// Provider and CLI phrasings the shared table does not know, checked first.
const EXTRA_RULES: &[(&str, FailureClass)] = &[
    ("api key not valid", FailureClass::Auth),
    ("api_key_invalid", FailureClass::Auth),
    ("authentication_error", FailureClass::Auth),
    ("permission_denied", FailureClass::Auth),
    ("please run /login", FailureClass::Auth),
    ("usage limit", FailureClass::QuotaExhausted),
    ("not_found_error", FailureClass::ModelNotFound),
    ("is not found for api version", FailureClass::ModelNotFound),
    ("does not exist or you do not have access", FailureClass::ModelNotFound),
    ("overloaded_error", FailureClass::Overloaded),
    ("has hit a token limit", FailureClass::ContextTooLong),
    ("contextwindowexceeded", FailureClass::ContextTooLong),
    ("exceeds the context window", FailureClass::ContextTooLong),
    ("input token count", FailureClass::ContextTooLong),
];

/// The class of an error message, with the status it quotes if any.
pub(crate) fn class_of(message: &str, status: Option<u16>) -> FailureClass {
    let lower = message.to_lowercase();
    let extra = EXTRA_RULES.iter().find(|(n, _)| lower.contains(n)).map(|(_, c)| *c);
    match (status, extra) {
        // A status is authoritative, except that the text refines it (a 429 about quota, a 400
        // about the context window, a 404 that is not about a model).
        (Some(s), Some(c)) if !matches!(s, 401 | 403 | 429 | 500..=599) => c,
        (Some(s), _) => classify::from_status(s, message),
        (None, Some(c)) => c,
        (None, None) => classify::from_text(message).unwrap_or(FailureClass::AgentError),
    }
}

/// `retryDelay":"13s"` (Google RPC RetryInfo) or "try again in 2s" in a message.
pub(crate) fn retry_after_of(message: &str) -> Option<Duration> {
    let lower = message.to_lowercase();
    if let Some(i) = lower.find("retrydelay") {
        let rest = &lower[i + "retrydelay".len()..];
        let rest = rest.trim_start_matches(['"', '\'', ':', ' ', '\\']);
        let num: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        if rest[num.len()..].starts_with('s') {
            if let Ok(n) = num.parse::<f64>() {
                return Some(Duration::from_millis((n * 1000.0) as u64));
            }
        }
    }
    classify::retry_after_in_text(message)
}

/// An error the agent printed, classed by the status it carries (or quotes) and its text.
pub(crate) fn error_from(message: &str, status: Option<u16>) -> AgentOutput {
    let status = status.or_else(|| status_in_text(message));
    AgentOutput::Error {
        class: class_of(message, status),
        message: message.to_string(),
        retry_after: retry_after_of(message),
    }
}

/// The most telling string argument of a tool call.
pub(crate) fn tool_detail(input: Option<&Value>) -> String {
    [
        "file_path",
        "absolute_path",
        "filePath",
        "path",
        "notebook_path",
        "dir_path",
        "command",
        "pattern",
        "url",
        "query",
        "description",
        "prompt",
    ]
    .iter()
    .find_map(|k| input.and_then(|i| i.get(*k)).and_then(Value::as_str))
    .map(|s| s.lines().next().unwrap_or("").chars().take(200).collect())
    .unwrap_or_default()
}

/// A line as a JSON object; else what the line is: nothing when blank, text otherwise.
pub(crate) fn json_object(line: &str) -> Result<Value, Vec<AgentOutput>> {
    let trimmed = line.trim();
    match serde_json::from_str::<Value>(trimmed) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ if trimmed.is_empty() => Err(vec![]),
        _ => Err(vec![AgentOutput::Text(line.to_string())]),
    }
}

/// The string at a JSON pointer, if there is one.
pub(crate) fn str_at<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The number at a JSON pointer, 0 when there is none.
pub(crate) fn u64_at(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_patterns() {
        assert_eq!(status_in_text("API Error: 429 {\"type\":\"error\"}"), Some(429));
        assert_eq!(status_in_text("exceeded retry limit, last status: 429 Too Many Requests"), Some(429));
        assert_eq!(status_in_text("litellm.NotFoundError: Error code: 404 - {}"), Some(404));
        assert_eq!(status_in_text("took 1429 ms"), None);
        assert_eq!(status_in_text("status: 200"), None);
    }

    #[test]
    fn retry_delay_and_classes() {
        assert_eq!(retry_after_of("\"retryDelay\": \"13s\""), Some(Duration::from_secs(13)));
        assert_eq!(retry_after_of("please retry in 1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(class_of("API key not valid", Some(400)), FailureClass::Auth);
        assert_eq!(class_of("You exceeded your current quota", Some(429)), FailureClass::QuotaExhausted);
        assert_eq!(class_of("something odd", None), FailureClass::AgentError);
    }
}
