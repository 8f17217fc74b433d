//! A markdown plan's YAML front matter (`name`, `namespace`, `concurrency`, `defaults`), read
//! with positions so every error points at its line and column.

use super::fields::{set_field, Fields, RawValue, Seen, KEYS};
use super::lines::{line_end, next_line};
use super::validate::{self, Spanned};
use crate::diagnostic::{closest, Sink};
use std::ops::Range;
use yaml_rust2::parser::{Event as YamlEvent, Parser as YamlParser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Keys of the front matter itself; task fields go under `defaults`.
const FRONT_MATTER_KEYS: [&str; 5] = ["name", "namespace", "concurrency", "defaults", "state"];

#[derive(Default)]
pub(super) struct FrontMatter {
    pub(super) name: Option<String>,
    pub(super) namespace: Option<String>,
    pub(super) concurrency: Option<u32>,
    pub(super) defaults: Fields,
    pub(super) state: Option<crate::team::StateDecl>,
}

/// Finds `---` … `---` at the very top of the file; returns the YAML's byte range and where the
/// markdown body starts.
pub(super) fn split_front_matter(src: &str, sink: &mut Sink) -> (Option<Range<usize>>, usize) {
    let bom = if src.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
    let first = bom..line_end(src, bom);
    if src[first.clone()].trim_end() != "---" {
        return (None, bom);
    }
    let yaml_start = next_line(src, bom);
    let mut pos = yaml_start;
    while pos < src.len() {
        let end = line_end(src, pos);
        if src[pos..end].trim_end() == "---" {
            return (Some(yaml_start..pos), next_line(src, pos));
        }
        pos = next_line(src, pos);
    }
    sink.error(first.start..first.start + 3, "front matter is not closed")
        .label("front matter starts here")
        .help("end the front matter with a line `---`");
    (None, bom)
}

/// A YAML node with the byte span of where it is written.
pub(super) enum Node {
    Scalar { value: String, style: TScalarStyle, span: Range<usize> },
    Map { entries: Vec<(Node, Node)>, span: Range<usize> },
    Seq { items: Vec<Node>, span: Range<usize> },
    Alias { span: Range<usize> },
}

impl Node {
    pub(super) fn span(&self) -> Range<usize> {
        match self {
            Node::Scalar { span, .. }
            | Node::Map { span, .. }
            | Node::Seq { span, .. }
            | Node::Alias { span } => span.clone(),
        }
    }

    /// Plain `~`, `null` or nothing.
    pub(super) fn is_null(&self) -> bool {
        matches!(self, Node::Scalar { value, style: TScalarStyle::Plain, .. } if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }
}

/// Maps yaml-rust2 markers (char indices into the YAML text) to byte offsets in the file.
struct YamlPos<'s> {
    src: &'s str,
    start: usize,
    char_bytes: Vec<usize>,
}

impl YamlPos<'_> {
    fn byte(&self, mark: &Marker) -> usize {
        self.start + self.char_bytes[mark.index().min(self.char_bytes.len() - 1)]
    }

    /// The span of a scalar starting at `mark`: as far as its text goes on that line.
    fn scalar(&self, mark: &Marker, value: &str, style: TScalarStyle) -> (Range<usize>, bool) {
        let start = self.byte(mark);
        let end = line_end(self.src, start);
        let line = &self.src[start..end];
        let stop = match style {
            TScalarStyle::Plain if !value.is_empty() && line.starts_with(value) => {
                return (start..start + value.len(), true);
            }
            TScalarStyle::Plain => line.find(" #").map_or(line.len(), |i| i).min(line.trim_end().len()),
            TScalarStyle::SingleQuoted => quoted_end(line, '\'', false),
            TScalarStyle::DoubleQuoted => quoted_end(line, '"', true),
            TScalarStyle::Literal | TScalarStyle::Folded => line.chars().next().map_or(0, char::len_utf8),
        };
        (start..start + line[..stop].trim_end().len(), false)
    }
}

