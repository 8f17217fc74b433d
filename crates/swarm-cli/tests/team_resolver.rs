//! `on_conflict: agent` with real git and a real agent (opencode against swarm's fake model):
//! two tasks edit the same line another task already merged; one resolver removes the markers
//! and passes the check (merge `resolved`, the work on the integration branch), the other
//! leaves a check failing (merge `conflict`, reason `merge_conflict`).

mod support;

use serde_json::Value;
use std::time::Duration;
use support::*;

const SCENARIO: &str = r#"
[models.first]
steps = [ { write = { path = "poem.txt", content = "roses are RED\n" } }, { report = { status = "done", summary = "made the roses red" } }, { say = "DONE" } ]
[models.second]
delay_ms = 1500
steps = [ { write = { path = "poem.txt", content = "roses are BLUE\n" } }, { report = { status = "done", summary = "made the roses blue" } }, { say = "DONE" } ]
[models.third]
delay_ms = 1500
steps = [ { write = { path = "poem.txt", content = "roses are GREEN ({task})\n" } }, { report = { status = "done", summary = "made the roses green" } }, { say = "DONE" } ]
"#;

const PLAN: &str = r#"---
concurrency: 3
state:
  doc: rules/state.md
  keys:
    poem/colour:
      writers: [red]
defaults:
  agent: opencode
  timeout: 60s
---

## red: Make the roses red
- model: local/first

Edit poem.txt.

## blue: Make the roses blue
- model: local/second
- on_conflict: agent
- check: grep -q BLUE poem.txt

Edit poem.txt.

## green: Make the roses green
- model: local/third
- on_conflict: agent
- check: ! grep -q '{task}' poem.txt

Edit poem.txt.
"#;

fn git(p: &Project, args: &[&str]) -> String {
    let out = std::process::Command::new("git").arg("-C").arg(p.path()).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_resolver_completes_one_conflicting_merge_and_fails_another() {
    let bin = tools_bin();
    let fake = Fake::start(SCENARIO);
    let p = Project::new();
    p.write(
        "swarm.toml",
        &format!(
            "{FAST_CONFIG}\n[providers.local]\nkind = \"openai-compatible\"\nbase_url = \"{}\"\napi_key_env = \"SWARM_TEST_LOCAL_KEY\"\nmodels = [\"first\", \"second\", \"third\"]\n",
            fake.base_url()
        ),
    );
    p.plan(PLAN);
    p.write("poem.txt", "roses are red\n");
    git(&p, &["init", "-q", "-b", "main"]);
    git(&p, &["add", "plan.md", "swarm.toml", "poem.txt"]);
    git(&p, &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "a poem"]);

    let mut cmd = p.command(&["run", "plan.md"]);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin.clone()];
    dirs.extend(std::env::split_paths(&path));
    cmd.env("PATH", std::env::join_paths(dirs).unwrap());
    let out = p.spawn_cmd(cmd).wait(Duration::from_secs(240));
    let run_id = out.run_id();
    let report = p.report(&run_id);
    out.expect_code(1);

    assert_task(&report, "red", "succeeded", None);
    assert_eq!(task(&report, "red")["merge"], "merged");
    // blue: the resolver (the task's own agent) rewrote the line, the check passed, merged.
    assert_task(&report, "blue", "succeeded", None);
    assert_eq!(task(&report, "blue")["merge"], "resolved", "{report:#}");
    let resolver = attempts(&report, "blue").last().unwrap();
    assert_eq!(
        (&resolver["kind"], &resolver["agent"]),
        (&Value::from("resolver"), &Value::from("opencode")),
        "{report:#}"
    );
    assert!(resolver["reason"].is_null(), "{resolver:#}");
    // green: its resolver left the check failing; the merge stays a conflict.
    assert_task(&report, "green", "failed", Some("merge_conflict"));
    assert_eq!(task(&report, "green")["merge"], "conflict");
    let resolver = attempts(&report, "green").last().unwrap();
    assert_eq!(resolver["kind"], "resolver", "{report:#}");
    assert_eq!(resolver["reason"], "check_failed", "{resolver:#}");
    assert!(detail(&report, "green").contains("the resolver failed"), "{report:#}");

    let integration = format!("swarm/{run_id}");
    assert_eq!(git(&p, &["show", &format!("{integration}:poem.txt")]), "roses are BLUE\n");
    let log = git(&p, &["log", "--format=%s", &integration]);
    assert!(log.contains("task blue (merge resolved by opencode)"), "{log}");

    // The resolver's model got the conflict, both sides' reports and the paths.
    let prompts: Vec<String> =
        fake.server.as_ref().unwrap().log().records().into_iter().flat_map(|r| r.user).collect();
    let prompt = prompts
        .iter()
        .find(|u| u.starts_with("# Resolve a merge conflict") && u.contains("Task `blue`"))
        .unwrap_or_else(|| panic!("no resolver prompt for blue among {} messages", prompts.len()));
    for part in [
        "Conflicting paths:\n- poem.txt\n",
        "## Hand-off from blue\n\nsummary: made the roses blue\n",
        "## Hand-off from red\n\nsummary: made the roses red\n",
        "the check `grep -q BLUE poem.txt` passes",
    ] {
        assert!(prompt.contains(part), "missing {part:?} in\n{prompt}");
    }
    assert_eq!(
        git(&p, &["status", "--porcelain", "--untracked-files=no"]),
        "",
        "the user's checkout is untouched"
    );
    // The state doc was written into each worktree for its agent, and committed nowhere.
    let doc = p.read(&format!(".swarm/worktrees/{run_id}/blue/rules/state.md"));
    assert!(doc.contains("#### `poem/colour`\n\nwriters: red"), "{doc}");
    for rev in [integration.clone(), format!("swarm/{run_id}--blue"), format!("swarm/{run_id}--green")] {
        let files = git(&p, &["ls-tree", "-r", "--name-only", &rev]);
        assert!(!files.contains("rules/state.md"), "{rev} has the state doc:\n{files}");
    }
}
