//! Anthropic Messages streams: `message_start`, content blocks (`content_block_start`, deltas,
//! `content_block_stop`), `message_delta` with the stop reason and usage, `message_stop`.

use super::finish_from;
use super::response::{message_id, tool_use};
use crate::failure::Failure;
use crate::model::{Delta, Finish, ToolCall};
use crate::sse::{self, SseDecoder};
use crate::stream::{Reader, Writer};
use crate::usage::Usage;
use crate::{Context, Format, WireError};
use serde_json::{json, Value};

const F: Format = Format::Anthropic;

/// Reads an Anthropic upstream's events.
pub(crate) struct AnthropicReader {
    sse: SseDecoder,
    /// Content block index → tool call index.
    tool_blocks: Vec<(u64, usize)>,
    usage: Usage,
}

impl AnthropicReader {
    pub(crate) fn new() -> Self {
        AnthropicReader { sse: SseDecoder::new(F), tool_blocks: Vec::new(), usage: Usage::default() }
    }

    fn event(&mut self, data: &str, out: &mut Vec<Delta>) -> Result<(), WireError> {
        let v: Value =
            serde_json::from_str(data).map_err(|source| WireError::NotJson { format: F, source })?;
        let kind = v["type"].as_str().ok_or_else(|| WireError::malformed(F, "event", "no type"))?;
        match kind {
            "message_start" => {
                if let Some(u) = Usage::from_anthropic(&v["message"]["usage"]) {
                    self.usage = u;
                }
            }
            "content_block_start" => self.block_start(&v, out)?,
            "content_block_delta" => self.block_delta(&v, out)?,
            "message_delta" => {
                let u = &v["usage"];
                if u.get("input_tokens").is_some_and(|n| !n.is_null()) {
                    let output = self.usage.output;
                    self.usage = Usage::from_anthropic(u).unwrap_or_default();
                    self.usage.output = self.usage.output.max(output);
                } else if let Some(n) = u["output_tokens"].as_u64() {
                    self.usage.output = n;
                }
                if let Some(reason) = v["delta"]["stop_reason"].as_str() {
                    out.push(Delta::Finish(finish_from(reason)));
                }
                out.push(Delta::Usage(self.usage));
            }
            "message_stop" => out.push(Delta::Done),
            "error" => {
                let status = match v["error"]["type"].as_str() {
                    Some("overloaded_error") => 529,
                    Some("rate_limit_error") => 429,
                    Some("api_error") => 500,
                    _ => 400,
                };
                out.push(Delta::Failed(Failure::from_upstream(status, data.as_bytes(), None)));
            }
            _ => {} // ping, content_block_stop and events newer than this crate
        }
        Ok(())
    }

