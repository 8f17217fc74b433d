//! Task fields, shared by the bullet list under a task heading and `defaults:` in the front
//! matter: which keys there are, and how each value is read and checked.

use super::model::{OnConflict, Workdir};
use super::validate::{self, Spanned};
use crate::diagnostic::{closest, Sink};
use crate::duration;
use crate::team::Handoff;
use std::ops::Range;
use std::time::Duration;

/// Task fields, in the order error messages list them.
pub(super) const KEYS: [&str; 15] = [
    "agent",
    "model",
    "tier",
    "depends",
    "timeout",
    "stall",
    "retries",
    "check",
    "command",
    "paths",
    "workdir",
    "role",
    "handoff",
    "on_conflict",
    "labels",
];

/// A field value as written, before it is interpreted.
pub(super) struct RawValue {
    pub(super) text: String,
    pub(super) span: Range<usize>,
    /// `text` is exactly `src[span]`, so positions inside it map to the source.
    pub(super) exact: bool,
    /// A YAML sequence (only meaningful for `depends`, `paths` and `labels`).
    pub(super) items: Option<Vec<Spanned<String>>>,
}

/// The fields one task (or `defaults`) sets; `None` = not set (or set to an invalid value, reported).
#[derive(Debug, Clone, Default)]
pub(super) struct Fields {
    pub(super) agent: Option<Spanned<String>>,
    pub(super) model: Option<String>,
    pub(super) tier: Option<Spanned<i64>>,
    pub(super) depends: Option<Vec<Spanned<String>>>,
    pub(super) timeout: Option<Duration>,
    pub(super) stall: Option<Duration>,
    pub(super) retries: Option<u32>,
    pub(super) check: Option<String>,
    pub(super) command: Option<String>,
    pub(super) paths: Option<Vec<String>>,
    pub(super) workdir: Option<Workdir>,
    pub(super) role: Option<Spanned<String>>,
    pub(super) handoff: Option<Handoff>,
    pub(super) on_conflict: Option<OnConflict>,
    pub(super) labels: Option<std::collections::BTreeMap<String, String>>,
}

impl Fields {
    /// Fields this task does not set are taken from `defaults`.
    pub(super) fn or(self, defaults: &Fields) -> Fields {
        Fields {
            agent: self.agent.or_else(|| defaults.agent.clone()),
            model: self.model.or_else(|| defaults.model.clone()),
            tier: self.tier.or_else(|| defaults.tier.clone()),
            depends: self.depends.or_else(|| defaults.depends.clone()),
            timeout: self.timeout.or(defaults.timeout),
            stall: self.stall.or(defaults.stall),
            retries: self.retries.or(defaults.retries),
            check: self.check.or_else(|| defaults.check.clone()),
            command: self.command.or_else(|| defaults.command.clone()),
            paths: self.paths.or_else(|| defaults.paths.clone()),
            workdir: self.workdir.or(defaults.workdir),
            role: self.role.or_else(|| defaults.role.clone()),
            handoff: self.handoff.or(defaults.handoff),
            on_conflict: self.on_conflict.or(defaults.on_conflict),
            labels: self.labels.or_else(|| defaults.labels.clone()),
        }
    }
}

/// Where each key was first set in one field list, to report keys given twice.
#[derive(Default)]
pub(super) struct Seen([Option<usize>; KEYS.len()]);

impl Seen {
    /// Whether this list set `key`.
    pub(super) fn has(&self, key: &str) -> bool {
        KEYS.iter().position(|&k| k == key).is_some_and(|k| self.0[k].is_some())
    }
}

/// Reads `key: value` into `fields`, reporting an unknown key, a key set twice, or a value that
/// does not fit the key.
pub(super) fn set_field(
    fields: &mut Fields,
    seen: &mut Seen,
    key: &str,
    key_span: Range<usize>,
    value: RawValue,
    sink: &mut Sink,
) {
    if !first_time(seen, key, key_span, sink) {
        return;
    }
    report_escaped_nul(&value, sink);
    if matches!(key, "depends" | "paths" | "labels") {
        let items = match value.items {
            Some(items) => items,
            None => split_list(&value),
        };
        match key {
            "depends" => fields.depends = Some(items),
            "paths" => fields.paths = Some(items.into_iter().map(|i| i.value).collect()),
            _ => fields.labels = Some(labels(items, sink)),
        }
        return;
    }
    if value.items.is_some() {
        sink.error(value.span, format!("`{key}` takes a single value, not a list"));
        return;
    }
    let text = value.text.trim();
    if text.is_empty() {
        sink.error(value.span, format!("`{key}` needs a value")).label("missing value");
        return;
    }
    set_single(fields, key, text, value.span, sink);
}

