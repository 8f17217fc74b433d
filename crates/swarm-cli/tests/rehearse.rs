//! `swarm run --rehearse`: the README's second example (all seven agent CLIs in parallel:
//! opencode, kilo, cline, Claude Code, Codex, Gemini CLI, aider) with the real agent CLIs
//! against swarm's own fake model. No tokens, no API key.

mod support;

use support::*;

/// The example's agent tasks: opencode, kilo, cline, Claude Code, Codex, Gemini CLI, aider.
const AGENT_TASKS: [&str; 7] = ["notes", "faq", "changelog", "readme", "todo", "glossary", "authors"];

#[test]
fn the_seven_agent_example_rehearses_green() {
    let p = Project::new();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").arg("-C").arg(p.path()).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let plan = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/agents/plan.md"))
        .unwrap();
    p.write("plan.md", &plan);
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "plan.md", "swarm.toml"]);
    git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "the plan"]);
    // The real CLIs installed by scripts/install-agents.sh, found through the project's .tools.
    let tools = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.tools"));
    assert!(
        tools.join("node_modules/.bin/opencode").exists(),
        "the pinned agent CLIs are missing: run ./scripts/install-agents.sh"
    );
    std::os::unix::fs::symlink(tools, p.file(".tools")).unwrap();
    let out =
        p.spawn(&["run", "--rehearse", "plan.md", "--no-progress"]).wait(std::time::Duration::from_secs(300));
    out.expect_code(0);
    let st = p.status(&out.run_id());
    for id in AGENT_TASKS {
        assert_task(&st, id, "succeeded", None);
        let a = &attempts(&st, id)[0];
        assert!(a["model"].as_str().unwrap_or("").starts_with("rehearsal/"), "{a}");
        assert_eq!(a["completion"]["status"], "done", "the fake model reported back through the agent: {a}");
        // A rehearsal spends nothing, whatever price an agent puts on the fake model itself.
        assert_eq!(a["cost_usd"], 0.0, "{a}");
    }
    // Nothing before an agent holds up the others (cline's `cline auth` pre-step used to hold
    // the whole dispatcher for ~12 s): the seven start together.
    let starts: Vec<_> = AGENT_TASKS.iter().map(|id| time(&attempts(&st, id)[0]["started_at"])).collect();
    let spread = *starts.iter().max().unwrap() - *starts.iter().min().unwrap();
    assert!(spread < chrono::Duration::seconds(3), "the agents started {spread} apart");
    assert_task(&st, "summary", "succeeded", None);
    // Each agent worked in its own worktree; their work came together in the run's branch,
    // where the summary (a worktree task after all seven) saw it. The checkout is untouched.
    let run_id = out.run_id();
    let integration = format!("swarm/{run_id}");
    let files = git(&["ls-tree", "-r", "--name-only", &integration]);
    for id in AGENT_TASKS {
        let file = format!("rehearsal/{id}.md");
        assert!(files.lines().any(|f| f == file), "{file} is in {integration}: {files}");
        assert_eq!(task(&st, id)["merge"], "merged");
        assert_eq!(task(&st, id)["files_changed"], serde_json::json!([file]));
        let shown = git(&["show", &format!("{integration}:{file}")]);
        assert!(shown.contains(&format!("Task {id} of run {run_id}")), "{shown}");
        assert!(!p.exists(&file), "the agents never wrote into the user's checkout");
    }
    let summary_log = p.read(&format!(".swarm/runs/{run_id}/logs/summary.1.log"));
    for id in AGENT_TASKS {
        assert!(summary_log.contains(&format!("{id}.md")), "the summary saw {id}'s file: {summary_log}");
    }
    assert_eq!(git(&["status", "--porcelain", "--untracked-files=no"]), "");
    // Usage rolls up per run and per model (the rehearsal scenario reports 1000 tokens in per request).
    assert!(st["totals"]["tokens_in"].as_u64().unwrap() > 0, "{}", st["totals"]);
    let by_model = st["by_model"].as_array().unwrap();
    let rehearsal = by_model.iter().find(|m| m["model"] == "rehearsal/rehearsal").expect("per-model usage");
    assert_eq!(rehearsal["attempts"], 7);
    assert!(rehearsal["tokens_in"].as_u64().unwrap() > 0);
}

/// The team example (research → write → review with declared state) rehearses with the real
/// opencode against the fake model, as the README shows it: the research agent's own `swarm
/// state set`, the hand-offs and the state change end up in report.md.
#[test]
fn the_team_example_rehearses_with_hand_offs_and_state_in_report_md() {
    let p = Project::new();
    let example = |f: &str| {
        std::fs::read_to_string(format!("{}/../../examples/team/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    p.write("plan.md", &example("plan.md"));
    p.write("scenario.toml", &example("scenario.toml"));
    let tools = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.tools"));
    std::os::unix::fs::symlink(tools, p.file(".tools")).unwrap();
    let out = p
        .spawn(&["run", "--rehearse", "plan.md", "--scenario", "scenario.toml", "--no-progress"])
        .wait(std::time::Duration::from_secs(240));
    out.expect_code(0);
    let run_id = out.run_id();
    let md = p.read(&format!(".swarm/runs/{run_id}/report.md"));
    assert!(md.contains("## Hand-offs\n"), "{md}");
    assert!(md.contains("- research → write: Bees dance to say where the food is.\n"), "{md}");
    assert!(md.contains("- write → review: Wrote the article.\n"), "{md}");
    assert!(md.contains("## Shared state\n"), "{md}");
    assert!(md.contains("| `research/bees` | set | 1 | research | {\"topic\":\"bees\"} |"), "{md}");
    assert!(p.read("rules/agents-state.md").contains("#### `research/*`"));
    assert_eq!(p.read("article.md"), "# How bees find food\n");
}
