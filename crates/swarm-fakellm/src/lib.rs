//! swarm's scripted fake model server. It speaks the wire formats of the agents swarm runs —
//! OpenAI Chat Completions (`/v1/chat/completions`), Anthropic Messages (`/v1/messages`,
//! `/v1/messages/count_tokens`), OpenAI Responses (`/v1/responses`) and Gemini
//! (`/v1beta/models/{m}:generateContent`, `:streamGenerateContent`, `:countTokens`), streaming or
//! not, with tool calls and usage — and its answers come from a scenario file instead of a model,
//! so agent CLIs can be run for real without tokens. Like a real provider it refuses malformed
//! requests (a tool result that answers no tool call, a missing required field) with a 400 worded
//! like the provider's.
//!
//! ```no_run
//! # async fn demo() -> Result<(), swarm_fakellm::Error> {
//! let scenario = swarm_fakellm::Scenario::from_file("scenario.toml")?;
//! let server = swarm_fakellm::serve(scenario, "127.0.0.1:0".parse().unwrap()).await?;
//! println!("point the agent at {}", server.base_url()); // http://127.0.0.1:PORT/v1
//! // … run the agent …
//! for request in server.log().records() {
//!     println!("{:?} {:?} stream={} tools={:?} → {:?}", request.format, request.model, request.stream, request.tools, request.response);
//! }
//! server.shutdown().await
//! # }
//! ```
//!
//! # Scenario format (TOML)
//!
//! ```toml
//! log = "requests.jsonl"        # optional: one JSON line per request (relative to this file)
//!
//! [models.ok]                   # the model name clients send
//! steps = [ { write = { path = "hello.txt", content = "hi\n" } }, { say = "DONE" } ]
//!
//! [models.r429]                 # 429 + `retry-after: 1` for the first 1000 requests to this model
//! rate_limit = { first = 1000, retry_after = 1 }    # kind = "quota", header = false, stream = true
//!
//! [models.broken]               # always 500 (add `first = N` to fail only the first N requests)
//! error = { status = 500, message = "upstream exploded" }
//!
//! [models.hang]                 # accept the request, never answer
//! hang = true
//!
//! [models.slow]
//! delay_ms = 2000               # before answering; `chunk_delay_ms` between streamed chunks
//! steps = [ { say = "DONE" } ]
//! usage = { prompt_tokens = 1200, completion_tokens = 300 }   # default: estimated, 4 bytes a token
//! ```
//!
//! Steps: `{ write = { path, content } }` calls the file-writing tool the agent offers (see
//! [`tools`]); `{ report = { status, summary } }` writes swarm's completion.json where the
//! conversation's report footer says; `{ say = "…" }` answers with text; `{ call = { name,
//! arguments } }` calls any offered tool. The server keeps no conversation state: the step for a
//! request is the number of model turns since the last user message. The full reference is
//! `docs/fake-llm.md`.

mod limits;
mod log;
mod request;
mod scenario;
mod server;
pub mod tools;
mod turn;
mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use log::{RequestLog, RequestRecord, ResponseKind};
pub use request::Format;
pub use scenario::{ErrorReply, LimitKind, Limits, ModelScript, RateLimit, Scenario, Step, Usage};
pub use server::{serve, FakeLlm};

/// docs/fake-llm.md, so its Rust example is compiled with this crate's doctests (its other
/// examples are checked by `tests/doc.rs`).
#[cfg(doctest)]
#[doc = include_str!("../../../docs/fake-llm.md")]
pub struct FakeLlmDoc;

/// Everything that can go wrong loading a scenario or running the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read scenario {path}")]
    ReadScenario {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid scenario {origin}: {message}")]
    ParseScenario { origin: String, message: String },
    #[error("invalid scenario: {0}")]
    InvalidScenario(String),
    #[error("cannot open request log {path}")]
    OpenLog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("fake model server failed")]
    Serve(#[source] std::io::Error),
}
