//! The gateway's steps one by one, against swarm's fake model and a real SQLite store: what
//! routing answers, what a reservation takes, what a provider's failure does to its model and
//! to the request.

use super::face::Ask;
use super::proxy::{absorb, reserve, route, Flight, Next, Slot};
use super::upstream;
use super::{Gateway, GatewayEvent, Grant, Ledger, Shared};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;
use swarm_core::config::Config;
use swarm_core::failure::FailureClass;
use swarm_core::router::{Cooldown, CooldownKind, Policy};
use swarm_store::{SqliteStore, StandingQuery, Store};
use swarm_wire::Format;
use tokio::sync::mpsc;

const SCENARIO: &str = r#"
[models.ok]
steps = [ { say = "DONE" } ]
[models.busy]
rate_limit = { first = 1000, retry_after = 7 }
[models.badkey]
error = { status = 401, message = "Incorrect API key provided" }
[models.badreq]
error = { status = 400, message = "messages: a tool result must follow a tool call" }
[models.gday]
rate_limit = { first = 1000, message = "You exceeded your current quota. Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 3, model: gemini-2.5-flash (quotaId GenerateRequestsPerDayPerProjectPerModel-FreeTier)" }
[models.hang]
hang = true
[models.slow]
chunk_delay_ms = 3000
steps = [ { say = "a long answer that streams slowly" } ]
[models.leaky]
error = { status = 400, message = "messages[1]: unexpected text near sk-proj-abcdefghijklmnop0123456789" }
[models.pricey]
usage = { prompt_tokens = 10, completion_tokens = 1000 }
delay_ms = 300
steps = [ { say = "DONE" } ]
[models.gem3]
thought_signatures = true
steps = [ { call = { name = "write_file", arguments = { path = "a.txt", content = "a" } } }, { say = "DONE" } ]
[models.a1]
steps = [ { say = "DONE" } ]
[models.a2]
steps = [ { say = "DONE" } ]
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    _fake: swarm_fakellm::FakeLlm,
    gateway: Gateway,
    store: Arc<dyn Store>,
    events: mpsc::UnboundedReceiver<GatewayEvent>,
    tx: mpsc::UnboundedSender<GatewayEvent>,
    /// The run's one ledger, shared by its requests.
    ledger: Arc<Ledger>,
}

/// A gateway over the fake provider, whose hierarchy is `layers` (model names of the scenario).
async fn fixture(layers: &[&[&str]], max_wait: &str) -> Fixture {
    fixture_with(layers, max_wait, "").await
}

/// The same, with `extra` TOML after the `[models]` table (model limits).
async fn fixture_with(layers: &[&[&str]], max_wait: &str, extra: &str) -> Fixture {
    let layers: Vec<String> = layers
        .iter()
        .map(|l| format!("[{}]", l.iter().map(|m| format!("\"fake/{m}\"")).collect::<Vec<_>>().join(", ")))
        .collect();
    let extra = format!("max_wait = \"{max_wait}\"\n{extra}");
    fixture_raw(&format!("[{}]", layers.join(", ")), "", &extra).await
}

