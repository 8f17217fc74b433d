//! The model gateway: an OpenAI-compatible endpoint on loopback that agents of hierarchy tasks
//! talk to instead of a provider. Per request it asks the router for the best allowed model,
//! reserves it through the store (limits and cooldowns shared by every process on the store),
//! forwards the request with the provider's key, and streams the answer back. A rate limit,
//! a quota or an overload answered before any byte reached the agent cools that model down
//! for everyone and the same request goes to the next model at once: the agent sees success.
//! Provider keys stay here; an agent holds only a per-attempt token, refused once its attempt
//! ended.

mod proxy;
#[cfg(test)]
mod tests;
mod upstream;
mod usage;

use crate::hierarchy::Hierarchy;
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// What the gateway tells a run about its attempts' requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
        #[serde(skip)]
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
    pub events: mpsc::UnboundedSender<GatewayEvent>,
    pub ledger: Arc<Ledger>,
}

/// A run's side of the gateway: what it spent, what it may spend, what it gave up on.
#[derive(Debug)]
pub struct Ledger {
    pub allow_paid: bool,
    pub budget_usd: Option<f64>,
    pub budget_tokens: Option<u64>,
    spent: Mutex<(f64, u64)>,
    /// Models disabled for this run (auth, billing, unknown model), with why.
    disabled: Mutex<HashMap<usize, String>>,
}

impl Ledger {
    pub fn new(config: &Config, allow_paid: bool) -> Arc<Ledger> {
        Arc::new(Ledger {
            allow_paid: allow_paid || config.allow_paid(),
            budget_usd: config.budget_usd(),
            budget_tokens: config.budget_tokens(),
            spent: Mutex::new((0.0, 0)),
            disabled: Mutex::new(HashMap::new()),
        })
    }

    pub fn spent(&self) -> (f64, u64) {
        *self.spent.lock().expect("ledger")
    }

    /// Why no new request or attempt may start, once the run's budget is spent (the router's
    /// spend gate, in its words).
    pub fn budget_spent(&self) -> Option<String> {
        let (usd, tokens) = self.spent();
        router::budget_spent_why(usd, self.budget_usd, tokens, self.budget_tokens)
    }

    /// The run no longer uses model `i` (auth, billing, unknown model), for `why`.
    fn disable(&self, i: usize, why: String) {
        self.disabled.lock().expect("ledger").insert(i, why);
    }

    fn disabled(&self) -> HashMap<usize, String> {
        self.disabled.lock().expect("ledger").clone()
    }

    fn add(&self, usd: f64, tokens: u64) {
        let mut s = self.spent.lock().expect("ledger");
        s.0 += usd;
        s.1 += tokens;
    }
}

pub(crate) struct Shared {
    hierarchy: Arc<Hierarchy>,
    grants: Mutex<HashMap<String, Grant>>,
    client: reqwest::Client,
    /// The models' standings per namespace, read from the store a moment ago (see
    /// `proxy::standings`).
    standings: Mutex<HashMap<String, (std::time::Instant, crate::hierarchy::Picture)>>,
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
        let hierarchy = Hierarchy::of(store, config).ok_or_else(|| {
            std::io::Error::other("the config declares no model hierarchy ([models] layers)")
        })?;
        let shared = Arc::new(Shared {
            hierarchy,
            grants: Mutex::new(HashMap::new()),
            client,
            standings: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/v1/models", get(proxy::models))
            .route("/v1/chat/completions", post(proxy::chat_completions))
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

    /// The base URL agents are given (`http://127.0.0.1:PORT/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
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
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}
