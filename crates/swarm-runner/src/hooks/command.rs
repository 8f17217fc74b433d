//! Hook commands: `sh -c CMD` in its own process group with the payload, bounded by the hook
//! timeout and stopped when the run gives up on its hooks.

use super::{HookKind, HookResult, MAX_ENV_PAYLOAD, STDERR_DRAIN, STDERR_TAIL};
use crate::os::process::signal_group;
use nix::sys::signal::Signal;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `sh -c CMD` in its own process group, the payload on stdin (plus a newline) and in the
/// environment; killed with its whole group at `timeout`. Whatever the command leaves running in
/// its group is killed when it exits, as for attempts.
pub(super) fn run_command(
    cmd: &str,
    kind: HookKind,
    json: &str,
    timeout: Duration,
    dir: Option<PathBuf>,
    aborted: &AtomicBool,
) -> HookResult {
    if aborted.load(Ordering::Relaxed) {
        return HookResult::Aborted;
    }
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(cmd)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env("SWARM_HOOK_EVENT", kind.as_str());
    if json.len() <= MAX_ENV_PAYLOAD {
        command.env("SWARM_HOOK_PAYLOAD", json);
    } else {
        command.env_remove("SWARM_HOOK_PAYLOAD");
    }
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return HookResult::SpawnFailed { error: e.to_string() },
    };
    let pgid = child.id();
    // On their own threads: a hook that never reads its stdin must not stall the timeout. Both
    // end once the group is gone (a write then fails with EPIPE, a read sees EOF).
    if let Some(mut stdin) = child.stdin.take() {
        let bytes = format!("{json}\n");
        let _ = std::thread::Builder::new().name("swarm-hook-stdin".into()).spawn(move || {
            let _ = stdin.write_all(bytes.as_bytes());
        });
    }
    let stderr = child.stderr.take().map(tail_reader);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if aborted.load(Ordering::Relaxed) => {
                signal_group(pgid, Signal::SIGKILL);
                let _ = child.wait();
                return HookResult::Aborted;
            }
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => std::thread::sleep((deadline - Instant::now()).min(Duration::from_millis(10))),
            Err(e) => {
                signal_group(pgid, Signal::SIGKILL);
                let _ = child.wait();
                return HookResult::SpawnFailed { error: format!("cannot wait for the hook: {e}") };
            }
        }
    };
    // The group outlives its leader as long as any member lives, so its id cannot have been
    // reused for another group in between.
    signal_group(pgid, Signal::SIGKILL);
    let Some(status) = status else {
        let _ = child.wait();
        return HookResult::TimedOut { after: timeout };
    };
    if status.success() {
        return HookResult::Ok;
    }
    let stderr_tail = stderr.map(|rx| rx.recv_timeout(STDERR_DRAIN).unwrap_or_default()).unwrap_or_default();
    HookResult::Exited { code: status.code(), signal: status.signal(), stderr_tail }
}

/// Reads `pipe` to its end on a thread, then sends its last [`STDERR_TAIL`] bytes, trimmed.
fn tail_reader(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let _ = std::thread::Builder::new().name("swarm-hook-stderr".into()).spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut buf) {
            kept.extend_from_slice(&buf[..n]);
            if kept.len() > 2 * STDERR_TAIL {
                kept.drain(..kept.len() - STDERR_TAIL);
            }
        }
        let start = kept.len().saturating_sub(STDERR_TAIL);
        let text = String::from_utf8_lossy(&kept[start..]);
        let _ = tx.send(text.trim().lines().map(str::trim_end).collect::<Vec<_>>().join(" | "));
    });
    rx
}
