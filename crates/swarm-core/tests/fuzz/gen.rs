//! Input generators: near-valid plans (markdown and JSON), `swarm.toml` files and completion
//! reports built from fragments that matter to the parsers (headings, bullets, front matter
//! keys, deep YAML/JSON/TOML, unicode, NULs, huge numbers), then mutated at the byte level; and
//! raw bytes.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};

const TASK_KEYS: &[&str] = &[
    "agent", "model", "tier", "depends", "timeout", "stall", "retries", "check", "command", "paths",
    "workdir",
];

/// Ids and other short words: valid, almost valid, and hostile.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(&["a", "b", "c", "schema", "runner", "x-1", "t_2", "0", "z9"][..]).prop_map(str::to_string),
        1 => select(&[
            "", " ", "A", "-x", "_y", "a b", "é", "名前", "🦀", "a:b", "a,b", "ü\u{301}", "\u{202e}rtl",
            "\u{feff}", "\0", "x\0y", "\u{2028}", "\r", "\t", "#", "*", "[a]", "'", "\"", "\\",
        ][..])
        .prop_map(str::to_string),
        1 => (1usize..80).prop_map(|n| "a".repeat(n)),
        1 => "[a-z0-9_-]{1,70}",
        1 => any::<String>().prop_map(|s| s.chars().take(12).collect()),
    ]
}

/// A field value as written after `key: `.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(&[
            "kilo", "exec", "opencode", "cline", "claude", "mybot", "klio", "", " ", "45s", "20m", "1h30m",
            "500ms", "2d", "0s", "0ms", "5m1h", "1h1h", "10 minutes", "m", "1", "7", "0", "8", "-1", "+3",
            "1.5", "worktree", "shared", "elsewhere", "a, b", "a,,b", ",", " , ", "[a, b]", "[a, [b]]",
            "{a: b}", "true", "null", "~", "echo hi", "echo \"q\" 'x' `y` $Z", "sh -c 'exit 1'", "é",
            "🦀🦀", "\t", "x\0y", "\0", "a\r", "#", "## b: c", "- x", "```", "src/**, docs/*.md",
            "'quoted'", "'it''s'", "\"dq \\0 \\x00 \\u0000\"", "\"\\U0001F600\"", "\"unterminated",
            "|", ">", "&anchor x", "*alias", "!!str 5", "local/ok", "provider/model:free",
        ][..])
        .prop_map(str::to_string),
        1 => select(&[
            "18446744073709551615", "18446744073709551616", "99999999999999999999", "4294967295",
            "4294967296", "-9223372036854775808", "1e400", "18446744073709551615ms",
            "99999999999999999999s", "213503982334601d", "5124095576030431h", "307445734561825860m",
        ][..])
        .prop_map(str::to_string),
        1 => (0u64..u64::MAX, select(&["", "ms", "s", "m", "h", "d", "x"][..]))
            .prop_map(|(n, u)| format!("{n}{u}")),
        1 => vec(word(), 0..5).prop_map(|w| w.join(", ")),
        1 => any::<String>().prop_map(|s| s.chars().filter(|c| *c != '\n').take(40).collect()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(TASK_KEYS).prop_map(str::to_string),
        1 => select(&["name", "namespace", "concurrency", "defaults", "agnt", "", " ", "Agent", "k\0"][..])
            .prop_map(str::to_string),
        1 => word(),
    ]
}

/// Unicode and control characters that have broken parsers before.
fn odd_text() -> impl Strategy<Value = String> {
    select(
        &[
            "é",
            "e\u{301}",
            "🦀",
            "👩‍👩‍👧",
            "\u{202e}",
            "\u{200b}",
            "\u{feff}",
            "\u{2028}",
            "\u{fffd}",
            "\0",
            "\r",
            "\r\n",
            "\t",
            "\x0b",
            "\x0c",
            "\x1b[31m",
            "\u{10ffff}",
            "名前",
            "ß",
            "İ",
            "\u{0}\u{0}",
        ][..],
    )
    .prop_map(str::to_string)
}