/// Byte length of a quoted scalar (quotes included) on its first line, or the whole line.
fn quoted_end(line: &str, quote: char, backslash: bool) -> usize {
    let mut chars = line.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if backslash && c == '\\' {
            chars.next();
        } else if c == quote {
            if !backslash && chars.peek().is_some_and(|&(_, n)| n == quote) {
                chars.next();
            } else {
                return i + c.len_utf8();
            }
        }
    }
    line.len()
}

/// Reads the YAML with yaml-rust2's event parser into a tree of spanned nodes (iteratively).
fn read_yaml(src: &str, range: Range<usize>, sink: &mut Sink) -> Option<Node> {
    enum Open {
        Map { entries: Vec<(Node, Node)>, key: Option<Node>, span: Range<usize> },
        Seq { items: Vec<Node>, span: Range<usize> },
    }
    let yaml = &src[range.clone()];
    let mut char_bytes: Vec<usize> = yaml.char_indices().map(|(b, _)| b).collect();
    char_bytes.push(yaml.len());
    let pos = YamlPos { src, start: range.start, char_bytes };

    let mut parser = YamlParser::new_from_str(yaml);
    let mut open: Vec<Open> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let (event, mark) = match parser.next_token() {
            Ok(x) => x,
            Err(e) => {
                let at = pos.byte(e.marker());
                let end =
                    if at < range.end { at + src[at..].chars().next().map_or(0, char::len_utf8) } else { at };
                let end = if src[at..end].trim().is_empty() { at } else { end };
                sink.error(at..end, format!("invalid YAML in front matter: {}", e.info())).label("here");
                return None;
            }
        };
        let at = pos.byte(&mark);
        let node = match event {
            YamlEvent::StreamEnd => break,
            YamlEvent::Scalar(value, style, _, _) => {
                let (span, _) = pos.scalar(&mark, &value, style);
                Node::Scalar { value, style, span }
            }
            YamlEvent::Alias(_) => Node::Alias { span: at..at },
            YamlEvent::MappingStart(..) => {
                open.push(Open::Map { entries: Vec::new(), key: None, span: at..at });
                continue;
            }
            YamlEvent::SequenceStart(..) => {
                open.push(Open::Seq { items: Vec::new(), span: at..at });
                continue;
            }
            YamlEvent::MappingEnd | YamlEvent::SequenceEnd => match open.pop() {
                Some(Open::Map { entries, span, .. }) => Node::Map { entries, span },
                Some(Open::Seq { items, span }) => Node::Seq { items, span },
                None => continue,
            },
            _ => continue,
        };
        match open.last_mut() {
            Some(Open::Map { entries, key, .. }) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => *key = Some(node),
            },
            Some(Open::Seq { items, .. }) => items.push(node),
            None if root.is_none() => root = Some(node),
            None => {
                sink.error(node.span(), "front matter must be a single YAML document");
                return None;
            }
        }
    }
    root
}

pub(super) fn parse_front_matter(
    src: &str,
    yaml: Range<usize>,
    ctx: &super::PlanContext,
    sink: &mut Sink,
) -> FrontMatter {
    let mut fm = FrontMatter::default();
    let Some(root) = read_yaml(src, yaml, sink) else {
        return fm;
    };
    if root.is_null() {
        return fm;
    }
    let Node::Map { entries, .. } = root else {
        sink.error(root.span(), "front matter must be a YAML mapping")
            .label("expected `key: value` lines")
            .help(format!("front matter keys: {}", FRONT_MATTER_KEYS.join(", ")));
        return fm;
    };
    let mut seen: [Option<usize>; FRONT_MATTER_KEYS.len()] = [None; FRONT_MATTER_KEYS.len()];
    for (key, value) in entries {
        let Some((name, key_span)) = scalar_key(&key, sink) else { continue };
        let Some(k) = FRONT_MATTER_KEYS.iter().position(|&known| known == name) else {
            let diag = sink
                .error(key_span, format!("unknown front matter key `{name}`"))
                .label(format!("expected one of: {}", FRONT_MATTER_KEYS.join(", ")));
            if let Some(s) = closest(name, FRONT_MATTER_KEYS) {
                diag.help(format!("did you mean `{s}`?"));
            } else if KEYS.contains(&name) {
                diag.help(format!("task fields go under `defaults:`, e.g. `defaults:` then `  {name}: …`"));
            }
            continue;
        };
        if let Some(first) = seen[k] {
            let (line, _) = sink.line_col(first);
            sink.error(key_span, format!("`{name}` is set twice (first at line {line})"))
                .label("set again here");
            continue;
        }
        seen[k] = Some(key_span.start);
        if name == "state" && !value.is_null() {
            fm.state = super::state_decl::parse(&value, key_span, ctx, sink);
        } else if !value.is_null() {
            fm.set(name, key_span, value, sink);
        }
    }
    fm
}

