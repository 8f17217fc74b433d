//! Process-group helpers: liveness and signalling of whole attempt trees.

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Whether any process of group `pgid` is still alive.
pub fn group_alive(pgid: u32) -> bool {
    !matches!(killpg(Pid::from_raw(pgid as i32), None), Err(Errno::ESRCH))
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
