//! docs/plan-format.md cannot rot: its fenced examples are checked against the real binary.
//! ```` ```markdown plan ```` and ```` ```json plan ```` blocks must pass `swarm plan check`; blocks
//! with the same `plan=NAME` are the same plan (`swarm plan show --json` of the markdown one is
//! the JSON one), and the JSON one runs; ```` ```markdown invalid=NAME ```` must fail with exit 2
//! printing exactly the ```` ```text invalid=NAME ```` block.

mod support;

use serde_json::Value;
use support::*;

const DOC: &str = include_str!("../../../docs/plan-format.md");

struct Block {
    lang: String,
    /// The words after the language: `plan`, `plan=NAME`, `invalid=NAME`.
    tags: Vec<String>,
    body: String,
    line: usize,
}

impl Block {
    fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find_map(|t| t.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }

    fn is_plan(&self) -> bool {
        self.tags.iter().any(|t| t == "plan" || t.starts_with("plan="))
    }
}

fn blocks() -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in DOC.lines().enumerate() {
        match &mut open {
            None => {
                if let Some(info) = line.strip_prefix("```").filter(|i| !i.is_empty()) {
                    let mut words = info.split_whitespace().map(str::to_string);
                    let lang = words.next().unwrap_or_default();
                    open = Some(Block { lang, tags: words.collect(), body: String::new(), line: i + 1 });
                }
            }
            Some(b) => {
                if line == "```" {
                    out.push(open.take().expect("open block"));
                } else {
                    b.body.push_str(line);
                    b.body.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "docs/plan-format.md has an unclosed code block");
    out
}

fn file_for(b: &Block) -> &'static str {
    match b.lang.as_str() {
        "json" => "plan.json",
        "markdown" => "plan.md",
        other => panic!("docs/plan-format.md:{}: a plan block in `{other}`", b.line),
    }
}

#[test]
fn every_plan_in_the_doc_is_accepted() {
    let plans: Vec<Block> = blocks().into_iter().filter(Block::is_plan).collect();
    assert!(plans.len() >= 4, "the doc lost its examples: {} plan blocks", plans.len());
    for b in &plans {
        let p = Project::new();
        let file = file_for(b);
        p.write(file, &b.body);
        let out = p.swarm(&["plan", "check", file]);
        assert_eq!(out.code(), Some(0), "docs/plan-format.md:{}: not accepted\n{}", b.line, out.dump());
    }
}

#[test]
fn the_json_example_is_the_markdown_example_and_runs() {
    let all = blocks();
    let named = |lang: &str, name: &str| {
        all.iter()
            .find(|b| b.lang == lang && b.tag("plan") == Some(name))
            .unwrap_or_else(|| panic!("no ```{lang} plan={name} block"))
    };
    let (md, json) = (named("markdown", "weekly"), named("json", "weekly"));
    let p = Project::new();
    p.write("plan.md", &md.body);
    let shown = p.swarm(&["plan", "show", "plan.md", "--json"]);
    let want: Value = serde_json::from_str(&json.body).expect("the JSON example is JSON");
    assert_eq!(
        shown.expect_code(0).json(),
        want,
        "docs/plan-format.md:{}: not what `swarm plan show --json` prints for the example at line {}",
        json.line,
        md.line
    );
    // What `swarm run plan.json` does with it.
    p.write("plan.json", &json.body);
    let run = p.swarm(&["run", "plan.json"]);
    run.expect_code(0);
    assert!(p.read("out/summary.md").starts_with("# Summary\n42 tasks\n3 failures"), "{}", run.dump());
    assert_eq!(run.stdout.lines().last(), Some("output: out/summary.md (summary)"), "{}", run.dump());
}

#[test]
fn the_error_examples_are_what_swarm_prints() {
    let all = blocks();
    let invalid: Vec<&Block> =
        all.iter().filter(|b| b.lang == "markdown" && b.tag("invalid").is_some()).collect();
    assert!(invalid.len() >= 2, "the doc lost its error examples");
    for b in invalid {
        let name = b.tag("invalid").unwrap();
        let want = all
            .iter()
            .find(|t| t.lang == "text" && t.tag("invalid") == Some(name))
            .unwrap_or_else(|| panic!("no ```text invalid={name} block"));
        let p = Project::new();
        p.write("plan.md", &b.body);
        let out = p.swarm(&["plan", "check", "plan.md"]);
        out.expect_code(2);
        assert!(
            out.stderr.contains(&want.body),
            "docs/plan-format.md:{}: `swarm plan check` prints something else:\n{}",
            want.line,
            out.stderr
        );
    }
}