    fn block_start(&mut self, v: &Value, out: &mut Vec<Delta>) -> Result<(), WireError> {
        let block = &v["content_block"];
        let at =
            v["index"].as_u64().ok_or_else(|| WireError::malformed(F, "content_block_start", "no index"))?;
        match block["type"].as_str() {
            Some("text") => {
                if let Some(t) = block["text"].as_str().filter(|t| !t.is_empty()) {
                    out.push(Delta::Text(t.to_string()));
                }
            }
            Some("tool_use") => {
                let index = self.tool_blocks.len();
                self.tool_blocks.push((at, index));
                let field = |k: &str| block[k].as_str().map(str::to_string);
                let id = field("id").ok_or_else(|| WireError::malformed(F, "tool_use block", "no id"))?;
                let name =
                    field("name").ok_or_else(|| WireError::malformed(F, "tool_use block", "no name"))?;
                out.push(Delta::ToolStart { index, id, name, extra: None });
                if block["input"].as_object().is_some_and(|i| !i.is_empty()) {
                    out.push(Delta::ToolArgs { index, args: block["input"].to_string() });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn block_delta(&mut self, v: &Value, out: &mut Vec<Delta>) -> Result<(), WireError> {
        let delta = &v["delta"];
        let text = |k: &str| delta[k].as_str().unwrap_or_default().to_string();
        match delta["type"].as_str() {
            Some("text_delta") => out.push(Delta::Text(text("text"))),
            Some("thinking_delta") => out.push(Delta::Reasoning(text("thinking"))),
            Some("input_json_delta") => {
                let at = v["index"].as_u64();
                let index = self.tool_blocks.iter().find(|(b, _)| Some(*b) == at).map(|(_, i)| *i);
                let index = index.ok_or_else(|| {
                    WireError::malformed(F, "input_json_delta", "no tool_use block at that index")
                })?;
                out.push(Delta::ToolArgs { index, args: text("partial_json") });
            }
            _ => {}
        }
        Ok(())
    }
}

impl Reader for AnthropicReader {
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Delta>, WireError> {
        let mut out = Vec::new();
        for e in self.sse.feed(bytes)? {
            self.event(&e.data, &mut out)?;
        }
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<Delta>, WireError> {
        let mut out = Vec::new();
        for e in self.sse.finish()? {
            self.event(&e.data, &mut out)?;
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    None,
    Text,
    Tool(usize),
}

/// Writes Anthropic events for Claude Code.
pub(crate) struct AnthropicWriter {
    id: String,
    model: String,
    started: bool,
    open: Open,
    blocks: usize,
    /// Tool call indexes whose block was opened (closed ones cannot take more arguments).
    tools: Vec<usize>,
    finish: Option<Finish>,
    usage: Option<Usage>,
    ended: bool,
}

impl AnthropicWriter {
    pub(crate) fn new(ctx: &Context) -> Self {
        AnthropicWriter {
            id: message_id(&ctx.id),
            model: ctx.model.clone(),
            started: false,
            open: Open::None,
            blocks: 0,
            tools: Vec::new(),
            finish: None,
            usage: None,
            ended: false,
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let message = json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": Usage::default().to_anthropic(),
        });
        sse::named(out, "message_start", &json!({ "type": "message_start", "message": message }));
    }

    fn open(&mut self, out: &mut Vec<u8>, open: Open, block: Value) {
        self.close(out);
        self.open = open;
        let v = json!({ "type": "content_block_start", "index": self.blocks, "content_block": block });
        sse::named(out, "content_block_start", &v);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open != Open::None {
            self.open = Open::None;
            sse::named(
                out,
                "content_block_stop",
                &json!({ "type": "content_block_stop", "index": self.blocks }),
            );
            self.blocks += 1;
        }
    }

    fn delta(&self, out: &mut Vec<u8>, delta: Value) {
        let v = json!({ "type": "content_block_delta", "index": self.blocks, "delta": delta });
        sse::named(out, "content_block_delta", &v);
    }
}

impl Writer for AnthropicWriter {
    fn write(&mut self, delta: Delta, out: &mut Vec<u8>) -> Result<(), WireError> {
        if self.ended {
            return Ok(());
        }
        self.start(out);
        match delta {
            Delta::Text(t) => {
                if self.open != Open::Text {
                    self.open(out, Open::Text, json!({ "type": "text", "text": "" }));
                }
                self.delta(out, json!({ "type": "text_delta", "text": t }));
            }
            Delta::ToolStart { index, id, name, extra } => {
                let mut block = tool_use(&ToolCall { id, name, arguments: String::new(), extra });
                block["input"] = json!({});
                self.open(out, Open::Tool(index), block);
                self.tools.push(index);
            }
            Delta::ToolArgs { index, args } => {
                if self.open != Open::Tool(index) {
                    let why = if self.tools.contains(&index) {
                        "arguments after the next block began"
                    } else {
                        "arguments before the call began"
                    };
                    return Err(WireError::unsupported(F, "streamed tool call", why));
                }
                self.delta(out, json!({ "type": "input_json_delta", "partial_json": args }));
            }
            Delta::Finish(f) => self.finish = Some(f),
            Delta::Usage(u) => self.usage = Some(u),
            Delta::Reasoning(_) | Delta::Failed(_) | Delta::Done => {}
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), WireError> {
        if self.ended {
            return Ok(());
        }
        let finish = self.finish.ok_or(WireError::Truncated { format: F })?;
        self.start(out);
        if self.blocks == 0 && self.open == Open::None {
            self.open(out, Open::Text, json!({ "type": "text", "text": "" }));
        }
        self.close(out);
        self.ended = true;
        let finish = finish.with_tools(!self.tools.is_empty());
        let v = json!({
            "type": "message_delta",
            "delta": { "stop_reason": super::stop_reason(finish), "stop_sequence": null },
            "usage": self.usage.unwrap_or_default().to_anthropic(),
        });
        sse::named(out, "message_delta", &v);
        sse::named(out, "message_stop", &json!({ "type": "message_stop" }));
        Ok(())
    }

    fn fail(&mut self, failure: &Failure, out: &mut Vec<u8>) {
        if !self.ended {
            self.ended = true;
            sse::named(out, "error", &failure.reply(F).body);
        }
    }
}