impl FrontMatter {
    /// Reads the front matter key `name` (known, first time, not null).
    fn set(&mut self, name: &str, key_span: Range<usize>, value: Node, sink: &mut Sink) {
        match name {
            "name" | "namespace" => {
                let Node::Scalar { value: text, span, .. } = &value else {
                    sink.error(key_span, format!("`{name}` must be a string")).label("not a string");
                    return;
                };
                if text.contains('\0') && !sink.src().get(span.clone()).is_some_and(|s| s.contains('\0')) {
                    validate::report_nul(sink, span.clone());
                }
                if name == "name" {
                    self.name = Some(text.clone());
                } else {
                    self.namespace = Some(text.clone());
                }
            }
            "concurrency" => match &value {
                Node::Scalar { value: text, span, .. } => match text.trim().parse::<u32>() {
                    Ok(n) if n >= 1 => self.concurrency = Some(n),
                    _ => {
                        sink.error(span.clone(), format!("bad concurrency `{text}`"))
                            .label("expected a whole number of at least 1");
                    }
                },
                _ => {
                    sink.error(key_span, "`concurrency` must be a number")
                        .label("expected a whole number of at least 1");
                }
            },
            _ => match value {
                Node::Map { entries, .. } => self.defaults = parse_defaults(entries, sink),
                _ => {
                    sink.error(key_span, "`defaults` must be a mapping of task fields")
                        .label("expected `key: value` lines indented below `defaults:`");
                }
            },
        }
    }
}

fn parse_defaults(entries: Vec<(Node, Node)>, sink: &mut Sink) -> Fields {
    let mut fields = Fields::default();
    let mut seen = Seen::default();
    for (key, value) in entries {
        let Some((name, key_span)) = scalar_key(&key, sink) else { continue };
        let raw = match value {
            Node::Scalar { .. } if value.is_null() => {
                RawValue { text: String::new(), span: key_span.clone(), exact: false, items: None }
            }
            Node::Scalar { value: text, span, .. } => {
                let exact = sink.src().get(span.clone()) == Some(text.as_str());
                RawValue { text, span, exact, items: None }
            }
            Node::Seq { items, .. } => {
                let mut list = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Node::Scalar { value, span, .. } => list.push(Spanned::new(value, span)),
                        other => {
                            sink.error(other.span(), format!("`{name}` items must be plain values"));
                        }
                    }
                }
                RawValue { text: String::new(), span: key_span.clone(), exact: false, items: Some(list) }
            }
            other => {
                let span = if other.span().is_empty() { key_span.clone() } else { other.span() };
                sink.error(span, format!("`{name}` must be a value, not a mapping"));
                continue;
            }
        };
        set_field(&mut fields, &mut seen, name, key_span, raw, sink);
    }
    fields
}

/// A mapping key that is a plain string, or an error at it.
fn scalar_key<'n>(key: &'n Node, sink: &mut Sink) -> Option<(&'n str, Range<usize>)> {
    match key {
        Node::Scalar { value, span, .. } => Some((value.as_str(), span.clone())),
        other => {
            sink.error(other.span(), "front matter keys must be plain names");
            None
        }
    }
}
