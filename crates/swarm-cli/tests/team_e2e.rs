//! A team of real agents (opencode, pinned) against swarm's fake model: a research → write →
//! review plan with declared state. What each model receives is asserted byte for byte: the
//! research task's report (summary, files_changed, follow_ups, blockers) handed to the writer,
//! the reviewer's `handoff: full` adding the state keys the research agent wrote, and each
//! task's state keys.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::*;

const SCENARIO: &str = r#"
[models.research]
steps = [
  { write = { path = "notes.md", content = "bees dance\n" } },
  { call = { name = "bash", arguments = { command = "swarm state set research/bees '{\"topic\": \"bees\"}' --if-version 0", description = "share the topic" } } },
  { report = { status = "done", summary = "Bees dance to say where the food is.", files_changed = ["notes.md"], follow_ups = ["check the 2024 waggle paper", "ask about wasps"] } },
  { say = "DONE" },
]
[models.write]
steps = [ { report = { status = "done", summary = "Wrote the article.", blockers = ["no photos"] } }, { say = "DONE" } ]
[models.review]
steps = [ { report = { status = "done", summary = "Reviewed." } }, { say = "DONE" } ]
"#;

const PLAN: &str = r#"---
name: team
namespace: team
defaults:
  agent: opencode
  timeout: 60s
  workdir: shared