/// One line of YAML front matter (or a few).
fn front_matter_line() -> impl Strategy<Value = String> {
    let indent = select(&["  ", "    ", " ", "\t", "   "][..]);
    prop_oneof![
        4 => (select(&["name", "namespace", "concurrency"][..]), value())
            .prop_map(|(k, v)| format!("{k}: {v}\n")),
        4 => (indent.clone(), vec((key(), value()), 0..6)).prop_map(|(ind, kv)| {
            let mut s = String::from("defaults:\n");
            for (k, v) in kv {
                s.push_str(&format!("{ind}{k}: {v}\n"));
            }
            s
        }),
        1 => (indent, select(&["depends", "paths", "agent"][..]), vec(value(), 0..4)).prop_map(|(ind, k, items)| {
            let mut s = format!("defaults:\n{ind}{k}:\n");
            for i in items {
                s.push_str(&format!("{ind}{ind}- {i}\n"));
            }
            s
        }),
        1 => (0usize..400, any::<bool>()).prop_map(|(n, balanced)| {
            let close = if balanced { n } else { n / 2 };
            format!("name: {}{}\n", "[".repeat(n), "]".repeat(close))
        }),
        1 => (0usize..300).prop_map(|n| format!("defaults: {}{}\n", "{a: ".repeat(n), "}".repeat(n))),
        1 => (0usize..150).prop_map(|n| {
            let mut s = String::new();
            for d in 0..n {
                s.push_str(&format!("{}k{d}:\n", " ".repeat(d)));
            }
            s
        }),
        1 => (0usize..200).prop_map(|n| format!("defaults:\n{}x\n", "  - ".repeat(n))),
        1 => select(&[
            "defaults: &d\n  agent: kilo\nname: *d\n",
            "name: *unknown\n",
            "defaults:\n  <<: *d\n",
            "x: &a [*a]\n",
            "name: !!binary aGVsbG8=\n",
            "concurrency: !!float 1e400\n",
            "name: !custom x\n",
            "name: |\n  multi\n  line\n",
            "namespace: >-\n  folded\n  text\n",
            "...\n",
            "---\n",
            "%YAML 1.2\n",
            "%TAG ! tag:x,2000:\n",
            "name: \"esc \\0 \\x00 \\u0000 \\U0001F600 \\N \\_ \\L\"\n",
            "name: 'it''s'\n",
            "? a\n: b\n",
            "[a]: b\n",
            "{a: b}: c\n",
            "? [defaults]\n: x\n",
            "concurrency: 0x10\n",
            "concurrency: 0o7\n",
            "concurrency: .inf\n",
            "concurrency: 1_000\n",
            "name:\n",
            "name: [a]\n",
            "defaults: x\n",
            "defaults:\n  - a\n",
            "defaults:\n  agent: kilo\n  agent: exec\n",
            "- a\n- b\n",
            "just text\n",
            ": \n",
            "'\n",
            "\"\n",
            "name: a # comment\n",
            "# comment only\n",
            "\t\n",
        ][..])
        .prop_map(str::to_string),
        1 => (word(), value()).prop_map(|(k, v)| format!("{k}: {v}\n")),
    ]
}

fn front_matter() -> impl Strategy<Value = String> {
    (
        select(&["", "", "", "\u{feff}"][..]),
        select(&["---\n", "---\r\n", "--- \n", "---", "----\n"][..]),
        vec(front_matter_line(), 0..8),
        select(&["---\n", "---\n", "---\n", "---\n", "---\r\n", "--- \n", "", "...\n", "---"][..]),
    )
        .prop_map(|(bom, open, lines, close)| format!("{bom}{open}{}{close}", lines.concat()))
}

