//! A worker's own model gateway (docs/contract.md §13 on many hosts): an attempt whose agent
//! talks to the gateway is given this host's instead of the orchestrator's (which listens on
//! the orchestrator's loopback), with a token of its own. The hierarchy's limits and cooldowns
//! are the store's, shared with every other gateway; what this one says of the attempt's
//! requests goes back to the run on its feed. The providers' keys are this host's.

use crate::gateway::{Gateway, GatewayEvent, Grant, Ledger};
use crate::job::{AttemptJob, ModelRoute, GATEWAY_TOKEN_ENV};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use swarm_core::config::Config;
use swarm_core::scheduler::Failure;
use swarm_core::state::Reason;
use swarm_store::Store;
use tokio::sync::mpsc;

/// The variable an agent finds the gateway's address in.
const GATEWAY_URL_ENV: &str = "SWARM_GATEWAY_URL";

/// This worker's gateway, started on the first attempt that needs it.
pub(super) struct WorkerGateway {
    store: Arc<dyn Store>,
    config: Config,
    gateway: tokio::sync::OnceCell<Result<Gateway, String>>,
    /// Each run's ledger here: its paid models allowed or not, its budget (shared).
    ledgers: Mutex<HashMap<String, Arc<Ledger>>>,
}

/// An attempt's grant on this worker's gateway.
pub(super) struct Granted {
    pub(super) token: String,
    pub(super) events: mpsc::UnboundedReceiver<GatewayEvent>,
}

impl WorkerGateway {
    pub(super) fn new(store: Arc<dyn Store>, config: &Config) -> WorkerGateway {
        WorkerGateway {
            store,
            config: config.clone(),
            gateway: tokio::sync::OnceCell::new(),
            ledgers: Mutex::default(),
        }
    }

    /// For a job whose agent talks to the gateway: a grant on this worker's gateway, the job
    /// told to use it. `None` for any other job.
    pub(super) async fn take_over(&self, job: &mut AttemptJob, ns: &str) -> Result<Option<Granted>, Failure> {
        if !matches!(job.route, ModelRoute::Gateway { .. }) {
            return Ok(None);
        }
        let cannot = |why: String| Failure { reason: Reason::SpawnError, detail: Some(why) };
        let gateway = self
            .gateway
            .get_or_init(|| async {
                Gateway::start(self.store.clone(), &self.config)
                    .map_err(|e| format!("this worker cannot start its model gateway: {e}"))
            })
            .await
            .as_ref()
            .map_err(|e| cannot(e.clone()))?;
        let pinned =
            job.task.model.clone().filter(|m| crate::executor::provider::gateway_keeps_key(&self.config, m));
        if pinned.is_none() && gateway.catalog().is_empty() {
            return Err(cannot(
                "the task's models come from the hierarchy, and this worker's swarm.toml has no [models] layers".into(),
            ));
        }
        let ledger = self.ledger(ns, &job.run_id).map_err(cannot)?;
        let (tx, events) = mpsc::unbounded_channel();
        let token = gateway.grant(Grant {
            run_id: job.run_id.clone(),
            namespace: ns.to_string(),
            task: job.task_index,
            attempt: job.attempt,
            start_layer: if pinned.is_some() { 0 } else { job.task.tier.unwrap_or(1) },
            pinned,
            events: tx,
            ledger,
        });
        let url = gateway.base_url();
        job.route = ModelRoute::Gateway { url: url.clone() };
        for (name, value) in &mut job.env {
            match name.as_str() {
                GATEWAY_TOKEN_ENV => *value = token.clone(),
                GATEWAY_URL_ENV => *value = url.clone(),
                _ => {}
            }
        }
        Ok(Some(Granted { token, events }))
    }

    /// The attempt ended: its token is refused from now on.
    pub(super) fn revoke(&self, token: &str) {
        if let Some(Ok(gateway)) = self.gateway.get() {
            gateway.revoke(token);
        }
    }

    /// Run `run_id`'s ledger on this host: paid models as the run allows them (`--allow-paid`),
    /// the run's budget (its orchestrator's), kept as one tally with the run's other gateways
    /// on the store.
    fn ledger(&self, ns: &str, run_id: &str) -> Result<Arc<Ledger>, String> {
        let mut ledgers = self.ledgers.lock().expect("ledgers");
        if let Some(l) = ledgers.get(run_id) {
            return Ok(l.clone());
        }
        let allow_paid = self.store.run(run_id).ok().flatten().is_some_and(|r| r.allow_paid);
        let ledger = match self.store.clone().work_queue() {
            Some(queue) => Ledger::of_run(&self.config, allow_paid, queue, ns, run_id)
                .map_err(|e| format!("cannot read the run's budget: {e}"))?,
            None => Ledger::new(&self.config, allow_paid),
        };
        ledgers.insert(run_id.to_string(), ledger.clone());
        Ok(ledger)
    }
}
