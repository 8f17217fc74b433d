//! The markdown form of a plan (docs/contract.md §1): YAML front matter, a shared brief, then one
//! `## <id>: <title>` section per task whose leading bullet list holds the task's fields.

use super::fields::{set_field, Fields, RawValue, Seen};
use super::front_matter::{parse_front_matter, split_front_matter, FrontMatter};
use super::lines::{line_at, line_end, next_line};
use super::model::Plan;
use super::validate::{self, Draft, Spanned};
use super::PlanContext;
use crate::diagnostic::{Diagnostics, Sink};
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use std::ops::Range;

const HEADING_FORM: &str = "a task heading is `## <id>: <title>`, e.g. `## schema: Define the schema`; \
                            use `###` for a heading inside a prompt";

pub(super) fn parse(file: &str, src: &str, ctx: &PlanContext) -> Result<Plan, Diagnostics> {
    let mut sink = Sink::new(file, src);
    validate::report_nul_bytes(src, &mut sink);
    let errors_before = sink.count();
    let (front, body_start) = split_front_matter(src, &mut sink);
    let front = match front {
        Some(yaml) => parse_front_matter(src, yaml, ctx, &mut sink),
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
        state: front.state,
        tasks,
    };
    sink.finish(plan)
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

fn parse_section(src: &str, section: &Section, defaults: &Fields, sink: &mut Sink) -> Option<Draft> {
    let heading = parse_heading(src, section.heading.clone(), sink);

    let mut fields = Fields::default();
    let mut seen = Seen::default();
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
    let agent_from_defaults = !seen.has("agent") && fields.agent.is_some();
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
        role: fields.role,
        handoff: fields.handoff,
        on_conflict: fields.on_conflict,
        labels: fields.labels.unwrap_or_default(),
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
            ..Default::default()
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

    #[test]
    fn labels_a_worker_needs_from_the_task_or_defaults() {
        let src = "---\ndefaults:\n  agent: kilo\n  labels: [zone=eu]\n---\n## a: T\n## b: U\n- labels: gpu=yes, zone = us\n";
        let plan = parse("p.md", src, &ctx()).unwrap();
        let labels = |i: usize| plan.tasks[i].labels.clone().into_iter().collect::<Vec<_>>();
        assert_eq!(labels(0), [("zone".to_string(), "eu".to_string())]);
        assert_eq!(labels(1), [("gpu".into(), "yes".into()), ("zone".into(), "us".into())]);
        let err = parse("p.md", "## a: T\n- agent: kilo\n- labels: gpu\n", &ctx()).unwrap_err();
        assert!(err.to_string().contains("bad label `gpu`"), "{err}");
    }
}
