//! Nothing outlives a run. swarm makes itself a child subreaper, so whatever an agent detaches
//! (`setsid`, a double fork, a daemon such as cline's hub) re-parents to swarm rather than to
//! init; and every process of an attempt carries the attempt's marker in its environment
//! (`SWARM_RUN_ID`, `SWARM_TASK_ID`, `SWARM_ATTEMPT`). An attempt's leftovers are found by that
//! marker — among swarm's own descendants while it runs, among all processes when `resume` or
//! `cancel` clean up after an orchestrator that died — and ended: SIGTERM, SIGKILL after the
//! grace period. A bare stored pid is never signalled without checking whose it is.

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Makes this process the reaper of its orphaned descendants. Idempotent; false when the
/// kernel refused (then detached processes re-parent to init and only the scan of all
/// processes at the run's end finds them).
pub fn become_subreaper() -> bool {
    nix::sys::prctl::set_child_subreaper(true).is_ok()
}

/// Which processes belong to a run, or to one attempt of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub run_id: String,
    pub task: Option<String>,
    pub attempt: Option<u32>,
}

impl Marker {
    pub fn run(run_id: &str) -> Marker {
        Marker { run_id: run_id.into(), task: None, attempt: None }
    }

    pub fn attempt(run_id: &str, task: &str, attempt: u32) -> Marker {
        Marker { run_id: run_id.into(), task: Some(task.into()), attempt: Some(attempt) }
    }

    /// The environment entries that make a process part of the attempt.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("SWARM_RUN_ID", self.run_id.clone())];
        if let Some(t) = &self.task {
            env.push(("SWARM_TASK_ID", t.clone()));
        }
        if let Some(a) = self.attempt {
            env.push(("SWARM_ATTEMPT", a.to_string()));
        }
        env
    }

    /// Whether an environment block (`/proc/PID/environ`: NUL-separated `K=V`) carries it.
    fn matches(&self, environ: &[u8]) -> bool {
        let wanted = self.env();
        let mut found = 0;
        for entry in environ.split(|b| *b == 0) {
            if wanted.iter().any(|(k, v)| {
                entry.len() == k.len() + 1 + v.len()
                    && entry.starts_with(k.as_bytes())
                    && entry[k.len()] == b'='
                    && entry.ends_with(v.as_bytes())
            }) {
                found += 1;
            }
        }
        found == wanted.len()
    }
}

/// One process as `/proc/PID/stat` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Proc {
    ppid: u32,
    /// Start time in clock ticks after boot: with the pid, names one process for good.
    start: u64,
    zombie: bool,
}

fn stat(pid: u32) -> Option<Proc> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
    // stime cutime cstime priority nice threads itrealvalue starttime …`; comm may hold anything.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Proc {
        ppid: fields.get(1)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
        zombie: matches!(*fields.first()?, "Z" | "X" | "x"),
    })
}

fn table() -> HashMap<u32, Proc> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Some(p) = stat(pid) {
            out.insert(pid, p);
        }
    }
    out
}

/// `roots` and everything below them.
fn with_descendants(table: &HashMap<u32, Proc>, roots: impl IntoIterator<Item = u32>) -> HashSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, p) in table {
        children.entry(p.ppid).or_default().push(*pid);
    }
    let mut out = HashSet::new();
    let mut stack: Vec<u32> = roots.into_iter().collect();
    while let Some(pid) = stack.pop() {
        if out.insert(pid) {
            stack.extend(children.get(&pid).into_iter().flatten());
        }
    }
    out
}

fn carries_in(pid: u32, marker: &Marker) -> bool {
    std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| marker.matches(&env))
}

/// Whether live process `pid` carries `marker`: the check before signalling a stored pid.
pub fn carries(pid: u32, marker: &Marker) -> bool {
    pid != 0 && stat(pid).is_some_and(|p| !p.zombie) && carries_in(pid, marker)
}

/// Where to look for a marker's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This process's descendants (the orchestrator's own attempts and what they detached).
    Mine,
    /// Every process readable here (after the orchestrator that started them died).
    All,
}

/// Live processes carrying `marker` (and their descendants, marked or not), never this process
/// or one of its ancestors. Identified by pid and start time.
fn find(marker: &Marker, scope: Scope) -> Vec<(u32, u64)> {
    find_each(std::slice::from_ref(marker), scope).pop().unwrap_or_default()
}

/// [`find`] for several markers with one look at the process table.
pub(crate) fn find_each(markers: &[Marker], scope: Scope) -> Vec<Vec<(u32, u64)>> {
    let table = table();
    let me = std::process::id();
    let mut ancestors = HashSet::new();
    let mut cur = me;
    while let Some(p) = table.get(&cur) {
        ancestors.insert(cur);
        if p.ppid == 0 || !ancestors.insert(p.ppid) {
            break;
        }
        cur = p.ppid;
    }
    let pool: Vec<u32> = match scope {
        Scope::Mine => with_descendants(&table, [me]).into_iter().collect(),
        Scope::All => table.keys().copied().collect(),
    };
    // Each environment is read once, whatever the number of markers.
    let environs: Vec<(u32, Vec<u8>)> = pool
        .into_iter()
        .filter(|pid| !ancestors.contains(pid) && table.get(pid).is_some_and(|p| !p.zombie))
        .filter_map(|pid| std::fs::read(format!("/proc/{pid}/environ")).ok().map(|env| (pid, env)))
        .collect();
    markers
        .iter()
        .map(|marker| {
            let marked = environs.iter().filter(|(_, env)| marker.matches(env)).map(|(pid, _)| *pid);
            with_descendants(&table, marked)
                .into_iter()
                .filter(|pid| !ancestors.contains(pid))
                .filter_map(|pid| table.get(&pid).filter(|p| !p.zombie).map(|p| (pid, p.start)))
                .collect()
        })
        .collect()
}

