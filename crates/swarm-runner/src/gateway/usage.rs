//! Token counts of a provider's answer as the run is charged them: read from a whole answer in
//! the provider's format here, from a stream by swarm-wire's `StreamConverter` as it passes.

use serde_json::Value;
use swarm_wire::Format;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub tokens_in: u64,
    pub tokens_out: u64,
}

impl From<swarm_wire::Usage> for Usage {
    fn from(u: swarm_wire::Usage) -> Usage {
        Usage { tokens_in: u.input, tokens_out: u.output }
    }
}

/// The usage a whole answer of a provider speaking `upstream` reports, if any.
pub fn of_answer(upstream: Format, answer: &Value) -> Option<swarm_wire::Usage> {
    match upstream {
        Format::Anthropic => swarm_wire::Usage::from_anthropic(&answer["usage"]),
        Format::Gemini => swarm_wire::Usage::from_gemini(answer.get("usageMetadata")?),
        Format::Chat | Format::Responses => swarm_wire::Usage::from_chat(&answer["usage"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_of_a_whole_answer_in_each_providers_format() {
        let chat = json!({ "choices": [], "usage": { "prompt_tokens": 12, "completion_tokens": 3 } });
        let anthropic =
            json!({ "usage": { "input_tokens": 10, "cache_read_input_tokens": 2, "output_tokens": 3 } });
        let gemini = json!({ "usageMetadata": { "promptTokenCount": 12, "candidatesTokenCount": 3 } });
        for (format, answer) in
            [(Format::Chat, chat), (Format::Anthropic, anthropic), (Format::Gemini, gemini)]
        {
            let u = of_answer(format, &answer).map(Usage::from);
            assert_eq!(u, Some(Usage { tokens_in: 12, tokens_out: 3 }), "{format}");
        }
        assert_eq!(of_answer(Format::Chat, &json!({ "choices": [] })), None);
        assert_eq!(of_answer(Format::Gemini, &json!({})), None);
    }
}
