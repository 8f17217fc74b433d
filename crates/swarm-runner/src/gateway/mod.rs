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
mod ledger;
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
use swarm_core::router::{Catalog, Policy};
use swarm_store::Store;
use tokio::sync::mpsc;

pub use ledger::{Hold, Ledger};

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