/// The same with `layers` as written (other providers' models too), `provider` lines in the
/// fake's `[providers.fake]` and `extra` TOML after the layers.
async fn fixture_raw(layers: &str, provider: &str, extra: &str) -> Fixture {
    let scenario = swarm_fakellm::Scenario::from_toml(SCENARIO).unwrap();
    let fake = swarm_fakellm::serve(scenario, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let toml = format!(
        "[providers.fake]\nkind = \"openai-compatible\"\nbase_url = \"{}\"\npaid = false\n{provider}\n\
         [models]\nlayers = {layers}\n{extra}",
        fake.base_url(),
    );
    let config = Config::parse(&toml, std::path::Path::new("test.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let gateway = Gateway::start(store.clone(), &config).unwrap();
    let (tx, events) = mpsc::unbounded_channel();
    let ledger = Ledger::new(&config, false);
    Fixture { _dir: dir, _fake: fake, gateway, store, events, tx, ledger }
}

impl Fixture {
    fn shared(&self) -> &Arc<Shared> {
        &self.gateway.shared
    }

    fn grant(&self) -> Grant {
        Grant {
            pinned: None,
            run_id: "r".into(),
            namespace: "ns".into(),
            task: 3,
            attempt: 1,
            start_layer: 1,
            events: self.tx.clone(),
            ledger: self.ledger.clone(),
        }
    }

    fn flight(&self, body: Value) -> Flight {
        let grant = self.grant();
        assert!(body.is_object());
        let size = serde_json::to_vec(&body).unwrap().len();
        Flight::new(self.shared(), grant, "token".into(), Ask::new(Format::Chat, body), size)
    }

    /// What a request to model `i` is held to now.
    fn limits(&self, i: usize) -> swarm_store::ModelLimits {
        self.shared().hierarchy.limits(i, self.store.now_ms().unwrap(), None)
    }

    fn index(&self, model: &str) -> usize {
        self.gateway.catalog().index(&format!("fake/{model}")).unwrap()
    }

    fn cooldown(&self, model: &str) -> Option<Cooldown> {
        let id = format!("fake/{model}");
        self.store.model_standings("ns", &[StandingQuery::plain(id)]).unwrap().remove(0).cooldown
    }
}

fn hello() -> Value {
    json!({ "model": "auto", "messages": [{ "role": "user", "content": "hello" }] })
}

async fn forward_and_absorb(f: &Fixture, flight: &mut Flight, model: usize) -> Next {
    let outbound = upstream::outbound(&flight.h, model, &flight.ask).unwrap();
    let answer = upstream::forward(f.shared(), &flight.h, model, &outbound).await;
    let hold = flight.grant.ledger.hold(0.0, 0).expect("no budget here");
    absorb(f.shared(), flight, model, answer, &outbound, (Instant::now(), hold)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_takes_the_first_model_that_is_not_cooling() {
    let f = fixture(&[&["busy", "ok"]], "1m").await;
    let flight = f.flight(hello());
    assert_eq!(route(f.shared(), &flight).await.ok().map(|(m, _)| m), Some(f.index("busy")));
    let now = f.store.now_ms().unwrap();
    f.store.model_cool("ns", "fake/busy", &Cooldown::cooling(now + 60_000, "rate_limited")).unwrap();
    // The picture routing uses is a moment old at most: a fresh flight after it ages.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(route(f.shared(), &f.flight(hello())).await.ok().map(|(m, _)| m), Some(f.index("ok")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_cools_the_model_for_everyone_and_the_request_moves_on() {
    let mut f = fixture(&[&["busy", "ok"]], "1m").await;
    let mut flight = f.flight(hello());
    let busy = f.index("busy");
    assert!(matches!(reserve(f.shared(), &flight, busy, f.limits(busy)).await, Slot::Taken));
    assert!(matches!(forward_and_absorb(&f, &mut flight, busy).await, Next::Retry));
    let cooling = f.cooldown("busy").expect("cooled on the store");
    assert_eq!((cooling.kind, cooling.reason.as_str()), (CooldownKind::Cooling, "rate_limited"));
    let now = f.store.now_ms().unwrap();
    assert!(cooling.until_ms >= now + 6_000, "the provider's retry-after of 7 s is honoured: {cooling:?}");
    match f.events.recv().await.unwrap() {
        GatewayEvent::Absorbed { model, status, class, policy: Policy::Cool(c), .. } => {
            assert_eq!((model.as_str(), status, class), ("fake/busy", 429, FailureClass::RateLimited));
            assert_eq!(c, cooling);
        }
        other => panic!("{other:?}"),
    }
    // The same request, routed again, goes to the next model, which answers.
    let next = route(f.shared(), &flight).await.ok().map(|(m, _)| m).unwrap();
    assert_eq!(next, f.index("ok"));
    assert!(matches!(reserve(f.shared(), &flight, next, f.limits(next)).await, Slot::Taken));
    let Next::Answer(answer) = forward_and_absorb(&f, &mut flight, next).await else { panic!("an answer") };
    assert_eq!(answer.status(), 200);
    let body = axum::body::to_bytes(answer.into_body(), usize::MAX).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("DONE"));
    match f.events.recv().await.unwrap() {
        GatewayEvent::Served(s) => {
            assert_eq!((s.model.as_str(), s.fallback), ("fake/ok", Some(FailureClass::RateLimited)))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_disables_the_model_for_the_run_and_the_store() {
    let f = fixture(&[&["badkey", "ok"]], "1m").await;
    let mut flight = f.flight(hello());
    let bad = f.index("badkey");
    assert!(matches!(forward_and_absorb(&f, &mut flight, bad).await, Next::Retry));
    let off = f.cooldown("badkey").expect("left alone by the others");
    assert_eq!(off.kind, CooldownKind::Disabled);
    assert!(off.reason.starts_with("auth"), "{off:?}");
    assert!(flight.grant.ledger.disabled(&flight.h.catalog).contains_key(&bad), "and by this run, for good");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_own_mistake_reaches_it_as_the_provider_said_it() {
    let f = fixture(&[&["badreq", "ok"]], "1m").await;
    let mut flight = f.flight(hello());
    let Next::Answer(answer) = forward_and_absorb(&f, &mut flight, f.index("badreq")).await else {
        panic!("passed through")
    };
    assert_eq!(answer.status(), 400);
    let body = axum::body::to_bytes(answer.into_body(), usize::MAX).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("a tool result must follow a tool call"));
    assert_eq!(f.cooldown("badreq"), None, "not the model's fault");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_model_cooling_past_max_wait_is_models_exhausted_at_once() {
    let mut f = fixture(&[&["ok"]], "2s").await;
    let now = f.store.now_ms().unwrap();
    f.store.model_cool("ns", "fake/ok", &Cooldown::cooling(now + 60_000, "rate_limited")).unwrap();
    let started = Instant::now();
    let answer = route(f.shared(), &f.flight(hello())).await.expect_err("no model");
    assert!(started.elapsed().as_secs() < 2, "no waiting for what frees up past max_wait");
    assert_eq!(answer.status(), 400);
    let body = axum::body::to_bytes(answer.into_body(), usize::MAX).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("models_exhausted"));
    assert!(matches!(f.events.recv().await.unwrap(), GatewayEvent::Exhausted { task: 3, attempt: 1, .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_refused_at_the_limit_sends_the_request_back_to_routing() {
    let f = fixture_with(&[&["ok"]], "1m", "[models.limits.\"fake/ok\"]\nrpm = 1\n").await;
    let flight = f.flight(hello());
    let ok = f.index("ok");
    assert_eq!(f.gateway.catalog().models[ok].rpm, Some(1));
    // Another process used the model's one request of the minute.
    let limits = swarm_store::ModelLimits { rpm: Some(1), ..Default::default() };
    let taken = f.store.model_reserve("ns", "fake/ok", 1, &limits, &[]).unwrap();
    assert!(matches!(taken, swarm_store::Reservation::Granted { .. }));
    assert!(matches!(reserve(f.shared(), &flight, ok, f.limits(ok)).await, Slot::Gone));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_daily_quota_teaches_the_limit_and_cools_until_the_providers_midnight() {
    let extra = "[models.limits.\"fake/gday\"]\nday_reset = \"America/Los_Angeles\"\n";
    let f = fixture_with(&[&["gday", "ok"]], "1m", extra).await;
    let mut flight = f.flight(hello());
    let gday = f.index("gday");
    assert!(matches!(forward_and_absorb(&f, &mut flight, gday).await, Next::Retry));
    let now = f.store.now_ms().unwrap();
    let la = swarm_core::router::DayReset::parse("America/Los_Angeles").unwrap();
    let cooled = f.cooldown("gday").expect("cooled");
    assert_eq!((cooled.reason.as_str(), cooled.until_ms), ("quota_exhausted", la.next_reset(now)));
    let utc_midnight = (now / 86_400_000 + 1) * 86_400_000;
    assert_ne!(cooled.until_ms, utc_midnight, "not UTC's midnight");
    let q = StandingQuery::plain("fake/gday");
    let learned = f.store.model_standings("ns", &[q]).unwrap().remove(0).learned.expect("learned");
    assert_eq!((learned.rpm, learned.rpd), (None, Some(3)));
    assert!(learned.source.contains("limit: 3") && learned.source.contains("per day"), "{}", learned.source);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_of_a_group_share_its_budget() {
    let extra = "[models.groups.free]\nmodels = [\"fake/a*\"]\nrpm = 1\n";
    let f = fixture_with(&[&["a1", "a2", "ok"]], "1m", extra).await;
    let first = f.flight(hello());
    let (model, limits) = route(f.shared(), &first).await.ok().unwrap();
    assert_eq!(model, f.index("a1"));
    assert!(matches!(reserve(f.shared(), &first, model, limits).await, Slot::Taken));
    // The group's one request of the minute is used: a2 is as full as a1, whatever its own room.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let second = f.flight(hello());
    assert_eq!(route(f.shared(), &second).await.ok().map(|(m, _)| m), Some(f.index("ok")));
    // And a reservation racing past routing is refused by the store all the same.
    let a2 = f.index("a2");
    assert!(matches!(reserve(f.shared(), &second, a2, f.limits(a2)).await, Slot::Gone));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_minute_frees_exactly_when_its_oldest_request_leaves() {
    let f = fixture_with(&[&["ok"]], "1m", "[models.limits.\"fake/ok\"]\nrpm = 1\n").await;
    let limits = swarm_store::ModelLimits { rpm: Some(1), ..Default::default() };
    let swarm_store::Reservation::Granted { at_ms } =
        f.store.model_reserve("ns", "fake/ok", 1, &limits, &[]).unwrap()
    else {
        panic!("granted")
    };
    let h = &f.shared().hierarchy;
    let (_, standings) = h.standings(&h.read("ns").unwrap(), &Default::default());
    assert_eq!(
        standings[0].minute_frees_at_ms,
        Some(at_ms + swarm_store::MINUTE_MS),
        "not a minute from whenever we looked"
    );
}

/// Gemini 3 on its OpenAI-compatible endpoint: each tool call carries a thought signature that
/// must come back unchanged, or the provider answers 400. Whatever the gateway does not know
/// (that signature, a provider's extension fields) passes through it both ways untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_pass_through_the_gateway_both_ways_untouched() {
    let f = fixture(&[&["gem3"]], "1m").await;
    let token = f.gateway.grant(f.grant());
    let url = format!("{}/chat/completions", f.gateway.base_url());
    let post = |body: Value| {
        let (url, token) = (url.clone(), token.clone());
        async move {
            let answer =
                reqwest::Client::new().post(url).bearer_auth(token).json(&body).send().await.unwrap();
            (answer.status().as_u16(), answer.json::<Value>().await.unwrap())
        }
    };
    let tools = json!([{ "type": "function", "function": { "name": "write_file", "parameters": { "type": "object" } } }]);
    let user =
        json!({ "role": "user", "content": "write a.txt", "x_user_tag": { "keep": [1, "two", null] } });
    let first =
        json!({ "model": "auto", "messages": [user], "tools": tools, "x_provider": { "cache": "on" } });
    let (status, answer) = post(first.clone()).await;
    assert_eq!(status, 200, "{answer}");
    let call = answer["choices"][0]["message"]["tool_calls"][0].clone();
    let signature = call.pointer("/extra_content/google/thought_signature").and_then(Value::as_str);
    assert!(
        signature.is_some_and(|s| s.starts_with("fake-signature-")),
        "the signature reached the agent: {call}"
    );

    let result = json!({ "role": "tool", "tool_call_id": call["id"], "content": "written" });
    let turn = |call: Value| {
        let assistant = json!({ "role": "assistant", "content": null, "tool_calls": [call] });
        json!({ "model": "auto", "messages": [user, assistant, result], "tools": tools, "x_provider": { "cache": "on" } })
    };
    let second = turn(call.clone());
    let (status, answer) = post(second.clone()).await;
    assert_eq!(status, 200, "the signature went back to the provider: {answer}");
    assert_eq!(answer["choices"][0]["message"]["content"], "DONE");

    // The provider saw each body exactly as the agent sent it, but for the model's id.
    let bodies: Vec<Value> = f._fake.log().records().into_iter().map(|r| r.body).collect();
    let upstream = |mut sent: Value| {
        sent["model"] = json!("gem3");
        sent
    };
    assert_eq!(bodies, [upstream(first), upstream(second)]);

    // The fake is as strict as the provider: a signature lost on the way is Google's 400, passed
    // to the agent as the provider said it (the agent's own mistake, not the model's).
    let mut unsigned = call;
    unsigned.as_object_mut().unwrap().remove("extra_content");
    let (status, answer) = post(turn(unsigned)).await;
    assert_eq!(status, 400);
    assert!(answer.to_string().contains("missing a thought_signature"), "{answer}");
    assert_eq!(f.cooldown("gem3"), None, "not the model's fault");
}

/// A request through the gateway's HTTP door with a fresh token: status and body text.
async fn post(f: &Fixture, body: Value) -> (u16, String) {
    let token = f.gateway.grant(f.grant());
    let url = format!("{}/chat/completions", f.gateway.base_url());
    match reqwest::Client::new().post(url).bearer_auth(token).json(&body).send().await {
        Ok(answer) => {
            let status = answer.status().as_u16();
            (status, answer.text().await.unwrap_or_else(|e| format!("<broken: {e}>")))
        }
        Err(e) => (0, format!("<failed: {e}>")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_never_answers_is_left_for_the_next_model_in_time() {
    let f = fixture_raw("[[\"fake/hang\"], [\"fake/ok\"]]", "first_byte_timeout = \"1s\"", "").await;
    let started = Instant::now();
    let (status, body) = post(&f, hello()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("DONE"), "the next model answered: {body}");
    assert!(started.elapsed().as_secs() < 10, "within the timeout, not the task's: {:?}", started.elapsed());
    let cooled = f.cooldown("hang").expect("the silent model is cooled for everyone");
    assert!(
        cooled.reason.starts_with("overloaded: no answer from") && cooled.reason.contains("within 1s"),
        "{cooled:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_stalls_after_its_first_chunk_ends_with_an_error_and_cools_the_model() {
    let f = fixture_raw("[[\"fake/slow\"], [\"fake/ok\"]]", "idle_timeout = \"1s\"", "").await;
    let mut streamed = hello();
    streamed["stream"] = json!(true);
    let (status, body) = post(&f, streamed).await;
    // The agent read the first chunk: the answer cannot move to another model any more.
    assert_eq!(status, 200);
    assert!(body.contains("<broken"), "the stream ends with an error, not as if complete: {body}");
    let cooled = f.cooldown("slow").expect("cooled");
    assert_eq!(cooled.reason, "overloaded");
}

/// A provider on a raw socket that answers `head` and then `body`, then closes.
async fn raw_provider(head: &'static str, body: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 64 * 1024];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&body).await;
            let _ = socket.shutdown().await;
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_cut_off_midway_moves_the_request_on_instead_of_an_empty_200() {
    let cut = raw_provider(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n",
        b"{\"id\":".to_vec(),
    )
    .await;
    let extra =
        format!("[providers.cut]\nkind = \"openai-compatible\"\nbase_url = \"{cut}\"\npaid = false\n");
    let f = fixture_raw("[[\"cut/m\"], [\"fake/ok\"]]", "", &extra).await;
    let (status, body) = post(&f, hello()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("DONE"), "the next model answered, not an empty body: {body}");
    let h = &f.shared().hierarchy;
    let cooled = f.store.model_standings("ns", &[StandingQuery::plain("cut/m")]).unwrap().remove(0).cooldown;
    assert!(cooled.is_some_and(|c| c.reason.contains("broke off")), "{:?}", h.catalog.models[0].id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_error_body_reaches_the_agent_capped() {
    let huge = vec![b'x'; 8 << 20];
    let url = raw_provider(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 8388608\r\n\r\n",
        huge,
    )
    .await;
    let extra =
        format!("[providers.big]\nkind = \"openai-compatible\"\nbase_url = \"{url}\"\npaid = false\n");
    let f = fixture_raw("[[\"big/m\"]]", "", &extra).await;
    let (status, body) = post(&f, hello()).await;
    assert_eq!(status, 400);
    assert_eq!(body.len(), 1 << 20, "read and passed on up to 1 MiB, not 8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_provider_and_an_unset_key_are_said_as_such() {
    let extra = "[providers.down]\nkind = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:1/v1\"\npaid = false\n\
                 [providers.remote]\nkind = \"openai-compatible\"\nbase_url = \"https://api.example.invalid/v1\"\n\
                 api_key_env = \"SWARM_TEST_SURELY_UNSET_KEY\"\npaid = false\n";
    let f = fixture_raw("[[\"down/m\"], [\"remote/m\"], [\"fake/ok\"]]", "", extra).await;
    let (status, body) = post(&f, hello()).await;
    assert_eq!(status, 200, "{body}");
    let cooldown =
        |id: &str| f.store.model_standings("ns", &[StandingQuery::plain(id)]).unwrap().remove(0).cooldown;
    let down = cooldown("down/m").expect("cooled");
    assert!(
        down.reason.contains("cannot connect to http://127.0.0.1:1/v1")
            && down.reason.to_lowercase().contains("refused"),
        "{down:?}"
    );
    let remote = cooldown("remote/m").expect("disabled");
    assert_eq!(remote.kind, CooldownKind::Disabled);
    assert_eq!(remote.reason, "auth: `SWARM_TEST_SURELY_UNSET_KEY` is not set in swarm's environment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_providers_error_reaches_the_agent_without_anything_shaped_like_a_key() {
    let f = fixture(&[&["leaky"]], "1m").await;
    let (status, body) = post(&f, hello()).await;
    assert_eq!(status, 400);
    assert!(!body.contains("abcdefghijklmnop0123456789"), "{body}");
    assert!(body.contains("unexpected text near sk-[redacted]"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_requests_at_once_never_spend_past_the_budget() {
    // $1000 per million tokens: an answer of 1000 tokens costs $1; the budget is $3.
    let f = fixture_raw(
        "[[\"fake/pricey\"]]",
        "",
        "allow_paid = true\nbudget_usd = 3.0\n[models.limits.\"fake/pricey\"]\npaid = true\nprice_in = 1000.0\nprice_out = 1000.0\n",
    )
    .await;
    let mut body = hello();
    body["max_tokens"] = json!(1000);
    let f = Arc::new(f);
    let mut asks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (f, body) = (f.clone(), body.clone());
        asks.spawn(async move { post(&f, body).await });
    }
    let answers: Vec<(u16, String)> = asks.join_all().await;
    let served = answers.iter().filter(|(status, _)| *status == 200).count();
    // Each request holds ~$1.02 (1000 output tokens): three fit under $3, the rest wait for none.
    assert!((1..=3).contains(&served), "at most what the budget holds went out: {served}");
    let (spent, _) = f.ledger.spent();
    assert!(spent <= 3.0 + 1.02, "spent ${spent} of $3: over by one request at most");
    let refused =
        answers.iter().find(|(status, _)| *status != 200).map(|(_, b)| b.clone()).unwrap_or_default();
    assert!(refused.contains("models_exhausted") && refused.contains("no room"), "{refused}");
    let log = f._fake.log().records().len();
    assert_eq!(log, served, "the provider saw only the requests the budget held");
}
