//! Process-group helpers: liveness and signalling of whole attempt trees.

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// Whether any process of group `pgid` is still alive. Zombies do not count: `killpg` still finds
/// exited members nobody has reaped yet (orphans wait for init, which may reap late or never, e.g.
/// when swarm is PID 1 in a container), and waiting for them would only burn the grace period.
pub fn group_alive(pgid: u32) -> bool {
    if matches!(killpg(Pid::from_raw(pgid as i32), None), Err(Errno::ESRCH)) {
        return false;
    }
    live_member(pgid).unwrap_or(true)
}

/// Whether `/proc` lists a non-zombie member of group `pgid`; `None` without a readable `/proc`.
fn live_member(pgid: u32) -> Option<bool> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let mut fields = stat.rfind(')').map_or("", |i| &stat[i + 1..]).split_whitespace();
        let (Some(state), Some(pgrp)) = (fields.next(), fields.nth(1)) else { continue };
        if pgrp.parse() == Ok(pgid) && !matches!(state, "Z" | "X" | "x") {
            return Some(true);
        }
    }
    Some(false)
}

/// Sends `sig` to the whole group; a group that is already gone is fine.
pub fn signal_group(pgid: u32, sig: Signal) {
    let _ = killpg(Pid::from_raw(pgid as i32), sig);
}

pub fn pid_alive(pid: u32) -> bool {
    !matches!(kill(Pid::from_raw(pid as i32), None), Err(Errno::ESRCH))
}

/// Whether `pid` is alive and looks like a swarm orchestrator (guards against pid reuse).
pub fn is_swarm_process(pid: u32) -> bool {
    if !pid_alive(pid) {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmd) => cmd.split(|b| *b == 0).next().is_some_and(|argv0| {
            String::from_utf8_lossy(argv0).rsplit('/').next().is_some_and(|name| name.starts_with("swarm"))
        }),
        Err(_) => true,
    }
}

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

pub fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into())
}

/// How the orchestrator recorded as a run's owner stands, seen from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerStatus {
    /// On this host, its pid is a live swarm process.
    AliveHere,
    /// On this host, and gone: its attempts can be reaped and its lease taken at once.
    DeadHere,
    /// On another host, heartbeat fresher than a lease lasts.
    FreshElsewhere,
    /// On another host, silent for longer than a lease lasts.
    StaleElsewhere,
}

impl OwnerStatus {
    pub fn is_alive(self) -> bool {
        matches!(self, OwnerStatus::AliveHere | OwnerStatus::FreshElsewhere)
    }
}

pub fn owner_status(owner: &swarm_core::report::Owner) -> OwnerStatus {
    if owner.host == hostname() {
        if is_swarm_process(owner.pid) && owner.pid != std::process::id() {
            OwnerStatus::AliveHere
        } else {
            OwnerStatus::DeadHere
        }
    } else if (chrono::Utc::now() - owner.heartbeat_at).to_std().unwrap_or_default() < crate::LEASE_TTL {
        OwnerStatus::FreshElsewhere
    } else {
        OwnerStatus::StaleElsewhere
    }
}
