//! `swarm run --rehearse`: the README's second example (opencode, kilo and cline in parallel)
//! with the real agent CLIs against swarm's own fake model. No tokens, no API key.

mod support;

use support::*;

#[test]
fn the_three_agent_example_rehearses_green() {
    let p = Project::git();
    let plan = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/agents/plan.md"))
        .unwrap();
    p.write("plan.md", &plan);
    // The real CLIs installed by scripts/install-agents.sh, found through the project's .tools.
    let tools = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.tools"));
    assert!(
        tools.join("node_modules/.bin/opencode").exists(),
        "the pinned agent CLIs are missing: run ./scripts/install-agents.sh"
    );
    std::os::unix::fs::symlink(tools, p.file(".tools")).unwrap();
    let out =
        p.spawn(&["run", "--rehearse", "plan.md", "--no-progress"]).wait(std::time::Duration::from_secs(240));
    out.expect_code(0);
    let st = p.status(&out.run_id());
    for id in ["notes", "faq", "changelog"] {
        assert_task(&st, id, "succeeded", None);
        let a = &attempts(&st, id)[0];
        assert!(a["model"].as_str().unwrap_or("").starts_with("rehearsal/"), "{a}");
        assert_eq!(a["completion"]["status"], "done", "the fake model reported back through the agent: {a}");
    }
    // Nothing before an agent holds up the others (cline's `cline auth` pre-step used to hold
    // the whole dispatcher for ~12 s): the three start together.
    let starts: Vec<_> =
        ["notes", "faq", "changelog"].iter().map(|id| time(&attempts(&st, id)[0]["started_at"])).collect();
    let spread = *starts.iter().max().unwrap() - *starts.iter().min().unwrap();
    assert!(spread < chrono::Duration::seconds(2), "the agents started {spread} apart");
    assert_task(&st, "summary", "succeeded", None);
    // Usage rolls up per run and per model (the rehearsal scenario reports 1000 tokens in per request).
    assert!(st["totals"]["tokens_in"].as_u64().unwrap() > 0, "{}", st["totals"]);
    let by_model = st["by_model"].as_array().unwrap();
    let rehearsal = by_model.iter().find(|m| m["model"] == "rehearsal/rehearsal").expect("per-model usage");
    assert_eq!(rehearsal["attempts"], 3);
    assert!(rehearsal["tokens_in"].as_u64().unwrap() > 0);
}
