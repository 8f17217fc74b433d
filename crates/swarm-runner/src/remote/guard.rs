//! A worker's agents die with it. Each worker starts a guard: a small process of its own
//! (`swarm worker-guard`, in its own process group, so a terminal's signals leave it alone)
//! that the worker tells, over a pipe, which attempts run. When the worker ends in any way —
//! kill -9 included — the pipe closes, and the guard ends every process of the attempts still
//! open (each carries its attempt's marker, detached ones too; see `os::reaper`), then exits.
//! A pipe's end is what the kernel guarantees on a process's death; PR_SET_PDEATHSIG fires on
//! the death of the spawning *thread*, which a runtime's thread pool does not keep alive.

use crate::os::reaper::{self, Marker, Scope};
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// How long the guard gives an attempt's processes between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

/// The worker's end of the pipe to its guard.
pub struct Guard {
    pipe: Mutex<Option<ChildStdin>>,
}

impl Guard {
    /// Starts `swarm_bin worker-guard`.
    pub fn start(swarm_bin: &Path) -> std::io::Result<Guard> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(swarm_bin)
            .arg("worker-guard")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()?;
        let pipe = child.stdin.take();
        // Not waited on: it outlives this process by design (and is reaped by init then).
        std::mem::forget(child);
        Ok(Guard { pipe: Mutex::new(pipe) })
    }

    /// A guard that guards nothing (it could not start).
    pub fn none() -> Guard {
        Guard { pipe: Mutex::new(None) }
    }

    pub fn open(&self, m: &Marker) {
        self.say('+', m);
    }

    pub fn close(&self, m: &Marker) {
        self.say('-', m);
    }

    fn say(&self, sign: char, m: &Marker) {
        let mut pipe = self.pipe.lock().expect("guard");
        let line =
            format!("{sign}{}\t{}\t{}\n", m.run_id, m.task.as_deref().unwrap_or(""), m.attempt.unwrap_or(0));
        if let Some(p) = pipe.as_mut() {
            if p.write_all(line.as_bytes()).and_then(|()| p.flush()).is_err() {
                *pipe = None;
            }
        }
    }
}

/// The guard's life: it remembers the open attempts its worker names on stdin and, when stdin
/// ends, ends their processes.
pub fn guard_main() -> i32 {
    let mut open: Vec<Marker> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (sign, rest) = line.split_at(line.len().min(1));
        let mut parts = rest.split('\t');
        let (Some(run), Some(task), Some(n)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let marker = Marker::attempt(run, task, n.parse().unwrap_or(0));
        match sign {
            "+" => open.push(marker),
            "-" => open.retain(|m| *m != marker),
            _ => {}
        }
    }
    for m in &open {
        reaper::end(m, Scope::All, GRACE);
    }
    0
}
