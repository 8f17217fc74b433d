//! A run's side of the gateway: what it spent, what it holds for requests on their way, what it
//! may spend (the spend gate: paid models, the budget), the models it gave up on.
//!
//! A run whose attempts run on workers has a gateway per host: each keeps its ledger, and the
//! run's budget is one tally on the store ([`Ledger::share`]) that every gateway adds what it
//! spent to and reads before it holds a request, so the cap holds across hosts (requests in
//! flight on several hosts at once pass it by one request per host at most).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use swarm_core::config::Config;
use swarm_core::router::{self, Catalog};
use swarm_store::{RedisStore, StoreError};

#[derive(Debug)]
pub struct Ledger {
    pub allow_paid: bool,
    pub budget_usd: Option<f64>,
    pub budget_tokens: Option<u64>,
    spend: Mutex<Spend>,
    /// Models disabled for this run (auth, billing, unknown model), by id, with why.
    disabled: Mutex<HashMap<String, String>>,
    /// The run's tally on the store, when more than one host spends for it.
    tally: OnceLock<Tally>,
}

/// Where the run's one tally is: its store, namespace and run.
struct Tally {
    store: Arc<RedisStore>,
    ns: String,
    run_id: String,
}

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tally({}/{})", self.ns, self.run_id)
    }
}

/// Spent and held, in USD and tokens.
#[derive(Debug, Default, Clone, Copy)]
struct Spend {
    /// Spent through this ledger: its gateway's requests, and those of the run's attempts on
    /// other hosts it heard of ([`Ledger::observe`]).
    usd: f64,
    tokens: u64,
    held_usd: f64,
    held_tokens: u64,
    /// What the store's tally said last: what every gateway of the run spent together.
    run_usd: f64,
    run_tokens: u64,
}

impl Spend {
    /// The most the run is known to have spent.
    fn total(&self) -> (f64, u64) {
        (self.usd.max(self.run_usd), self.tokens.max(self.run_tokens))
    }
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
    /// The answer cost `usd` and `tokens`: spent (and added to the run's tally, off the
    /// runtime's threads), and the hold released.
    pub fn settle(self, usd: f64, tokens: u64) {
        {
            let mut s = self.ledger.spend.lock().expect("ledger");
            s.usd += usd;
            s.tokens += tokens;
        }
        if self.ledger.tally.get().is_some() && (usd > 0.0 || tokens > 0) {
            let ledger = self.ledger.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn_blocking(move || ledger.sync(usd, tokens));
            }
        }
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
    pub fn seeded(config: &Config, allow_paid: bool, spent: (f64, u64)) -> Arc<Ledger> {
        Arc::new(Ledger::fresh(config, allow_paid, spent))
    }

    fn fresh(config: &Config, allow_paid: bool, (usd, tokens): (f64, u64)) -> Ledger {
        Ledger {
            allow_paid: allow_paid || config.allow_paid(),
            budget_usd: config.budget_usd(),
            budget_tokens: config.budget_tokens(),
            spend: Mutex::new(Spend { usd, tokens, ..Spend::default() }),
            disabled: Mutex::new(HashMap::new()),
            tally: OnceLock::new(),
        }
    }

    /// The orchestrator's side: keeps the run's budget as one tally on `store` with every other
    /// gateway of run `run_id` of namespace `ns` (workers on many hosts), and puts the budget
    /// there for them. A ledger without a budget has nothing to share. Blocking.
    pub fn share(&self, store: Arc<RedisStore>, ns: &str, run_id: &str) -> Result<(), StoreError> {
        if self.budget_usd.is_none() && self.budget_tokens.is_none() {
            return Ok(());
        }
        store.set_run_budget(ns, run_id, self.budget_usd, self.budget_tokens)?;
        let _ = self.tally.set(Tally { store, ns: ns.to_string(), run_id: run_id.to_string() });
        Ok(())
    }

