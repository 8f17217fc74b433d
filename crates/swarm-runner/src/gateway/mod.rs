//! The model gateway: an endpoint on loopback that agents of hierarchy tasks talk to instead of
//! a provider, in their own wire format (OpenAI Chat, Anthropic Messages, OpenAI Responses,
//! Gemini: [`face`]), translated by swarm-wire for providers of another. Per request it asks the router for the best allowed model,
//! reserves it through the store (limits and cooldowns shared by every process on the store),
//! forwards the request with the provider's key, and streams the answer back. A rate limit,
//! a quota or an overload answered before any byte reached the agent cools that model down
//! for everyone and the same request goes to the next model at once: the agent sees success.
//! Provider keys stay here; an agent holds only a per-attempt token, refused once its attempt
//! ended.

mod answer;
mod face;
#[cfg(test)]
mod format_tests;
mod proxy;
#[cfg(test)]
mod tests;
mod upstream;
mod usage;

use crate::hierarchy::Hierarchy;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use swarm_core::config::Config;
use swarm_core::failure::FailureClass;
use swarm_core::router::{self, Catalog, Policy};
use swarm_store::Store;
use tokio::sync::mpsc;

/// One request of an attempt a model answered (after failing over from `fallback`, if any),
/// metered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Served {
    pub task: u32,
    pub attempt: u32,
    pub model: String,
    pub layer: u8,
    pub status: u16,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    /// When the request reached the gateway (ms since the epoch, this host's clock) and how long
    /// it waited there before it went to the model that answered (for a free slot, and on models
    /// that refused it first).
    pub arrived_ms: u64,
    pub waited_ms: u64,
    /// From forwarding to the model until its answer ended.
    pub latency_ms: u64,
    pub fallback: Option<FailureClass>,
}

/// What the gateway tells a run about its attempts' requests (from a worker's own gateway, on
/// the run's feed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GatewayEvent {
    /// A request was answered.
    Served(Served),
    /// A provider refused a request, which went on to the next model; `policy` is what
    /// happened to `model` (cooling until …, disabled, …) at `at_ms` (store clock).
    Absorbed {
        task: u32,
        attempt: u32,
        model: String,
        status: u16,
        class: FailureClass,
        policy: Policy,
        at_ms: u64,
    },
    /// Every allowed model is cooling or at its limit: the request waits until `until_ms`.
    Waiting { task: u32, attempt: u32, model: String, until_ms: u64 },
    /// No allowed model could serve within `max_wait` (or the budget is spent).
    Exhausted { task: u32, attempt: u32, why: String },
}

/// One attempt allowed to use the gateway.
#[derive(Clone)]
pub struct Grant {
    pub run_id: String,
    pub namespace: String,
    pub task: u32,
    pub attempt: u32,
    /// The task's `tier`: the first layer it may use.
    pub start_layer: u8,
    /// The task's own `model:`: only it serves the attempt (its key stays with the gateway).
    pub pinned: Option<String>,
    pub events: mpsc::UnboundedSender<GatewayEvent>,
    pub ledger: Arc<Ledger>,
}

/// A run's side of the gateway: what it spent, what it holds for requests on their way, what
/// it may spend, what it gave up on.
#[derive(Debug)]
pub struct Ledger {
    pub allow_paid: bool,
    pub budget_usd: Option<f64>,
    pub budget_tokens: Option<u64>,
    spend: Mutex<Spend>,
    /// Models disabled for this run (auth, billing, unknown model), by id, with why.
    disabled: Mutex<HashMap<String, String>>,
}

/// Spent and held, in USD and tokens.
#[derive(Debug, Default, Clone, Copy)]
struct Spend {
    usd: f64,
    tokens: u64,
    held_usd: f64,
    held_tokens: u64,
}

/// What a request on its way holds of the run's budget: its estimated cost, until the
/// provider's answer is metered ([`Hold::settle`]) or the request fails (dropped: released).
#[derive(Debug)]
pub struct Hold {
    ledger: Arc<Ledger>,
    usd: f64,
    tokens: u64,
}

impl Hold {
    /// The answer cost `usd` and `tokens`: spent, and the hold released.
    pub fn settle(self, usd: f64, tokens: u64) {
        let mut s = self.ledger.spend.lock().expect("ledger");
        s.usd += usd;
        s.tokens += tokens;
        // Drop releases what was held.
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut s = self.ledger.spend.lock().expect("ledger");
        s.held_usd = (s.held_usd - self.usd).max(0.0);
        s.held_tokens = s.held_tokens.saturating_sub(self.tokens);
    }
}

impl Ledger {
    pub fn new(config: &Config, allow_paid: bool) -> Arc<Ledger> {
        Ledger::seeded(config, allow_paid, (0.0, 0))
    }

    /// A ledger that starts from what the run spent before (a resumed run keeps its budget).
    pub fn seeded(config: &Config, allow_paid: bool, (usd, tokens): (f64, u64)) -> Arc<Ledger> {
        Arc::new(Ledger {
            allow_paid: allow_paid || config.allow_paid(),
            budget_usd: config.budget_usd(),
            budget_tokens: config.budget_tokens(),
            spend: Mutex::new(Spend { usd, tokens, ..Spend::default() }),
            disabled: Mutex::new(HashMap::new()),
        })
    }

    pub fn spent(&self) -> (f64, u64) {
        let s = self.spend.lock().expect("ledger");
        (s.usd, s.tokens)
    }

