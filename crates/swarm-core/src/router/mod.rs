//! The model hierarchy's decisions, pure: which model serves a request now ([`route`]), what a
//! provider's failure does to a model ([`policy`]), and the built-in default hierarchy
//! ([`defaults`]). No clock, store or socket lives here: the gateway feeds each model's
//! [`Standing`] and the time, and carries out the answer.

mod catalog;
mod cooldown;
mod day;
pub mod defaults;
mod policy;
mod route;

pub use catalog::{Catalog, GroupEntry, ModelEntry};
pub use cooldown::{Cooldown, CooldownKind, DISABLED_FOR_MS};
pub use day::DayReset;
pub use policy::{estimate_tokens, policy, Policy};
pub use route::{
    budget_spent_why, route, route_attempt, AttemptRequest, GroupFull, Route, RouteRequest, Skip, Standing,
};

#[cfg(test)]
mod tests;
