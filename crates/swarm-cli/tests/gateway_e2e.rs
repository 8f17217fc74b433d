//! The model hierarchy through the gateway, with the real opencode and kilo CLIs against swarm's
//! fake model server as the provider: a rate limit is absorbed before the agent sees it,
//! cooldowns are shared with the next process, declared limits are kept without a single 429,
//! the spend gate holds, and the provider's key never reaches an agent.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::*;
use swarm_fakellm::ResponseKind;

const KEY: &str = "sk-provider-secret-0123456789";

/// A project whose `[models]` hierarchy is `layers` over the fake provider `fake` (free unless
/// `extra` says otherwise), with its key in the environment of every swarm command.
fn project(fake: &Fake, layers: &str, extra: &str) -> Project {
    let p = Project::new();
    p.write(
        "swarm.toml",
        &format!(
            "{FAST_CONFIG}\n[providers.fake]\nkind = \"openai-compatible\"\nbase_url = \"{}\"\napi_key_env = \"SWARM_TEST_PROVIDER_KEY\"\npaid = false\n\n[models]\nlayers = {layers}\n{extra}",
            fake.base_url()
        ),
    );
    p
}

/// `swarm ARGS` with the pinned CLIs on PATH and the provider key set.
fn swarm(p: &Project, args: &[&str]) -> Out {
    let mut cmd = p.command(args);
    let mut dirs = vec![tools_bin()];
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    cmd.env("PATH", std::env::join_paths(dirs).unwrap()).env("SWARM_TEST_PROVIDER_KEY", KEY);
    p.spawn_cmd(cmd).wait(Duration::from_secs(150))
}

/// One task of `agent` that needs no model named: it gets one from the hierarchy.
fn plan(p: &Project, agent: &str, id: &str) {
    p.write(
        &format!("{id}.md"),
        &format!(
            "---\ndefaults:\n  timeout: 90s\n---\n\n## {id}: Uses whatever model the hierarchy gives\n- agent: {agent}\n\nWrite the file, report, say DONE.\n"
        ),
    );
}

const WORKER: &str = "steps = [ { write = { path = \"out.txt\", content = \"written\\n\" } }, { report = { status = \"done\", summary = \"wrote out.txt\" } }, { say = \"DONE\" } ]\n";

fn requests_to(fake: &Fake, model: &str) -> Vec<ResponseKind> {
    let log = fake.server.as_ref().unwrap().log().records();
    log.into_iter().filter(|r| r.model.as_deref() == Some(model)).map(|r| r.response).collect()
}

fn attempt(report: &Value, id: &str) -> Value {
    attempts(report, id).last().cloned().unwrap_or_else(|| panic!("{id} has an attempt: {report:#}"))
}

