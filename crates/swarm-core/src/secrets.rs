//! Masking what looks like a secret (an API key, a token, a password) in text swarm echoes back:
//! a plan's quoted line, an error message. A guess by shape, so it masks a little too much rather
//! than too little; masking keeps byte offsets, so spans into the text stay valid.

/// Names whose value is a secret (`OPENAI_API_KEY=…`, `password: …`), by their ending.
const SECRET_NAMES: [&str; 6] = ["key", "token", "secret", "password", "passwd", "credentials"];

/// Prefixes providers and forges put on keys (OpenAI, Anthropic, GitHub, GitLab, Slack, AWS,
/// Google).
const KEY_PREFIXES: [&str; 9] =
    ["sk-", "sk_", "ghp_", "gho_", "github_pat_", "glpat-", "xox", "AKIA", "AIza"];

/// What is kept of a masked value, so the reader still sees which one it was.
const KEPT: usize = 4;

fn word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')
}

/// A run of key characters that looks like a key: a known prefix and some length, or long and
/// mixing letters and digits the way random strings do.
fn looks_like_key(word: &str) -> bool {
    if KEY_PREFIXES.iter().any(|p| word.starts_with(p)) && word.len() >= 16 {
        return true;
    }
    let digits = word.bytes().filter(u8::is_ascii_digit).count();
    let letters = word.bytes().filter(u8::is_ascii_alphabetic).count();
    word.len() >= 32 && digits >= 4 && letters >= 4
}

/// Whether a variable or setting of this name holds a secret (`OPENAI_API_KEY`, `password`).
pub fn is_secret_name(name: &str) -> bool {
    secret_name(name)
}

/// Whether the name before `=` or `:` says its value is a secret.
fn secret_name(name: &str) -> bool {
    let name = name.trim_end().trim_start_matches(['-', '*', ' ', '"', '\'']).to_ascii_lowercase();
    let name = name.trim_end_matches(['"', '\'']);
    !name.is_empty()
        && name.bytes().all(|b| word_byte(b) || b == b'.')
        && SECRET_NAMES.iter().any(|s| name.ends_with(s))
}

/// Replaces the ASCII bytes of `text[range]` after the first [`KEPT`] with `*`.
fn mask_range(bytes: &mut [u8], start: usize, end: usize) {
    let from = if end - start > 2 * KEPT { start + KEPT } else { start };
    for b in &mut bytes[from..end] {
        if b.is_ascii_graphic() {
            *b = b'*';
        }
    }
}

/// `text` with every secret-looking value masked (same length, same char boundaries).
pub fn mask_secrets(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    // Values of secret-named settings, up to the end of the value.
    let mut line_start = 0;
    for line in text.split_inclusive(['\n', '\0']) {
        if let Some(sep) = line.find(['=', ':']) {
            if secret_name(&line[..sep]) {
                let value = &line[sep + 1..];
                let lead = value.len() - value.trim_start_matches([' ', '"', '\'']).len();
                let start = line_start + sep + 1 + lead;
                let end = line_start + line.trim_end_matches(['\n', '\r', '\0', '"', '\'', ' ']).len();
                if end > start {
                    mask_range(&mut bytes, start, end);
                }
            }
        }
        line_start += line.len();
    }
    // `NAME=value` words inside a line (`command: export API_KEY=…`).
    let mut at = 0;
    for word in text.split_inclusive(|c: char| c.is_whitespace() || c == '\0') {
        let trimmed = word.trim_end_matches(|c: char| c.is_whitespace() || c == '\0');
        if let Some(eq) = trimmed.find('=') {
            if secret_name(&trimmed[..eq]) && trimmed.len() > eq + 1 {
                mask_range(&mut bytes, at + eq + 1, at + trimmed.len());
            }
        }
        at += word.len();
    }
    // Key-shaped words anywhere.
    let mut i = 0;
    while i < text.len() {
        if !word_byte(text.as_bytes()[i]) {
            i += 1;
            continue;
        }
        let end = text[i..].bytes().position(|b| !word_byte(b)).map_or(text.len(), |n| i + n);
        if looks_like_key(&text[i..end]) {
            mask_range(&mut bytes, i, end);
        }
        i = end;
    }
    // Only ASCII bytes were replaced, by ASCII: still UTF-8.
    String::from_utf8(bytes).expect("masking keeps UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_secret_settings_are_masked_in_place() {
        let text = "A=1\0OPENAI_API_KEY=abc123\0PATH=/usr/bin\n- colour: sk-proj-Zx81bQ92mmPq0017\n";
        let masked = mask_secrets(text);
        assert_eq!(masked.len(), text.len());
        assert!(!masked.contains("abc123") && !masked.contains("Zx81bQ92mmPq0017"), "{masked}");
        assert!(masked.contains("OPENAI_API_KEY=******") && masked.contains("PATH=/usr/bin"), "{masked}");
        assert!(masked.contains("colour: sk-p"), "{masked}");
        let yaml = "password: \"hunter2-long-one\"\nagent: exec\n";
        assert_eq!(mask_secrets(yaml), "password: \"hunt************\"\nagent: exec\n");
        let inline = "- command: export GEMINI_API_KEY=AIzaLongValue; run\n";
        assert!(!mask_secrets(inline).contains("LongValue"), "{}", mask_secrets(inline));
        let random = "token a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7 here";
        assert!(!mask_secrets(random).contains("e5F6g7H8"), "{}", mask_secrets(random));
    }

    #[test]
    fn ordinary_plan_text_is_left_alone() {
        for text in [
            "## build-the-runner: Build it\n- agent: claude\n- model: anthropic/claude-sonnet-4\n",
            "- depends: a, b\n- timeout: 30m\n- command: cargo test --workspace\n",
            "é: x\n",
            "- command: echo done; max_tokens=5 is fine\n",
        ] {
            assert_eq!(mask_secrets(text), text);
        }
    }
}
