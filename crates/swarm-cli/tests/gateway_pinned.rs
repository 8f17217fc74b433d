//! A task pinned to a model whose provider key swarm holds runs through the gateway with a
//! grant for that one model (issue 15, item 8): the agent gets the gateway's per-attempt token,
//! never the provider's key; the request reaches that model and no other, metered; a refusal
//! of that model is not served by another one.

mod support;

use std::time::Duration;
use support::*;
use swarm_fakellm::ResponseKind;

const KEY: &str = "sk-pinned-provider-secret-0123456789";
const WORKER: &str = "steps = [ { say = \"DONE\" } ]\n";

/// A custom agent that records its environment, then calls the gateway the way it was told.
const AGENT: &str = "env > agent-$SWARM_TASK_ID.env\n\
    curl -s -H \"Authorization: Bearer $SWARM_GATEWAY_TOKEN\" -H 'content-type: application/json' \
    -d '{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}' \
    \"$SWARM_GATEWAY_URL/chat/completions\" > answer-$SWARM_TASK_ID.json\n\
    grep -q chat.completion answer-$SWARM_TASK_ID.json || exit 1\n\
    swarm report --status done --summary called\n";

fn requests_to(fake: &Fake, model: &str) -> Vec<ResponseKind> {
    let log = fake.server.as_ref().unwrap().log().records();
    log.into_iter().filter(|r| r.model.as_deref() == Some(model)).map(|r| r.response).collect()
}

#[test]
fn a_pinned_models_key_stays_with_the_gateway_and_no_other_model_serves_it() {
    // `busy` refuses every request (rate limited for longer than max_wait); `other` would answer.
    let fake = Fake::start(&format!(
        "[models.mine]\n{WORKER}[models.other]\n{WORKER}[models.busy]\nrate_limit = {{ first = 1000, retry_after = 300 }}\n"
    ));
    let p = Project::new();
    p.write(
        "swarm.toml",
        &format!(
            "{FAST_CONFIG}\n[providers.fake]\nkind = \"openai-compatible\"\nbase_url = \"{}\"\n\
             api_key_env = \"SWARM_PINNED_TEST_KEY\"\npaid = false\n\n\
             [models]\nlayers = [[\"fake/other\"]]\nmax_wait = \"2s\"\n\n\
             [agents.envdump]\ncommand = \"sh agent.sh\"\n",
            fake.base_url()
        ),
    );
    p.write("agent.sh", AGENT);
    p.write(
        "pinned.md",
        "---\ndefaults:\n  timeout: 60s\n  agent: envdump\n---\n\n\
         ## mine: Pinned to a model outside the layers\n- model: fake/mine\n\nCall it.\n\n\
         ## busy: Pinned to a model that refuses\n- model: fake/busy\n\nCall it.\n",
    );
    let mut cmd = p.command(&["run", "pinned.md"]);
    cmd.env("SWARM_PINNED_TEST_KEY", KEY);
    let out = p.spawn_cmd(cmd).wait(Duration::from_secs(120));
    let report = p.report(&out.run_id());

    assert_task(&report, "mine", "succeeded", None);
    let env = p.read("agent-mine.env");
    assert!(
        !env.contains(KEY) && !env.contains("SWARM_PINNED_TEST_KEY"),
        "the key reached the agent:\n{env}"
    );
    assert!(env.contains("SWARM_GATEWAY_TOKEN=swarm-attempt-"), "{env}");
    let mine = attempts(&report, "mine").last().cloned().unwrap();
    assert_eq!(mine["model"], "fake/mine", "{mine:#}");
    assert!(mine["tokens_in"].as_u64().unwrap() > 0, "metered by the gateway: {mine:#}");
    assert_eq!(requests_to(&fake, "mine").len(), 1);

    // The pinned model refuses: the gateway waits within max_wait, then gives up; the hierarchy's
    // model is never asked in its place.
    assert_task(&report, "busy", "failed", Some("models_exhausted"));
    assert!(!requests_to(&fake, "busy").is_empty());
    assert!(requests_to(&fake, "other").is_empty(), "no other model served a pinned task");
    assert!(!p.read("agent-busy.env").contains(KEY));
}