    /// A worker's side: the ledger of run `run_id` on this host, with the run's budget (its
    /// orchestrator's, whatever this host's config says) and what the run spent so far, kept
    /// as one tally with the run's other gateways. Blocking.
    pub fn of_run(
        config: &Config,
        allow_paid: bool,
        store: Arc<RedisStore>,
        ns: &str,
        run_id: &str,
    ) -> Result<Arc<Ledger>, StoreError> {
        let run = store.run_spend(ns, run_id, 0.0, 0)?;
        let ledger = Ledger {
            budget_usd: run.budget_usd,
            budget_tokens: run.budget_tokens,
            spend: Mutex::new(Spend { run_usd: run.usd, run_tokens: run.tokens, ..Spend::default() }),
            ..Ledger::fresh(config, allow_paid, (0.0, 0))
        };
        if run.budget_usd.is_some() || run.budget_tokens.is_some() {
            let _ = ledger.tally.set(Tally { store, ns: ns.to_string(), run_id: run_id.to_string() });
        }
        Ok(Arc::new(ledger))
    }

    /// Adds `usd` and `tokens` to the run's tally on the store (both 0: only reads it) and
    /// takes what it says. Blocking; a store that fails leaves this ledger's own count.
    fn sync(&self, usd: f64, tokens: u64) {
        let Some(t) = self.tally.get() else { return };
        if let Ok(run) = t.store.run_spend(&t.ns, &t.run_id, usd, tokens) {
            let mut s = self.spend.lock().expect("ledger");
            s.run_usd = s.run_usd.max(run.usd);
            s.run_tokens = s.run_tokens.max(run.tokens);
        }
    }

    /// Reads the run's tally, when it has one (before a request is held against the budget).
    pub async fn refresh(self: &Arc<Ledger>) {
        if self.tally.get().is_some() {
            let ledger = self.clone();
            let _ = tokio::task::spawn_blocking(move || ledger.sync(0.0, 0)).await;
        }
    }

    /// A request of one of the run's attempts on another host was answered for `usd` and
    /// `tokens` there (its gateway added them to the tally): counted here as well, so that no
    /// new attempt starts once the run's budget is spent, wherever it was spent.
    pub fn observe(&self, usd: f64, tokens: u64) {
        let mut s = self.spend.lock().expect("ledger");
        s.usd += if usd.is_finite() && usd > 0.0 { usd } else { 0.0 };
        s.tokens += tokens;
    }

    pub fn spent(&self) -> (f64, u64) {
        self.spend.lock().expect("ledger").total()
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
        let (spent_usd, spent_tokens) = s.total();
        let over_usd = self.budget_usd.filter(|&b| usd > 0.0 && spent_usd + s.held_usd >= b);
        let over_tokens = self.budget_tokens.filter(|&b| spent_tokens + s.held_tokens >= b);
        if let Some(b) = over_usd {
            return Err(format!(
                "the run's budget of ${b:.2} has no room for this request (${spent_usd:.2} spent, ${:.2} held by requests on their way)",
                s.held_usd
            ));
        }
        if let Some(b) = over_tokens {
            return Err(format!(
                "the run's budget of {b} tokens has no room for this request ({spent_tokens} spent, {} held by requests on their way)",
                s.held_tokens
            ));
        }
        s.held_usd += usd;
        s.held_tokens += tokens;
        Ok(Hold { ledger: self.clone(), usd, tokens })
    }

    /// The run no longer uses model `i` (auth, billing, unknown model), for `why`.
    pub(super) fn disable(&self, id: &str, why: String) {
        self.disabled.lock().expect("ledger").insert(id.to_string(), why);
    }

