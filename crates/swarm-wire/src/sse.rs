//! Server-sent events: a decoder fed bytes split anywhere (inside a line, inside a UTF-8
//! character, between `\r` and `\n`) and the encoders for the events this crate writes.

use crate::{Format, WireError};
use serde_json::Value;

/// The longest line a decoder buffers before giving up: a stream that never ends a line is
/// broken, and must not grow memory without bound.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// One dispatched event: its `event:` name (if any) and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Turns a byte stream into events, following the WHATWG event-stream rules that matter here.
#[derive(Debug)]
pub struct SseDecoder {
    format: Format,
    buf: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to that line end.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
}

impl SseDecoder {
    pub fn new(format: Format) -> Self {
        SseDecoder { format, buf: Vec::new(), after_cr: false, event: None, data: None }
    }

    /// Feeds bytes; returns the events completed by them.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, WireError> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.buf);
                    self.line(&line, &mut out)?;
                }
                _ => {
                    if self.buf.len() >= MAX_LINE {
                        return Err(WireError::TooLarge { format: self.format, limit: MAX_LINE });
                    }
                    self.buf.push(b);
                }
            }
        }
        Ok(out)
    }

    /// The stream ended: an unterminated last event still counts (some servers omit the blank
    /// line after it).
    pub fn finish(&mut self) -> Result<Vec<SseEvent>, WireError> {
        let mut out = Vec::new();
        if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            self.line(&line, &mut out)?;
        }
        self.dispatch(&mut out);
        Ok(out)
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), WireError> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| WireError::malformed(self.format, "stream line", "not UTF-8"))?;
        let (field, value) = match line.find(':') {
            Some(0) => return Ok(()), // a comment
            Some(at) => (&line[..at], line[at + 1..].strip_prefix(' ').unwrap_or(&line[at + 1..])),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {} // id, retry and unknown fields carry nothing a translator needs
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if let Some(data) = self.data.take() {
            out.push(SseEvent { event, data });
        }
    }
}

/// `data: JSON\n\n` (OpenAI Chat and Gemini streams).
pub fn data(out: &mut Vec<u8>, v: &Value) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(v.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// `event: NAME\ndata: JSON\n\n` (Anthropic and Responses streams).
pub fn named(out: &mut Vec<u8>, name: &str, v: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    data(out, v);
}

/// The OpenAI Chat stream's terminator.
pub fn done(out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: [DONE]\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut d = SseDecoder::new(Format::Chat);
        let mut out = Vec::new();
        for c in chunks {
            out.extend(d.feed(c).unwrap());
        }
        out.extend(d.finish().unwrap());
        out
    }

    #[test]
    fn events_survive_any_split() {
        let text = "event: a\r\ndata: {\"x\":\"é\"}\r\n\r\n: comment\ndata: 1\ndata: 2\n\ndata: last";
        let whole = all(&[text.as_bytes()]);
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[0], SseEvent { event: Some("a".into()), data: "{\"x\":\"é\"}".into() });
        assert_eq!(whole[1].data, "1\n2");
        assert_eq!(whole[2].data, "last");
        let bytes = text.as_bytes();
        for cut in 0..bytes.len() {
            assert_eq!(all(&[&bytes[..cut], &bytes[cut..]]), whole, "cut at {cut}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(all(&singles), whole);
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_panic() {
        let mut d = SseDecoder::new(Format::Gemini);
        assert!(matches!(d.feed(b"data: \xff\xfe\n\n"), Err(WireError::Malformed { .. })));
    }
}
