//! The markdown form of a plan (CONTRACT §1): YAML front matter, a shared brief, then one
//! `## <id>: <title>` section per task whose leading bullet list holds the task's fields.

use super::front_matter::{parse_front_matter, split_front_matter, FrontMatter};
use super::model::{Plan, Workdir};
use super::validate::{self, Draft, Spanned};
use super::PlanContext;
use crate::diagnostic::{closest, Diagnostics, Sink};
use crate::duration;
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use std::ops::Range;
use std::time::Duration;

/// Task fields, in the order error messages list them.
pub(super) const KEYS: [&str; 11] = [
    "agent", "model", "tier", "depends", "timeout", "stall", "retries", "check", "command", "paths",
    "workdir",
];

pub(super) const FRONT_MATTER_KEYS: [&str; 4] = ["name", "namespace", "concurrency", "defaults"];

const HEADING_FORM: &str = "a task heading is `## <id>: <title>`, e.g. `## schema: Define the schema`; \
                            use `###` for a heading inside a prompt";

pub(super) fn parse(file: &str, src: &str, ctx: &PlanContext) -> Result<Plan, Diagnostics> {
    let mut sink = Sink::new(file, src);
    validate::report_nul_bytes(src, &mut sink);
    let errors_before = sink.count();
    let (front, body_start) = split_front_matter(src, &mut sink);
    let front = match front {
        Some(yaml) => parse_front_matter(src, yaml, &mut sink),
        None => FrontMatter::default(),
    };

    let defaults_broken = sink.count() > errors_before;

    let body = scan_body(src, body_start);
    let brief = trim_blank_lines(&src[body_start..body.first_heading]).to_string();

    let mut drafts = Vec::with_capacity(body.sections.len());
    for section in &body.sections {
        if let Some(draft) = parse_section(src, section, &front.defaults, &mut sink) {
            drafts.push(draft);
        }
    }
    let form = validate::Form {
        no_tasks: body.first_heading..body.first_heading,
        no_tasks_help: "a task is a level-2 heading `## <id>: <title>` followed by its fields and prompt",
        defaults_broken,
    };
    let tasks = validate::finish(drafts, ctx, &mut sink, form);
    let plan = Plan {
        name: front.name.unwrap_or_else(|| ctx.default_name.clone()),
        namespace: front.namespace.unwrap_or_else(|| ctx.default_namespace.clone()),
        concurrency: front.concurrency,
        brief,
        tasks,
    };
    sink.finish(plan)
}

// ---------------------------------------------------------------------------------------------
// Task fields, shared by the bullet list under a heading and `defaults:` in the front matter.

/// A field value as written, before it is interpreted.
pub(super) struct RawValue {
    pub(super) text: String,
    pub(super) span: Range<usize>,
    /// `text` is exactly `src[span]`, so positions inside it map to the source.
    pub(super) exact: bool,
    /// A YAML sequence (only meaningful for `depends` and `paths`).
    pub(super) items: Option<Vec<Spanned<String>>>,
}

/// The fields one task (or `defaults`) sets; `None` = not set (or set to an invalid value, reported).
#[derive(Debug, Clone, Default)]
pub(super) struct Fields {
    agent: Option<Spanned<String>>,
    model: Option<String>,
    tier: Option<Spanned<i64>>,
    depends: Option<Vec<Spanned<String>>>,
    timeout: Option<Duration>,
    stall: Option<Duration>,
    retries: Option<u32>,
    check: Option<String>,
    command: Option<String>,
    paths: Option<Vec<String>>,
    workdir: Option<Workdir>,
}

/// Where each key was first set in one field list, to report keys given twice.
pub(super) type Seen = [Option<usize>; KEYS.len()];