fn rate_limit_absorbed(agent: &str) {
    let fake = Fake::start(&format!(
        // Cooling longer than both runs take, however slow the machine.
        "[models.a]\nrate_limit = {{ first = 1000, retry_after = 300 }}\n{WORKER}[models.b]\n{WORKER}"
    ));
    let p = project(&fake, "[[\"fake/a\"], [\"fake/b\"]]", "");
    plan(&p, agent, "first");
    let out = swarm(&p, &["run", "first.md"]);
    let report = p.report(&out.run_id());
    let a = attempt(&report, "first");
    assert_eq!(state(&report, "first"), "succeeded", "{}\n{a:#}\n{}", detail(&report, "first"), out.dump());
    assert_eq!(attempts(&report, "first").len(), 1, "no retry was spent");
    assert_eq!(a["model"], "fake/b", "{a:#}");
    assert_eq!(a["layer"], 2, "{a:#}");
    assert_eq!(a["fallback_reason"], "rate_limited", "{a:#}");
    let served: Vec<&str> =
        a["requests"].as_array().unwrap().iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(served, ["fake/b"], "{a:#}");
    assert!(a["requests"][0]["count"].as_u64().unwrap() >= 2, "{a:#}");
    assert_eq!(p.read("out.txt"), "written\n");
    // The fake provider saw 429s for `a` only from the gateway's first tries: one, or two when
    // the agent's first requests were in flight together (opencode titles its session while it
    // sends the prompt), both before the cooldown; nothing after (the second run below).
    let to_a = requests_to(&fake, "a");
    assert!((1..=2).contains(&to_a.len()), "{to_a:?}");
    assert!(to_a.iter().all(|r| matches!(r, ResponseKind::RateLimited { retry_after: 300 })), "{to_a:?}");
    // Every request reached the provider with its real key; none with the agent's token.
    let log = fake.server.as_ref().unwrap().log().records();
    assert!(log
        .iter()
        .filter(|r| r.path.ends_with("chat/completions"))
        .all(|r| r.bearer.as_deref() == Some(KEY)));
    let events = swarm(&p, &["events", &out.run_id(), "--json"]).stdout;
    assert!(events.contains("\"model_fallback\"") && events.contains("rate_limited"), "{events}");

    // `swarm models` shows the live cooldown, from another process.
    let models = swarm(&p, &["models", "--json"]);
    models.expect_code(0);
    let rows: Value = serde_json::from_str(&models.stdout).unwrap();
    let row = |id: &str| rows.as_array().unwrap().iter().find(|r| r["model"] == id).cloned().unwrap();
    assert_eq!(row("fake/a")["state"], "cooling", "{rows:#}");
    assert_eq!(row("fake/a")["reason"], "rate_limited");
    assert_eq!(row("fake/b")["state"], "ok");
    assert!(row("fake/b")["usage"]["minute_requests"].as_u64().unwrap() >= 2);

    // A second process, during `a`'s cooldown, never asks `a`.
    plan(&p, agent, "second");
    let out = swarm(&p, &["run", "second.md"]);
    let report = p.report(&out.run_id());
    assert_eq!(state(&report, "second"), "succeeded", "{}", out.dump());
    assert_eq!(attempt(&report, "second")["fallback_reason"], Value::Null, "nothing to fall back from");
    assert_eq!(requests_to(&fake, "a").len(), to_a.len(), "the cooling model was not asked again");
}

#[test]
fn opencode_a_rate_limit_is_absorbed_and_the_cooldown_shared() {
    rate_limit_absorbed("opencode");
}

#[test]
fn kilo_a_rate_limit_is_absorbed_and_the_cooldown_shared() {
    rate_limit_absorbed("kilo");
}

#[test]
fn declared_rpm_is_kept_without_a_single_429() {
    // The provider enforces 2 a minute on `a`; swarm is told the same and never passes it.
    let fake = Fake::start(&format!("[models.a]\nlimits = {{ rpm = 2 }}\n{WORKER}[models.b]\n{WORKER}"));
    let p = project(&fake, "[[\"fake/a\"], [\"fake/b\"]]", "[models.limits.\"fake/a\"]\nrpm = 2\n");
    plan(&p, "opencode", "paced");
    let out = swarm(&p, &["run", "paced.md"]);
    let report = p.report(&out.run_id());
    assert_eq!(state(&report, "paced"), "succeeded", "{}", out.dump());
    let log = fake.server.as_ref().unwrap().log().records();
    let limited = log.iter().filter(|r| matches!(r.response, ResponseKind::RateLimited { .. })).count();
    assert_eq!(limited, 0, "no request passed the declared limit");
    assert_eq!(requests_to(&fake, "a").len(), 2, "`a` served exactly its 2 a minute");
    let a = attempt(&report, "paced");
    let models: Vec<&str> =
        a["requests"].as_array().unwrap().iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(models, ["fake/a", "fake/b"], "{a:#}");
}

