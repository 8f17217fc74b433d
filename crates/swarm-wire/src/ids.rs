//! Tool-call ids that carry what an agent's format has no field for.
//!
//! Gemini 3 returns a `thought_signature` with each function call (in OpenAI Chat form:
//! `extra_content.google.thought_signature` on the tool call) and refuses the next request if the
//! call comes back without it. Gemini CLI keeps it on the part and OpenAI Chat agents keep
//! `extra_content`, but Claude Code and Codex keep only a tool call's id. So for those two the
//! id itself carries the extension: `swx_` + base64url(JSON `{"id":…,"x":…}`), decoded back into
//! `extra_content` when the call returns in the next request. Anthropic also restricts ids to
//! `[A-Za-z0-9_-]`; an upstream id outside that set travels the same way.

use serde_json::{json, Value};

const PREFIX: &str = "swx_";

/// The id an agent sees for an upstream tool call with optional `extra_content`.
/// `strict` asks for Anthropic's id alphabet.
pub fn to_agent(id: &str, extra: Option<&Value>, strict: bool) -> String {
    let plain = !id.starts_with(PREFIX) && (!strict || is_strict(id));
    match extra.filter(|x| !x.is_null()) {
        None if plain => id.to_string(),
        extra => {
            let mut v = json!({ "id": id });
            if let Some(x) = extra {
                v["x"] = x.clone();
            }
            format!("{PREFIX}{}", encode(v.to_string().as_bytes()))
        }
    }
}

/// The upstream id and `extra_content` behind an id an agent sent back. Ids this module did not
/// make come back unchanged.
pub fn from_agent(id: &str) -> (String, Option<Value>) {
    let decoded = id
        .strip_prefix(PREFIX)
        .and_then(decode)
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|v| Some((v.get("id")?.as_str()?.to_string(), v.get("x").cloned())));
    decoded.unwrap_or_else(|| (id.to_string(), None))
}

fn is_strict(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let v = ALPHABET.iter().position(|a| a == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_every_length() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
        }
        assert_eq!(encode(b"foob"), "Zm9vYg");
    }

    #[test]
    fn plain_ids_stay_plain_and_extensions_come_back() {
        assert_eq!(to_agent("call_1", None, true), "call_1");
        assert_eq!(from_agent("call_1"), ("call_1".to_string(), None));
        let sig = json!({"google": {"thought_signature": "abc+/=="}});
        let id = to_agent("function-call-7", Some(&sig), true);
        assert!(id.starts_with(PREFIX) && is_strict(&id));
        assert_eq!(from_agent(&id), ("function-call-7".to_string(), Some(sig)));
        let odd = to_agent("functions.bash:0", None, true);
        assert!(is_strict(&odd));
        assert_eq!(from_agent(&odd).0, "functions.bash:0");
        assert_eq!(to_agent("functions.bash:0", None, false), "functions.bash:0");
        assert_eq!(from_agent("swx_%%%"), ("swx_%%%".to_string(), None));
    }
}
