//! The README's quickstart (`swarm run examples/quickstart/plan.md`), run as written on a copy of
//! the example, and the run-end lines naming the files tasks declared in `paths`.

mod support;

use support::*;

const QUICKSTART: &str = include_str!("../../../examples/quickstart/plan.md");

#[test]
fn the_quickstart_ends_by_saying_where_its_result_is() {
    let p = Project::git();
    // What the example reads, relative to its directory (`../../README.md`, `../../CHANGELOG.md`).
    p.write("README.md", "# A readme\n\nSome words, some more words.\n");
    p.write("CHANGELOG.md", "# Changes\n\n- words\n");
    p.write("examples/quickstart/plan.md", QUICKSTART);
    let out = p.swarm(&["run", "examples/quickstart/plan.md"]);
    out.expect_code(0);
    let last = out.stdout.lines().last().unwrap_or("");
    assert_eq!(last, "output: examples/quickstart/out/summary.md (summary)", "{}", out.dump());
    assert!(p.read("examples/quickstart/out/summary.md").contains("## Top words"));
    // From the example's own directory the path is relative to there.
    let out = p.swarm_in("examples/quickstart", &["run", "plan.md"]);
    assert_eq!(
        out.expect_code(0).stdout.lines().last(),
        Some("output: out/summary.md (summary)"),
        "{}",
        out.dump()
    );
}

#[test]
fn outputs_are_the_existing_plain_paths_of_succeeded_shared_tasks() {
    let p = Project::new();
    p.plan(
        "## made: Makes two files
- command: mkdir -p out && echo a > out/a.txt && echo b > out/b.txt
- paths: out/a.txt, out/*.txt, out/missing.txt, out/b.txt

## failed: Fails after writing
- command: echo c > c.txt; exit 1
- paths: c.txt
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    let outputs: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("output: ")).collect();
    assert_eq!(outputs, ["output: out/a.txt (made)", "output: out/b.txt (made)"], "{}", out.dump());
    assert!(p.exists("c.txt"), "the failed task ran");
    // --json prints events only.
    let out = p.swarm(&["run", "plan.md", "--json"]);
    assert!(!out.stdout.contains("output: "), "{}", out.dump());
}