fn heading() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (word(), vec(word(), 0..4)).prop_map(|(id, title)| format!("## {id}: {}\n", title.join(" "))),
        1 => (word(), word(), select(&["##", "###", "#", "  ##", "## ", "##\t", "    ##"][..]))
            .prop_map(|(id, t, h)| format!("{h} {id}:{t}\n")),
        1 => select(&[
            "##\n", "## \n", "## :\n", "## :x\n", "## x\n", "## a: T ##\n", "## a: T #\n", "## a: ##\n",
            "a: T\n--\n", "a: T\n==\n", "### sub: x\n", "#### a: b\n", "##a: b\n", "## a:\n", "## a: b\r\n",
            "\\## a: b\n", "<h2>a: b</h2>\n", "## a\0: b\n", "## é: x\n",
        ][..])
        .prop_map(str::to_string),
    ]
}

fn bullet() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (select(&["- ", "- ", "- ", "* ", "+ ", "1. ", "-\t", "  - ", "-  "][..]), key(), value())
            .prop_map(|(m, k, v)| format!("{m}{k}: {v}\n")),
        1 => (key(), value(), select(&["  more\n", "\tmore\n", "  - nested\n", "lazy\n", "    code\n"][..]))
            .prop_map(|(k, v, c)| format!("- {k}: {v}\n{c}")),
        1 => select(&["-\n", "- \n", "- :\n", "- : x\n", "- key\n", "- k:v\n", "-- x: y\n", "- [x]: y\n"][..])
            .prop_map(str::to_string),
    ]
}

fn prompt_line() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => vec(word(), 0..8).prop_map(|w| format!("{}\n", w.join(" "))),
        1 => odd_text().prop_map(|t| format!("text {t} more\n")),
        1 => select(&[
            "```\n## x: y\n```\n", "```\n", "~~~\n", "    ## indented: code\n", "> ## q: r\n", "<div>\n## h: t\n</div>\n",
            "<!-- ## c: d -->\n", "| a | b |\n|---|---|\n", "- list\n- items\n", "1. one\n", "[link](url)\n",
            "***\n", "---\n", "\n", "\n\n", "\r\n", "text ## b: c\n", "#\n", "# h1\n", "<",
        ][..])
        .prop_map(str::to_string),
        1 => (1usize..500, select(&["> ", "- ", "* ", "1. ", "[", "`", "*", "_", "<a>", "  "][..]))
            .prop_map(|(n, s)| format!("{}x\n", s.repeat(n))),
    ]
}

fn task() -> impl Strategy<Value = String> {
    (heading(), vec(bullet(), 0..7), select(&["", "\n", "\n\n"][..]), vec(prompt_line(), 0..5))
        .prop_map(|(h, b, gap, p)| format!("{h}{}{gap}{}\n", b.concat(), p.concat()))
}

// ---------------------------------------------------------------------------------------------
// A plan that is valid (or nearly): written as markdown or JSON, so that most inputs get past the
// syntax and exercise the checks, the defaults and the JSON round trip.

/// A text value that is fine in any field: words, unicode, shell syntax.
fn safe_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => vec(select(&["echo", "hi", "make", "test", "-s", "out/x.txt", "&&", "|", ">", "'q'", "\"dq\"", "$X", "é", "🦀", "名前", "#", "--flag=1", "a,b"][..]), 1..6)
            .prop_map(|w| w.join(" ")),
        1 => any::<String>().prop_map(|s| s.chars().filter(|c| !c.is_control() && *c != '\u{feff}').take(30).collect::<String>().trim().to_string())
            .prop_filter("not empty", |s| !s.is_empty()),
    ]
}

