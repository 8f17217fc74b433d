//! The pair-level API the gateway calls: for an (agent format, upstream format) pair, translate
//! the request, the whole answer, the stream and failures.

use crate::anthropic::stream::{AnthropicReader, AnthropicWriter};
use crate::chat::stream::{ChatReader, ChatWriter};
use crate::failure::{Failure, Reply};
use crate::gemini::stream::{GeminiReader, GeminiWriter};
use crate::responses::stream::ResponsesWriter;
use crate::stream::{Reader, StreamConverter, Writer};
use crate::{anthropic, chat, gemini, responses, Format, WireError};
use serde_json::Value;

/// What the request's URL and the gateway add to its body.
#[derive(Debug, Clone, Default)]
pub struct Call {
    /// The model named in the URL (Gemini: `models/{model}:generateContent`); otherwise the
    /// body's `model`.
    pub model: Option<String>,
    /// Streaming as the URL says (Gemini: `:streamGenerateContent`); otherwise the body's `stream`.
    pub stream: Option<bool>,
    /// The id answers carry (message, response and item ids derive from it).
    pub id: String,
    /// Unix seconds, for `created` / `created_at`.
    pub created: u64,
}

/// What the answer's translation needs to know about the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    pub agent: Format,
    pub upstream: Format,
    /// The model as the agent named it (answers echo it).
    pub model: String,
    pub stream: bool,
    /// A Chat agent asked for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    pub id: String,
    pub created: u64,
    /// Responses tools offered to a Chat model under another name or shape (freeform,
    /// namespaced), to call them back as Codex expects.
    pub tool_aliases: Vec<responses::ToolAlias>,
}

/// A request in the upstream's format, and the context to translate its answer with.
#[derive(Debug, Clone)]
pub struct Translated {
    /// For a Gemini upstream the model and streaming go in the URL:
    /// [`gemini::upstream_path`]`(model, ctx.stream)`.
    pub body: Value,
    pub ctx: Context,
}

/// Translation for one (agent, upstream) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translator {
    pub agent: Format,
    pub upstream: Format,
}

impl Translator {
    /// No upstream speaks Responses; such a pair is refused.
    pub fn new(agent: Format, upstream: Format) -> Result<Self, WireError> {
        if upstream == Format::Responses {
            return Err(WireError::unsupported(upstream, "upstream", "no upstream kind speaks it"));
        }
        Ok(Translator { agent, upstream })
    }

    /// Agent and upstream speak the same format: bodies and streams pass unchanged.
    pub fn passthrough(&self) -> bool {
        self.agent == self.upstream
    }

    /// Translates the agent's request body for the upstream.
    pub fn request(&self, body: &Value, call: Call) -> Result<Translated, WireError> {
        if !body.is_object() {
            return Err(WireError::malformed(self.agent, "request", "expected an object"));
        }
        let ctx = self.context(body, call);
        if self.passthrough() {
            return Ok(Translated { body: body.clone(), ctx });
        }
        let chat = match self.agent {
            Format::Chat => body.clone(),
            Format::Anthropic => anthropic::request_to_chat(body)?,
            Format::Responses => responses::request_to_chat(body)?,
            Format::Gemini => gemini::request_to_chat(body, Some(&ctx.model), ctx.stream)?,
        };
        let body = match self.upstream {
            Format::Anthropic => anthropic::request_from_chat(&chat)?,
            Format::Gemini => gemini::request_from_chat(&chat)?,
            _ => chat,
        };
        Ok(Translated { body, ctx })
    }

    /// The context of a request without translating it (for a signal sent instead of
    /// forwarding, say).
    pub fn context(&self, body: &Value, call: Call) -> Context {
        let model = call.model.or_else(|| body["model"].as_str().map(str::to_string)).unwrap_or_default();
        Context {
            agent: self.agent,
            upstream: self.upstream,
            model: model.strip_prefix("models/").map(str::to_string).unwrap_or(model),
            stream: call.stream.or_else(|| body["stream"].as_bool()).unwrap_or(false),
            include_usage: body
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            id: call.id,
            created: call.created,
            tool_aliases: if self.agent == Format::Responses {
                responses::tool_aliases(body)
            } else {
                Vec::new()
            },
        }
    }

    /// Translates the upstream's whole (non-streamed) answer for the agent.
    pub fn response(&self, body: &Value, ctx: &Context) -> Result<Value, WireError> {
        if self.passthrough() {
            return Ok(body.clone());
        }
        let turn = match self.upstream {
            Format::Anthropic => anthropic::turn_from_anthropic(body)?,
            Format::Gemini => gemini::turn_from_gemini(body)?,
            _ => chat::turn_from_chat(body)?,
        };
        Ok(match self.agent {
            Format::Chat => chat::turn_to_chat(&turn, ctx),
            Format::Anthropic => anthropic::turn_to_anthropic(&turn, ctx),
            Format::Responses => responses::turn_to_responses(&turn, ctx),
            Format::Gemini => gemini::turn_to_gemini(&turn, ctx),
        })
    }

    /// A converter for the upstream's event stream.
    pub fn stream(&self, ctx: &Context) -> StreamConverter {
        let reader: Box<dyn Reader> = match self.upstream {
            Format::Anthropic => Box::new(AnthropicReader::new()),
            Format::Gemini => Box::new(GeminiReader::new()),
            _ => Box::new(ChatReader::new()),
        };
        let writer: Option<Box<dyn Writer>> = match self.agent {
            _ if self.passthrough() => None,
            Format::Chat => Some(Box::new(ChatWriter::new(ctx))),
            Format::Anthropic => Some(Box::new(AnthropicWriter::new(ctx))),
            Format::Responses => Some(Box::new(ResponsesWriter::new(ctx))),
            Format::Gemini => Some(Box::new(GeminiWriter::new(ctx))),
        };
        StreamConverter::new(reader, writer)
    }

    /// An upstream's error answer, read.
    pub fn read_failure(
        &self,
        status: u16,
        body: &[u8],
        retry_after: Option<std::time::Duration>,
    ) -> Failure {
        Failure::from_upstream(status, body, retry_after)
    }

    /// A failure as the agent's error answer.
    pub fn error(&self, failure: &Failure) -> Reply {
        failure.reply(self.agent)
    }
}