#[test]
fn every_model_cooling_past_max_wait_is_models_exhausted() {
    let fake = Fake::start(&format!(
        "[models.a]\nrate_limit = {{ first = 1000, retry_after = 120 }}\n{WORKER}[models.b]\nrate_limit = {{ first = 1000, retry_after = 120 }}\n{WORKER}"
    ));
    let p = project(&fake, "[[\"fake/a\", \"fake/b\"]]", "max_wait = \"1s\"\n");
    plan(&p, "opencode", "stuck");
    let out = swarm(&p, &["run", "stuck.md"]);
    out.expect_code(1);
    let report = p.report(&out.run_id());
    assert_task(&report, "stuck", "failed", Some("models_exhausted"));
    assert!(detail(&report, "stuck").contains("frees up at"), "{}", detail(&report, "stuck"));
    assert_eq!(
        requests_to(&fake, "a").len() + requests_to(&fake, "b").len(),
        2,
        "each asked once, then left to cool"
    );
}

#[test]
fn a_paid_remainder_without_allow_paid_is_models_exhausted_and_never_asked() {
    let fake = Fake::start(&format!(
        "[models.free]\nrate_limit = {{ first = 1000, retry_after = 120 }}\n{WORKER}[models.paid]\n{WORKER}"
    ));
    let p = project(
        &fake,
        "[[\"fake/free\"], [\"fake/paid\"]]",
        "[models.limits.\"fake/paid\"]\npaid = true\nprice_in = 3.0\nprice_out = 15.0\n",
    );
    plan(&p, "opencode", "frugal");
    let out = swarm(&p, &["run", "frugal.md"]);
    out.expect_code(1);
    let report = p.report(&out.run_id());
    assert_task(&report, "frugal", "failed", Some("models_exhausted"));
    assert!(detail(&report, "frugal").contains("allow_paid"), "{}", detail(&report, "frugal"));
    assert!(requests_to(&fake, "paid").is_empty(), "the paid model was never asked");
}

/// Issue 15 item 8: a task pinned to a paid model does not start unless the run allows paid
/// models (it used to run, its agent handed the raw key); a pinned model of the user's own
/// loopback server that says nothing of pay still runs (docs/contract.md §7's `[providers.local]`).
#[test]
fn a_task_pinned_to_a_paid_model_waits_for_allow_paid() {
    let fake = Fake::start(&format!("[models.pricey]\n{WORKER}[models.homemade]\n{WORKER}"));
    let p = Project::new();
    let url = fake.base_url();
    p.write(
        "swarm.toml",
        &format!(
            "{FAST_CONFIG}\n[providers.cloud]\nkind = \"openai-compatible\"\nbase_url = \"{url}\"\n\
             api_key_env = \"SWARM_TEST_PROVIDER_KEY\"\npaid = true\n\n\
             [providers.local]\nkind = \"openai-compatible\"\nbase_url = \"{url}\"\n"
        ),
    );
    p.write(
        "pinned.md",
        "---\ndefaults:\n  timeout: 90s\n---\n\n## pricey: On a paid model\n- agent: opencode\n- model: cloud/pricey\n\n\
         Write the file, report, say DONE.\n\n## homemade: On the user's own server\n- agent: opencode\n\
         - model: local/homemade\n\nWrite the file, report, say DONE.\n",
    );
    let out = swarm(&p, &["run", "pinned.md"]);
    out.expect_code(1);
    let report = p.report(&out.run_id());
    assert_task(&report, "pricey", "failed", Some("models_exhausted"));
    assert!(detail(&report, "pricey").contains("allow-paid"), "{}", detail(&report, "pricey"));
    assert!(requests_to(&fake, "pricey").is_empty(), "the paid model was never asked");
    assert_task(&report, "homemade", "succeeded", None);
    assert!(!requests_to(&fake, "homemade").is_empty());

    // Allowed, the same paid task runs.
    let out = swarm(&p, &["run", "pinned.md", "--allow-paid"]);
    out.expect_code(0);
    assert!(!requests_to(&fake, "pricey").is_empty(), "asked once paid models are allowed");
}

