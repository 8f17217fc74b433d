//! Token usage in one shape, read from and written to each format's own usage object.
//!
//! `input` counts every prompt token, cached ones included (OpenAI's `prompt_tokens`); `output`
//! counts every generated token, reasoning included (OpenAI's `completion_tokens`). Anthropic
//! reports cache reads apart from `input_tokens`, Gemini reports thoughts apart from
//! `candidatesTokenCount`; the conversions add and split them accordingly.

use crate::json::either;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    /// Prompt tokens served from a cache (part of `input`).
    pub cached: u64,
    /// Reasoning tokens (part of `output`).
    pub reasoning: u64,
}

fn n(v: &Value, path: &str) -> u64 {
    v.pointer(path).and_then(Value::as_u64).unwrap_or(0)
}

impl Usage {
    /// OpenAI Chat `usage`; `None` when absent or null.
    pub fn from_chat(v: &Value) -> Option<Usage> {
        v.as_object()?;
        Some(Usage {
            input: n(v, "/prompt_tokens"),
            output: n(v, "/completion_tokens"),
            cached: n(v, "/prompt_tokens_details/cached_tokens"),
            reasoning: n(v, "/completion_tokens_details/reasoning_tokens"),
        })
    }

    pub fn to_chat(self) -> Value {
        json!({
            "prompt_tokens": self.input,
            "completion_tokens": self.output,
            "total_tokens": self.input + self.output,
            "prompt_tokens_details": { "cached_tokens": self.cached },
            "completion_tokens_details": { "reasoning_tokens": self.reasoning },
        })
    }

    /// Anthropic `usage` (a message's, or a stream's `message_start`/`message_delta`).
    pub fn from_anthropic(v: &Value) -> Option<Usage> {
        v.as_object()?;
        let cached = n(v, "/cache_read_input_tokens");
        Some(Usage {
            input: n(v, "/input_tokens") + cached + n(v, "/cache_creation_input_tokens"),
            output: n(v, "/output_tokens"),
            cached,
            reasoning: 0,
        })
    }

    pub fn to_anthropic(self) -> Value {
        json!({
            "input_tokens": self.input.saturating_sub(self.cached),
            "output_tokens": self.output,
            "cache_read_input_tokens": self.cached,
            "cache_creation_input_tokens": 0,
        })
    }

    /// OpenAI Responses `usage`.
    pub fn from_responses(v: &Value) -> Option<Usage> {
        v.as_object()?;
        Some(Usage {
            input: n(v, "/input_tokens"),
            output: n(v, "/output_tokens"),
            cached: n(v, "/input_tokens_details/cached_tokens"),
            reasoning: n(v, "/output_tokens_details/reasoning_tokens"),
        })
    }

    /// Every field Codex requires (`total_tokens` and both detail objects included).
    pub fn to_responses(self) -> Value {
        json!({
            "input_tokens": self.input,
            "input_tokens_details": { "cached_tokens": self.cached },
            "output_tokens": self.output,
            "output_tokens_details": { "reasoning_tokens": self.reasoning },
            "total_tokens": self.input + self.output,
        })
    }

    /// Gemini `usageMetadata` (camelCase or snake_case).
    pub fn from_gemini(v: &Value) -> Option<Usage> {
        let o = v.as_object()?;
        let get = |camel: &str, snake: &str| either(o, camel, snake).and_then(Value::as_u64).unwrap_or(0);
        let thoughts = get("thoughtsTokenCount", "thoughts_token_count");
        Some(Usage {
            input: get("promptTokenCount", "prompt_token_count"),
            output: get("candidatesTokenCount", "candidates_token_count") + thoughts,
            cached: get("cachedContentTokenCount", "cached_content_token_count"),
            reasoning: thoughts,
        })
    }

    pub fn to_gemini(self) -> Value {
        let mut v = json!({
            "promptTokenCount": self.input,
            "candidatesTokenCount": self.output - self.reasoning.min(self.output),
            "totalTokenCount": self.input + self.output,
        });
        if self.cached > 0 {
            v["cachedContentTokenCount"] = json!(self.cached);
        }
        if self.reasoning > 0 {
            v["thoughtsTokenCount"] = json!(self.reasoning.min(self.output));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_round_trips() {
        let u = Usage { input: 120, output: 30, cached: 20, reasoning: 5 };
        assert_eq!(Usage::from_chat(&u.to_chat()), Some(u));
        assert_eq!(Usage::from_responses(&u.to_responses()), Some(u));
        assert_eq!(Usage::from_gemini(&u.to_gemini()), Some(u));
        let a = Usage::from_anthropic(&u.to_anthropic()).unwrap();
        assert_eq!((a.input, a.output, a.cached), (120, 30, 20));
        assert_eq!(Usage::from_chat(&Value::Null), None);
    }
}
