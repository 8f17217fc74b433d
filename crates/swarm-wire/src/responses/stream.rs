//! Responses streams for Codex: `response.created`, `response.in_progress`, per output item
//! `response.output_item.added` … `response.output_item.done` (text through
//! `response.content_part.*` and `response.output_text.*`, function calls through
//! `response.function_call_arguments.*`), then `response.completed` with usage, or
//! `response.failed`.

use super::response::{call_item, is_freeform, message_item, output_text, response_object};
use crate::failure::{Failure, FailureKind};
use crate::model::{Delta, Finish, ToolCall};
use crate::sse;
use crate::stream::Writer;
use crate::usage::Usage;
use crate::{Context, Format, WireError};
use serde_json::{json, Value};

const F: Format = Format::Responses;

enum Open {
    None,
    Text { id: String, text: String },
    Call { index: usize, call: ToolCall },
}

pub(crate) struct ResponsesWriter {
    ctx: Context,
    seq: u64,
    started: bool,
    open: Open,
    items: Vec<Value>,
    tools: Vec<usize>,
    finish: Option<Finish>,
    usage: Option<Usage>,
    ended: bool,
}

impl ResponsesWriter {
    pub(crate) fn new(ctx: &Context) -> Self {
        ResponsesWriter {
            ctx: ctx.clone(),
            seq: 0,
            started: false,
            open: Open::None,
            items: Vec::new(),
            tools: Vec::new(),
            finish: None,
            usage: None,
            ended: false,
        }
    }

    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, mut v: Value) {
        v["type"] = json!(kind);
        v["sequence_number"] = json!(self.seq);
        self.seq += 1;
        sse::named(out, kind, &v);
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = response_object(&self.ctx, "in_progress", Vec::new(), None);
        self.emit(out, "response.created", json!({ "response": response }));
        self.emit(out, "response.in_progress", json!({ "response": response }));
    }

    fn output_index(&self) -> usize {
        self.items.len()
    }

    fn is_custom(&self, name: &str) -> bool {
        is_freeform(&self.ctx, name)
    }

    fn open_text(&mut self, out: &mut Vec<u8>) {
        self.close(out);
        let (at, id) = (self.output_index(), format!("msg_{}_{}", self.ctx.id, self.output_index()));
        let item = message_item(&id, "", "in_progress");
        self.emit(out, "response.output_item.added", json!({ "output_index": at, "item": item }));
        let part = json!({ "item_id": id, "output_index": at, "content_index": 0, "part": output_text("") });
        self.emit(out, "response.content_part.added", part);
        self.open = Open::Text { id, text: String::new() };
    }

    fn open_call(&mut self, out: &mut Vec<u8>, index: usize, call: ToolCall) {
        self.close(out);
        if !self.is_custom(&call.name) {
            let item = call_item(&self.ctx, index, &call, "in_progress");
            self.emit(
                out,
                "response.output_item.added",
                json!({ "output_index": self.output_index(), "item": item }),
            );
        }
        self.open = Open::Call { index, call };
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        let at = self.output_index();
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => return,
            Open::Text { id, text } => {
                let base = json!({ "item_id": id, "output_index": at, "content_index": 0 });
                let mut done = base.clone();
                done["text"] = json!(text);
                self.emit(out, "response.output_text.done", done);
                let mut part = base;
                part["part"] = output_text(&text);
                self.emit(out, "response.content_part.done", part);
                self.items.push(message_item(&id, &text, "completed"));
            }
            Open::Call { index, call } => {
                let item = call_item(&self.ctx, index, &call, "completed");
                if self.is_custom(&call.name) {
                    self.emit(out, "response.output_item.added", json!({ "output_index": at, "item": item }));
                } else {
                    let done =
                        json!({ "item_id": item["id"], "output_index": at, "arguments": call.arguments });
                    self.emit(out, "response.function_call_arguments.done", done);
                }
                self.items.push(item);
            }
        }
        let item = self.items[at].clone();
        self.emit(out, "response.output_item.done", json!({ "output_index": at, "item": item }));
    }

    fn args(&mut self, out: &mut Vec<u8>, index: usize, args: String) -> Result<(), WireError> {
        let at = self.output_index();
        let (item_id, custom) = match &mut self.open {
            Open::Call { index: open, call } if *open == index => {
                call.arguments.push_str(&args);
                (format!("fc_{}_{index}", self.ctx.id), is_freeform(&self.ctx, &call.name))
            }
            _ => {
                return Err(WireError::unsupported(
                    F,
                    "streamed tool call",
                    "arguments outside the open call",
                ))
            }
        };
        if !custom {
            self.emit(
                out,
                "response.function_call_arguments.delta",
                json!({ "item_id": item_id, "output_index": at, "delta": args }),
            );
        }
        Ok(())
    }
}

