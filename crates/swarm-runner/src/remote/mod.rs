//! Attempts on many hosts (docs/contract.md §11). With `swarm run --workers` the run's
//! dispatcher hands each attempt's job to the namespace's work queue ([`queued`]) instead of
//! running it here; `swarm worker` on any host ([`worker`]) takes the attempts of the agents it
//! has, runs each with the same executor a local run uses, and says what happens (the job's
//! events, then its end) through the run's feed, under a lease it renews and a fencing token
//! that makes a stale owner's writes count for nothing. A worker's agents die with it
//! ([`guard`]).
//!
//! The queue itself is Redis Streams with a consumer group per agent (swarm-store's
//! `redis_store/queue.rs`); nothing here is a protocol of its own.

mod attempt;
mod gateway;
pub mod guard;
mod io;
mod land;
pub mod place;
pub(crate) mod queued;
pub mod worker;

use std::time::Duration;

/// How long a worker's lease on an attempt lasts without renewal (server clock): a worker that
/// died or hangs this long loses its attempts to other workers.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

/// The events of one feed entry, as the worker wrote them.
pub(crate) type Said = Vec<crate::job::AttemptEvent>;
