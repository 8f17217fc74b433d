//! The one error type of the crate: what was wrong with which format's input.

use crate::Format;

/// Why a body, a chunk or a stream could not be translated.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{format} body is not JSON: {source}")]
    NotJson {
        format: Format,
        #[source]
        source: serde_json::Error,
    },
    #[error("{format} {what}: {why}")]
    Malformed { format: Format, what: String, why: String },
    #[error("{format} {what} cannot be translated: {why}")]
    Unsupported { format: Format, what: String, why: String },
    #[error("{format} stream ended before it finished")]
    Truncated { format: Format },
    #[error("{format} stream line longer than {limit} bytes")]
    TooLarge { format: Format, limit: usize },
}

impl WireError {
    pub(crate) fn malformed(format: Format, what: impl Into<String>, why: impl Into<String>) -> Self {
        WireError::Malformed { format, what: what.into(), why: why.into() }
    }

    pub(crate) fn unsupported(format: Format, what: impl Into<String>, why: impl Into<String>) -> Self {
        WireError::Unsupported { format, what: what.into(), why: why.into() }
    }
}
