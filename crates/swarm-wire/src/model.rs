//! The hub's shapes for answers: a whole assistant turn and the deltas of a streamed one. They
//! hold exactly what an OpenAI Chat completion holds, so every format reads into them and writes
//! out of them.

use crate::failure::Failure;
use crate::usage::Usage;
use serde_json::Value;

/// Why a turn ended, in OpenAI Chat's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Finish {
    #[default]
    Stop,
    Length,
    ToolCalls,
    Filtered,
}

impl Finish {
    pub fn from_chat(reason: &str) -> Finish {
        match reason {
            "length" => Finish::Length,
            "tool_calls" | "function_call" => Finish::ToolCalls,
            "content_filter" => Finish::Filtered,
            _ => Finish::Stop,
        }
    }

    pub fn chat(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
            Finish::ToolCalls => "tool_calls",
            Finish::Filtered => "content_filter",
        }
    }

    /// Some servers end a turn with tool calls as `stop`; the agent must still run them.
    pub(crate) fn with_tools(self, has_tools: bool) -> Finish {
        if has_tools && self == Finish::Stop {
            Finish::ToolCalls
        } else {
            self
        }
    }
}

/// One tool call of a turn. `extra` is OpenAI Chat's `extra_content` (Gemini's thought signature).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text, as OpenAI Chat carries it.
    pub arguments: String,
    pub extra: Option<Value>,
}

/// A whole assistant turn (a non-streamed answer).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Turn {
    pub id: Option<String>,
    pub model: Option<String>,
    pub text: String,
    pub reasoning: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish: Finish,
    pub usage: Option<Usage>,
}

/// One step of a streamed turn.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    Text(String),
    Reasoning(String),
    /// A tool call begins; `index` counts tool calls from 0 in the order they began.
    ToolStart {
        index: usize,
        id: String,
        name: String,
        extra: Option<Value>,
    },
    ToolArgs {
        index: usize,
        args: String,
    },
    Finish(Finish),
    Usage(Usage),
    /// The upstream reported an error inside the stream.
    Failed(Failure),
    /// The upstream said the stream is over.
    Done,
}
