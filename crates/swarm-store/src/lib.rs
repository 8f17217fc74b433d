//! swarm-store: where runs, tasks, attempts and events live. One trait, several backends; the
//! orchestrator is the only writer of a run, any number of processes may read it.

mod address;
mod models;
mod redis_store;
mod sqlite;
mod store;

pub use address::{mask, open, unmask, Address, Options};
pub use models::{
    Bucket, DayWindow, Learned, ModelLimits, ModelStanding, Reservation, StandingQuery, DAY_MS, MINUTE_MS,
    NEVER, TRIM_MS,
};
pub use redis_store::{
    queue_name, FeedEntry, Fenced, Lease, RedisStore, RunSpend, Said, Stopped, WorkItem, WorkerRow,
};
pub use sqlite::SqliteStore;
pub use store::{Batch, Health, Store, StoreError};
