//! The JSON form of a plan: exactly what `swarm plan show --json` prints (the serialized [`Plan`]),
//! with `name`, `namespace`, `brief` and a task's `agent` optional. Checked like the markdown form.

use super::model::{Plan, Workdir};
use super::validate::{self, Draft, Spanned};
use super::PlanContext;
use crate::diagnostic::{Diagnostics, Sink};
use crate::duration;
use serde::Deserialize;
use std::ops::Range;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonPlan {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    concurrency: Option<u32>,
    #[serde(default)]
    brief: String,
    #[serde(default)]
    state: Option<crate::team::StateDecl>,
    tasks: Vec<JsonTask>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonTask {
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    tier: Option<i64>,
    #[serde(default)]
    depends: Vec<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    stall: Option<String>,
    #[serde(default)]
    retries: u32,
    #[serde(default)]
    check: Option<String>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    workdir: Option<Workdir>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    handoff: Option<crate::team::Handoff>,
    #[serde(default)]
    on_conflict: Option<super::model::OnConflict>,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    prompt: String,
}

pub(super) fn parse(file: &str, src: &str, ctx: &PlanContext) -> Result<Plan, Diagnostics> {
    let mut sink = Sink::new(file, src);
    let parsed: JsonPlan = match serde_json::from_str(src) {
        Ok(p) => p,
        Err(e) => {
            report_serde_error(&e, &mut sink);
            return sink.finish(empty_plan(ctx));
        }
    };
    report_escaped_nuls(src, &mut sink);
    let root = Locator { b: src.as_bytes(), pos: 0 }.value();
    let tasks_node = root.get(src, "tasks");

    let concurrency = match parsed.concurrency {
        Some(0) => {
            let span = root.get(src, "concurrency").map_or(0..0, |n| n.span.clone());
            sink.error(span, "bad concurrency `0`").label("expected a whole number of at least 1");
            None
        }
        other => other,
    };

    let state = parsed.state.inspect(|decl| {
        let span = root.get(src, "state").map_or(0..0, |n| n.span.clone());
        super::state_decl::check_schemas(decl, &span, &mut sink);
    });
    let drafts = parsed
        .tasks
        .into_iter()
        .enumerate()
        .map(|(i, t)| draft(t, tasks_node.and_then(|n| n.item(i)), src, &mut sink))
        .collect();
    let form = validate::Form {
        no_tasks: tasks_node.map_or(0..0, |n| n.span.clone()),
        no_tasks_help: "add at least one task to `tasks`",
        defaults_broken: false,
    };
    let tasks = validate::finish(drafts, ctx, &mut sink, form);
    sink.finish(Plan {
        name: parsed.name.unwrap_or_else(|| ctx.default_name.clone()),
        namespace: parsed.namespace.unwrap_or_else(|| ctx.default_namespace.clone()),
        concurrency,
        brief: parsed.brief,
        state,
        tasks,
    })
}

/// A task as written, each value with its span (the task's first byte when the key is absent).
fn draft(t: JsonTask, node: Option<&JNode>, src: &str, sink: &mut Sink) -> Draft {
    let field = |key: &str| node.and_then(|n| n.get(src, key));
    let fallback = node.map_or(0..0, |n| n.span.start..n.span.start + 1);
    let span_of = |key: &str| field(key).map_or(fallback.clone(), |n| n.span.clone());

    let id = Spanned::new(t.id, span_of("id"));
    let deps = field("depends");
    let depends = t
        .depends
        .into_iter()
        .enumerate()
        .map(|(k, d)| {
            let span = deps.and_then(|n| n.item(k)).map_or_else(|| span_of("depends"), |n| n.span.clone());
            Spanned::new(d, span)
        })
        .collect();
    let mut dur = |key: &str, text: Option<String>| {
        let text = text?;
        duration::parse(&text)
            .map_err(|e| {
                sink.error(span_of(key), e).label("expected a duration like `45s`, `20m` or `1h30m`");
            })
            .ok()
    };
    let timeout = dur("timeout", t.timeout);
    let stall = dur("stall", t.stall);
    Draft {
        agent: t.agent.map(|a| Spanned::new(a, span_of("agent"))),
        agent_from_defaults: false,
        tier: t.tier.map(|v| Spanned::new(v, span_of("tier"))),
        id,
        title: t.title,
        model: t.model,
        depends,
        timeout,
        stall,
        retries: t.retries,
        check: t.check,
        command: t.command,
        paths: t.paths,
        workdir: t.workdir,
        role: t.role.map(|r| Spanned::new(r, span_of("role"))),
        handoff: t.handoff,
        on_conflict: t.on_conflict,
        labels: t.labels,
        prompt: t.prompt,
    }
}

/// Every `\u0000` escape (up to 20) in JSON that serde_json accepted: it can only be inside a
/// string, and every string of a plan may end up in a process's arguments or environment.
fn report_escaped_nuls(src: &str, sink: &mut Sink) {
    let b = src.as_bytes();
    let (mut i, mut in_string, mut found) = (0, false, 0);
    while i < b.len() && found < 20 {
        match b[i] {
            b'"' => in_string = !in_string,
            b'\\' if in_string => {
                if b.get(i + 1) == Some(&b'u') && b.get(i + 2..i + 6) == Some(b"0000".as_slice()) {
                    validate::report_nul(sink, i..i + 6);
                    found += 1;
                }
                i += 1; // the escaped character
            }
            _ => {}
        }
        i += 1;
    }
}

/// Only returned inside `Err`: a syntax error leaves nothing to build.
fn empty_plan(ctx: &PlanContext) -> Plan {
    Plan {
        name: ctx.default_name.clone(),
        namespace: ctx.default_namespace.clone(),
        concurrency: None,
        brief: String::new(),
        state: None,
        tasks: Vec::new(),
    }
}

/// serde_json gives a 1-based line and the byte column of the last byte it read: the end of the
/// offending token.
fn report_serde_error(e: &serde_json::Error, sink: &mut Sink) {
    let text = e.to_string();
    let message = match text.rfind(" at line ") {
        Some(i) if e.line() > 0 => &text[..i],
        _ => text.as_str(),
    };
    let at = sink.offset_after(e.line(), e.column());
    let span = token_before(sink.src(), at);
    sink.error(span, format!("invalid plan JSON: {message}"));
}

/// The token serde_json just read when it stopped at `at`: a string (quotes excluded) or one char.
fn token_before(src: &str, at: usize) -> Range<usize> {
    let b = src.as_bytes();
    if at > 0 && at <= b.len() && b[at - 1] == b'"' {
        // Walk back to the opening quote on the same line, skipping escaped quotes.
        let line_start = src[..at - 1].rfind('\n').map_or(0, |i| i + 1);
        let mut i = at - 1;
        while i > line_start {
            i -= 1;
            if b[i] == b'"' && (i == 0 || b[i - 1] != b'\\') {
                return i + 1..at - 1;
            }
        }
    }
    if at > 0 && at <= b.len() && !b[at - 1].is_ascii_whitespace() {
        let start = src[..at].char_indices().next_back().map_or(at, |(i, _)| i);
        return start..at;
    }
    at..at
}

/// A JSON value and where it is written; strings span their contents (without quotes).
struct JNode {
    span: Range<usize>,
    kind: JKind,
}

enum JKind {
    Object(Vec<(Range<usize>, JNode)>),
    Array(Vec<JNode>),
    Other,
}

impl JNode {
    fn get(&self, src: &str, key: &str) -> Option<&JNode> {
        match &self.kind {
            JKind::Object(entries) => entries.iter().find(|(k, _)| &src[k.clone()] == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn item(&self, i: usize) -> Option<&JNode> {
        match &self.kind {
            JKind::Array(items) => items.get(i),
            _ => None,
        }
    }
}

/// Finds where values are in JSON that serde_json has already accepted (so it can be lenient);
/// recursion is bounded because serde_json refuses deeper nesting than the plan shape allows.
struct Locator<'s> {
    b: &'s [u8],
    pos: usize,
}

impl Locator<'_> {
    fn skip_ws(&mut self) {
        while self.b.get(self.pos).is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> JNode {
        self.skip_ws();
        let start = self.pos;
        match self.b.get(self.pos) {
            Some(b'{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                loop {
                    self.skip_ws();
                    match self.b.get(self.pos) {
                        Some(b'"') => {
                            let key = self.string();
                            self.skip_ws();
                            if self.b.get(self.pos) == Some(&b':') {
                                self.pos += 1;
                            }
                            let value = self.value();
                            entries.push((key, value));
                        }
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            break;
                        }
                        _ => break,
                    }
                }
                JNode { span: start..self.pos, kind: JKind::Object(entries) }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    match self.b.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            break;
                        }
                        None => break,
                        _ => items.push(self.value()),
                    }
                }
                JNode { span: start..self.pos, kind: JKind::Array(items) }
            }
            Some(b'"') => JNode { span: self.string(), kind: JKind::Other },
            _ => {
                while self
                    .b
                    .get(self.pos)
                    .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
                {
                    self.pos += 1;
                }
                if self.pos == start && self.pos < self.b.len() {
                    self.pos += 1; // never stall on unexpected input
                }
                JNode { span: start..self.pos, kind: JKind::Other }
            }
        }
    }

    /// At an opening quote: consumes the string and returns its contents' span.
    fn string(&mut self) -> Range<usize> {
        self.pos += 1;
        let start = self.pos;
        while let Some(&c) = self.b.get(self.pos) {
            match c {
                b'\\' => self.pos += 2,
                b'"' => break,
                _ => self.pos += 1,
            }
        }
        let end = self.pos.min(self.b.len());
        self.pos = end + 1;
        start..end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_values() {
        let src = r#"{ "tasks": [ {"id": "a", "depends": ["b", "c\"d"]}, {"id":"x"} ] }"#;
        let root = Locator { b: src.as_bytes(), pos: 0 }.value();
        let tasks = root.get(src, "tasks").unwrap();
        let t0 = tasks.item(0).unwrap();
        assert_eq!(&src[t0.get(src, "id").unwrap().span.clone()], "a");
        assert_eq!(&src[t0.get(src, "depends").unwrap().item(1).unwrap().span.clone()], "c\\\"d");
        assert_eq!(&src[tasks.item(1).unwrap().get(src, "id").unwrap().span.clone()], "x");
    }

    #[test]
    fn previous_token() {
        assert_eq!(token_before(r#"{"agnt": 1}"#, 7), 2..6);
        assert_eq!(token_before("[1, x", 5), 4..5);
        assert_eq!(token_before("", 0), 0..0);
    }
}