    /// Why no new request or attempt may start, once the run's budget is spent (the router's
    /// spend gate, in its words).
    pub fn budget_spent(&self) -> Option<String> {
        let (usd, tokens) = self.spent();
        router::budget_spent_why(usd, self.budget_usd, tokens, self.budget_tokens)
    }

    /// Holds a request's estimated cost while what is spent and held by requests on their way
    /// leaves room in the budget: requests in flight together pass the cap by one request at
    /// most (twenty at once once spent $40 of $3), and a lone request still goes while the
    /// budget is not spent, whatever its estimate. `Err` says why not.
    pub fn hold(self: &Arc<Ledger>, usd: f64, tokens: u64) -> Result<Hold, String> {
        let mut s = self.spend.lock().expect("ledger");
        let over_usd = self.budget_usd.filter(|&b| usd > 0.0 && s.usd + s.held_usd >= b);
        let over_tokens = self.budget_tokens.filter(|&b| s.tokens + s.held_tokens >= b);
        if let Some(b) = over_usd {
            return Err(format!(
                "the run's budget of ${b:.2} has no room for this request (${:.2} spent, ${:.2} held by requests on their way)",
                s.usd, s.held_usd
            ));
        }
        if let Some(b) = over_tokens {
            return Err(format!(
                "the run's budget of {b} tokens has no room for this request ({} spent, {} held by requests on their way)",
                s.tokens, s.held_tokens
            ));
        }
        s.held_usd += usd;
        s.held_tokens += tokens;
        Ok(Hold { ledger: self.clone(), usd, tokens })
    }

    /// The run no longer uses model `i` (auth, billing, unknown model), for `why`.
    fn disable(&self, id: &str, why: String) {
        self.disabled.lock().expect("ledger").insert(id.to_string(), why);
    }

    /// The models of `catalog` this run disabled, by index there.
    fn disabled(&self, catalog: &Catalog) -> HashMap<usize, String> {
        let disabled = self.disabled.lock().expect("ledger");
        disabled.iter().filter_map(|(id, why)| Some((catalog.index(id)?, why.clone()))).collect()
    }
}

pub(crate) struct Shared {
    hierarchy: Arc<Hierarchy>,
    /// One-model hierarchies of the models tasks are pinned to, by model id.
    pinned: Mutex<HashMap<String, Arc<Hierarchy>>>,
    grants: Mutex<HashMap<String, Grant>>,
    client: reqwest::Client,
    /// The models' standings per namespace, read from the store a moment ago (see
    /// `proxy::standings`).
    standings: Mutex<HashMap<String, (std::time::Instant, crate::hierarchy::Picture)>>,
    /// Since when an attempt's request has been waiting, by token, while the agent was told to
    /// wait and ask again (its waits together stay within `max_wait`).
    waiting: Mutex<HashMap<String, std::time::Instant>>,
}

/// The gateway of this process: one loopback server for every run of the engine.
pub struct Gateway {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Starts serving on 127.0.0.1 (a free port) on the current tokio runtime (call it from
    /// inside one).
    pub fn start(store: Arc<dyn Store>, config: &Config) -> std::io::Result<Gateway> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let hierarchy = Hierarchy::of_or_empty(store, config);
        let shared = Arc::new(Shared {
            hierarchy,
            pinned: Mutex::new(HashMap::new()),
            grants: Mutex::new(HashMap::new()),
            client,
            standings: Mutex::new(HashMap::new()),
            waiting: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/v1/models", get(face::models))
            .route("/v1/chat/completions", post(face::chat))
            .route("/v1/messages", post(face::messages))
            .route("/v1/messages/count_tokens", post(face::count_tokens))
            .route("/v1/responses", post(face::responses))
            .route("/v1beta/models/{*call}", post(face::gemini))
            // Claude Code's connectivity probes (a `get` route answers HEAD too).
            .route("/api/hello", get(face::hello))
            .route("/", get(face::hello))
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(shared.clone());
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Gateway { shared, addr, task })
    }

    /// The base URL OpenAI clients are given (`http://127.0.0.1:PORT/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The gateway's root (`http://127.0.0.1:PORT`), for clients that add `/v1` or `/v1beta`
    /// themselves (Claude Code's `ANTHROPIC_BASE_URL`, Gemini CLI's `GOOGLE_GEMINI_BASE_URL`).
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn catalog(&self) -> &Catalog {
        &self.shared.hierarchy.catalog
    }

    /// A token for one attempt; worthless outside it.
    pub fn grant(&self, grant: Grant) -> String {
        let token = format!("swarm-attempt-{:032x}", fastrand::u128(..));
        self.shared.grants.lock().expect("grants").insert(token.clone(), grant);
        token
    }

    /// The attempt ended: its token is refused from now on.
    pub fn revoke(&self, token: &str) {
        self.shared.grants.lock().expect("grants").remove(token);
        self.shared.waiting.lock().expect("waiting").remove(token);
    }
}

impl Shared {
    /// The models a grant's requests may go to: the hierarchy, or the one model it is pinned to.
    fn hierarchy_for(&self, grant: &Grant) -> Arc<Hierarchy> {
        let Some(id) = &grant.pinned else { return self.hierarchy.clone() };
        let mut pinned = self.pinned.lock().expect("pinned");
        let h = &self.hierarchy;
        pinned.entry(id.clone()).or_insert_with(|| Hierarchy::pinned(h.store.clone(), &h.config, id)).clone()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}
