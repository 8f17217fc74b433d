//! The gateway's steps one by one, against swarm's fake model and a real SQLite store: what
//! routing answers, what a reservation takes, what a provider's failure does to its model and
//! to the request.

use super::proxy::{absorb, reserve, route, Flight, Next, Slot};
use super::upstream;
use super::{Gateway, GatewayEvent, Grant, Ledger, Shared};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Instant;
use swarm_core::config::Config;
use swarm_core::failure::FailureClass;
use swarm_core::router::{Cooldown, CooldownKind, Policy};
use swarm_store::{SqliteStore, Store};
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
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    _fake: swarm_fakellm::FakeLlm,
    gateway: Gateway,
    store: Arc<dyn Store>,
    config: Config,
    events: mpsc::UnboundedReceiver<GatewayEvent>,
    tx: mpsc::UnboundedSender<GatewayEvent>,
}

/// A gateway over the fake provider, whose hierarchy is `layers` (model names of the scenario).
async fn fixture(layers: &[&[&str]], max_wait: &str) -> Fixture {
    fixture_with(layers, max_wait, "").await
}

/// The same, with `extra` TOML after the `[models]` table (model limits).
async fn fixture_with(layers: &[&[&str]], max_wait: &str, extra: &str) -> Fixture {
    let scenario = swarm_fakellm::Scenario::from_toml(SCENARIO).unwrap();
    let fake = swarm_fakellm::serve(scenario, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let layers: Vec<String> = layers
        .iter()
        .map(|l| format!("[{}]", l.iter().map(|m| format!("\"fake/{m}\"")).collect::<Vec<_>>().join(", ")))
        .collect();
    let toml = format!(
        "[providers.fake]\nkind = \"openai-compatible\"\nbase_url = \"{}\"\npaid = false\n\n\
         [models]\nmax_wait = \"{max_wait}\"\nlayers = [{}]\n{extra}",
        fake.base_url(),
        layers.join(", ")
    );
    let config = Config::parse(&toml, std::path::Path::new("test.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let gateway = Gateway::start(store.clone(), &config).unwrap();
    let (tx, events) = mpsc::unbounded_channel();
    Fixture { _dir: dir, _fake: fake, gateway, store, config, events, tx }
}

impl Fixture {
    fn shared(&self) -> &Arc<Shared> {
        &self.gateway.shared
    }

    fn flight(&self, body: Value) -> Flight {
        let grant = Grant {
            run_id: "r".into(),
            namespace: "ns".into(),
            task: 3,
            attempt: 1,
            start_layer: 1,
            events: self.tx.clone(),
            ledger: Ledger::new(&self.config, false),
        };
        let Value::Object(body) = body else { panic!("an object") };
        let size = serde_json::to_vec(&body).unwrap().len();
        Flight::new(grant, body, size)
    }

    fn index(&self, model: &str) -> usize {
        self.gateway.catalog().index(&format!("fake/{model}")).unwrap()
    }

    fn cooldown(&self, model: &str) -> Option<Cooldown> {
        let id = format!("fake/{model}");
        self.store.model_standings("ns", &[id]).unwrap().remove(0).cooldown
    }
}

fn hello() -> Value {
    json!({ "model": "auto", "messages": [{ "role": "user", "content": "hello" }] })
}

async fn forward_and_absorb(f: &Fixture, flight: &mut Flight, model: usize) -> Next {
    let body: Map<String, Value> = flight.body.clone();
    let answer = upstream::forward(f.shared(), model, &body).await;
    absorb(f.shared(), flight, model, answer, Instant::now()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_takes_the_first_model_that_is_not_cooling() {
    let f = fixture(&[&["busy", "ok"]], "1m").await;
    let flight = f.flight(hello());
    assert_eq!(route(f.shared(), &flight).await.ok(), Some(f.index("busy")));
    let now = f.store.now_ms().unwrap();
    f.store.model_cool("ns", "fake/busy", &Cooldown::cooling(now + 60_000, "rate_limited")).unwrap();
    // The picture routing uses is a moment old at most: a fresh flight after it ages.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(route(f.shared(), &f.flight(hello())).await.ok(), Some(f.index("ok")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_cools_the_model_for_everyone_and_the_request_moves_on() {
    let mut f = fixture(&[&["busy", "ok"]], "1m").await;
    let mut flight = f.flight(hello());
    let busy = f.index("busy");
    assert!(matches!(reserve(f.shared(), &flight, busy).await, Slot::Taken));
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
    let next = route(f.shared(), &flight).await.ok().unwrap();
    assert_eq!(next, f.index("ok"));
    assert!(matches!(reserve(f.shared(), &flight, next).await, Slot::Taken));
    let Next::Answer(answer) = forward_and_absorb(&f, &mut flight, next).await else { panic!("an answer") };
    assert_eq!(answer.status(), 200);
    let body = axum::body::to_bytes(answer.into_body(), usize::MAX).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("DONE"));
    match f.events.recv().await.unwrap() {
        GatewayEvent::Served { model, fallback, .. } => {
            assert_eq!((model.as_str(), fallback), ("fake/ok", Some(FailureClass::RateLimited)))
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
    assert!(flight.grant.ledger.disabled().contains_key(&bad), "and by this run, for good");
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
    let taken = f.store.model_reserve("ns", "fake/ok", 1, &limits).unwrap();
    assert!(matches!(taken, swarm_store::Reservation::Granted { .. }));
    assert!(matches!(reserve(f.shared(), &flight, ok).await, Slot::Gone));
}