/// Whether the process `(pid, start)` still runs (a zombie does not).
pub(crate) fn still_there((pid, start): (u32, u64)) -> bool {
    stat(pid).is_some_and(|p| p.start == start && !p.zombie)
}

/// Signals `(pid, start)` if it is still that process.
pub(crate) fn signal(target: (u32, u64), sig: Signal) {
    if still_there(target) {
        let _ = kill(Pid::from_raw(target.0 as i32), sig);
    }
}

/// Reaps `pid` if it is a zombie child of this process (an orphan swarm inherited as subreaper;
/// swarm's own spawned children are never among the marked leftovers it ends).
pub(crate) fn reap(pid: u32) {
    if stat(pid).is_some_and(|p| p.zombie && p.ppid == std::process::id()) {
        let _ = waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG));
    }
}

/// What [`end`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// Processes found carrying the marker (or below one that did).
    pub found: usize,
    /// Of those, how many needed SIGKILL after the grace period.
    pub killed: usize,
}

/// Ends every process of `marker` in `scope`: SIGTERM (and SIGCONT, so stopped ones hear it),
/// then SIGKILL whatever is left after `grace`, including processes forked meanwhile. Blocking:
/// call it off the dispatcher's loop.
pub fn end(marker: &Marker, scope: Scope, grace: Duration) -> Ended {
    let mut targets: HashSet<(u32, u64)> = find(marker, scope).into_iter().collect();
    if targets.is_empty() {
        return Ended::default();
    }
    for t in &targets {
        signal(*t, Signal::SIGTERM);
        signal(*t, Signal::SIGCONT);
    }
    let deadline = Instant::now() + grace;
    let mut killed = 0;
    loop {
        // A process forked while the others wind down belongs to the attempt just the same.
        for t in find(marker, scope) {
            if targets.insert(t) {
                signal(t, Signal::SIGTERM);
                signal(t, Signal::SIGCONT);
            }
        }
        let left: Vec<(u32, u64)> = targets.iter().copied().filter(|t| still_there(*t)).collect();
        for (pid, _) in targets.iter().filter(|t| !still_there(**t)) {
            reap(*pid);
        }
        if left.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            killed = left.len();
            for t in &left {
                signal(*t, Signal::SIGKILL);
            }
            // SIGKILL cannot be ignored: wait (briefly) until the kernel took them down.
            let until = Instant::now() + Duration::from_secs(2);
            while targets.iter().any(|t| still_there(*t)) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            for (pid, _) in &targets {
                reap(*pid);
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ended { found: targets.len(), killed }
}

/// Sends `sig` to the process group `pgid`, but only if its leader still carries `marker`: a
/// stored pid may belong to an unrelated process by now. Returns whether it was signalled.
pub fn signal_group_of(pgid: u32, marker: &Marker, sig: Signal) -> bool {
    if !carries(pgid, marker) {
        return false;
    }
    !matches!(nix::sys::signal::killpg(Pid::from_raw(pgid as i32), sig), Err(Errno::ESRCH))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn markers_match_whole_entries_only() {
        let m = Marker::attempt("r1", "t", 2);
        assert!(m.matches(b"A=1\0SWARM_RUN_ID=r1\0SWARM_TASK_ID=t\0SWARM_ATTEMPT=2\0"));
        assert!(!m.matches(b"SWARM_RUN_ID=r1\0SWARM_TASK_ID=t\0SWARM_ATTEMPT=22\0"));
        assert!(!m.matches(b"SWARM_RUN_ID=r10\0SWARM_TASK_ID=t\0SWARM_ATTEMPT=2\0"));
        assert!(!m.matches(b"SWARM_RUN_ID=r1\0SWARM_TASK_ID=t\0"));
        assert!(Marker::run("r1").matches(b"SWARM_RUN_ID=r1\0SWARM_TASK_ID=x\0"));
        assert!(!Marker::run("r1").matches(b"XSWARM_RUN_ID=r1\0"));
    }

    #[test]
    fn a_detached_marked_process_is_found_and_ended_and_an_unmarked_one_is_left_alone() {
        become_subreaper();
        let run = format!("reaper-test-{}", std::process::id());
        let marker = Marker::attempt(&run, "t", 1);
        // A double fork into a new session that ignores SIGTERM: only SIGKILL ends it.
        let out = Command::new("/bin/sh")
            .args([
                "-c",
                "setsid sh -c 'trap \"\" TERM; while :; do sleep 1; done' >/dev/null 2>&1 & echo $!",
            ])
            .envs(marker.env())
            .output()
            .unwrap();
        let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let mut other = Command::new("sleep").arg("30").spawn().unwrap();
        // Its environment reads empty while it is between fork and exec: wait that out.
        let until = Instant::now() + Duration::from_secs(5);
        while !carries(pid, &marker) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(carries(pid, &marker));
        assert!(!carries(other.id(), &marker));
        // Once its loop runs (it has a `sleep` child), its trap is in place.
        let until = Instant::now() + Duration::from_secs(10);
        while find(&marker, Scope::Mine).len() < 2 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let ended = end(&marker, Scope::Mine, Duration::from_millis(200));
        assert!(ended.found >= 1 && ended.killed >= 1, "{ended:?}");
        assert!(stat(pid).is_none_or(|p| p.zombie), "the detached process is gone (and reaped)");
        assert!(other.try_wait().unwrap().is_none(), "an unmarked process lives on");
        assert!(!signal_group_of(other.id(), &marker, Signal::SIGKILL), "not signalled: no marker");
        other.kill().unwrap();
        other.wait().unwrap();
    }
}
