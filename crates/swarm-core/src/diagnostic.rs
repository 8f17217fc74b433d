//! Plan diagnostics: every problem found in a plan, each with `file:line:column` and a byte span,
//! rendered rustc-style (caret under the offending text) with annotate-snippets.

use crate::secrets::mask_secrets;
use annotate_snippets::{AnnotationKind, Group, Level, Origin, Renderer, Snippet};
use std::fmt;
use std::ops::Range;

/// Lines longer than this are not quoted in a rendered snippet (only `file:line:column` is shown):
/// rendering a multi-megabyte line (minified JSON) once per error would be slow and useless.
const MAX_QUOTED_LINE: usize = 16 * 1024;

/// One problem in a plan file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; 0 when the problem is not inside the file (e.g. it cannot be read).
    pub line: usize,
    /// 1-based, counted in chars; 0 when `line` is 0.
    pub column: usize,
    pub message: String,
    /// Text printed next to the caret.
    pub label: Option<String>,
    /// A hint printed below the snippet.
    pub help: Option<String>,
    /// Byte range of the offending text in the source.
    #[serde(skip)]
    pub span: Range<usize>,
}

impl Diagnostic {
    /// This diagnostic with secret-looking text masked in its words: what faces and `--json`
    /// show (a message may quote the plan).
    pub fn masked(&self) -> Diagnostic {
        Diagnostic {
            message: mask_secrets(&self.message),
            label: self.label.as_deref().map(mask_secrets),
            help: self.help.as_deref().map(mask_secrets),
            ..self.clone()
        }
    }

    pub(crate) fn label(&mut self, label: impl Into<String>) -> &mut Self {
        self.label = Some(label.into());
        self
    }

    pub(crate) fn help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(help.into());
        self
    }
}

/// All problems found in one plan file, together with its source (for rendering).
#[derive(Debug, Clone)]
pub struct Diagnostics {
    pub file: String,
    pub source: String,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// The plan file was not read, or is not a plan at all: nothing of it is quoted.
    pub fn unreadable(file: &str, why: &str) -> Self {
        Diagnostics {
            file: file.to_string(),
            source: String::new(),
            items: vec![Diagnostic {
                file: file.to_string(),
                line: 0,
                column: 0,
                message: format!("cannot read plan `{file}`: {why}"),
                label: None,
                help: None,
                span: 0..0,
            }],
        }
    }

    /// The plan file is not UTF-8: an error at its first invalid byte. The source kept for
    /// rendering is the lossy decoding, identical up to that byte, where the caret points at `�`.
    pub fn not_utf8(file: &str, bytes: &[u8], err: &std::str::Utf8Error) -> Self {
        let source = String::from_utf8_lossy(bytes).into_owned();
        let at = err.valid_up_to();
        let mut sink = Sink::new(file, &source);
        let diag = sink
            .error(
                at..at + '\u{fffd}'.len_utf8(),
                format!("the plan is not valid UTF-8 (byte 0x{:02x} at offset {at})", bytes[at]),
            )
            .label("not UTF-8");
        if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
            diag.help("this looks like UTF-16; save the plan as UTF-8");
        } else {
            diag.help("save the plan as UTF-8");
        }
        let items = sink.items;
        Diagnostics { file: file.to_string(), source, items }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Each item rendered rustc-style (file:line:column, the quoted line, a caret), one string
    /// per item.
    pub fn render_items(&self, color: bool) -> Vec<String> {
        let renderer = if color { Renderer::styled() } else { Renderer::plain() };
        // What looks like a key is masked in what is quoted (same length: spans still fit).
        let quoted = mask_secrets(&self.source);
        self.items.iter().map(|d| renderer.render(&[group(&quoted, &d.masked())])).collect()
    }

    /// Renders every item rustc-style, then a summary line saying nothing was started.
    pub fn render(&self, color: bool) -> String {
        let renderer = if color { Renderer::styled() } else { Renderer::plain() };
        let mut out = String::new();
        for item in self.render_items(color) {
            out.push_str(&item);
            out.push_str("\n\n");
        }
        let n = self.items.len();
        let summary = format!(
            "could not load plan `{}`: {n} error{}; nothing was started",
            self.file,
            if n == 1 { "" } else { "s" }
        );
        out.push_str(&renderer.render(&[Group::with_title(Level::ERROR.primary_title(summary))]));
        out.push('\n');
        out
    }
}