/// Whether `key` is a known field set here for the first time (recorded in `seen`); else the
/// error is reported.
fn first_time(seen: &mut Seen, key: &str, key_span: Range<usize>, sink: &mut Sink) -> bool {
    let Some(k) = KEYS.iter().position(|&known| known == key) else {
        let diag = sink
            .error(key_span, format!("unknown key `{key}`"))
            .label(format!("expected one of: {}", KEYS.join(", ")));
        match closest(key, KEYS) {
            Some(s) => diag.help(format!("did you mean `{s}`?")),
            None => diag.help(
                "the bullet list right after a task heading holds its fields; \
                 put a paragraph before a list that belongs to the prompt",
            ),
        };
        return false;
    };
    if let Some(first) = seen.0[k] {
        let (line, _) = sink.line_col(first);
        sink.error(key_span, format!("`{key}` is set twice (first at line {line})")).label("set again here");
        return false;
    }
    seen.0[k] = Some(key_span.start);
    true
}

/// A YAML escape (`"\0"`) can make a NUL the source does not show; raw ones are reported where
/// they are written. The field is still set, so nothing else (e.g. a missing command) cascades.
fn report_escaped_nul(value: &RawValue, sink: &mut Sink) {
    let escaped_nul = |text: &str, span: &Range<usize>| {
        text.contains('\0') && !sink.src().get(span.clone()).is_some_and(|s| s.contains('\0'))
    };
    let nul_span = std::iter::once((value.text.as_str(), &value.span))
        .chain(value.items.iter().flatten().map(|i| (i.value.as_str(), &i.span)))
        .find(|(text, span)| escaped_nul(text, span))
        .map(|(_, span)| span.clone());
    if let Some(span) = nul_span {
        validate::report_nul(sink, span);
    }
}

/// A field that takes one value: `text`, written at `span`.
fn set_single(fields: &mut Fields, key: &str, text: &str, span: Range<usize>, sink: &mut Sink) {
    match key {
        "agent" => fields.agent = Some(Spanned::new(text.to_string(), span)),
        "model" => fields.model = Some(text.to_string()),
        "check" => fields.check = Some(text.to_string()),
        "command" => fields.command = Some(text.to_string()),
        "tier" => match text.parse::<i64>() {
            Ok(t) => fields.tier = Some(Spanned::new(t, span)),
            Err(_) => {
                sink.error(span, format!("bad tier `{text}`")).label("expected a whole number from 1 to 7");
            }
        },
        "retries" => match text.parse::<u32>() {
            Ok(r) => fields.retries = Some(r),
            Err(_) => {
                sink.error(span, format!("bad retries `{text}`"))
                    .label("expected a whole number (0 or more)");
            }
        },
        "timeout" | "stall" => match duration::parse(text) {
            Ok(d) if key == "timeout" => fields.timeout = Some(d),
            Ok(d) => fields.stall = Some(d),
            Err(e) => {
                sink.error(span, e).label("expected a duration like `45s`, `20m` or `1h30m`");
            }
        },
        "workdir" => match text {
            "worktree" => fields.workdir = Some(Workdir::Worktree),
            "shared" => fields.workdir = Some(Workdir::Shared),
            _ => {
                sink.error(span, format!("unknown workdir `{text}`"))
                    .label("expected `worktree` or `shared`");
            }
        },
        "role" => fields.role = Some(Spanned::new(text.to_string(), span)),
        "handoff" => match Handoff::parse(text) {
            Some(h) => fields.handoff = Some(h),
            None => {
                sink.error(span, format!("unknown handoff `{text}`"))
                    .label("expected `none`, `summary` or `full`");
            }
        },
        "on_conflict" => match text {
            "fail" => fields.on_conflict = Some(OnConflict::Fail),
            "agent" => fields.on_conflict = Some(OnConflict::Agent),
            _ => {
                sink.error(span, format!("unknown on_conflict `{text}`")).label("expected `fail` or `agent`");
            }
        },
        _ => unreachable!("every key in KEYS is handled"),
    }
}

/// `key=value` items: the labels a worker needs to take the task (`swarm worker --labels`).
fn labels(items: Vec<Spanned<String>>, sink: &mut Sink) -> std::collections::BTreeMap<String, String> {
    let mut labels = std::collections::BTreeMap::new();
    for item in items {
        match item.value.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                labels.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => {
                sink.error(item.span, format!("bad label `{}`", item.value))
                    .label("expected `key=value`, as `swarm worker --labels` gives them");
            }
        }
    }
    labels
}

/// `a, b ,c` → `a`, `b`, `c` (empty items dropped), each with its own span when the text is exact.
fn split_list(value: &RawValue) -> Vec<Spanned<String>> {
    let mut out = Vec::new();
    let mut offset = 0;
    for part in value.text.split(',') {
        let trimmed = part.trim();
        if !trimmed.is_empty() {
            let span = if value.exact {
                let start = value.span.start + offset + (part.len() - part.trim_start().len());
                start..start + trimmed.len()
            } else {
                value.span.clone()
            };
            out.push(Spanned::new(trimmed.to_string(), span));
        }
        offset += part.len() + 1;
    }
    out
}
