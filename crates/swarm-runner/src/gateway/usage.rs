//! Token counts of an OpenAI-compatible answer: the `usage` object of a completion, or of the
//! last stream chunk that carries one.

use serde_json::Value;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub tokens_in: u64,
    pub tokens_out: u64,
}

fn of(v: &Value) -> Option<Usage> {
    let u = v.get("usage").filter(|u| u.is_object())?;
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    Some(Usage { tokens_in: n("prompt_tokens"), tokens_out: n("completion_tokens") })
}

/// The usage of a non-streamed completion (zero when it has none).
pub fn from_completion(body: &[u8]) -> Usage {
    serde_json::from_slice::<Value>(body).ok().as_ref().and_then(of).unwrap_or_default()
}

/// Reads server-sent events as they pass and keeps the last usage seen.
#[derive(Debug, Default)]
pub struct SseUsage {
    line: Vec<u8>,
    last: Option<Usage>,
}

impl SseUsage {
    pub fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if b == b'\n' {
                let line = std::mem::take(&mut self.line);
                if let Some(data) = line.strip_prefix(b"data:") {
                    if let Ok(v) = serde_json::from_slice::<Value>(data.trim_ascii()) {
                        if let Some(u) = of(&v) {
                            self.last = Some(u);
                        }
                    }
                }
            } else if self.line.len() < 1 << 20 {
                self.line.push(b);
            }
        }
    }

    pub fn usage(&self) -> Usage {
        self.last.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_from_a_completion_and_from_a_stream_split_anywhere() {
        let body = br#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3}}"#;
        assert_eq!(from_completion(body), Usage { tokens_in: 12, tokens_out: 3 });
        assert_eq!(from_completion(b"not json"), Usage::default());
        let stream = b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n\
data: {\"choices\":[],\"usage\":{\"prompt_tokens\":40,\"completion_tokens\":7}}\n\ndata: [DONE]\n\n";
        for cut in [1, 7, 50, stream.len() - 3] {
            let mut s = SseUsage::default();
            s.feed(&stream[..cut]);
            s.feed(&stream[cut..]);
            assert_eq!(s.usage(), Usage { tokens_in: 40, tokens_out: 7 }, "cut at {cut}");
        }
    }
}