state:
  doc: rules/agents-state.md
  keys:
    research/*:
      writers: [research]
      schema: {type: object, required: [topic], properties: {topic: {type: string}}}
---

A three-stage team.

## research: Research bees
- model: local/research

Find out how bees tell each other where food is.

## write: Write it up
- depends: research
- model: local/write

Write an article from the research.

## review: Review the article
- depends: write, research
- model: local/review
- handoff: full

Review the article.
"#;

/// The hand-off the writer's model must receive, exactly.
const HANDOFF: &str = "## Hand-off from research

summary: Bees dance to say where the food is.
files_changed:
- notes.md
follow_ups:
- check the 2024 waggle paper
- ask about wasps
blockers: none";

fn user_text(fake: &Fake, model: &str) -> String {
    let records = fake.server.as_ref().unwrap().log().records();
    let texts: Vec<String> = records
        .into_iter()
        .filter(|r| r.model.as_deref() == Some(model))
        .flat_map(|r| r.user)
        .filter(|u| u.contains("SWARM_COMPLETION_FILE"))
        .collect();
    assert!(!texts.is_empty(), "the model `{model}` got no task prompt");
    texts[0].clone()
}

#[test]
fn hand_offs_and_state_keys_reach_each_model() {
    let bin = tools_bin();
    let fake = Fake::start(SCENARIO);
    let p = Project::new();
    p.write(
        "swarm.toml",
        &format!(
            "{FAST_CONFIG}\n[providers.local]\nkind = \"openai-compatible\"\nbase_url = \"{}\"\napi_key_env = \"SWARM_TEST_LOCAL_KEY\"\nmodels = [\"research\", \"write\", \"review\"]\n",
            fake.base_url()
        ),
    );
    p.plan(PLAN);
    let mut cmd = p.command(&["run", "plan.md"]);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin.clone()];
    dirs.extend(std::env::split_paths(&path));
    cmd.env("PATH", std::env::join_paths(dirs).unwrap());
    let out = p.spawn_cmd(cmd).wait(Duration::from_secs(180));
    let report = p.report(&out.run_id());
    out.expect_code(0);

    let write = user_text(&fake, "write");
    assert!(
        write.contains(&format!(
            "Write an article from the research.\n\n---\n\n{HANDOFF}\n\n---\n\n## Shared state"
        )),
        "{write}"
    );
    assert!(
        write.contains("### Keys you may read (others write them)\n\n#### `research/*`\n\nwriters: research"),
        "{write}"
    );
    assert!(!write.contains("### Keys you may write"), "{write}");

    let research = user_text(&fake, "research");
    assert!(!research.contains("Hand-off from"), "{research}");
    assert!(research.contains("### Keys you may write\n\n#### `research/*`"), "{research}");
    assert!(
        research.contains("\"required\": [\n    \"topic\"\n  ]"),
        "the schema is in the prompt: {research}"
    );

    let review = user_text(&fake, "review");
    let full = format!("{HANDOFF}\nstate keys written:\n- research/bees (v1)\n\n---\n\n");
    assert!(review.contains(&full), "handoff: full adds the keys research wrote: {review}");
    assert!(review.contains("## Hand-off from write\n\nsummary: Wrote the article.\nfiles_changed: none\nfollow_ups: none\nblockers:\n- no photos\nstate keys written:\n- (none)\n"), "{review}");

    let handed = |id: &str| task(&report, id).get("handoff_from").cloned().unwrap_or(Value::Null);
    assert_eq!(handed("write"), serde_json::json!(["research"]));
    assert_eq!(handed("research"), Value::Null);
    assert_eq!(handed("review"), serde_json::json!(["write", "research"]));

    // The research agent's own `swarm state set` went through its declaration.
    let entry =
        p.swarm(&["state", "get", "research/bees", "--namespace", "team", "--json"]).expect_code(0).json();
    assert_eq!(
        (&entry["value"]["topic"], &entry["updated_by"]["task_id"]),
        (&Value::from("bees"), &Value::from("research"))
    );
    let md = p.read(&format!(".swarm/runs/{}/report.md", out.run_id()));
    assert!(
        md.contains("## Hand-offs\n\n- research → write: Bees dance to say where the food is.\n"),
        "{md}"
    );
    assert!(md.contains("## Shared state\n"), "{md}");
    assert!(md.contains("| `research/bees` | set | 1 | research | {\"topic\":\"bees\"} |"), "{md}");

    let doc = p.read("rules/agents-state.md");
    assert!(doc.starts_with("# Shared state of `team`") && doc.contains("#### `research/*`"), "{doc}");
}

/// `role:` reaches the model: opencode's own named agent (`.opencode/agent/critic.md`, applied
/// by `--agent critic`, so its text is opencode's system prompt) and a `[roles.editor]
/// prompt_file` (put before the task prompt). An unknown role is a plan error.
#[test]
fn roles_reach_the_model() {
    let bin = tools_bin();
    let fake = Fake::start(
        "[models.echo]\nsteps = [ { report = { status = \"done\", summary = \"ok\" } }, { say = \"DONE\" } ]\n",
    );
    let p = Project::new();
    p.write(
        "swarm.toml",
        &format!(
            "{FAST_CONFIG}\n[roles.editor]\nprompt_file = \"roles/editor.md\"\n\n[providers.local]\nkind = \"openai-compatible\"\nbase_url = \"{}\"\napi_key_env = \"SWARM_TEST_LOCAL_KEY\"\nmodels = [\"echo\"]\n",
            fake.base_url()
        ),
    );
    p.write(
        ".opencode/agent/critic.md",
        "---\ndescription: A careful critic\nmode: primary\n---\nYou are CRITIC-7, a careful critic.\n",
    );
    p.write("roles/editor.md", "You are the EDITOR-3: keep sentences short.\n");
    let plan =
        "---\ndefaults:\n  agent: opencode\n  model: local/echo\n  timeout: 60s\n  workdir: shared\n---\n\n\
                ## critic: Criticise\n- role: critic\n\nCriticise the draft.\n\n\
                ## editor: Edit\n- role: editor\n\nEdit the draft.\n";
    p.plan(&plan.replace("role: editor", "role: editr"));
    let bad = p.swarm(&["plan", "check", "plan.md"]);
    assert!(bad.expect_code(2).stderr.contains("unknown role `editr`"), "{}", bad.dump());
    assert!(bad.stderr.contains("known roles: critic, editor"), "{}", bad.dump());
    p.plan(plan);

    let mut cmd = p.command(&["run", "plan.md"]);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin.clone()];
    dirs.extend(std::env::split_paths(&path));
    cmd.env("PATH", std::env::join_paths(dirs).unwrap());
    let out = p.spawn_cmd(cmd).wait(Duration::from_secs(120));
    out.expect_code(0);

    let records = fake.server.as_ref().unwrap().log().records();
    let task_request = |prompt: &str| {
        records
            .iter()
            // The agent's own turn (it offers tools), not opencode's title request.
            .find(|r| {
                !r.tools.is_empty()
                    && r.user.iter().any(|u| u.contains(prompt) && u.contains("SWARM_COMPLETION_FILE"))
            })
            .unwrap_or_else(|| panic!("no request carries {prompt:?}"))
            .clone()
    };
    let critic = task_request("Criticise the draft.");
    let system = critic.body["messages"][0]["content"].to_string();
    assert!(
        critic.body.to_string().contains("You are CRITIC-7, a careful critic."),
        "opencode's --agent critic: system prompt {}…\n{}",
        system.chars().take(600).collect::<String>(),
        p.swarm(&["logs", &out.run_id(), "critic"]).stdout
    );
    assert!(!critic.user.iter().any(|u| u.contains("CRITIC-7")), "not in the task prompt too");
    let editor = task_request("Edit the draft.");
    let prompt = editor.user.iter().find(|u| u.contains("Edit the draft.")).unwrap();
    assert!(
        prompt.contains("You are the EDITOR-3: keep sentences short.\n\n\n---\n\nEdit the draft."),
        "{prompt}"
    );
}
