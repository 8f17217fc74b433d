//! The request log: one record per request, kept in memory for tests and optionally appended to
//! a JSON-lines file.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use crate::request::Format;
use crate::Error;

/// One request as the server saw and answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// 1-based, in arrival order across all models.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The request path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The query string, if any (`beta=true`, `alt=sse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The wire format of the path.
    #[serde(default)]
    pub format: Format,
    /// The requested model (absent for `/v1/models` and unparsable bodies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub stream: bool,
    /// Names of the tools the request offered.
    #[serde(default)]
    pub tools: Vec<String>,
    /// The step index read from the conversation (model turns since the last user message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<usize>,
    /// The text of every user message of the request, byte for byte as the agent sent it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user: Vec<String>,
    /// The key the request carried (`Authorization: Bearer`, `x-api-key`, `x-goog-api-key` or
    /// `?key=`; this is a fake provider: tests check which key reached it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer: Option<String>,
    pub response: ResponseKind,
    /// The whole request body as received (a JSON string when it was not JSON), so tests can
    /// assert on exactly what the model was sent.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub body: Value,
}

/// How a request was answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResponseKind {
    /// A completion whose message calls `tool` with these JSON `arguments`.
    ToolCall {
        tool: String,
        arguments: String,
    },
    /// A completion answering with text.
    Text {
        text: String,
    },
    /// HTTP 429.
    RateLimited {
        retry_after: u64,
    },
    /// A rate limit inside a 200 event stream (`response.failed`, Anthropic's `error` event).
    RateLimitedInStream {
        retry_after: u64,
    },
    Error {
        status: u16,
    },
    Hang,
    ModelNotFound,
    BadRequest {
        message: String,
    },
    /// A model list (`/v1/models`, `/v1beta/models`).
    Models,
    /// A token count (`count_tokens`, `countTokens`).
    TokenCount {
        tokens: u64,
    },
}

/// A shared, cloneable handle on the log.
#[derive(Debug, Clone)]
pub struct RequestLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    records: Mutex<Vec<RequestRecord>>,
    file: Option<Mutex<File>>,
    count: watch::Sender<usize>,
}

impl RequestLog {
    /// An in-memory log that also appends to `file` (created or appended to) when given.
    pub fn new(file: Option<&Path>) -> Result<RequestLog, Error> {
        let file = match file {
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| Error::OpenLog { path: path.to_path_buf(), source })?,
            )),
            None => None,
        };
        let inner = Inner { records: Mutex::new(Vec::new()), file, count: watch::Sender::new(0) };
        Ok(RequestLog { inner: Arc::new(inner) })
    }

    /// Records a request, assigning its `seq` and `at_ms`; returns the `seq`.
    pub(crate) fn push(&self, mut record: RequestRecord) -> u64 {
        let mut records = self.inner.records.lock().unwrap_or_else(|e| e.into_inner());
        record.seq = records.len() as u64 + 1;
        record.at_ms =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        if let Some(file) = &self.inner.file {
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            // A failing log file must not fail the request it describes.
            if let Ok(line) = serde_json::to_string(&record) {
                let _ = writeln!(file, "{line}").and_then(|()| file.flush());
            }
        }
        let seq = record.seq;
        records.push(record);
        self.inner.count.send_replace(records.len());
        seq
    }

    /// Every request so far, in arrival order.
    pub fn records(&self) -> Vec<RequestRecord> {
        self.inner.records.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How many requests were logged.
    pub fn len(&self) -> usize {
        *self.inner.count.borrow()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves once at least `n` requests were logged (wrap it in a timeout).
    pub async fn wait_for(&self, n: usize) {
        let mut count = self.inner.count.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = count.wait_for(|&len| len >= n).await;
    }
}
