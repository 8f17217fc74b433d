//! Plan parsing end to end: every error kind with its exact `line:column` and caret, all errors at
//! once, the docs/contract.md §1 example, and the JSON form.

use std::time::Duration;
use swarm_core::diagnostic::Diagnostics;
use swarm_core::plan::{parse_bytes, parse_json, parse_markdown, Plan, PlanContext, PlanFormat, Workdir};

fn ctx() -> PlanContext {
    PlanContext {
        default_name: "plan".into(),
        default_namespace: "repo".into(),
        // swarm-agents' built-in names, then a custom one.
        agents: ["opencode", "kilo", "cline", "claude", "codex", "gemini", "aider", "exec", "mybot"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    }
}

fn errors(src: &str) -> Diagnostics {
    match parse_markdown("plan.md", src, &ctx()) {
        Ok(plan) => panic!("expected errors, got {plan:#?}"),
        Err(d) => d,
    }
}

fn ok(src: &str) -> Plan {
    parse_markdown("plan.md", src, &ctx()).unwrap_or_else(|d| panic!("{}", d.render(false)))
}

/// Asserts that exactly one diagnostic's message contains `message`, that it is at `line:column`
/// with its span covering `caret` in the source, and that the rendering shows `file:line:column`
/// and carets under that text.
#[track_caller]
fn assert_error(d: &Diagnostics, message: &str, line: usize, column: usize, caret: &str) {
    let matching: Vec<_> = d.items.iter().filter(|i| i.message.contains(message)).collect();
    let rendered = d.render(false);
    assert_eq!(matching.len(), 1, "want one error containing {message:?}, got:\n{rendered}");
    let item = matching[0];
    assert_eq!((item.line, item.column), (line, column), "position of {message:?} in:\n{rendered}");
    assert_eq!(&d.source[item.span.clone()], caret, "span of {message:?}");

    let header = format!("--> {}:{line}:{column}\n", d.file);
    assert!(rendered.contains(&header), "missing {header:?} in:\n{rendered}");
    let src_line = d.source.lines().nth(line - 1).unwrap();
    let width = line.to_string().len();
    let carets = "^".repeat(caret.chars().count().max(1));
    let snippet = format!("{line} | {src_line}\n{} | {}{carets}", " ".repeat(width), " ".repeat(column - 1));
    assert!(rendered.contains(&snippet), "missing caret block\n{snippet}\nin:\n{rendered}");
}

const TASK: &str = "## a: First\n- agent: kilo\n\nPrompt.\n";

#[test]
fn unknown_key() {
    let d = errors("## a: First\n- agent: kilo\n- agnt: kilo\n");
    assert_error(&d, "unknown key `agnt`", 3, 3, "agnt");
    assert!(d.render(false).contains(
        "^^^^ expected one of: agent, model, tier, depends, timeout, stall, retries, check, command, paths, workdir"
    ));
    assert_eq!(d.items[0].help.as_deref(), Some("did you mean `agent`?"));
}

#[test]
fn unknown_key_in_front_matter_and_defaults() {
    let d = errors("---\nnam: x\ndefaults:\n  agent: kilo\n  retrys: 2\n---\n## a: First\n");
    assert_error(&d, "unknown front matter key `nam`", 2, 1, "nam");
    assert_error(&d, "unknown key `retrys`", 5, 3, "retrys");
    assert_eq!(d.len(), 2, "{d}");
}

#[test]
fn duplicate_id() {
    let d = errors(&format!("{TASK}\n## b: Second\n- agent: kilo\n\n##   a  : Again\n- agent: kilo\n"));
    assert_error(&d, "duplicate task id `a` (first defined at line 1)", 9, 6, "a");
    assert_eq!(d.len(), 1);
}

#[test]
fn unknown_dependency() {
    let d = errors(&format!("{TASK}\n## b: Second\n- agent: kilo\n- depends: a,  nope , a\n"));
    assert_error(&d, "unknown dependency `nope`", 8, 16, "nope");
    assert_eq!(d.len(), 1);
}

#[test]
fn cycle_is_named() {
    let src = "---\ndefaults:\n  agent: kilo\n---\n\
               ## a: A\n- depends: c\n\n## b: B\n- depends: a\n\n## c: C\n- depends: b\n\n## d: D\n- depends: a\n";
    let d = errors(src);
    assert_error(&d, "dependency cycle: a -> c -> b -> a", 6, 12, "c");
    assert_eq!(d.len(), 1, "one cycle, reported once:\n{d}");
}

#[test]
fn self_dependency_is_a_cycle() {
    let d = errors("## solo: Alone\n- agent: kilo\n- depends: solo\n");
    assert_error(&d, "dependency cycle: solo -> solo", 3, 12, "solo");
}

#[test]
fn bad_duration() {
    let d = errors("## a: First\n- agent: kilo\n- timeout: 10 minutes\n- stall: 5m\n");
    assert_error(&d, "invalid duration `10 minutes`", 3, 12, "10 minutes");
    assert_eq!(d.len(), 1);
}

#[test]
fn bad_id() {
    let d = errors("## Schema_1: Upper case\n- agent: kilo\n");
    assert_error(&d, "bad task id `Schema_1`", 1, 4, "Schema_1");
    let d = errors("## -x: Leading dash\n- agent: kilo\n");
    assert_error(&d, "bad task id `-x`", 1, 4, "-x");
}

#[test]
fn heading_without_id() {
    let d = errors("## Just a heading\n- agent: kilo\n");
    assert_error(&d, "task heading without an id", 1, 4, "Just a heading");
    assert!(d.items[0].help.as_deref().unwrap().contains("## <id>: <title>"));
}

#[test]
fn bad_yaml() {
    let d =
        errors("---\nname: x\ndefaults:\n  agent: kilo\n  tier: [1, 2\nconcurrency: 3\n---\n## a: First\n");
    assert_error(&d, "invalid YAML in front matter", 6, 12, ":");
    assert_eq!(d.len(), 1, "a broken front matter does not cascade:\n{d}");

    let d = errors("---\nname: 'unterminated\n---\n## a: A\n- agent: kilo\n");
    assert_error(&d, "invalid YAML in front matter", 2, 7, "'");
}

#[test]
fn unclosed_front_matter() {
    let d = errors("---\nname: x\n\n## a: First\n- agent: kilo\n");
    assert_error(&d, "front matter is not closed", 1, 1, "---");
}

#[test]
fn unknown_agent() {
    let d = errors("## a: First\n- agent: opencodex\n");
    assert_error(&d, "unknown agent `opencodex`", 2, 10, "opencodex");
    assert!(d
        .render(false)
        .contains("expected one of: opencode, kilo, cline, claude, codex, gemini, aider, exec, mybot"));
    // Custom agents from the config are known.
    assert_eq!(ok("## a: First\n- agent: mybot\n").tasks[0].agent, "mybot");
}

#[test]
fn unknown_agent_in_defaults_is_reported_once() {
    let d = errors("---\ndefaults:\n  agent: klio\n---\n## a: A\n\n## b: B\n\n## c: C\n");
    assert_error(&d, "unknown agent `klio`", 3, 10, "klio");
    assert_eq!(d.len(), 1, "{d}");
}

#[test]
fn tier_out_of_range() {
    let d = errors("## a: First\n- agent: kilo\n- tier: 8\n");
    assert_error(&d, "tier 8 is out of range", 3, 9, "8");
    let d = errors("## a: First\n- agent: kilo\n- tier: high\n");
    assert_error(&d, "bad tier `high`", 3, 9, "high");
}

#[test]
fn exec_without_command() {
    let d = errors("## build: Build\n- agent: exec\n- check: make test\n");
    assert_error(&d, "`agent: exec` needs a `command`", 2, 10, "exec");
}

#[test]
fn no_agent() {
    let d = errors("## a: First\n- tier: 2\n");
    assert_error(&d, "task `a` has no agent", 1, 4, "a");
}

#[test]
fn key_given_twice() {
    let d = errors("## a: First\n- agent: kilo\n- tier: 1\n- tier: 2\n");
    assert_error(&d, "`tier` is set twice (first at line 3)", 4, 3, "tier");
}

#[test]
fn all_errors_at_once() {
    let src = "\
---
name: many
concurrency: 0
defaults:
  agent: kilo
---

Brief.

## a: First
- agnt: kilo
- depends: b, ghost

## B: Bad id
- timeout: 1x

## b: Second
- depends: a
- tier: 0

## a: Again
- agent: exec
";
    let d = errors(src);
    assert_error(&d, "bad concurrency `0`", 3, 14, "0");
    assert_error(&d, "unknown key `agnt`", 11, 3, "agnt");
    assert_error(&d, "dependency cycle: a -> b -> a", 12, 12, "b");
    assert_error(&d, "unknown dependency `ghost`", 12, 15, "ghost");
    assert_error(&d, "bad task id `B`", 14, 4, "B");
    assert_error(&d, "invalid duration `1x`", 15, 12, "1x");
    assert_error(&d, "tier 0 is out of range", 19, 9, "0");
    assert_error(&d, "duplicate task id `a` (first defined at line 10)", 21, 4, "a");
    assert_error(&d, "`agent: exec` needs a `command`", 22, 10, "exec");
    assert_eq!(d.len(), 9, "{d}");

    // Reported in source order, then the summary line.
    let lines: Vec<usize> = d.items.iter().map(|i| i.line).collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
    assert!(d
        .render(false)
        .ends_with("error: could not load plan `plan.md`: 9 errors; nothing was started\n"));
    assert_eq!(d.to_string(), d.render(false));
}

/// The example of docs/contract.md §1, verbatim, with a code block holding a `## ` line in a prompt.
const CONTRACT_EXAMPLE: &str = r#"---
name: phase3                       # optional; default: file stem
namespace: marketing_tvoje_info    # optional; default: name of the git root directory
concurrency: 4                     # optional; max tasks running at once (default: CPU count)
defaults:                          # optional; any task field
  agent: opencode
  tier: 1
  timeout: 30m
  retries: 1
---

# Phase 3 — free text

Everything between the front matter and the first `##` heading is the plan's shared brief: it is
given to every agent together with its task prompt.

## schema: Define the shared state schema
- agent: kilo
- timeout: 20m
- check: cargo test -p schema

The task prompt: any markdown, kept verbatim (lists, code blocks, links).

```markdown
## not-a-task: this is inside a code block
- agent: nobody
```

- a list that belongs to the prompt
- with a [link](https://example.com/a_b)

## runner: Build the swarm runner
- depends: schema
- agent: exec
- command: ./scripts/build.sh

Prompt for the runner task.
"#;

#[test]
fn contract_example_parses() {
    let plan = ok(CONTRACT_EXAMPLE);
    assert_eq!(plan.name, "phase3");
    assert_eq!(plan.namespace, "marketing_tvoje_info");
    assert_eq!(plan.concurrency, Some(4));
    assert_eq!(
        plan.brief,
        "# Phase 3 — free text\n\nEverything between the front matter and the first `##` heading is the \
         plan's shared brief: it is\ngiven to every agent together with its task prompt."
    );
    assert_eq!(plan.tasks.len(), 2);

    let schema = &plan.tasks[0];
    assert_eq!(schema.id, "schema");
    assert_eq!(schema.title, "Define the shared state schema");
    assert_eq!(schema.agent, "kilo");
    assert_eq!(schema.tier, Some(1), "from defaults");
    assert_eq!(schema.timeout, Some(Duration::from_secs(20 * 60)), "own value beats the default");
    assert_eq!(schema.retries, 1, "from defaults");
    assert_eq!(schema.check.as_deref(), Some("cargo test -p schema"));
    assert!(schema.depends.is_empty());
    assert_eq!(schema.workdir, None, "not set: the default depends on the agent and on git");
    assert_eq!(
        schema.prompt,
        "The task prompt: any markdown, kept verbatim (lists, code blocks, links).\n\n\
         ```markdown\n## not-a-task: this is inside a code block\n- agent: nobody\n```\n\n\
         - a list that belongs to the prompt\n- with a [link](https://example.com/a_b)"
    );

    let runner = &plan.tasks[1];
    assert_eq!(runner.id, "runner");
    assert_eq!(runner.title, "Build the swarm runner");
    assert_eq!(runner.depends, vec!["schema"]);
    assert_eq!(runner.agent, "exec");
    assert_eq!(runner.command.as_deref(), Some("./scripts/build.sh"));
    assert_eq!(runner.timeout, Some(Duration::from_secs(30 * 60)));
    assert_eq!(runner.tier, Some(1));
    assert_eq!(runner.prompt, "Prompt for the runner task.");
}

#[test]
fn defaults_name_and_namespace_from_context() {
    let plan = ok("Brief only.\n\n## a: A\n- agent: kilo\n- paths: src/**, docs/*.md\n- workdir: worktree\n");
    assert_eq!((plan.name.as_str(), plan.namespace.as_str()), ("plan", "repo"));
    assert_eq!(plan.concurrency, None);
    assert_eq!(plan.brief, "Brief only.");
    assert_eq!(plan.tasks[0].paths, vec!["src/**", "docs/*.md"]);
    assert_eq!(plan.tasks[0].workdir, Some(Workdir::Worktree));
    assert_eq!(plan.tasks[0].prompt, "");
}

#[test]
fn json_round_trip() {
    let plan = ok(CONTRACT_EXAMPLE);
    let json = serde_json::to_string_pretty(&plan).unwrap();
    let back = parse_json("plan.json", &json, &ctx()).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(back, plan);
}

#[test]
fn json_minimal_uses_context_defaults() {
    let plan = parse_json("p.json", r#"{"tasks": [{"id": "a", "command": "make"}]}"#, &ctx()).unwrap();
    assert_eq!((plan.name.as_str(), plan.namespace.as_str()), ("plan", "repo"));
    assert_eq!(plan.tasks[0].agent, "exec");
}

#[test]
fn json_errors_point_into_the_source() {
    let src = r#"{
  "name": "p",
  "tasks": [
    { "id": "a", "agent": "kilo", "depends": ["b", "zz"] },
    { "id": "b", "agent": "kilo", "depends": ["a"], "timeout": "5 min" },
    { "id": "a", "agent": "klio" }
  ]
}"#;
    let d = parse_json("plan.json", src, &ctx()).unwrap_err();
    assert_error(&d, "dependency cycle: a -> b -> a", 4, 48, "b");
    assert_error(&d, "unknown dependency `zz`", 4, 53, "zz");
    assert_error(&d, "invalid duration `5 min`", 5, 65, "5 min");
    assert_error(&d, "duplicate task id `a` (first defined at line 4)", 6, 14, "a");
    assert_error(&d, "unknown agent `klio`", 6, 28, "klio");
    assert_eq!(d.len(), 5, "{d}");
}

#[test]
fn json_syntax_and_shape_errors() {
    let d = parse_json("plan.json", "{\n  \"tasks\": [\n    {\"id\": \"a\",}\n  ]\n}", &ctx()).unwrap_err();
    assert_eq!((d.items[0].line, d.items[0].column), (3, 16), "{d}");
    assert!(d.items[0].message.starts_with("invalid plan JSON: "), "{d}");

    let d = parse_json("plan.json", "{\"tasks\": [{\"id\": \"a\", \"agnt\": \"x\"}]}", &ctx()).unwrap_err();
    assert_error(&d, "unknown field `agnt`", 1, 25, "agnt");
}

#[test]
fn not_utf8_points_at_the_first_invalid_byte() {
    let mut bytes = b"## a: First\n- agent: kilo\n\nPrompt \xc3\xa9 ok, then ".to_vec();
    bytes.extend_from_slice(b"\xff\xfe bad\n\xff again\n");
    for (file, format) in [("plan.md", PlanFormat::Markdown), ("plan.json", PlanFormat::Json)] {
        let d = parse_bytes(file, &bytes, format, &ctx()).unwrap_err();
        assert_eq!(d.len(), 1, "{d}");
        // Line 4, after `Prompt é ok, then ` (18 chars).
        assert_error(&d, "the plan is not valid UTF-8 (byte 0xff at offset 46)", 4, 19, "\u{fffd}");
        assert!(d.render(false).contains(&format!("--> {file}:4:19")));
    }
    let utf16 = [0xff, 0xfe, b'#', 0, b'#', 0];
    let d = parse_bytes("plan.md", &utf16, PlanFormat::Markdown, &ctx()).unwrap_err();
    assert_eq!((d.items[0].line, d.items[0].column), (1, 1), "{d}");
    assert!(d.items[0].message.contains("not valid UTF-8 (byte 0xff at offset 0)"), "{d}");
    assert!(d.items[0].help.as_deref().unwrap().contains("UTF-16"));
    // Valid UTF-8 goes through as before.
    let plan = parse_bytes("plan.md", TASK.as_bytes(), PlanFormat::Markdown, &ctx()).unwrap();
    assert_eq!(plan.tasks[0].prompt, "Prompt.");
}

#[test]
fn nul_bytes_are_errors_where_they_are_written() {
    let src = "---\nname: p\n---\nBrief\0.\n\n## a: First\n- agent: exec\n- command: echo a\0b\n- check: tr\0ue\n\nPrompt\0.\n";
    let d = errors(src);
    let at: Vec<(usize, usize, &str)> =
        d.items.iter().map(|i| (i.line, i.column, &d.source[i.span.clone()])).collect();
    assert_eq!(at, vec![(4, 6, "\0"), (8, 18, "\0"), (9, 12, "\0"), (11, 7, "\0")], "{d}");
    assert!(d.items.iter().all(|i| i.message == "NUL byte in the plan"), "{d}");
    assert!(d.render(false).contains("--> plan.md:8:18"), "{d}");
    assert!(d.items[0].help.as_deref().unwrap().contains("cannot hold NUL bytes"));

    // YAML escapes in the front matter: `\0`, `\x00`, `\u0000`.
    let src = "---\nname: \"x\\0\"\nnamespace: n\ndefaults:\n  agent: exec\n  command: \"echo \\x00\"\n  paths: [\"a\\u0000\"]\n---\n## a: First\n";
    let d = errors(src);
    let at: Vec<(usize, usize, &str)> =
        d.items.iter().map(|i| (i.line, i.column, &d.source[i.span.clone()])).collect();
    assert_eq!(at, vec![(2, 7, "\"x\\0\""), (6, 12, "\"echo \\x00\""), (7, 11, "\"a\\u0000\"")], "{d}");
    assert!(d.items.iter().all(|i| i.message == "NUL byte in the plan"), "{d}");
}

#[test]
fn nul_escapes_in_json_are_errors_at_the_escape() {
    let src = r#"{
  "brief": "b\u0000",
  "tasks": [ { "id": "a", "command": "echo \u0000", "prompt": "not a NUL: \\u0000" } ]
}"#;
    let d = parse_json("plan.json", src, &ctx()).unwrap_err();
    let at: Vec<(usize, usize, &str)> =
        d.items.iter().map(|i| (i.line, i.column, &d.source[i.span.clone()])).collect();
    assert_eq!(at, vec![(2, 14, "\\u0000"), (3, 44, "\\u0000")], "{d}");
    assert!(d.items.iter().all(|i| i.message == "NUL byte in the plan"), "{d}");
}

#[test]
fn deep_chains_and_long_cycles_do_not_overflow() {
    let n = 20_000;
    let mut src = String::from("---\ndefaults:\n  agent: kilo\n---\n");
    for i in 0..n {
        src.push_str(&format!("## t{i}: T\n- depends: t{}\n\n", (i + 1) % n));
    }
    let d = errors(&src);
    assert_eq!(d.len(), 1);
    assert!(d.items[0].message.starts_with("dependency cycle: t0 -> t1 -> t2 -> "));
    assert!(d.items[0].message.ends_with(&format!(" -> t{} -> t0", n - 1)));

    // Without the closing edge it is one long valid chain.
    let src = src.replace("- depends: t0\n", "");
    assert_eq!(ok(&src).tasks.len(), n);
}

/// Cuts, deletes and garbles lines of good and bad plans: parsing and rendering must never panic.
#[test]
fn mangled_inputs_never_panic() {
    let json = serde_json::to_string_pretty(&ok(CONTRACT_EXAMPLE)).unwrap();
    let seeds = [
        CONTRACT_EXAMPLE,
        json.as_str(),
        "---\ndefaults:\n  agent: [kilo, {a: b}]\n  depends: [x, [y]]\n---\n## a: é\n- depends: a,,\n- tier: 99999999999999999999\n",
        "---\n---\n## :\n##\n## a:\n-\n- :\n- k:\n* x: y\n  > ## q: r\n",
    ];
    let garbage = [
        "", "---", "##", "## ", ":", "- ", "`", "```", "\"", "'", "[", "{", "\t", "é", "\r", "\u{feff}", "#",
    ];
    let check = |src: &str| {
        for result in [parse_markdown("p.md", src, &ctx()), parse_json("p.json", src, &ctx())] {
            if let Err(d) = result {
                assert!(!d.is_empty());
                let _ = d.render(true);
                let _ = d.render(false);
            }
        }
    };
    for seed in seeds {
        let cuts: Vec<usize> = seed.char_indices().map(|(i, _)| i).step_by(3).collect();
        for &cut in &cuts {
            check(&seed[..cut]);
            check(&seed[cut..]);
        }
        let lines: Vec<&str> = seed.split_inclusive('\n').collect();
        for i in 0..lines.len() {
            let mut without = lines.clone();
            without.remove(i);
            check(&without.concat());
            for g in garbage {
                let mut changed = lines.clone();
                let line = format!("{g}{}", lines[i]);
                changed[i] = &line;
                check(&changed.concat());
                let tail = format!("{}{g}", lines[i].trim_end_matches('\n'));
                changed[i] = &tail;
                check(&changed.concat());
            }
        }
    }
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn arbitrary_fragments_never_panic(parts in proptest::collection::vec(
            prop_oneof![
                Just("---\n"), Just("## a: A\n"), Just("## b: B\n"), Just("- agent: kilo\n"), Just("- depends: a, b\n"),
                Just("- tier: 9\n"), Just("```\n"), Just("name: x\n"), Just("defaults:\n"), Just("  agent: exec\n"),
                Just("  - x\n"), Just("> q\n"), Just("\n"), Just("text ## b: c\n"), Just("{\"tasks\": ["), Just("]}"),
                Just("é"), Just("\t"), Just("\r\n"), Just(":"), Just("'"), Just("\""),
            ],
            0..40,
        )) {
            let src: String = parts.concat();
            for result in [parse_markdown("p.md", &src, &ctx()), parse_json("p.json", &src, &ctx())] {
                if let Err(d) = result {
                    prop_assert!(!d.is_empty());
                    let _ = d.render(false);
                }
            }
        }
    }
}