/// One field of a task (or of `defaults`), valid for its key.
#[derive(Debug, Clone)]
enum Field {
    Agent(&'static str),
    Model(String),
    Tier(u8),
    /// Indices into the tasks before this one.
    Depends(Vec<Index>),
    Timeout(String),
    Stall(String),
    Retries(u32),
    Check(String),
    Command(String),
    Paths(Vec<String>),
    Workdir(&'static str),
    /// Anything at all, as markdown `key: value` text.
    Raw(String, String),
}

fn duration_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(&["45s", "20m", "1h30m", "500ms", "2d", "1m5s", "0s", "1d23h59m59s999ms"][..]).prop_map(str::to_string),
        1 => (0u64..100_000, select(&["ms", "s", "m", "h"][..])).prop_map(|(n, u)| format!("{n}{u}")),
    ]
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        9 => select(&["exec", "kilo", "opencode", "cline", "claude", "codex", "gemini", "aider", "mybot"][..]).prop_map(Field::Agent),
        3 => select(&["local/ok", "gemini/gemini-2.5-flash", "openrouter/deepseek/deepseek-chat-v3-0324:free", "x"][..])
            .prop_map(|m| Field::Model(m.to_string())),
        3 => (1u8..=7).prop_map(Field::Tier),
        6 => vec(any::<Index>(), 1..4).prop_map(Field::Depends),
        3 => duration_text().prop_map(Field::Timeout),
        3 => duration_text().prop_map(Field::Stall),
        3 => prop_oneof![4 => 0u32..5, 1 => any::<u32>()].prop_map(Field::Retries),
        3 => safe_text().prop_map(Field::Check),
        9 => safe_text().prop_map(Field::Command),
        3 => vec(select(&["src/**", "docs/*.md", "out/x.txt", "a b", "é/ü"][..]).prop_map(str::to_string), 1..4).prop_map(Field::Paths),
        3 => select(&["worktree", "shared"][..]).prop_map(Field::Workdir),
        1 => (key(), value()).prop_map(|(k, v)| Field::Raw(k, v)),
    ]
}

fn model_prompt_line() -> impl Strategy<Value = String> {
    prop_oneof![4 => safe_text().prop_map(|t| format!("{t}\n")), 1 => prompt_line()]
}

#[derive(Debug, Clone)]
struct PlanModel {
    name: Option<String>,
    namespace: Option<String>,
    concurrency: Option<u32>,
    defaults: Vec<Field>,
    brief: Vec<String>,
    tasks: Vec<TaskModel>,
}

#[derive(Debug, Clone)]
struct TaskModel {
    /// `None`: a generated heading (often malformed) instead of `## t<i>: <title>`.
    title: Option<String>,
    raw_heading: String,
    fields: Vec<Field>,
    prompt: Vec<String>,
}

fn task_model() -> impl Strategy<Value = TaskModel> {
    // Most tasks say what runs them; the rest rely on `defaults` (or miss it).
    let base = prop_oneof![
        2 => safe_text().prop_map(Field::Command),
        1 => select(&["kilo", "opencode", "cline", "mybot"][..]).prop_map(Field::Agent),
    ];
    (
        prop::option::weighted(0.95, safe_text()),
        heading(),
        prop::option::weighted(0.9, base),
        vec(field(), 0..5),
        vec(model_prompt_line(), 0..4),
    )
        .prop_map(|(title, raw_heading, base, mut fields, prompt)| {
            fields.extend(base);
            // One of each (a key set twice is an error the other generators make often enough).
            let mut seen = Vec::new();
            fields.retain(|f| {
                let kind = std::mem::discriminant(f);
                let again = seen.contains(&kind);
                seen.push(kind);
                !again
            });
            TaskModel { title, raw_heading, fields, prompt }
        })
}

fn plan_model() -> impl Strategy<Value = PlanModel> {
    (
        prop::option::of(safe_text()),
        prop::option::of(safe_text()),
        prop::option::of(prop_oneof![9 => 1u32..64, 1 => any::<u32>()]),
        vec(field(), 0..4),
        vec(model_prompt_line(), 0..3),
        vec(task_model(), 1..8),
    )
        .prop_map(|(name, namespace, concurrency, defaults, brief, tasks)| PlanModel {
            name,
            namespace,
            concurrency,
            defaults,
            brief,
            tasks,
        })
}