    /// The models of `catalog` this run disabled, by index there.
    pub(super) fn disabled(&self, catalog: &Catalog) -> HashMap<usize, String> {
        let disabled = self.disabled.lock().expect("ledger");
        disabled.iter().filter_map(|(id, why)| Some((catalog.index(id)?, why.clone()))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn config(toml: &str) -> Config {
        Config::parse(toml, std::path::Path::new("t.toml")).unwrap()
    }

    #[test]
    fn holds_keep_requests_in_flight_together_within_the_budget_and_release_on_failure() {
        let toml = "[models]\nbudget_usd = 3.0\nbudget_tokens = 5000\n";
        let config = config(toml);
        let ledger = Ledger::new(&config, true);
        // A lone request goes while the budget is not spent, whatever its estimate.
        let a = ledger.hold(3.5, 10).unwrap();
        let why = ledger.hold(0.2, 10).unwrap_err();
        assert!(why.contains("$3.00 has no room") && why.contains("$3.50 held"), "{why}");
        assert!(ledger.hold(0.0, 10).is_ok(), "a free request is not held to the USD budget");
        drop(a); // failed: released
        let (b, c) = (ledger.hold(1.4, 10).unwrap(), ledger.hold(1.4, 10).unwrap());
        assert!(ledger.hold(1.4, 10).is_ok(), "2.8 held < 3: one more may go");
        drop(c);
        b.settle(1.6, 2000); // the answer cost more than held: what it cost counts
        assert_eq!(ledger.spent(), (1.6, 2000));
        let d = ledger.hold(1.3, 3000).unwrap();
        assert!(ledger.hold(0.1, 10).is_err(), "1.6 spent + 1.3 held, and 5000 tokens held or spent");
        drop(d);
        // A resumed run starts from what it spent.
        let resumed = Ledger::seeded(&config, true, (3.0, 0));
        assert!(resumed.hold(0.2, 10).is_err());
    }

    /// Waits until the tally of `run_id` on `store` says `usd`.
    fn tally_reaches(store: &RedisStore, run_id: &str, usd: f64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.run_spend("team1", run_id, 0.0, 0).unwrap().usd < usd - 1e-9 {
            assert!(Instant::now() < deadline, "the tally never reached ${usd}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_gateways_of_one_run_on_two_hosts_keep_one_budget_on_the_store() {
        let server = swarm_testkit::RedisServer::start();
        let store = Arc::new(RedisStore::open(&server.url()).unwrap());
        let (budget, none) = (config("[models]\nbudget_usd = 3.0\n"), config(""));
        // The orchestrator's budget is the run's; a worker's own config says none.
        let here = Ledger::new(&budget, true);
        here.share(store.clone(), "team1", "r1").unwrap();
        let there = Ledger::of_run(&none, true, store.clone(), "team1", "r1").unwrap();
        assert_eq!((there.budget_usd, there.budget_tokens), (Some(3.0), None));
        here.hold(2.0, 100).unwrap().settle(2.5, 1000);
        tally_reaches(&store, "r1", 2.5);
        // The other host reads what this one spent before it holds a request.
        there.refresh().await;
        assert_eq!(there.spent(), (2.5, 1000));
        there.hold(0.4, 10).unwrap().settle(0.6, 10);
        tally_reaches(&store, "r1", 3.1);
        here.refresh().await;
        let why = here.hold(0.1, 10).unwrap_err();
        assert!(why.contains("$3.00 has no room") && why.contains("$3.10 spent"), "{why}");
        // What the orchestrator heard of another host's spend counts, never twice.
        here.observe(0.6, 10);
        assert_eq!(here.spent(), (3.1, 1010));
        // Another run's tally is its own; a ledger without a budget keeps none.
        let other = Ledger::new(&budget, true);
        other.share(store.clone(), "team1", "r2").unwrap();
        other.refresh().await;
        assert_eq!(other.spent(), (0.0, 0));
        // A worker joining later starts from what the run spent.
        let late = Ledger::of_run(&none, true, store.clone(), "team1", "r1").unwrap();
        assert!(late.hold(0.1, 10).is_err());
        // A run without a budget keeps no tally, whatever a worker's config says.
        let unbounded = Ledger::new(&none, true);
        unbounded.share(store.clone(), "team1", "r3").unwrap();
        let worker = Ledger::of_run(&budget, true, store.clone(), "team1", "r3").unwrap();
        assert_eq!((worker.budget_usd, worker.budget_tokens), (None, None));
        worker.hold(1.0, 10).unwrap().settle(1.0, 10);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(store.run_spend("team1", "r3", 0.0, 0).unwrap(), swarm_store::RunSpend::default());
    }
}
