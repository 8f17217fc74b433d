//! How to make each agent wait and retry, or give up, in the terms its own client understands.
//!
//! What each client does, from its sources (read 2026-12-05):
//! - **Codex** (`openai/codex`): `codex-rs/core/src/model_provider_info.rs` builds its provider
//!   retry policy with `retry_429: false`, and `codex-rs/codex-api/src/api_bridge.rs` maps an
//!   HTTP 429 to `CodexErr::RetryLimit` (final, unless the body says `usage_limit_reached`).
//!   `codex-rs/codex-api/src/sse/responses.rs` reads a streamed `response.failed` whose
//!   `error.code` is `rate_limit_exceeded` with the message regex
//!   `(?i)try again in\s*(\d+(?:\.\d+)?)\s*(s|ms|seconds?)` as `ApiError::Retryable { delay }`, and
//!   the stream is retried after that delay (`stream_max_retries`, default 5);
//!   `insufficient_quota` and `context_length_exceeded` there are final. Observed with Codex
//!   0.171.0 (captures `codex-429`, `codex-429-quota`, `codex-429-ra2`, `codex-failed429`): a
//!   plain 429 is final, but one with `retry-after` is retried after it (5 times), like the
//!   streamed failure. So: wait = a 200 stream ending in that `response.failed`; give up = a
//!   plain 429 without `retry-after`.
//! - **Gemini CLI** (`google-gemini/gemini-cli`): `packages/core/src/utils/googleQuotaErrors.ts`
//!   classifies a 429 whose `QuotaFailure` quota id contains `PerDay`/`Daily` as
//!   `TerminalQuotaError`; a `RetryInfo.retryDelay` up to `MAX_RETRYABLE_DELAY_SECONDS = 300`
//!   (or a `PerMinute` quota id, 60 s) as `RetryableQuotaError`, and a longer delay as terminal;
//!   a message matching `limit: 0` is terminal too. `packages/core/src/utils/retry.ts` waits at
//!   least the delay (+0–20 % jitter) for up to `DEFAULT_MAX_ATTEMPTS = 10` attempts. So: wait =
//!   429 `RESOURCE_EXHAUSTED` with a per-minute quota id and `RetryInfo` ≤ 300 s; give up = the
//!   same with a per-day quota id.
//! - **Claude Code** (closed source; read in the JavaScript bundled in its 2.1.332 Linux binary,
//!   minified): its own retry predicate returns false for a 429 or 529 carrying
//!   `x-should-retry: false`, true for `x-should-retry: true`, for `"type":"overloaded_error"`,
//!   for a 429 of an API-key user and for any 5xx; a 429/529 whose `retry-after(-ms)` exceeds
//!   its limit is rewritten to `x-should-retry: false` (header `x-cc-retry-after-too-long`). The
//!   `@anthropic-ai/sdk` it bundles (`src/client.ts` of `anthropics/anthropic-sdk-typescript`)
//!   waits `retry-after-ms`, else `retry-after` (seconds or a date), else 0.5 s doubling to 8 s.
//!   Observed against a fake server (issue 19 captures `claude-429-ra{20,60,61,120}`,
//!   `claude-429-xsrfalse`): a 429 with `retry-after: 20` or `60` is retried after that long, one
//!   with `61` or `120` is not retried at all, nor one with `x-should-retry: false`; without
//!   `retry-after` a 429, 500 or 529 is retried 10 times with backoff up to about 40 s.
//!   So: wait = 429 `rate_limit_error` with `retry-after` ≤ 60 s, `retry-after-ms` and
//!   `x-should-retry: true`; give up = 429 with `x-should-retry: false`.
//! - **OpenAI Chat agents** (opencode, kilo, cline, aider): opencode and kilo retry a 429 for
//!   about 14 s honouring `retry-after`, cline about 5 s (docs/contract.md §7, observed). So: wait = 429
//!   with `retry-after`; give up = 429 `insufficient_quota`.

use crate::failure::{Failure, FailureKind, Reply};
use crate::responses::stream::ResponsesWriter;
use crate::route::Context;
use crate::stream::Writer;
use crate::Format;
use std::time::Duration;

/// Gemini CLI treats a longer `RetryInfo` delay as final.
pub const GEMINI_MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

/// Claude Code does not retry a 429 whose `retry-after` is longer.
pub const CLAUDE_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What to answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// An error answer.
    Reply(Reply),
    /// A `200 text/event-stream` answer with these bytes (Codex's retryable `response.failed`).
    Stream(Vec<u8>),
}

/// The answer that makes `ctx.agent` wait `delay` and send the same request again. Delays longer
/// than an agent waits for are shortened to its limit: it asks again sooner and gets another
/// wait.
pub fn wait(ctx: &Context, delay: Duration, message: &str) -> Signal {
    let mut failure = Failure::new(429, FailureKind::RateLimited, message);
    match ctx.agent {
        Format::Responses => {
            failure.retry_after = Some(delay);
            let mut out = Vec::new();
            ResponsesWriter::new(ctx).fail(&failure, &mut out);
            Signal::Stream(out)
        }
        Format::Gemini => {
            failure.retry_after = Some(delay.min(GEMINI_MAX_RETRY_DELAY));
            Signal::Reply(failure.reply(Format::Gemini))
        }
        Format::Anthropic => {
            failure.retry_after = Some(delay.min(CLAUDE_MAX_RETRY_AFTER));
            let mut reply = failure.reply(Format::Anthropic);
            reply.headers.push(("x-should-retry".into(), "true".into()));
            Signal::Reply(reply)
        }
        Format::Chat => {
            failure.retry_after = Some(delay);
            Signal::Reply(failure.reply(Format::Chat))
        }
    }
}

/// The answer that makes `ctx.agent` stop retrying this request.
pub fn give_up(ctx: &Context, message: &str) -> Signal {
    let failure = Failure::new(429, FailureKind::QuotaExhausted, message);
    let mut reply = failure.reply(ctx.agent);
    if ctx.agent == Format::Anthropic {
        reply.headers.push(("x-should-retry".into(), "false".into()));
    }
    Signal::Reply(reply)
}