impl Field {
    fn key_value(&self, task: usize) -> (String, String) {
        let (k, v) = match self {
            Field::Agent(a) => ("agent", a.to_string()),
            Field::Model(m) => ("model", m.clone()),
            Field::Tier(t) => ("tier", t.to_string()),
            // Only on tasks after the first (see `applies`): on earlier ones.
            Field::Depends(d) => (
                "depends",
                d.iter().map(|i| format!("t{}", i.index(task.max(1)))).collect::<Vec<_>>().join(", "),
            ),
            Field::Timeout(d) => ("timeout", d.clone()),
            Field::Stall(d) => ("stall", d.clone()),
            Field::Retries(r) => ("retries", r.to_string()),
            Field::Check(c) => ("check", c.clone()),
            Field::Command(c) => ("command", c.clone()),
            Field::Paths(p) => ("paths", p.join(", ")),
            Field::Workdir(w) => ("workdir", w.to_string()),
            Field::Raw(k, v) => return (k.clone(), v.clone()),
        };
        (k.to_string(), v)
    }

    /// Whether the field is written for task number `task` (`None`: in `defaults`). Dependencies
    /// point backwards only, so the generated graphs have no cycles.
    fn applies(&self, task: Option<usize>) -> bool {
        !matches!((self, task), (Field::Depends(_), None | Some(0)))
    }

    fn json(&self, task: usize) -> (String, serde_json::Value) {
        use serde_json::json;
        let (k, v) = self.key_value(task);
        let v = match self {
            Field::Tier(t) => json!(t),
            Field::Retries(r) => json!(r),
            Field::Depends(_) | Field::Paths(_) => json!(v.split(", ").collect::<Vec<_>>()),
            _ => json!(v),
        };
        (k, v)
    }
}

/// YAML for a string: plain when safe, else double-quoted.
fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_alphanumeric() || " ./-_*".contains(c))
        && !s.starts_with([' ', '-', '*', '.'])
        && !s.ends_with(' ');
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("strings serialize") // JSON strings are YAML strings
    }
}

impl PlanModel {
    fn markdown(&self) -> String {
        let mut out = String::new();
        let front = self.name.is_some()
            || self.namespace.is_some()
            || self.concurrency.is_some()
            || !self.defaults.is_empty();
        if front {
            out.push_str("---\n");
            if let Some(n) = &self.name {
                out.push_str(&format!("name: {}\n", yaml_str(n)));
            }
            if let Some(n) = &self.namespace {
                out.push_str(&format!("namespace: {}\n", yaml_str(n)));
            }
            if let Some(c) = self.concurrency {
                out.push_str(&format!("concurrency: {c}\n"));
            }
            if !self.defaults.is_empty() {
                out.push_str("defaults:\n");
                for f in self.defaults.iter().filter(|f| f.applies(None)) {
                    let (k, v) = f.key_value(0);
                    out.push_str(&format!("  {}: {}\n", yaml_str(&k), yaml_str(&v)));
                }
            }
            out.push_str("---\n");
        }
        out.push_str(&self.brief.concat());
        out.push('\n');
        for (i, t) in self.tasks.iter().enumerate() {
            match &t.title {
                Some(title) => out.push_str(&format!("## t{i}: {title}\n")),
                None => out.push_str(&t.raw_heading),
            }
            for f in t.fields.iter().filter(|f| f.applies(Some(i))) {
                let (k, v) = f.key_value(i);
                out.push_str(&format!("- {k}: {v}\n"));
            }
            out.push('\n');
            out.push_str(&t.prompt.concat());
            out.push('\n');
        }
        out
    }

    fn json(&self, pretty: bool) -> String {
        use serde_json::{json, Map, Value};
        let mut plan = Map::new();
        if let Some(n) = &self.name {
            plan.insert("name".into(), json!(n));
        }
        if let Some(n) = &self.namespace {
            plan.insert("namespace".into(), json!(n));
        }
        if let Some(c) = self.concurrency {
            plan.insert("concurrency".into(), json!(c));
        }
        plan.insert("brief".into(), json!(self.brief.concat()));
        let tasks: Vec<Value> = self
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut task = Map::new();
                let id = match &t.title {
                    Some(_) => format!("t{i}"),
                    None => t.raw_heading.trim_start_matches('#').trim().to_string(),
                };
                task.insert("id".into(), json!(id));
                task.insert("title".into(), json!(t.title.clone().unwrap_or_default()));
                let defaults = self.defaults.iter().filter(|f| f.applies(None));
                for f in defaults.chain(t.fields.iter().filter(|f| f.applies(Some(i)))) {
                    let (k, v) = f.json(i);
                    task.insert(k, v);
                }
                task.insert("prompt".into(), json!(t.prompt.concat()));
                Value::Object(task)
            })
            .collect();
        plan.insert("tasks".into(), Value::Array(tasks));
        let plan = Value::Object(plan);
        if pretty {
            serde_json::to_string_pretty(&plan).expect("serializes")
        } else {
            plan.to_string()
        }
    }
}

