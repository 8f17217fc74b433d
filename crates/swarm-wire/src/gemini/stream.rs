//! Gemini streams (`:streamGenerateContent?alt=sse`): every event is a whole
//! `GenerateContentResponse` holding the next parts; function calls arrive whole; the last one
//! has `finishReason`, and `usageMetadata` grows as it goes.

use super::response::{call_part, read_part};
use super::{finish_from, finish_reason};
use crate::failure::Failure;
use crate::json::either;
use crate::model::{Delta, Finish, ToolCall, Turn};
use crate::sse::{self, SseDecoder};
use crate::stream::{Reader, Writer};
use crate::usage::Usage;
use crate::{Context, Format, WireError};
use serde_json::{json, Value};

const F: Format = Format::Gemini;

pub(crate) struct GeminiReader {
    sse: SseDecoder,
    tools: usize,
}

impl GeminiReader {
    pub(crate) fn new() -> Self {
        GeminiReader { sse: SseDecoder::new(F), tools: 0 }
    }

    fn event(&mut self, data: &str, out: &mut Vec<Delta>) -> Result<(), WireError> {
        let v: Value =
            serde_json::from_str(data).map_err(|source| WireError::NotJson { format: F, source })?;
        let o = v.as_object().ok_or_else(|| WireError::malformed(F, "chunk", "expected an object"))?;
        if let Some(err) = o.get("error").filter(|e| !e.is_null()) {
            let status = err["code"].as_u64().and_then(|c| u16::try_from(c).ok()).unwrap_or(500);
            out.push(Delta::Failed(Failure::from_upstream(status, data.as_bytes(), None)));
            return Ok(());
        }
        let candidate = o.get("candidates").and_then(|c| c.get(0)).and_then(Value::as_object);
        if let Some(c) = candidate {
            let mut turn = Turn::default();
            let parts = c.get("content").and_then(|content| content.get("parts")).and_then(Value::as_array);
            for p in parts.map(Vec::as_slice).unwrap_or(&[]) {
                let p = p.as_object().ok_or_else(|| WireError::malformed(F, "part", "expected an object"))?;
                read_part(p, &mut turn, self.tools)?;
                self.drain(&mut turn, out);
            }
            if let Some(reason) = either(c, "finishReason", "finish_reason").and_then(Value::as_str) {
                out.push(Delta::Finish(finish_from(reason)));
            }
        } else if o.get("promptFeedback").and_then(|f| f.get("blockReason")).is_some() {
            out.push(Delta::Finish(Finish::Filtered));
        }
        if let Some(u) = either(o, "usageMetadata", "usage_metadata").and_then(Usage::from_gemini) {
            out.push(Delta::Usage(u));
        }
        Ok(())
    }

    /// Moves what one part added to `turn` into deltas.
    fn drain(&mut self, turn: &mut Turn, out: &mut Vec<Delta>) {
        if !turn.reasoning.is_empty() {
            out.push(Delta::Reasoning(std::mem::take(&mut turn.reasoning)));
        }
        if !turn.text.is_empty() {
            out.push(Delta::Text(std::mem::take(&mut turn.text)));
        }
        for call in turn.tool_calls.drain(..) {
            let index = self.tools;
            self.tools += 1;
            out.push(Delta::ToolStart { index, id: call.id, name: call.name, extra: call.extra });
            out.push(Delta::ToolArgs { index, args: call.arguments });
        }
    }
}

impl Reader for GeminiReader {
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Delta>, WireError> {
        let mut out = Vec::new();
        for e in self.sse.feed(bytes)? {
            self.event(&e.data, &mut out)?;
        }
        Ok(out)
    }

    /// A Gemini stream has no terminator: its end is the end of the body.
    fn finish(&mut self) -> Result<Vec<Delta>, WireError> {
        let mut out = Vec::new();
        for e in self.sse.finish()? {
            self.event(&e.data, &mut out)?;
        }
        Ok(out)
    }
}

/// Writes Gemini chunks for Gemini CLI: text as it comes, each function call whole once its
/// arguments are complete, then a last chunk with `finishReason` and `usageMetadata`.
pub(crate) struct GeminiWriter {
    id: String,
    model: String,
    call: Option<ToolCall>,
    finish: Option<Finish>,
    usage: Option<Usage>,
    ended: bool,
}

impl GeminiWriter {
    pub(crate) fn new(ctx: &Context) -> Self {
        GeminiWriter {
            id: ctx.id.clone(),
            model: ctx.model.clone(),
            call: None,
            finish: None,
            usage: None,
            ended: false,
        }
    }

    fn chunk(&self, out: &mut Vec<u8>, parts: Vec<Value>, finish: Option<&str>, usage: Option<Usage>) {
        let mut candidate = json!({ "content": { "role": "model", "parts": parts }, "index": 0 });
        if let Some(f) = finish {
            candidate["finishReason"] = json!(f);
        }
        let mut v = json!({ "candidates": [candidate], "modelVersion": self.model, "responseId": self.id });
        if let Some(u) = usage {
            v["usageMetadata"] = u.to_gemini();
        }
        sse::data(out, &v);
    }

    fn flush(&mut self, out: &mut Vec<u8>) {
        if let Some(call) = self.call.take() {
            self.chunk(out, vec![call_part(&call)], None, None);
        }
    }
}

impl Writer for GeminiWriter {
    fn write(&mut self, delta: Delta, out: &mut Vec<u8>) -> Result<(), WireError> {
        if self.ended {
            return Ok(());
        }
        match delta {
            Delta::Text(t) if !t.is_empty() => {
                self.flush(out);
                self.chunk(out, vec![json!({ "text": t })], None, None);
            }
            Delta::Reasoning(t) if !t.is_empty() => {
                self.flush(out);
                self.chunk(out, vec![json!({ "text": t, "thought": true })], None, None);
            }
            Delta::ToolStart { id, name, extra, .. } => {
                self.flush(out);
                self.call = Some(ToolCall { id, name, arguments: String::new(), extra });
            }
            Delta::ToolArgs { args, .. } => match &mut self.call {
                Some(call) => call.arguments.push_str(&args),
                None => {
                    return Err(WireError::unsupported(
                        F,
                        "streamed tool call",
                        "arguments outside the open call",
                    ))
                }
            },
            Delta::Finish(f) => self.finish = Some(f),
            Delta::Usage(u) => self.usage = Some(u),
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), WireError> {
        if self.ended {
            return Ok(());
        }
        let finish = self.finish.ok_or(WireError::Truncated { format: F })?;
        self.flush(out);
        self.ended = true;
        self.chunk(out, Vec::new(), Some(finish_reason(finish)), Some(self.usage.unwrap_or_default()));
        Ok(())
    }

    /// Gemini has no error event; an `error` object in the stream is what its SDK reads as a
    /// failure, and a stream without `finishReason` is retried by Gemini CLI anyway.
    fn fail(&mut self, failure: &Failure, out: &mut Vec<u8>) {
        if !self.ended {
            self.ended = true;
            sse::data(out, &failure.reply(F).body);
        }
    }
}
