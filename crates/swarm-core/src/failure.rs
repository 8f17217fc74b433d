//! Why an agent attempt failed, as far as the agent's output tells: the class decides whether a
//! retry (or another model) can help, and how long to wait before it.

use serde::{Deserialize, Serialize};

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

impl std::fmt::Display for FailureClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_snake_case() {
        assert_eq!(serde_json::to_string(&FailureClass::RateLimited).unwrap(), "\"rate_limited\"");
        assert_eq!(serde_json::to_string(&FailureClass::ContextTooLong).unwrap(), "\"context_too_long\"");
        let c: FailureClass = serde_json::from_str("\"model_not_found\"").unwrap();
        assert_eq!(c, FailureClass::ModelNotFound);
        assert_eq!(c.to_string(), "model_not_found");
    }
}