/// A markdown plan, before mutation.
fn markdown_plan() -> impl Strategy<Value = String> {
    (
        prop::option::weighted(0.7, front_matter()),
        vec(prompt_line(), 0..4),
        vec(task(), 0..7),
        prop::option::weighted(
            0.03,
            (1usize..2000).prop_map(|n| {
                // Many small tasks in a chain (or a cycle): the graph checks at scale.
                let mut s = String::new();
                for i in 0..n {
                    s.push_str(&format!(
                        "## t{i}: T\n- agent: exec\n- command: true\n- depends: t{}\n\n",
                        (i + 1) % n
                    ));
                }
                s
            }),
        ),
    )
        .prop_map(|(fm, brief, tasks, big)| {
            format!(
                "{}{}\n{}{}",
                fm.unwrap_or_default(),
                brief.concat(),
                tasks.concat(),
                big.unwrap_or_default()
            )
        })
}

// ---------------------------------------------------------------------------------------------
// JSON

fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => word().prop_map(|w| serde_json::to_string(&w).unwrap()),
        2 => value().prop_map(|w| serde_json::to_string(&w).unwrap()),
        1 => select(&[
            "\"\\u0000\"", "\"a\\u0000b\"", "\"\\ud800\"", "\"\\udfff\"", "\"\\ud83e\\udd80\"", "\"\\u00e9\"",
            "\"\\\\u0000\"", "\"\\\"\"", "\"\\/\"", "\"\\x\"", "\"unterminated", "\"\t\"", "\"\n\"", "\"\\U0000\"",
        ][..])
        .prop_map(str::to_string),
    ]
}

fn json_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => json_string(),
        1 => select(&[
            "0", "1", "-1", "7", "8", "1.5", "1e400", "-1e400", "18446744073709551615", "18446744073709551616",
            "4294967296", "-0", "1e-400", "true", "false", "null", "[]", "{}", "NaN", "01", "+1", ".5",
        ][..])
        .prop_map(str::to_string),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => (0usize..300, select(&["[", "{\"a\":"][..])).prop_map(|(n, open)| {
            let close = if open == "[" { "]" } else { "}" };
            format!("{}1{}", open.repeat(n), close.repeat(n))
        }),
    ]
}

fn json_object(keys: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    let k = prop_oneof![
        6 => select(keys).prop_map(|k| serde_json::to_string(k).unwrap()),
        1 => json_string(),
    ];
    let v = prop_oneof![
        3 => json_scalar(),
        1 => vec(json_scalar(), 0..4).prop_map(|items| format!("[{}]", items.join(","))),
    ];
    vec((k, v), 0..max).prop_map(|kv| {
        let body: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
        format!("{{{}}}", body.join(", "))
    })
}

const JSON_TASK_KEYS: &[&str] = &[
    "id", "title", "agent", "model", "tier", "depends", "timeout", "stall", "retries", "check", "command",
    "paths", "workdir", "prompt",
];

fn json_plan() -> impl Strategy<Value = String> {
    let task = prop_oneof![
        4 => (word(), value(), value()).prop_map(|(id, agent, cmd)| serde_json::json!({
            "id": id, "agent": agent, "command": cmd, "timeout": "1m", "depends": [],
        }).to_string()),
        4 => json_object(JSON_TASK_KEYS, 8),
    ];
    (
        vec((select(&["name", "namespace", "concurrency", "brief", "extra"][..]), json_scalar()), 0..4),
        vec(task, 0..6),
        select(&["", "\n", " ", "\u{feff}", "x", ",", "}"][..]),
    )
        .prop_map(|(top, tasks, tail)| {
            let mut fields: Vec<String> = top.into_iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
            fields.push(format!("\"tasks\": [{}]", tasks.join(",\n  ")));
            format!("{{\n  {}\n}}{tail}", fields.join(",\n  "))
        })
}