/// One diagnostic rendered against (the masked copy of) its source.
fn group<'a>(source: &'a str, d: &'a Diagnostic) -> Group<'a> {
    let title = Level::ERROR.primary_title(d.message.as_str());
    let quotable = d.line > 0
        && d.span.start <= d.span.end
        && source.get(d.span.start..d.span.end.min(source.len())).is_some();
    let mut group = if !quotable {
        Group::with_title(title)
    } else {
        let (excerpt, start) = excerpt(source, &d.span);
        if excerpt.len() > MAX_QUOTED_LINE {
            let mut g = title.element(Origin::path(d.file.as_str()).line(d.line).char_column(d.column));
            if let Some(label) = &d.label {
                g = g.element(Level::NOTE.message(label.as_str()));
            }
            g
        } else {
            // The excerpt drops a final `\r`, which a span may touch.
            let from = (d.span.start - start).min(excerpt.len());
            let local = from..(d.span.end - start).clamp(from, excerpt.len());
            let mut ann = AnnotationKind::Primary.span(local);
            if let Some(label) = &d.label {
                ann = ann.label(label.as_str());
            }
            title.element(Snippet::source(excerpt).line_start(d.line).path(d.file.as_str()).annotation(ann))
        }
    };
    if let Some(help) = &d.help {
        group = group.element(Level::HELP.message(help.as_str()));
    }
    group
}