pub(super) fn set_field(
    fields: &mut Fields,
    seen: &mut Seen,
    key: &str,
    key_span: Range<usize>,
    value: RawValue,
    sink: &mut Sink,
) {
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
        return;
    };
    if let Some(first) = seen[k] {
        let (line, _) = sink.line_col(first);
        sink.error(key_span, format!("`{key}` is set twice (first at line {line})")).label("set again here");
        return;
    }
    seen[k] = Some(key_span.start);
    // A YAML escape (`"\0"`) can make a NUL the source does not show; raw ones are reported
    // where they are written.
    let escaped_nul = |text: &str, span: &Range<usize>, sink: &Sink| {
        text.contains('\0') && !sink.src().get(span.clone()).is_some_and(|s| s.contains('\0'))
    };
    let nul_span = std::iter::once((value.text.as_str(), &value.span))
        .chain(value.items.iter().flatten().map(|i| (i.value.as_str(), &i.span)))
        .find(|(text, span)| escaped_nul(text, span, sink))
        .map(|(_, span)| span.clone());
    if let Some(span) = nul_span {
        // Reported; the field is still set, so nothing else (e.g. a missing command) cascades.
        validate::report_nul(sink, span);
    }

    if matches!(key, "depends" | "paths") {
        let items = match value.items {
            Some(items) => items,
            None => split_list(&value),
        };
        if key == "depends" {
            fields.depends = Some(items);
        } else {
            fields.paths = Some(items.into_iter().map(|i| i.value).collect());
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
    match key {
        "agent" => fields.agent = Some(Spanned::new(text.to_string(), value.span)),
        "model" => fields.model = Some(text.to_string()),
        "check" => fields.check = Some(text.to_string()),
        "command" => fields.command = Some(text.to_string()),
        "tier" => match text.parse::<i64>() {
            Ok(t) => fields.tier = Some(Spanned::new(t, value.span)),
            Err(_) => {
                sink.error(value.span, format!("bad tier `{text}`"))
                    .label("expected a whole number from 1 to 7");
            }
        },
        "retries" => match text.parse::<u32>() {
            Ok(r) => fields.retries = Some(r),
            Err(_) => {
                sink.error(value.span, format!("bad retries `{text}`"))
                    .label("expected a whole number (0 or more)");
            }
        },
        "timeout" | "stall" => match duration::parse(text) {
            Ok(d) if key == "timeout" => fields.timeout = Some(d),
            Ok(d) => fields.stall = Some(d),
            Err(e) => {
                sink.error(value.span, e).label("expected a duration like `45s`, `20m` or `1h30m`");
            }
        },
        "workdir" => match text {
            "worktree" => fields.workdir = Some(Workdir::Worktree),
            "shared" => fields.workdir = Some(Workdir::Shared),
            _ => {
                sink.error(value.span, format!("unknown workdir `{text}`"))
                    .label("expected `worktree` or `shared`");
            }
        },
        _ => unreachable!("every key in KEYS is handled"),
    }
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

impl Fields {
    /// Fields this task does not set are taken from `defaults`.
    fn or(self, defaults: &Fields) -> Fields {
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
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Body: brief, task headings, field lists and prompts.

struct Section {
    /// The heading line, without its line break.
    heading: Range<usize>,
    /// The field list's items (whole items, as pulldown-cmark delimits them).
    items: Vec<Range<usize>>,
    /// End of the field list, if there is one.
    list_end: Option<usize>,
    /// Start of the next task heading (or the end of the file).
    end: usize,
}

struct Body {
    /// Start of the first task heading's line (or the end of the file): the brief ends there.
    first_heading: usize,
    sections: Vec<Section>,
}

/// Finds the top-level `##` headings and the bullet list directly after each, with pulldown-cmark so
/// that `##` lines inside code blocks, HTML or quotes are not mistaken for tasks.
fn scan_body(src: &str, body_start: usize) -> Body {
    let body = &src[body_start..];
    let mut sections: Vec<Section> = Vec::new();
    let mut depth = 0usize;
    let mut in_task_heading = false;
    // The next top-level block is the one directly after a task heading.
    let mut after_heading = false;
    let mut in_fields = false;
    for (event, range) in Parser::new_ext(body, Options::empty()).into_offset_iter() {
        let range = range.start + body_start..range.end + body_start;
        match event {
            Event::Start(tag) => {
                if depth == 0 {
                    let first_block = std::mem::take(&mut after_heading);
                    match tag {
                        Tag::Heading { level: HeadingLevel::H2, .. } => {
                            if let Some(line) = atx_line(src, range.start) {
                                if let Some(prev) = sections.last_mut() {
                                    prev.end = line.start;
                                }
                                sections.push(Section {
                                    heading: line,
                                    items: Vec::new(),
                                    list_end: None,
                                    end: src.len(),
                                });
                                in_task_heading = true;
                            }
                        }
                        Tag::List(None) if first_block => {
                            if let Some(s) = sections.last_mut() {
                                s.list_end = Some(range.end);
                            }
                            in_fields = true;
                        }
                        _ => {}
                    }
                } else if depth == 1 && in_fields && matches!(tag, Tag::Item) {
                    if let Some(s) = sections.last_mut() {
                        s.items.push(range);
                    }
                }
                depth += 1;
            }
            Event::End(tag) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    in_fields = false;
                    if in_task_heading && matches!(tag, TagEnd::Heading(_)) {
                        in_task_heading = false;
                        after_heading = true;
                    }
                }
            }
            _ => {
                if depth == 0 {
                    after_heading = false;
                }
            }
        }
    }
    let first_heading = sections.first().map_or(src.len(), |s| s.heading.start);
    Body { first_heading, sections }
}

/// The line at `pos` if it is an ATX (`## …`) heading line; setext headings are not task headings.
fn atx_line(src: &str, pos: usize) -> Option<Range<usize>> {
    let line = line_at(src, pos);
    let text = src[line.clone()].trim_start_matches(' ');
    let rest = text.strip_prefix("##")?;
    (rest.is_empty() || rest.starts_with([' ', '\t'])).then_some(line)
}

/// The whole line containing `pos`, without its line break.
fn line_at(src: &str, pos: usize) -> Range<usize> {
    let start = src[..pos].rfind('\n').map_or(0, |i| i + 1);
    start..line_end(src, pos)
}

/// End of the line containing `pos`, before `\r\n` or `\n`.
pub(super) fn line_end(src: &str, pos: usize) -> usize {
    let end = src[pos..].find('\n').map_or(src.len(), |i| pos + i);
    if end > pos && src.as_bytes()[end - 1] == b'\r' {
        end - 1
    } else {
        end
    }
}

/// After the line containing `pos` (past its line break).
pub(super) fn next_line(src: &str, pos: usize) -> usize {
    src[pos..].find('\n').map_or(src.len(), |i| pos + i + 1)
}

fn parse_section(src: &str, section: &Section, defaults: &Fields, sink: &mut Sink) -> Option<Draft> {
    let heading = parse_heading(src, section.heading.clone(), sink);

    let mut fields = Fields::default();
    let mut seen: Seen = [None; KEYS.len()];
    let mut prompt_start = section.list_end.unwrap_or_else(|| next_line(src, section.heading.end));
    let n_items = section.items.len();
    for (i, item) in section.items.iter().enumerate() {
        let first_end = line_end(src, item.start);
        parse_item(src, item.start..first_end, &mut fields, &mut seen, sink);
        // Any further line of an item: a lazy continuation of the last item starts the prompt
        // (fields then prompt without a blank line); anything else is a multi-line field.
        let mut pos = next_line(src, item.start);
        while pos < item.end.min(src.len()) {
            let line = pos..line_end(src, pos);
            let text = &src[line.clone()];
            if !text.trim().is_empty() {
                if i + 1 == n_items && !text.starts_with([' ', '\t']) {
                    prompt_start = line.start;
                } else {
                    let indent = text.len() - text.trim_start().len();
                    sink.error(line.start + indent..line.end, "a field must fit on one line")
                        .label("continues the field above")
                        .help(
                            "write each field as one `- key: value` line, then a blank line, then the prompt",
                        );
                }
                break;
            }
            pos = next_line(src, pos);
        }
    }

    let (id, title) = heading?;
    let fields = fields.or(defaults);
    let agent_from_defaults = seen[0].is_none() && fields.agent.is_some();
    let prompt = trim_blank_lines(&src[prompt_start.min(section.end)..section.end]).to_string();
    Some(Draft {
        id,
        title,
        agent: fields.agent,
        agent_from_defaults,
        model: fields.model,
        tier: fields.tier,
        depends: fields.depends.unwrap_or_default(),
        timeout: fields.timeout,
        stall: fields.stall,
        retries: fields.retries.unwrap_or(0),
        check: fields.check,
        command: fields.command,
        paths: fields.paths.unwrap_or_default(),
        workdir: fields.workdir,
        prompt,
    })
}

/// `## <id>: <title>` → id (with its span) and title.
fn parse_heading(src: &str, line: Range<usize>, sink: &mut Sink) -> Option<(Spanned<String>, String)> {
    let text = &src[line.clone()];
    let lead = text.len() - text.trim_start_matches(' ').len() + 2;
    let mut content = &text[lead..];
    let content_start = line.start + lead + (content.len() - content.trim_start().len());
    content = content.trim();
    // An optional closing sequence of `#`s, as CommonMark allows.
    let unclosed = content.trim_end_matches('#');
    if unclosed.is_empty() || unclosed.ends_with([' ', '\t']) {
        content = unclosed.trim_end();
    }
    if content.is_empty() {
        sink.error(line, "empty task heading").label("expected `## <id>: <title>`").help(HEADING_FORM);
        return None;
    }
    let Some(colon) = content.find(':') else {
        sink.error(content_start..content_start + content.len(), "task heading without an id")
            .label("expected `## <id>: <title>`")
            .help(HEADING_FORM);
        return None;
    };
    let raw_id = &content[..colon];
    let id_text = raw_id.trim();
    let id_start = content_start + (raw_id.len() - raw_id.trim_start().len());
    let id_span = if id_text.is_empty() {
        content_start + colon..content_start + colon + 1
    } else {
        id_start..id_start + id_text.len()
    };
    let id = Spanned::new(id_text.to_string(), id_span);
    if id_text.is_empty() {
        sink.error(id.span.clone(), "task heading without an id")
            .label("expected `<id>:`")
            .help(HEADING_FORM);
        return None;
    }
    Some((id, content[colon + 1..].trim().to_string()))
}

/// One `- key: value` item (its first line).
fn parse_item(src: &str, line: Range<usize>, fields: &mut Fields, seen: &mut Seen, sink: &mut Sink) {
    let text = &src[line.clone()];
    let after_marker = text.trim_start().get(1..).unwrap_or("");
    let content = after_marker.trim_start();
    let content_start = line.end - content.len();
    let content = content.trim_end();
    let Some(colon) = content.find(':') else {
        let span =
            if content.is_empty() { line.clone() } else { content_start..content_start + content.len() };
        sink.error(span, "a field must be `key: value`")
            .label("no `:` in this field")
            .help("the bullet list right after a task heading holds its fields, one `- key: value` per line");
        return;
    };
    let raw_key = &content[..colon];
    let key = raw_key.trim();
    let key_start = content_start + (raw_key.len() - raw_key.trim_start().len());
    let key_span = if key.is_empty() {
        content_start + colon..content_start + colon + 1
    } else {
        key_start..key_start + key.len()
    };
    if key.is_empty() {
        sink.error(key_span, "a field must be `key: value`").label("missing key");
        return;
    }
    let raw_value = &content[colon + 1..];
    let value = raw_value.trim();
    let value_start = content_start + colon + 1 + (raw_value.len() - raw_value.trim_start().len());
    let value_span = if value.is_empty() {
        content_start + colon + 1..content_start + colon + 1
    } else {
        value_start..value_start + value.len()
    };
    let raw = RawValue { text: value.to_string(), span: value_span, exact: true, items: None };
    set_field(fields, seen, key, key_span, raw, sink);
}

/// Drops blank lines at both ends (and the final line break); everything else is kept verbatim.
fn trim_blank_lines(text: &str) -> &str {
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        if !line.trim().is_empty() {
            break;
        }
        start += line.len();
    }
    let text = &text[start..];
    let mut end = text.len();
    loop {
        let body = text[..end].strip_suffix('\n').unwrap_or(&text[..end]);
        let line_start = body.rfind('\n').map_or(0, |i| i + 1);
        if body.len() > line_start && !body[line_start..].trim().is_empty() {
            end = body.len();
            break;
        }
        if line_start == 0 {
            end = if body.trim().is_empty() { 0 } else { body.len() };
            break;
        }
        end = line_start;
    }
    text[..end].strip_suffix('\r').unwrap_or(&text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> PlanContext {
        PlanContext {
            default_name: "plan".into(),
            default_namespace: "ns".into(),
            agents: ["kilo", "exec"].map(String::from).to_vec(),
        }
    }

    #[test]
    fn trims_blank_lines_only() {
        assert_eq!(trim_blank_lines("\n  \n  code\n\ntext  \n\n \n"), "  code\n\ntext  ");
        assert_eq!(trim_blank_lines("\r\nx\r\n\r\n"), "x");
        assert_eq!(trim_blank_lines(" \n\n"), "");
        assert_eq!(trim_blank_lines(""), "");
        assert_eq!(trim_blank_lines("x"), "x");
    }

    #[test]
    fn minimal_plan() {
        let plan = parse("p.md", "## a: Title\n- agent: kilo\n\nDo it.\n", &ctx()).unwrap();
        assert_eq!(plan.name, "plan");
        assert_eq!(plan.namespace, "ns");
        assert_eq!(plan.tasks.len(), 1);
        assert_eq!(plan.tasks[0].title, "Title");
        assert_eq!(plan.tasks[0].prompt, "Do it.");
    }

    #[test]
    fn lazy_line_after_fields_starts_the_prompt() {
        let plan = parse("p.md", "## a: T\n- agent: kilo\n- tier: 2\nDo it\nnow.\n", &ctx()).unwrap();
        assert_eq!(plan.tasks[0].tier, Some(2));
        assert_eq!(plan.tasks[0].prompt, "Do it\nnow.");
    }

    #[test]
    fn command_alone_means_exec() {
        let plan = parse("p.md", "## a: T\n- command: make\n", &ctx()).unwrap();
        assert_eq!(plan.tasks[0].agent, "exec");
        assert_eq!(plan.tasks[0].command.as_deref(), Some("make"));
    }

    #[test]
    fn closing_hashes_and_crlf() {
        let plan = parse("p.md", "---\r\nname: x\r\n---\r\n## a: T ##\r\n- agent: kilo\r\n\r\nP\r\n", &ctx())
            .unwrap();
        assert_eq!(plan.name, "x");
        assert_eq!(plan.tasks[0].title, "T");
        assert_eq!(plan.tasks[0].prompt, "P");
    }

    #[test]
    fn yaml_lists_in_defaults() {
        let src = "---\ndefaults:\n  agent: kilo\n  paths: [src/**, 'docs/*']\n---\n## a: T\n## b: U\n- depends: a\n";
        let plan = parse("p.md", src, &ctx()).unwrap();
        assert_eq!(plan.tasks[0].paths, vec!["src/**", "docs/*"]);
        assert_eq!(plan.tasks[1].depends, vec!["a"]);
    }
}