impl Writer for ResponsesWriter {
    fn write(&mut self, delta: Delta, out: &mut Vec<u8>) -> Result<(), WireError> {
        if self.ended {
            return Ok(());
        }
        self.start(out);
        match delta {
            Delta::Text(t) => {
                if !matches!(self.open, Open::Text { .. }) {
                    self.open_text(out);
                }
                let at = self.items.len();
                let item_id = match &mut self.open {
                    Open::Text { id, text } => {
                        text.push_str(&t);
                        id.clone()
                    }
                    _ => String::new(),
                };
                let v = json!({ "item_id": item_id, "output_index": at, "content_index": 0, "delta": t });
                self.emit(out, "response.output_text.delta", v);
            }
            Delta::ToolStart { index, id, name, extra } => {
                self.tools.push(index);
                self.open_call(out, index, ToolCall { id, name, arguments: String::new(), extra });
            }
            Delta::ToolArgs { index, args } => self.args(out, index, args)?,
            Delta::Finish(f) => self.finish = Some(f),
            Delta::Usage(u) => self.usage = Some(u),
            Delta::Reasoning(_) | Delta::Failed(_) | Delta::Done => {}
        }
        Ok(())
    }

    /// A turn cut by the token limit also ends in `response.completed` (status `incomplete`):
    /// Codex treats `response.incomplete` as a stream error and would retry the same request.
    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), WireError> {
        if self.ended {
            return Ok(());
        }
        let finish = self.finish.ok_or(WireError::Truncated { format: F })?;
        self.start(out);
        self.close(out);
        self.ended = true;
        let status = if finish == Finish::Length { "incomplete" } else { "completed" };
        let response = response_object(&self.ctx, status, std::mem::take(&mut self.items), self.usage);
        self.emit(out, "response.completed", json!({ "response": response }));
        Ok(())
    }

    fn fail(&mut self, failure: &Failure, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.start(out);
        self.ended = true;
        let mut response = response_object(&self.ctx, "failed", Vec::new(), self.usage);
        response["error"] = failed_error(failure);
        self.emit(out, "response.failed", json!({ "response": response }));
    }
}

/// The `error` of a `response.failed` that Codex reads: `rate_limit_exceeded` with "try again
/// in Ns" is retried after N s; `insufficient_quota` and `context_length_exceeded` are final;
/// anything else is retried with backoff.
pub(crate) fn failed_error(failure: &Failure) -> Value {
    let code = match failure.kind {
        FailureKind::RateLimited => "rate_limit_exceeded",
        FailureKind::QuotaExhausted => "insufficient_quota",
        FailureKind::ContextTooLong => "context_length_exceeded",
        _ => "server_error",
    };
    let mut message = failure.message.clone();
    if let (FailureKind::RateLimited, Some(d)) = (failure.kind, failure.retry_after) {
        if !message.to_ascii_lowercase().contains("try again in") {
            message =
                format!("{message} Please try again in {:.3}s.", d.as_secs_f64()).trim_start().to_string();
        }
    }
    json!({ "code": code, "message": message })
}
