//! OpenAI Chat streams: `data: chunk` events ending in `data: [DONE]`.

use crate::failure::{Failure, FailureKind};
use crate::model::{Delta, Finish};
use crate::sse::{self, SseDecoder};
use crate::stream::{Reader, Writer};
use crate::usage::Usage;
use crate::{Context, Format, WireError};
use serde_json::{json, Value};

const F: Format = Format::Chat;

/// Reads an upstream's chat chunks.
pub(crate) struct ChatReader {
    sse: SseDecoder,
    /// Upstream tool-call index → our index, in order of appearance.
    tools: Vec<Option<u64>>,
}

impl ChatReader {
    pub(crate) fn new() -> Self {
        ChatReader { sse: SseDecoder::new(F), tools: Vec::new() }
    }

    fn event(&mut self, data: &str, out: &mut Vec<Delta>) -> Result<(), WireError> {
        if data.trim() == "[DONE]" {
            out.push(Delta::Done);
            return Ok(());
        }
        let chunk: Value =
            serde_json::from_str(data).map_err(|source| WireError::NotJson { format: F, source })?;
        if !chunk.is_object() {
            return Err(WireError::malformed(F, "chunk", "expected an object"));
        }
        if let Some(err) = chunk.get("error").filter(|e| !e.is_null()) {
            let status = err["code"].as_u64().and_then(|c| u16::try_from(c).ok()).unwrap_or(500);
            let body = json!({ "error": err }).to_string();
            out.push(Delta::Failed(Failure::from_upstream(status, body.as_bytes(), None)));
            return Ok(());
        }
        if let Some(choice) = chunk["choices"].get(0) {
            self.choice(choice, out)?;
        }
        if let Some(u) = chunk.get("usage").and_then(Usage::from_chat) {
            out.push(Delta::Usage(u));
        }
        Ok(())
    }

    fn choice(&mut self, choice: &Value, out: &mut Vec<Delta>) -> Result<(), WireError> {
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            out.push(Delta::Text(text.to_string()));
        }
        let reasoning = delta.get("reasoning_content").or_else(|| delta.get("reasoning"));
        if let Some(text) = reasoning.and_then(Value::as_str).filter(|t| !t.is_empty()) {
            out.push(Delta::Reasoning(text.to_string()));
        }
        match &delta["tool_calls"] {
            Value::Null => {}
            Value::Array(calls) => {
                for call in calls {
                    self.tool(call, out)?;
                }
            }
            _ => return Err(WireError::malformed(F, "delta.tool_calls", "expected an array")),
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            out.push(Delta::Finish(Finish::from_chat(reason)));
        }
        Ok(())
    }

    fn tool(&mut self, call: &Value, out: &mut Vec<Delta>) -> Result<(), WireError> {
        let upstream = call["index"].as_u64();
        if upstream.is_none() && !call["index"].is_null() {
            return Err(WireError::malformed(F, "tool call index", "expected a count"));
        }
        // Without an index, a call with an id is a new one and one without continues the last.
        let existing = match upstream {
            Some(u) => self.tools.iter().position(|i| *i == Some(u)),
            None if !call["id"].is_null() => None,
            None => self.tools.len().checked_sub(1),
        };
        let f = &call["function"];
        let index = match existing {
            Some(i) => i,
            None => {
                self.tools.push(upstream);
                let index = self.tools.len() - 1;
                out.push(Delta::ToolStart {
                    index,
                    id: call["id"].as_str().map(str::to_string).unwrap_or_else(|| format!("call_{index}")),
                    name: f["name"].as_str().unwrap_or_default().to_string(),
                    extra: call.get("extra_content").filter(|x| !x.is_null()).cloned(),
                });
                index
            }
        };
        let args = match &f["arguments"] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        if !args.is_empty() {
            out.push(Delta::ToolArgs { index, args });
        }
        Ok(())
    }
}

impl Reader for ChatReader {
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

/// Writes chat chunks for a chat agent.
pub(crate) struct ChatWriter {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    started: bool,
    tools: bool,
    finish: Option<Finish>,
    usage: Option<Usage>,
    ended: bool,
}

impl ChatWriter {
    pub(crate) fn new(ctx: &Context) -> Self {
        ChatWriter {
            id: ctx.id.clone(),
            model: ctx.model.clone(),
            created: ctx.created,
            include_usage: ctx.include_usage,
            started: false,
            tools: false,
            finish: None,
            usage: None,
            ended: false,
        }
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: Value, finish: Option<&str>) {
        let v = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
        });
        sse::data(out, &v);
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            self.chunk(out, json!({ "role": "assistant", "content": "" }), None);
        }
    }
}

impl Writer for ChatWriter {
    fn write(&mut self, delta: Delta, out: &mut Vec<u8>) -> Result<(), WireError> {
        if self.ended {
            return Ok(());
        }
        self.start(out);
        match delta {
            Delta::Text(t) => self.chunk(out, json!({ "content": t }), None),
            Delta::Reasoning(t) => self.chunk(out, json!({ "reasoning_content": t }), None),
            Delta::ToolStart { index, id, name, extra } => {
                self.tools = true;
                let mut call = json!({ "index": index, "id": id, "type": "function", "function": { "name": name, "arguments": "" } });
                if let Some(x) = extra {
                    call["extra_content"] = x;
                }
                self.chunk(out, json!({ "tool_calls": [call] }), None);
            }
            Delta::ToolArgs { index, args } => self.chunk(
                out,
                json!({ "tool_calls": [{ "index": index, "function": { "arguments": args } }] }),
                None,
            ),
            Delta::Finish(f) if self.finish.is_none() => {
                let f = f.with_tools(self.tools);
                self.finish = Some(f);
                self.chunk(out, json!({}), Some(f.chat()));
            }
            Delta::Usage(u) => self.usage = Some(u),
            Delta::Finish(_) | Delta::Failed(_) | Delta::Done => {}
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), WireError> {
        if self.ended {
            return Ok(());
        }
        if self.finish.is_none() {
            return Err(WireError::Truncated { format: F });
        }
        self.ended = true;
        if let (true, Some(u)) = (self.include_usage, self.usage) {
            let v = json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [], "usage": u.to_chat(),
            });
            sse::data(out, &v);
        }
        sse::done(out);
        Ok(())
    }

    fn fail(&mut self, failure: &Failure, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.ended = true;
        let mut body = failure.reply(F).body;
        if failure.kind == FailureKind::Server {
            body["error"]["code"] = json!(failure.status);
        }
        sse::data(out, &body);
    }
}