const TEAM_PLAN: &str = "---
state:
  strict: true
  doc: .kilocode/rules/memory-bank/agents-state.md
  keys:
    research/*:
      writers: [research, research-*]
      schema:
        type: object
        required: [topic, findings]
        properties:
          topic: {type: string}
          findings: {type: array, items: {type: string}}
defaults:
  handoff: full
---

## research: Research
- agent: opencode
- role: researcher

Find things.

## write: Write
- agent: opencode
- depends: research
- handoff: summary
- on_conflict: agent

Write.
";

#[test]
fn declared_state_roles_handoff_and_on_conflict_parse() {
    let plan = ok(TEAM_PLAN);
    let state = plan.state.as_ref().expect("state declared");
    assert!(state.strict);
    assert_eq!(state.doc.as_deref(), Some(".kilocode/rules/memory-bank/agents-state.md"));
    let decl = &state.keys["research/*"];
    assert_eq!(decl.writers, ["research", "research-*"]);
    assert_eq!(decl.schema.as_ref().unwrap()["required"], serde_json::json!(["topic", "findings"]));
    assert_eq!(plan.tasks[0].role.as_deref(), Some("researcher"));
    assert_eq!(plan.tasks[0].handoff, Some(swarm_core::team::Handoff::Full), "from defaults");
    assert_eq!(plan.tasks[1].handoff, Some(swarm_core::team::Handoff::Summary));
    assert_eq!(plan.tasks[1].on_conflict, Some(swarm_core::plan::OnConflict::Agent));
    // The JSON form carries the same declaration.
    let json = serde_json::to_string(&plan).unwrap();
    assert_eq!(parse_json("plan.json", &json, &ctx()).unwrap(), plan);
}

#[test]
fn a_bad_schema_is_an_error_at_its_line() {
    let src = TEAM_PLAN.replace("type: object\n", "type: objekt\n");
    let d = errors(&src);
    assert_error(&d, "bad JSON Schema for `research/*`", 8, 7, "schema");
    let d = errors(&TEAM_PLAN.replace("handoff: summary", "handoff: most"));
    assert_error(&d, "unknown handoff `most`", 27, 12, "most");
    let d = errors(&TEAM_PLAN.replace("on_conflict: agent", "on_conflict: merge"));
    assert_error(&d, "unknown on_conflict `merge`", 28, 16, "merge");
    let d = errors(&TEAM_PLAN.replace("  strict: true\n", "  strict: true\n  strik: 1\n"));
    assert!(
        d.items[0].message.contains("bad `state`") && d.items[0].message.contains("strik"),
        "{}",
        d.render(false)
    );
}

#[test]
fn an_unknown_role_is_an_error_when_roles_are_known() {
    let ctx = PlanContext { roles: Some(vec!["reviewer".into()]), ..ctx() };
    let d = parse_markdown("plan.md", TEAM_PLAN, &ctx).unwrap_err();
    assert_error(&d, "unknown role `researcher`", 20, 9, "researcher");
    let ctx = PlanContext { roles: Some(vec!["researcher".into()]), ..self::ctx() };
    parse_markdown("plan.md", TEAM_PLAN, &ctx).unwrap();
}