#[test]
fn the_provider_key_never_reaches_an_agent_or_a_file() {
    let fake = Fake::start(&format!("[models.a]\n{WORKER}"));
    let p = project(&fake, "[[\"fake/a\"]]", "");
    // A custom agent that records its environment and then calls the gateway the way it was told.
    p.write(
        "agent.sh",
        "env > agent.env\ncurl -s -H \"Authorization: Bearer $SWARM_GATEWAY_TOKEN\" -H 'content-type: application/json' \
         -d '{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}' \"$SWARM_GATEWAY_URL/chat/completions\" > answer.json\n\
         swarm report --status done --summary called\n",
    );
    p.write(
        "swarm.toml",
        &format!("{}\n[agents.envdump]\ncommand = \"sh agent.sh\"\n", p.read("swarm.toml")),
    );
    p.write(
        "probe.md",
        "---\ndefaults:\n  timeout: 90s\n---\n\n## probe: Calls the gateway\n- agent: envdump\n\nCall it.\n\n\
         ## later: Tries the ended attempt's token\n- agent: exec\n- depends: probe\n- command: curl -s -o /dev/null -w '%{http_code}' \
         -H \"Authorization: Bearer $(sed -n 's/^SWARM_GATEWAY_TOKEN=//p' agent.env)\" \
         \"$(sed -n 's/^SWARM_GATEWAY_URL=//p' agent.env)/models\" > revoked.code\n",
    );
    let out = swarm(&p, &["run", "probe.md"]);
    let report = p.report(&out.run_id());
    assert_eq!(state(&report, "probe"), "succeeded", "{}\n{}", detail(&report, "probe"), out.dump());
    let env = p.read("agent.env");
    assert!(!env.contains(KEY) && !env.contains("SWARM_TEST_PROVIDER_KEY"), "the key reached the agent");
    assert!(env.contains("SWARM_GATEWAY_TOKEN=swarm-attempt-"), "{env}");
    assert!(p.read("answer.json").contains("chat.completion"), "{}", p.read("answer.json"));
    assert_eq!(attempt(&report, "probe")["model"], "fake/a");
    // The token is worthless once its attempt ended.
    assert_eq!(p.read("revoked.code"), "401", "the ended attempt's token was refused");
    for f in walk(&p.file(".swarm")).into_iter().chain(walk(&p.file("plans"))) {
        if let Ok(text) = std::fs::read(&f) {
            assert!(!String::from_utf8_lossy(&text).contains(KEY), "{} holds the provider key", f.display());
        }
    }
}

#[test]
fn a_rejected_key_disables_the_model_loudly_and_the_request_goes_on() {
    let fake = Fake::start(&format!(
        "[models.bad]\nerror = {{ status = 401, message = \"Incorrect API key provided\" }}\n[models.good]\n{WORKER}"
    ));
    let p = project(&fake, "[[\"fake/bad\"], [\"fake/good\"]]", "");
    p.write(
        "agent.sh",
        "curl -s -H \"Authorization: Bearer $SWARM_GATEWAY_TOKEN\" -H 'content-type: application/json' \
         -d '{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}' \"$SWARM_GATEWAY_URL/chat/completions\" > answer.json\n\
         swarm report --status done --summary called\n",
    );
    p.write("swarm.toml", &format!("{}\n[agents.caller]\ncommand = \"sh agent.sh\"\n", p.read("swarm.toml")));
    plan(&p, "caller", "call");
    let out = swarm(&p, &["run", "call.md"]);
    let report = p.report(&out.run_id());
    assert_eq!(state(&report, "call"), "succeeded", "{}", out.dump());
    assert!(p.read("answer.json").contains("chat.completion"), "the agent got an answer");
    let a = attempt(&report, "call");
    assert_eq!(
        (a["model"].as_str(), a["fallback_reason"].as_str()),
        (Some("fake/good"), Some("auth")),
        "{a:#}"
    );
    assert!(out.stdout.contains("model fake/bad disabled for the run"), "said loudly\n{}", out.dump());
    let rows: Value = serde_json::from_str(&swarm(&p, &["models", "--json"]).stdout).unwrap();
    let bad = rows.as_array().unwrap().iter().find(|r| r["model"] == "fake/bad").unwrap();
    assert_eq!(bad["state"], "disabled", "{rows:#}");
}