const COMPLETION_KEYS: &[&str] = &[
    "schema_version",
    "run_id",
    "task_id",
    "status",
    "summary",
    "files_changed",
    "tests",
    "follow_ups",
    "blockers",
];

fn completion() -> impl Strategy<Value = String> {
    let good = (
        prop_oneof![8 => select(&["done", "partial", "blocked", "failed"][..]), 1 => select(&["finished", "", "DONE"][..])],
        word(),
        vec(word(), 0..3),
        vec((word(), any::<bool>()), 0..3),
        prop_oneof![6 => Just("1"), 1 => select(&["2", "0", "\"1\"", "1.0", "18446744073709551616"][..])],
        prop_oneof![6 => Just("r1"), 1 => Just("other")],
    )
        .prop_map(|(status, summary, files, tests, version, run)| {
            let tests: Vec<String> = tests
                .into_iter()
                .map(|(c, p)| serde_json::json!({ "command": c, "passed": p }).to_string())
                .collect();
            format!(
                "{{\"schema_version\": {version}, \"run_id\": \"{run}\", \"task_id\": \"t1\", \"status\": \"{status}\", \
                 \"summary\": {}, \"files_changed\": {}, \"tests\": [{}]}}",
                serde_json::to_string(&summary).unwrap(),
                serde_json::to_string(&files).unwrap(),
                tests.join(",")
            )
        });
    prop_oneof![
        4 => good,
        2 => json_object(COMPLETION_KEYS, 12),
        1 => (json_object(COMPLETION_KEYS, 4), 0usize..160).prop_map(|(o, n)| {
            // Objects nested in objects, each with a duplicate key.
            format!("{}{o}{}", "{\"a\": 1, \"a\": ".repeat(n), "}".repeat(n))
        }),
    ]
}

// ---------------------------------------------------------------------------------------------
// swarm.toml

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => value().prop_map(|v| toml_quote(&v)),
        2 => select(&[
            "1", "0", "-1", "2", "18446744073709551615", "9223372036854775807", "9223372036854775808", "1.5",
            "inf", "nan", "-inf", "true", "false", "[]", "[1, \"a\"]", "{}", "{ a = 1 }", "\"\"", "\"5s\"", "\"0s\"",
            "\"\\u0000\"", "'''\nmulti\n'''", "\"\"\"\nmulti\n\"\"\"", "1979-05-27T07:32:00Z", "0x10", "1_000",
            "\"http://127.0.0.1:9/h\"", "\"example.com\"", "\"{prompt} {model}\"", "\"my-cli {prompt}\"",
            "[[\"local/a\"], [\"local/b\", \"x/c:free\"]]", "[[]]", "[[\"local/a\", \"local/a\"]]", "-0.5",
        ][..])
        .prop_map(str::to_string),
        1 => (0usize..300, select(&["[", "{ a = "][..])).prop_map(|(n, open)| {
            let close = if open == "[" { "]" } else { " }" };
            format!("{}1{}", open.repeat(n), close.repeat(n))
        }),
    ]
}

