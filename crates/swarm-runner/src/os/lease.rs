//! A run's lease: one orchestrator drives a run at a time. Its token says who holds it, so a
//! holder on this host that died can be taken over at once; elsewhere its lease must expire.

use crate::os::process::{hostname, is_swarm_process};
use std::time::Duration;

/// How long a lease lasts without renewal; an orchestrator that died is taken over after this.
pub const LEASE_TTL: Duration = Duration::from_secs(30);

/// A lease token that says who holds it: `host:pid:random`.
pub fn lease_token() -> String {
    format!("{}:{}:{:08x}", hostname(), std::process::id(), fastrand::u32(..))
}

/// Whether the holder of lease `token` (see [`lease_token`]) is known dead: it ran on this host
/// and its pid is no live swarm process. A holder elsewhere is never known dead; its lease must
/// expire.
pub fn lease_holder_dead(token: &str) -> bool {
    let mut parts = token.rsplitn(3, ':');
    let (Some(_), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else { return false };
    host == hostname()
        && pid.parse().is_ok_and(|pid: u32| pid != std::process::id() && !is_swarm_process(pid))
}