#[test]
fn an_agent_with_its_own_account_falls_back_per_attempt_without_spending_a_retry() {
    // No gateway for this agent: it is given one model per attempt; a rate limit on it moves
    // the next attempt to the next model, and the task's retries (none here) are not touched.
    let fake = Fake::start(&format!("[models.a]\n{WORKER}[models.b]\n{WORKER}"));
    let p = project(&fake, "[[\"fake/a\"], [\"fake/b\"]]", "");
    p.write(
        "own.sh",
        "echo \"$1\" >> models.seen\nif [ \"$1\" = fake/a ]; then echo 'Error: 429 Too Many Requests: rate limit reached' >&2; exit 1; fi\n\
         swarm report --status done --summary \"served by $1\"\n",
    );
    p.write(
        "swarm.toml",
        &format!(
            "{}\n[agents.own]\ncommand = \"sh own.sh {{model}}\"\ngateway = false\n",
            p.read("swarm.toml")
        ),
    );
    plan(&p, "own", "fallback");
    let out = swarm(&p, &["run", "fallback.md"]);
    let report = p.report(&out.run_id());
    assert_eq!(state(&report, "fallback"), "succeeded", "{}\n{}", detail(&report, "fallback"), out.dump());
    assert_eq!(p.read("models.seen"), "fake/a\nfake/b\n");
    let tries = attempts(&report, "fallback");
    assert_eq!(tries.len(), 2, "{report:#}");
    assert_eq!(
        (tries[0]["model"].as_str(), tries[0]["failure_class"].as_str()),
        (Some("fake/a"), Some("rate_limited"))
    );
    assert_eq!((tries[1]["model"].as_str(), tries[1]["layer"].as_u64()), (Some("fake/b"), Some(2)));
    assert_eq!(tries[1]["fallback_reason"], "rate_limited");
    // The store knows `a` is cooling, for every process.
    let rows: Value = serde_json::from_str(&swarm(&p, &["models", "--json"]).stdout).unwrap();
    let a = rows.as_array().unwrap().iter().find(|r| r["model"] == "fake/a").unwrap();
    assert_eq!(a["state"], "cooling", "{rows:#}");
}

#[test]
fn an_agent_with_its_own_account_never_starts_on_a_model_cooling_or_spent_for_the_day() {
    // opencode, through the gateway, meets `a`'s rate limit (cooling it for everyone) and uses
    // `b`'s one request of the day; the dependent task's agent talks to providers itself and is
    // given one model for its attempt: not `a` (cooling) nor `b` (spent today), but `c`.
    let fake = Fake::start(&format!(
        "[models.a]\nrate_limit = {{ first = 1000, retry_after = 300 }}\n{WORKER}[models.b]\n{WORKER}[models.c]\n{WORKER}"
    ));
    let p =
        project(&fake, "[[\"fake/a\"], [\"fake/b\"], [\"fake/c\"]]", "[models.limits.\"fake/b\"]\nrpd = 1\n");
    p.write("own.sh", "echo \"$1\" >> models.seen\nswarm report --status done --summary \"served by $1\"\n");
    p.write(
        "swarm.toml",
        &format!(
            "{}\n[agents.own]\ncommand = \"sh own.sh {{model}}\"\ngateway = false\n",
            p.read("swarm.toml")
        ),
    );
    p.write(
        "mixed.md",
        "---\ndefaults:\n  timeout: 90s\n---\n\n## warm: Through the gateway\n- agent: opencode\n\nWrite the file, report, say DONE.\n\n\
         ## own: With its own account\n- agent: own\n- depends: warm\n\nReport.\n",
    );
    let out = swarm(&p, &["run", "mixed.md"]);
    let report = p.report(&out.run_id());
    assert_eq!(state(&report, "warm"), "succeeded", "{}\n{}", detail(&report, "warm"), out.dump());
    assert_eq!(state(&report, "own"), "succeeded", "{}\n{}", detail(&report, "own"), out.dump());
    assert_eq!(requests_to(&fake, "b").len(), 1, "b's one request of the day went to opencode");
    assert_eq!(
        p.read("models.seen"),
        "fake/c\n",
        "the own-account agent started on the one model free to serve"
    );
    let tries = attempts(&report, "own");
    assert_eq!(tries.len(), 1, "{report:#}");
    assert_eq!((tries[0]["model"].as_str(), tries[0]["layer"].as_u64()), (Some("fake/c"), Some(3)));
    assert_eq!(tries[0]["fallback_reason"], Value::Null, "nothing failed: it was routed, not fallen back");
}

