//! The gateway's faces for Claude Code (Anthropic Messages), Codex (OpenAI Responses) and
//! Gemini CLI (Gemini), over real HTTP against swarm's fake model as an OpenAI-compatible, an
//! `anthropic` and a `gemini` provider: answers whole and streamed, tool calls, usage metered,
//! rate limits absorbed, each agent's own wait and give-up signals, bodies passed through.

use super::{Gateway, GatewayEvent, Grant, Ledger, Served};
use serde_json::{json, Value};
use std::sync::Arc;
use swarm_core::config::Config;
use swarm_core::failure::FailureClass;
use swarm_core::router::Cooldown;
use swarm_fakellm::RequestRecord;
use swarm_store::{SqliteStore, Store};
use tokio::sync::mpsc;

const SCENARIO: &str = r#"
[models.ok]
steps = [ { say = "hello from the fake model" } ]
usage = { prompt_tokens = 11, completion_tokens = 7 }
[models.tool]
steps = [ { call = { name = "write_file", arguments = { path = "notes/a.txt", content = "line \"one\"\nzwei ü" } } } ]
usage = { prompt_tokens = 13, completion_tokens = 5 }
[models.busy]
rate_limit = { first = 1000, retry_after = 300 }
[models.sbusy]
rate_limit = { first = 1000, retry_after = 30, stream = true }
"#;

/// What the agent sends, with quotes, a tab, a newline and more than ASCII.
const PROMPT: &str = "Write \"a.txt\" — ünïcode\n\tthen say DONE";

struct Fixture {
    _dir: tempfile::TempDir,
    fake: swarm_fakellm::FakeLlm,
    gateway: Gateway,
    store: Arc<dyn Store>,
    events: mpsc::UnboundedReceiver<GatewayEvent>,
    ledger: Arc<Ledger>,
    token: String,
}