fn toml_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn config() -> impl Strategy<Value = String> {
    let keys = select(
        &[
            "concurrency",
            "grace",
            "retry_backoff",
            "retry_backoff_max",
            "check_timeout",
            "command",
            "env",
            "require_report",
            "kind",
            "base_url",
            "api_key_env",
            "models",
            "event_retention",
            "on_task_end",
            "on_failure",
            "on_run_end",
            "timeout",
            "webhook",
            "webhook_timeout",
            "webhook_retries",
            "mirror",
            "mirror_dir",
            "footer",
            "paid",
            "allow_paid",
            "max_wait",
            "budget_usd",
            "budget_tokens",
            "layers",
            "rpm",
            "tpm",
            "context",
            "price_in",
            "unknown",
        ][..],
    );
    let section = prop_oneof![
        4 => select(&[
            "[run]", "[store]", "[hooks]", "[feedback]", "[agents.mine]", "[agents.exec]", "[agents.kilo]",
            "[providers.local]", "[agents.mine.env]", "[models]", "[models.limits.\"local/a\"]", "", "[[run]]", "[run.x]", "[agents.\"a b\"]",
            "[agents.'x']", "[\"\"]", "[providers]",
        ][..])
        .prop_map(str::to_string),
        1 => word().prop_map(|w| format!("[{}]", toml_quote(&w))),
    ];
    vec((section, vec((keys, toml_value()), 0..5)), 0..6).prop_map(|sections| {
        let mut s = String::new();
        for (header, kv) in sections {
            s.push_str(&header);
            s.push('\n');
            for (k, v) in kv {
                s.push_str(&format!("{k} = {v}\n"));
            }
        }
        s
    })
}

// ---------------------------------------------------------------------------------------------
// Mutation and raw bytes

#[derive(Debug, Clone)]
enum Mutation {
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Replace(Index, u8),
    Duplicate(Index, usize),
    Truncate(Index),
}

fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => select(TOKENS).prop_map(<[u8]>::to_vec),
        1 => vec(any::<u8>(), 1..8),
    ]
}

const TOKENS: &[&[u8]] = &[
    b"\n## ",
    b"---\n",
    b"\0",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    b"\r",
    b"\n",
    b":",
    b"```\n",
    b"- ",
    b"\xc3\xa9",
    b"99999999999999999999",
    b"\t",
    b"[",
    b"{",
    b"\"",
    b"'",
    b"\\",
    b"\\u0000",
    b"#",
    b",",
    b"}",
    b"]",
    b"=",
    b"&a ",
    b"*a",
    b"!!",
    b"|\n",
    b"\xef\xbb\xbf",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), token()).prop_map(|(i, t)| Mutation::Insert(i, t)),
        2 => (any::<Index>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        1 => (any::<Index>(), 1usize..200).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        let at = |i: &Index| if len == 0 { 0 } else { i.index(len + 1) };
        match m {
            Mutation::Insert(i, t) => {
                let p = at(i);
                bytes.splice(p..p, t.iter().copied());
            }
            Mutation::Delete(i, n) if len > 0 => {
                let p = i.index(len);
                bytes.drain(p..(p + n).min(len));
            }
            Mutation::Replace(i, b) if len > 0 => {
                let p = i.index(len);
                bytes[p] = *b;
            }
            Mutation::Duplicate(i, n) if len > 0 => {
                let p = i.index(len);
                let piece = bytes[p..(p + n).min(len)].to_vec();
                bytes.splice(p..p, piece);
            }
            Mutation::Truncate(i) => bytes.truncate(at(i)),
            _ => {}
        }
    }
    bytes
}

/// Mostly `structured` inputs (half of them mutated a little), some raw bytes.
fn mixed(structured: BoxedStrategy<String>) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        5 => structured.clone().prop_map(String::into_bytes),
        5 => (structured, vec(mutation(), 1..5)).prop_map(|(s, m)| apply(s.into_bytes(), &m)),
        1 => vec(any::<u8>(), 0..512),
    ]
    .boxed()
}

pub fn markdown_plans() -> BoxedStrategy<Vec<u8>> {
    mixed(prop_oneof![3 => plan_model().prop_map(|p| p.markdown()), 2 => markdown_plan()].boxed())
}

pub fn json_plans() -> BoxedStrategy<Vec<u8>> {
    mixed(prop_oneof![3 => (plan_model(), any::<bool>()).prop_map(|(p, pretty)| p.json(pretty)), 1 => json_plan()].boxed())
}

pub fn configs() -> BoxedStrategy<Vec<u8>> {
    mixed(config().boxed())
}

pub fn completions() -> BoxedStrategy<Vec<u8>> {
    mixed(completion().boxed())
}
