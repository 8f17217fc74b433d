//! Keys given twice in one object of a JSON text: serde_json keeps the last, other parsers the
//! first, so an agent's completion.json must not have any.

use super::line_col;
use serde_json::Value;
use std::collections::HashMap;

/// At most this many duplicate keys are listed.
const MAX_DUPLICATES: usize = 20;

/// Every key that appears twice in one object of `text`, which serde_json has accepted (so the
/// walk can be lenient, and its depth is bounded by serde_json's recursion limit), as
/// `<json pointer>: duplicate key … at line L, column C (first at …)`.
pub(super) fn duplicate_keys(text: &str) -> Vec<String> {
    let mut walk = Walk { text, pos: 0, path: Vec::new(), found: Vec::new(), more: 0 };
    walk.value();
    let b = text.as_bytes();
    let mut out: Vec<String> = walk
        .found
        .into_iter()
        .map(|d| {
            let (l1, c1) = line_col(&b[..d.first]);
            let (l2, c2) = line_col(&b[..d.again]);
            format!(
                "{}: duplicate key {} at line {l2}, column {c2} (first at line {l1}, column {c1})",
                d.pointer,
                Value::from(d.key)
            )
        })
        .collect();
    if walk.more > 0 {
        out.push(format!(": {} more duplicate keys", walk.more));
    }
    out
}

/// A key given again: where, and the byte offsets of both.
struct Duplicate {
    pointer: String,
    key: String,
    first: usize,
    again: usize,
}

/// A walk over JSON text that serde_json accepted, tracking the JSON pointer of each value.
struct Walk<'s> {
    text: &'s str,
    pos: usize,
    path: Vec<String>,
    found: Vec<Duplicate>,
    /// Duplicates beyond [`MAX_DUPLICATES`], only counted.
    more: usize,
}

impl Walk<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn value(&mut self) {
        self.skip_ws();
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => {
                self.string();
            }
            Some(_) => {
                while self
                    .peek()
                    .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
                {
                    self.pos += 1;
                }
            }
            None => {}
        }
    }

    fn object(&mut self) {
        self.pos += 1;
        let mut seen: HashMap<String, usize> = HashMap::new();
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b'"') => {
                    let at = self.pos;
                    let key = self.string();
                    self.skip_ws();
                    self.pos += 1; // the colon
                    self.note(&mut seen, &key, at);
                    self.path.push(key);
                    self.value();
                    self.path.pop();
                }
                Some(b',') => self.pos += 1,
                Some(b'}') | None => {
                    self.pos += 1;
                    return;
                }
                Some(_) => self.pos += 1, // never stall
            }
        }
    }

    /// Records `key`, found at offset `at` of an object whose keys so far are `seen`.
    fn note(&mut self, seen: &mut HashMap<String, usize>, key: &str, at: usize) {
        match seen.get(key) {
            Some(&first) if self.found.len() < MAX_DUPLICATES => {
                let pointer: String = self
                    .path
                    .iter()
                    .map(String::as_str)
                    .chain([key])
                    .map(|t| format!("/{}", escape(t)))
                    .collect();
                self.found.push(Duplicate { pointer, key: key.to_string(), first, again: at });
            }
            Some(_) => self.more += 1,
            None => {
                seen.insert(key.to_string(), at);
            }
        }
    }

    fn array(&mut self) {
        self.pos += 1;
        let mut index = 0;
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') | None => {
                    self.pos += 1;
                    return;
                }
                Some(_) => {
                    self.path.push(index.to_string());
                    self.value();
                    self.path.pop();
                    index += 1;
                }
            }
        }
    }

    /// At an opening quote: the string's decoded value; leaves `pos` after the closing quote.
    fn string(&mut self) -> String {
        let start = self.pos;
        self.pos += 1;
        let mut escaped = false;
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                b'\\' => {
                    escaped = true;
                    self.pos += 1;
                }
                b'"' => break,
                _ => {}
            }
        }
        let raw = &self.text[start..self.pos.min(self.text.len())];
        if escaped {
            serde_json::from_str(raw).unwrap_or_default()
        } else {
            raw.trim_matches('"').to_string()
        }
    }
}

/// RFC 6901: `~` and `/` inside a reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}