/// A gateway whose hierarchy is `layers` over the fake as three providers: `fake`
/// (OpenAI-compatible), `anth` (`kind = "anthropic"`) and `gem` (`kind = "gemini"`).
async fn fixture(layers: &str, max_wait: &str) -> Fixture {
    let scenario = swarm_fakellm::Scenario::from_toml(SCENARIO).unwrap();
    let fake = swarm_fakellm::serve(scenario, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let v1 = fake.base_url();
    let root = v1.trim_end_matches("/v1");
    // `fake/ok` costs $1 a million tokens in and $2 out, to see what a run is charged.
    let price = if layers.contains("fake/ok") {
        "[models.limits.\"fake/ok\"]\nprice_in = 1.0\nprice_out = 2.0\n"
    } else {
        ""
    };
    let toml = format!(
        "[providers.fake]\nkind = \"openai-compatible\"\nbase_url = \"{v1}\"\npaid = false\n\
         [providers.anth]\nkind = \"anthropic\"\nbase_url = \"{v1}\"\npaid = false\n\
         [providers.gem]\nkind = \"gemini\"\nbase_url = \"{root}/v1beta\"\npaid = false\n\
         [models]\nlayers = {layers}\nmax_wait = \"{max_wait}\"\n{price}"
    );
    let config = Config::parse(&toml, std::path::Path::new("test.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let gateway = Gateway::start(store.clone(), &config).unwrap();
    let (tx, events) = mpsc::unbounded_channel();
    let ledger = Ledger::new(&config, false);
    let grant = Grant {
        pinned: None,
        run_id: "r".into(),
        namespace: "ns".into(),
        task: 3,
        attempt: 1,
        start_layer: 1,
        events: tx,
        ledger: ledger.clone(),
    };
    let token = gateway.grant(grant);
    Fixture { _dir: dir, fake, gateway, store, events, ledger, token }
}

impl Fixture {
    fn log(&self) -> Vec<RequestRecord> {
        self.fake.log().records()
    }

    /// The next request the run heard was served.
    async fn served(&mut self) -> Served {
        loop {
            match self.events.recv().await.expect("an event") {
                GatewayEvent::Served(s) => return s,
                GatewayEvent::Exhausted { why, .. } => panic!("exhausted: {why}"),
                _ => {}
            }
        }
    }

    /// Whether the run heard the request was turned away (`Exhausted`) or told to wait.
    fn heard(&mut self) -> Vec<GatewayEvent> {
        std::iter::from_fn(|| self.events.try_recv().ok()).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Agent {
    Claude,
    Codex,
    Gemini,
    Chat,
}

const AGENTS: [Agent; 3] = [Agent::Claude, Agent::Codex, Agent::Gemini];

fn schema() -> Value {
    json!({ "type": "object", "properties": { "path": { "type": "string" }, "content": { "type": "string" } } })
}

impl Agent {
    fn path(self, stream: bool) -> &'static str {
        match (self, stream) {
            (Agent::Claude, _) => "/v1/messages?beta=true",
            (Agent::Codex, _) => "/v1/responses",
            (Agent::Gemini, false) => "/v1beta/models/gemini-2.5-flash-lite:generateContent",
            (Agent::Gemini, true) => "/v1beta/models/gemini-2.5-flash-lite:streamGenerateContent?alt=sse",
            (Agent::Chat, _) => "/v1/chat/completions",
        }
    }

    /// A request as the agent's CLI writes one, offering a `write_file` tool.
    fn body(self, stream: bool) -> Value {
        let text = json!([{ "type": "input_text", "text": PROMPT }]);
        match self {
            Agent::Claude => json!({
                "model": "claude-opus-4-1", "max_tokens": 256, "stream": stream, "system": "be brief",
                "messages": [{ "role": "user", "content": PROMPT }],
                "tools": [{ "name": "write_file", "description": "write a file", "input_schema": schema() }],
            }),
            Agent::Codex => json!({
                "model": "gpt-5-codex", "instructions": "be brief", "stream": stream,
                "input": [{ "type": "message", "role": "user", "content": text }],
                "tools": [{ "type": "function", "name": "write_file", "description": "write a file",
                            "parameters": schema(), "strict": false }],
            }),
            Agent::Gemini => json!({
                "contents": [{ "role": "user", "parts": [{ "text": PROMPT }] }],
                "systemInstruction": { "parts": [{ "text": "be brief" }] },
                "tools": [{ "functionDeclarations": [{ "name": "write_file", "description": "write a file",
                                                       "parametersJsonSchema": schema() }] }],
            }),
            Agent::Chat => json!({
                "model": "auto", "stream": stream, "stream_options": { "include_usage": true },
                "messages": [{ "role": "system", "content": "be brief" }, { "role": "user", "content": PROMPT }],
            }),
        }
    }
}

/// What came back over HTTP.
struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

/// Sends `body` as `agent`'s CLI would, its token where that CLI puts it.
async fn send(f: &Fixture, agent: Agent, path: &str, body: &Value) -> Got {
    let url = format!("{}{path}", f.gateway.root_url());
    let req = reqwest::Client::new().post(url).json(body);
    let req = match agent {
        Agent::Claude => req.header("x-api-key", &f.token).header("anthropic-version", "2023-06-01"),
        Agent::Gemini => req.header("x-goog-api-key", &f.token),
        Agent::Codex | Agent::Chat => req.bearer_auth(&f.token),
    };
    let answer = req.send().await.unwrap();
    let (status, headers) = (answer.status().as_u16(), answer.headers().clone());
    Got { status, headers, text: answer.text().await.unwrap() }
}

async fn ask(f: &Fixture, agent: Agent, stream: bool) -> Got {
    send(f, agent, agent.path(stream), &agent.body(stream)).await
}

/// An answer read in the agent's format: its text, its tool call, its usage (in, out).
#[derive(Debug, Default, PartialEq)]
struct Read {
    text: String,
    call: Option<(String, Value)>,
    usage: Option<(u64, u64)>,
}

fn read_whole(agent: Agent, v: &Value) -> Read {
    let mut r = Read::default();
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    match agent {
        Agent::Claude => {
            for b in v["content"].as_array().unwrap() {
                match b["type"].as_str() {
                    Some("text") => r.text += b["text"].as_str().unwrap(),
                    Some("tool_use") => {
                        r.call = Some((b["name"].as_str().unwrap().into(), b["input"].clone()))
                    }
                    _ => {}
                }
            }
            r.usage = Some((n(&v["usage"]["input_tokens"]), n(&v["usage"]["output_tokens"])));
        }
        Agent::Codex => {
            for item in v["output"].as_array().unwrap() {
                match item["type"].as_str() {
                    Some("message") => r.text += item["content"][0]["text"].as_str().unwrap(),
                    Some("function_call") => {
                        let args = serde_json::from_str(item["arguments"].as_str().unwrap()).unwrap();
                        r.call = Some((item["name"].as_str().unwrap().into(), args));
                    }
                    _ => {}
                }
            }
            r.usage = Some((n(&v["usage"]["input_tokens"]), n(&v["usage"]["output_tokens"])));
        }
        Agent::Gemini => gemini_chunk(v, &mut r),
        Agent::Chat => {
            r.text = v["choices"][0]["message"]["content"].as_str().unwrap_or("").into();
            r.usage = Some((n(&v["usage"]["prompt_tokens"]), n(&v["usage"]["completion_tokens"])));
        }
    }
    r
}

fn gemini_chunk(v: &Value, r: &mut Read) {
    for part in v["candidates"][0]["content"]["parts"].as_array().into_iter().flatten() {
        if let Some(t) = part["text"].as_str() {
            r.text += t;
        }
        if let Some(call) = part.get("functionCall") {
            r.call = Some((call["name"].as_str().unwrap().into(), call["args"].clone()));
        }
    }
    if let Some(u) = v.get("usageMetadata") {
        let n = |k: &str| u[k].as_u64().unwrap_or(0);
        r.usage = Some((n("promptTokenCount"), n("candidatesTokenCount")));
    }
}

/// A streamed answer read event by event, as the agent's client assembles it.
fn read_stream(agent: Agent, sse: &str) -> Read {
    let mut r = Read::default();
    let (mut name, mut args) = (None::<String>, String::new());
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    for data in sse.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim) {
        let Ok(e) = serde_json::from_str::<Value>(data) else { continue };
        match (agent, e["type"].as_str().unwrap_or("")) {
            (Agent::Claude, "content_block_start") if e["content_block"]["type"] == "tool_use" => {
                name = e["content_block"]["name"].as_str().map(str::to_string)
            }
            (Agent::Claude, "content_block_delta") => {
                r.text += e["delta"]["text"].as_str().unwrap_or("");
                args += e["delta"]["partial_json"].as_str().unwrap_or("");
            }
            // Claude Code takes the input tokens from `message_start`, unless `message_delta` says.
            (Agent::Claude, "message_start") => {
                r.usage = Some((n(&e["message"]["usage"]["input_tokens"]), 0))
            }
            (Agent::Claude, "message_delta") => {
                let input = e["usage"]["input_tokens"].as_u64().or(r.usage.map(|u| u.0)).unwrap_or(0);
                r.usage = Some((input, n(&e["usage"]["output_tokens"])))
            }
            (Agent::Codex, "response.output_text.delta") => r.text += e["delta"].as_str().unwrap(),
            (Agent::Codex, "response.output_item.done") if e["item"]["type"] == "function_call" => {
                name = e["item"]["name"].as_str().map(str::to_string);
                args = e["item"]["arguments"].as_str().unwrap().to_string();
            }
            (Agent::Codex, "response.completed") => {
                let u = &e["response"]["usage"];
                r.usage = Some((n(&u["input_tokens"]), n(&u["output_tokens"])));
            }
            (Agent::Gemini, _) => gemini_chunk(&e, &mut r),
            (Agent::Chat, _) => {
                r.text += e["choices"][0]["delta"]["content"].as_str().unwrap_or("");
                if e["usage"].is_object() {
                    r.usage = Some((n(&e["usage"]["prompt_tokens"]), n(&e["usage"]["completion_tokens"])));
                }
            }
            _ => {}
        }
    }
    if let Some(name) = name {
        r.call = Some((name, serde_json::from_str(&args).unwrap_or_else(|e| panic!("{e}: {args}"))));
    }
    r
}

fn read(agent: Agent, stream: bool, got: &Got) -> Read {
    assert_eq!(got.status, 200, "{agent:?}: {}", got.text);
    if stream {
        assert_eq!(got.header("content-type"), Some("text/event-stream"), "{agent:?}");
        read_stream(agent, &got.text)
    } else {
        read_whole(agent, &got.json())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_agent_format_is_answered_whole_and_streamed_by_a_chat_provider() {
    let mut f = fixture("[[\"fake/ok\"]]", "1m").await;
    for agent in AGENTS {
        for stream in [false, true] {
            let got = ask(&f, agent, stream).await;
            let r = read(agent, stream, &got);
            assert_eq!(r.text, "hello from the fake model", "{agent:?} stream {stream}: {}", got.text);
            assert_eq!(r.usage, Some((11, 7)), "{agent:?} stream {stream}: {}", got.text);
            if agent == Agent::Claude && !stream {
                assert_eq!(got.json()["model"], "claude-opus-4-1", "the agent's model name is echoed");
            }
            // The provider got an OpenAI Chat request for its own model id, the prompt intact.
            let sent = f.log().pop().unwrap();
            assert_eq!((sent.path.as_str(), sent.model.as_deref()), ("/v1/chat/completions", Some("ok")));
            assert_eq!(sent.user, [PROMPT], "{agent:?}: the prompt byte for byte");
            assert_eq!(sent.stream, stream);
            assert_eq!(sent.body["messages"][0], json!({ "role": "system", "content": "be brief" }));
            let served = f.served().await;
            assert_eq!((served.model.as_str(), served.tokens_in, served.tokens_out), ("fake/ok", 11, 7));
            assert!((served.cost_usd - 25e-6).abs() < 1e-12, "{served:?}");
        }
    }
    let (usd, tokens) = f.ledger.spent();
    assert_eq!(tokens, 6 * 18, "every answer's tokens were charged to the run");
    let want = 6.0 * (11.0 * 1.0 + 7.0 * 2.0) / 1e6;
    assert!((usd - want).abs() < 1e-12, "and its cost: {usd} != {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_tool_call_reaches_each_agent_whole_with_its_usage() {
    let mut f = fixture("[[\"fake/tool\"]]", "1m").await;
    let args = json!({ "path": "notes/a.txt", "content": "line \"one\"\nzwei ü" });
    for agent in AGENTS {
        for stream in [true, false] {
            let got = ask(&f, agent, stream).await;
            let r = read(agent, stream, &got);
            assert_eq!(r.call, Some(("write_file".into(), args.clone())), "{agent:?} {stream}: {}", got.text);
            assert_eq!(r.usage, Some((13, 5)), "{agent:?} {stream}: {}", got.text);
            assert_eq!(f.log().pop().unwrap().tools, ["write_file"], "the tool was offered to the model");
            assert_eq!(f.served().await.tokens_out, 5);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_of_the_first_model_is_absorbed_before_any_agent_sees_it() {
    for agent in AGENTS {
        let mut f = fixture("[[\"fake/busy\"], [\"fake/ok\"]]", "1m").await;
        let got = ask(&f, agent, true).await;
        assert_eq!(read(agent, true, &got).text, "hello from the fake model", "{agent:?}");
        let served = f.served().await;
        assert_eq!((served.model.as_str(), served.layer), ("fake/ok", 2), "{agent:?}");
        assert_eq!(served.fallback, Some(FailureClass::RateLimited));
        let models: Vec<_> = f.log().into_iter().map(|r| r.model.unwrap_or_default()).collect();
        assert_eq!(models, ["busy", "ok"], "{agent:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_wait_each_agent_gets_the_answer_its_client_takes_as_final() {
    let mut f = fixture("[[\"fake/busy\"]]", "1s").await;
    for agent in AGENTS {
        let got = ask(&f, agent, true).await;
        assert_eq!(got.status, 429, "{agent:?}: {}", got.text);
        assert!(got.text.contains("models_exhausted"), "{agent:?}: {}", got.text);
        let body = got.json();
        match agent {
            Agent::Claude => {
                assert_eq!(got.header("x-should-retry"), Some("false"));
                assert_eq!(body["error"]["type"], "rate_limit_error");
            }
            Agent::Codex => {
                assert_eq!(got.header("retry-after"), None, "Codex takes a plain 429 as final");
                assert_eq!(body["error"]["code"], "insufficient_quota");
            }
            _ => {
                assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
                assert!(got.text.contains("PerDay"), "a per-day quota is final for Gemini CLI: {body}");
                assert!(!got.text.contains("RetryInfo"), "{body}");
            }
        }
        assert!(f.heard().iter().any(|e| matches!(e, GatewayEvent::Exhausted { .. })), "{agent:?}");
    }
    assert_eq!(f.log().len(), 1, "the provider was asked once, then left cooling");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_longer_than_an_agent_holds_a_request_is_its_own_wait_signal() {
    let mut f = fixture("[[\"fake/ok\"]]", "10m").await;
    let until = f.store.now_ms().unwrap() + 400_000;
    f.store.model_cool("ns", "fake/ok", &Cooldown::cooling(until, "rate_limited")).unwrap();
    for agent in AGENTS {
        let got = ask(&f, agent, true).await;
        match agent {
            Agent::Claude => {
                assert_eq!(got.status, 429, "{}", got.text);
                assert_eq!(got.header("retry-after"), Some("60"), "Claude Code waits at most 60 s");
                assert_eq!(got.header("x-should-retry"), Some("true"));
                assert_eq!(got.json()["error"]["type"], "rate_limit_error");
            }
            Agent::Codex => {
                assert_eq!(got.status, 200, "Codex retries a streamed failure, not a 429");
                assert!(got.text.contains("event: response.failed"), "{}", got.text);
                assert!(
                    got.text.contains("rate_limit_exceeded") && got.text.contains("Please try again in 39"),
                    "{}",
                    got.text
                );
            }
            _ => {
                assert_eq!(got.status, 429, "{}", got.text);
                assert!(
                    got.text.contains("\"retryDelay\":\"300s\""),
                    "capped at Gemini CLI's 300 s: {}",
                    got.text
                );
                assert!(got.text.contains("PerMinute"), "{}", got.text);
            }
        }
        assert!(f.heard().iter().any(|e| matches!(e, GatewayEvent::Waiting { .. })), "{agent:?}");
    }
    assert!(f.log().is_empty(), "no provider was asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_of_the_agents_own_format_gets_its_body_unchanged() {
    for (agent, layers) in [(Agent::Claude, "[[\"anth/ok\"]]"), (Agent::Gemini, "[[\"gem/ok\"]]")] {
        let mut f = fixture(layers, "1m").await;
        for stream in [false, true] {
            let got = ask(&f, agent, stream).await;
            let r = read(agent, stream, &got);
            assert_eq!((r.text.as_str(), r.usage), ("hello from the fake model", Some((11, 7))), "{agent:?}");
            let sent = f.log().pop().unwrap();
            let mut want = agent.body(stream);
            if agent == Agent::Claude {
                want["model"] = json!("ok"); // the provider's model id, and nothing else changed
                assert_eq!(sent.path, "/v1/messages");
            } else {
                let method = if stream { "streamGenerateContent" } else { "generateContent" };
                assert_eq!(sent.path, format!("/v1beta/models/ok:{method}"));
            }
            assert_eq!(sent.body, want, "{agent:?} stream {stream}");
            let served = f.served().await;
            assert_eq!((served.tokens_in, served.tokens_out), (11, 7), "{agent:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_agents_are_served_by_anthropic_and_gemini_providers() {
    for (layers, path) in [("[[\"anth/ok\"]]", "/v1/messages"), ("[[\"gem/ok\"]]", "/v1beta/models/ok:")] {
        let mut f = fixture(layers, "1m").await;
        for stream in [false, true] {
            let got = ask(&f, Agent::Chat, stream).await;
            let r = read(Agent::Chat, stream, &got);
            assert_eq!((r.text.as_str(), r.usage), ("hello from the fake model", Some((11, 7))), "{layers}");
            let sent = f.log().pop().unwrap();
            assert!(sent.path.starts_with(path), "{}", sent.path);
            assert_eq!(sent.user, [PROMPT]);
            assert_eq!(f.served().await.tokens_in, 11);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_counts_and_probes_are_answered_by_the_gateway_itself() {
    let f = fixture("[[\"fake/busy\"]]", "1m").await;
    let client = reqwest::Client::new();
    for path in ["/api/hello", "/"] {
        let probe = client.head(format!("{}{path}", f.gateway.root_url())).send().await.unwrap();
        assert_eq!(probe.status(), 200, "{path}");
    }
    let body =
        json!({ "model": "claude-haiku-4-5", "messages": [{ "role": "user", "content": "x".repeat(400) }] });
    let got = send(&f, Agent::Claude, "/v1/messages/count_tokens?beta=true", &body).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert!((100..=120).contains(&got.json()["input_tokens"].as_u64().unwrap()), "{}", got.text);
    // Gemini CLI may send its key in the query.
    let path = format!("/v1beta/models/gemini-2.5-flash:countTokens?key={}", f.token);
    let body = json!({ "contents": [{ "role": "user", "parts": [{ "text": "y".repeat(800) }] }] });
    let url = format!("{}{path}", f.gateway.root_url());
    let got = client.post(url).json(&body).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert!(got.json::<Value>().await.unwrap()["totalTokens"].as_u64().unwrap() >= 200);
    assert!(f.log().is_empty(), "a count spends no request of the (rate limited) model");

    // A token the gateway does not know is refused in the agent's own words.
    let mut stranger = f.gateway.root_url();
    stranger.push_str("/v1/messages");
    let got = client.post(stranger).header("x-api-key", "swarm-attempt-0").json(&body).send().await.unwrap();
    assert_eq!(got.status(), 401);
    assert_eq!(got.json::<Value>().await.unwrap()["error"]["type"], "authentication_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_the_agent_was_told_to_do_count_toward_max_wait() {
    let mut f = fixture("[[\"fake/ok\"]]", "10m").await;
    let until = f.store.now_ms().unwrap() + 400_000;
    f.store.model_cool("ns", "fake/ok", &Cooldown::cooling(until, "rate_limited")).unwrap();
    assert_eq!(ask(&f, Agent::Gemini, true).await.status, 429);
    let waiting = |f: &Fixture| f.gateway.shared.waiting.lock().unwrap().get(&f.token).copied();
    let since = waiting(&f).expect("the attempt's wait is remembered");
    // As if the agent had been waiting for 5 of its 10 minutes: 400 s more pass max_wait.
    let earlier = since - std::time::Duration::from_secs(300);
    f.gateway.shared.waiting.lock().unwrap().insert(f.token.clone(), earlier);
    let got = ask(&f, Agent::Gemini, true).await;
    assert!(got.text.contains("models_exhausted") && got.text.contains("PerDay"), "{}", got.text);
    assert!(f.heard().iter().any(|e| matches!(e, GatewayEvent::Exhausted { .. })));
    // Once a model serves the attempt, or the attempt ends, its waiting is forgotten.
    f.gateway.revoke(&f.token);
    assert_eq!(waiting(&f), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_inside_a_providers_stream_reaches_the_agent_and_cools_the_model() {
    let f = fixture("[[\"anth/sbusy\"]]", "1m").await;
    let before = f.store.now_ms().unwrap();
    let got = ask(&f, Agent::Claude, true).await;
    assert_eq!(got.status, 200, "the provider's 200 stream had begun: {}", got.text);
    assert!(got.text.contains("event: error") && got.text.contains("rate_limit_error"), "{}", got.text);
    let cooled = || {
        let id = "anth/sbusy".to_string();
        f.store.model_standings("ns", &[swarm_store::StandingQuery::plain(id)]).unwrap().remove(0).cooldown
    };
    swarm_testkit::wait_until(std::time::Duration::from_secs(5), "the model cools", || cooled().is_some());
    let cooldown = cooled().unwrap();
    assert_eq!(cooldown.reason, "rate_limited");
    // An error event carries no retry-after: the class's own cooldown, 30 s spread ±20%, from
    // when the model refused (the old bound, 25 s after the check, failed when the spread fell
    // under -16%: about one run in twelve).
    let after = f.store.now_ms().unwrap();
    let within = before + 24_000..=after + 36_000;
    assert!(within.contains(&cooldown.until_ms), "{cooldown:?}: not within {within:?}");
}
