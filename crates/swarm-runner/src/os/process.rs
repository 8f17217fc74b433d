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
    } else if (chrono::Utc::now() - owner.heartbeat_at).to_std().unwrap_or_default()
        < crate::os::lease::LEASE_TTL
    {
        OwnerStatus::FreshElsewhere
    } else {
        OwnerStatus::StaleElsewhere
    }
}

/// Blocks the signals swarm handles elsewhere (SIGCHLD, SIGINT, SIGTERM, SIGHUP) in the calling
/// thread, so they are delivered to the runtime's threads instead.
pub fn block_signals() {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGCHLD, Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
}

/// Ends process group `pgid` led by `child`: SIGTERM (SIGKILL at once with `kill_now`), up to
/// `grace` for the whole group to go, then SIGKILL; a kill request on `stop` meanwhile kills at
/// once (a second Ctrl-C). The leader's exit status.
pub async fn terminate_group(
    pgid: u32,
    child: &mut tokio::process::Child,
    grace: std::time::Duration,
    kill_now: bool,
    stop: &mut tokio::sync::watch::Receiver<crate::job::StopRequest>,
) -> Option<std::process::ExitStatus> {
    if pgid == 0 {
        return child.wait().await.ok();
    }
    let mut status = child.try_wait().ok().flatten();
    if status.is_none() || group_alive(pgid) {
        if kill_now {
            signal_group(pgid, Signal::SIGKILL);
        } else {
            signal_group(pgid, Signal::SIGTERM);
            signal_group(pgid, Signal::SIGCONT);
        }
        let grace_end = std::time::Instant::now() + grace;
        let kill_asked = async {
            loop {
                match stop.changed().await {
                    // Nobody can ask any more: the grace period decides.
                    Err(_) => std::future::pending::<()>().await,
                    Ok(()) if *stop.borrow() == crate::job::StopRequest::Kill => return,
                    Ok(()) => {}
                }
            }
        };
        tokio::pin!(kill_asked);
        let mut killed = kill_now;
        loop {
            if status.is_none() {
                status = child.try_wait().ok().flatten();
            }
            if status.is_some() && !group_alive(pgid) {
                break;
            }
            if std::time::Instant::now() >= grace_end {
                signal_group(pgid, Signal::SIGKILL);
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
                _ = &mut kill_asked, if !killed => {
                    killed = true;
                    signal_group(pgid, Signal::SIGKILL);
                }
            }
        }
    }
    match status {
        Some(s) => Some(s),
        None => child.wait().await.ok(),
    }
}