#[test]
fn three_models_of_a_group_share_its_one_rpm_budget_without_a_429() {
    // Like OpenRouter's `:free` models: one account-wide bucket (here 4 a minute) for a, b and c,
    // enforced by the provider. Three opencode tasks need 9 requests: 4 fit the group's minute,
    // the rest go to d, outside it. Per-model limits alone would send 4 to each of a, b and c.
    let group = "[groups.free]\nmodels = [\"a\", \"b\", \"c\"]\nlimits = { rpm = 4 }\n";
    let fake = Fake::start(&format!(
        "{group}[models.a]\n{WORKER}[models.b]\n{WORKER}[models.c]\n{WORKER}[models.d]\n{WORKER}"
    ));
    let p = project(
        &fake,
        "[[\"fake/a\", \"fake/b\", \"fake/c\"], [\"fake/d\"]]",
        "[models.groups.free]\nmodels = [\"fake/a\", \"fake/b\", \"fake/c\"]\nrpm = 4\n",
    );
    let task = |id: &str| {
        format!("## {id}: Uses whatever model the hierarchy gives\n- agent: opencode\n\nWrite the file, report, say DONE.\n\n")
    };
    p.write(
        "team.md",
        &format!("---\ndefaults:\n  timeout: 90s\n---\n\n{}{}{}", task("one"), task("two"), task("three")),
    );
    let out = swarm(&p, &["run", "team.md"]);
    let report = p.report(&out.run_id());
    for id in ["one", "two", "three"] {
        assert_eq!(state(&report, id), "succeeded", "{}\n{}", detail(&report, id), out.dump());
        assert_eq!(attempts(&report, id).len(), 1, "first attempt");
    }
    let log = fake.server.as_ref().unwrap().log().records();
    let limited = log.iter().filter(|r| matches!(r.response, ResponseKind::RateLimited { .. })).count();
    assert_eq!(limited, 0, "no request passed the group's budget");
    let in_group: usize = ["a", "b", "c"].iter().map(|m| requests_to(&fake, m).len()).sum();
    assert_eq!(in_group, 4, "the group served exactly its 4 a minute");
    assert!(requests_to(&fake, "d").len() >= 5, "the rest went to d");
    let rows: Value = serde_json::from_str(&swarm(&p, &["models", "--json"]).stdout).unwrap();
    let a = rows.as_array().unwrap().iter().find(|r| r["model"] == "fake/a").unwrap();
    assert_eq!(a["groups"], serde_json::json!(["free"]), "{rows:#}");
}