/// The whole lines covering `span`, without the final line break, and the byte offset they start at.
fn excerpt<'s>(src: &'s str, span: &Range<usize>) -> (&'s str, usize) {
    let start = src[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let end_from = span.end.max(span.start).min(src.len());
    // A span ending right after a line break does not pull in the next line.
    let end_from =
        if end_from > span.start && src.as_bytes()[end_from - 1] == b'\n' { end_from - 1 } else { end_from };
    let mut end = src[end_from..].find('\n').map_or(src.len(), |i| end_from + i);
    if end > start && src.as_bytes()[end - 1] == b'\r' {
        end -= 1;
    }
    (&src[start..end.max(start)], start)
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for Diagnostics {}

/// Collects diagnostics for one source, turning byte spans into `line:column`.
pub(crate) struct Sink<'s> {
    file: &'s str,
    src: &'s str,
    /// Byte offset of the start of every line, built on the first error.
    line_starts: Vec<usize>,
    items: Vec<Diagnostic>,
}

impl<'s> Sink<'s> {
    pub(crate) fn new(file: &'s str, src: &'s str) -> Self {
        Sink { file, src, line_starts: Vec::new(), items: Vec::new() }
    }

    pub(crate) fn src(&self) -> &'s str {
        self.src
    }

    /// How many errors were reported so far.
    pub(crate) fn count(&self) -> usize {
        self.items.len()
    }

    /// Records an error at `span` (clamped to the source and to char boundaries).
    pub(crate) fn error(&mut self, span: Range<usize>, message: impl Into<String>) -> &mut Diagnostic {
        let mut start = floor_char_boundary(self.src, span.start.min(self.src.len()));
        // Just after the `\r` that ends a line (CRLF, or a lone one at the end of the file) is
        // shown as the end of that line's text: start there, so `line:column` says the same.
        let b = self.src.as_bytes();
        if start > 0 && b[start - 1] == b'\r' && b.get(start).is_none_or(|&c| c == b'\n') {
            start -= 1;
        }
        let end = floor_char_boundary(self.src, span.end.clamp(start, self.src.len()));
        let (line, column) = self.line_col(start);
        self.items.push(Diagnostic {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
            label: None,
            help: None,
            span: start..end,
        });
        self.items.last_mut().expect("just pushed")
    }

    /// 1-based line and char column of a byte offset.
    pub(crate) fn line_col(&mut self, pos: usize) -> (usize, usize) {
        if self.line_starts.is_empty() {
            self.line_starts.push(0);
            self.line_starts.extend(self.src.match_indices('\n').map(|(i, _)| i + 1));
        }
        let line = self.line_starts.partition_point(|&s| s <= pos);
        let line_start = self.line_starts[line - 1];
        (line, self.src[line_start..pos].chars().count() + 1)
    }

    /// Byte offset just past `byte_column` bytes of a 1-based line (serde_json's column is the last
    /// byte it read), clamped to the line.
    pub(crate) fn offset_after(&mut self, line: usize, byte_column: usize) -> usize {
        self.line_col(0);
        let Some(&start) = self.line_starts.get(line.max(1) - 1) else {
            return self.src.len();
        };
        let end = self.src[start..].find('\n').map_or(self.src.len(), |i| start + i);
        floor_char_boundary(self.src, (start + byte_column).min(end))
    }

    /// `Ok(value)` when nothing was reported, otherwise every diagnostic, in source order, deduplicated
    /// (a bad value in `defaults` is reported once, not once per task).
    pub(crate) fn finish<T>(mut self, value: T) -> Result<T, Diagnostics> {
        if self.items.is_empty() {
            return Ok(value);
        }
        self.items.sort_by(|a, b| {
            (a.span.start, a.span.end, &a.message).cmp(&(b.span.start, b.span.end, &b.message))
        });
        self.items.dedup_by(|a, b| a.span == b.span && a.message == b.message);
        Err(Diagnostics { file: self.file.to_string(), source: self.src.to_string(), items: self.items })
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Levenshtein distance, for "did you mean" hints.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
pub(crate) fn closest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let lower = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&lower, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rustc_style() {
        let src = "# plan\n\n- agnt: kilo\n";
        let mut sink = Sink::new("plan.md", src);
        sink.error(10..14, "unknown key `agnt`")
            .label("expected one of: agent")
            .help("did you mean `agent`?");
        let d = sink.finish(()).unwrap_err();
        assert_eq!((d.items[0].line, d.items[0].column), (3, 3));
        let text = d.render(false);
        assert!(text.contains("--> plan.md:3:3"), "{text}");
        assert!(text.contains("3 | - agnt: kilo\n  |   ^^^^ expected one of: agent"), "{text}");
        assert!(text.contains("help: did you mean `agent`?"), "{text}");
        assert!(
            text.ends_with("error: could not load plan `plan.md`: 1 error; nothing was started\n"),
            "{text}"
        );
    }

    #[test]
    fn columns_count_chars() {
        let src = "é: x\néé y";
        let mut sink = Sink::new("f", src);
        assert_eq!(sink.line_col(3), (1, 3));
        assert_eq!(sink.line_col(src.len()), (2, 5));
        assert_eq!(sink.offset_after(2, 4), 10);
    }

    #[test]
    fn a_span_after_a_final_cr_is_where_the_rendering_shows_it() {
        // Found by the fuzzer: `--> f:1:3` in JSON output, `--> f:1:2` in the rendering.
        for (src, at, want) in [("{\r", 2, (1, 2)), ("-*a--\r", 6, (1, 6)), ("x\r\ny", 2, (1, 2))] {
            let mut sink = Sink::new("f", src);
            sink.error(at..at, "here");
            let d = sink.finish(()).unwrap_err();
            assert_eq!((d.items[0].line, d.items[0].column), want, "{src:?}");
            let text = d.render(false);
            assert!(text.contains(&format!("--> f:{}:{}", want.0, want.1)), "{src:?}: {text}");
        }
    }

    #[test]
    fn io_error_renders_without_snippet() {
        let e = std::io::Error::new(std::io::ErrorKind::NotFound, "not found");
        let d = Diagnostics::unreadable("p.md", &e.to_string());
        assert!(d.render(false).starts_with("error: cannot read plan `p.md`: not found"));
    }

    #[test]
    fn suggestions() {
        assert_eq!(closest("agnt", ["agent", "model"]), Some("agent"));
        assert_eq!(closest("xyz", ["agent", "model"]), None);
    }
}