#[test]
fn a_model_spent_for_the_day_is_not_asked_again_before_its_providers_midnight() {
    // Gemini's answer to a spent free-tier day (its quotaId and `limit: N`; "retry in 1s" all the
    // same, as Google says it): cool until midnight Pacific, keep the limit, ask b meanwhile.
    let spent = "You exceeded your current quota. Quota exceeded for metric: \
                 generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 20, model: \
                 gemini-2.5-flash (quotaId GenerateRequestsPerDayPerProjectPerModel-FreeTier)";
    let fake = Fake::start(&format!(
        "[models.a]\nrate_limit = {{ first = 1000, kind = \"quota\", message = \"{spent}\" }}\n{WORKER}[models.b]\n{WORKER}"
    ));
    let p = project(
        &fake,
        "[[\"fake/a\"], [\"fake/b\"]]",
        "[models.limits.\"fake/a\"]\nday_reset = \"America/Los_Angeles\"\n",
    );
    plan(&p, "opencode", "first");
    let out = swarm(&p, &["run", "first.md"]);
    let report = p.report(&out.run_id());
    assert_eq!(state(&report, "first"), "succeeded", "{}\n{}", detail(&report, "first"), out.dump());
    assert_eq!(attempt(&report, "first")["fallback_reason"], "quota_exhausted");
    assert_eq!(requests_to(&fake, "a").len(), 1);

    let rows: Value = serde_json::from_str(&swarm(&p, &["models", "--json"]).stdout).unwrap();
    let a = rows.as_array().unwrap().iter().find(|r| r["model"] == "fake/a").unwrap().clone();
    assert_eq!(
        (a["state"].as_str(), a["reason"].as_str()),
        (Some("cooling"), Some("quota_exhausted")),
        "{a:#}"
    );
    assert_eq!(a["until"], a["resets_at"], "cooling until the provider's day ends: {a:#}");
    assert_eq!(a["day_reset"], "America/Los_Angeles");
    let until = chrono::DateTime::parse_from_rfc3339(a["until"].as_str().unwrap()).unwrap();
    let pacific = until.with_timezone(&chrono_tz::America::Los_Angeles);
    assert_eq!(pacific.format("%H:%M:%S").to_string(), "00:00:00", "midnight Pacific, not UTC: {a:#}");
    assert_eq!(a["learned"]["rpd"], 20, "{a:#}");
    assert!(a["learned"]["source"].as_str().unwrap().contains("limit: 20"), "{a:#}");
    let human = swarm(&p, &["models"]).stdout;
    assert!(human.contains("rpd 20 (learned)") && human.contains("America/Los_Angeles"), "{human}");

    // Another process, later the same day, does not spend a request on it.
    plan(&p, "opencode", "second");
    let out = swarm(&p, &["run", "second.md"]);
    assert_eq!(state(&p.report(&out.run_id()), "second"), "succeeded", "{}", out.dump());
    assert_eq!(requests_to(&fake, "a").len(), 1, "a was not asked again before its reset");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() && !path.is_symlink() {
                out.extend(walk(&path));
            } else if path.is_file() {
                out.push(path);
            }
        }
    }
    out
}

/// `swarm resume` keeps the run's `--allow-paid` (issue 15): a run allowed to pay, killed before
/// its paid-only task started, is resumed and the paid model serves it.
#[test]
fn resume_keeps_allow_paid() {
    let fake = Fake::start(&format!("[models.paid]\n{WORKER}"));
    let p = project(
        &fake,
        "[[\"fake/paid\"]]",
        "[models.limits.\"fake/paid\"]\npaid = true\nprice_in = 3.0\nprice_out = 15.0\n",
    );
    p.write(
        "agent.sh",
        "curl -s -H \"Authorization: Bearer $SWARM_GATEWAY_TOKEN\" -H 'content-type: application/json' \
         -d '{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}' \"$SWARM_GATEWAY_URL/chat/completions\" > answer.json\n\
         swarm report --status done --summary called\n",
    );
    p.write("swarm.toml", &format!("{}\n[agents.caller]\ncommand = \"sh agent.sh\"\n", p.read("swarm.toml")));
    p.write(
        "paid.md",
        "---\ndefaults:\n  timeout: 90s\n---\n\n## gate: Waits for the go\n- agent: exec\n- command: test -f go || sleep 60\n\n\
         ## spend: Needs the paid model\n- agent: caller\n- depends: gate\n\nCall it.\n",
    );
    let mut cmd = p.command(&["run", "paid.md", "--allow-paid"]);
    cmd.env("SWARM_TEST_PROVIDER_KEY", KEY);
    let mut run = p.spawn_cmd(cmd);
    let run_id = run.run_id();
    wait_status(&p, &run_id, "the gate runs", |st| st["tasks"][0]["state"] == "running");
    run.kill9();
    p.write("go", "");
    let resumed = swarm(&p, &["resume", &run_id]);
    let report = p.report(&run_id);
    assert_task(&report, "spend", "succeeded", None);
    resumed.expect_code(0);
    let answer = std::fs::read_to_string(p.file("answer.json")).unwrap_or_default();
    assert!(!requests_to(&fake, "paid").is_empty(), "the paid model served the resumed run: {answer}");
}
