//! One command under a deadline, the way setup commands and agent pre-steps run: its own
//! process group, its output's tail kept, the whole group stopped (SIGTERM, then SIGKILL after
//! the grace period) at the deadline or on a stop request, and whatever it left in its group
//! killed when it exits.

use crate::job::StopRequest;
use crate::os::process::signal_group;
use nix::sys::signal::Signal;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::watch;

/// Why a bounded command did not run to its end.
pub enum Bounded {
    Spawn(std::io::Error),
    TimedOut,
    Stopped,
}

/// `sh -c CMD` in `dir` with `env` added to swarm's own environment.
pub fn sh(cmd: &str, dir: &Path, env: &[(&str, String)]) -> Command {
    let mut command = Command::new("/bin/sh");
    command.arg("-c").arg(cmd).current_dir(dir).envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    command
}

/// Runs `command` in its own process group, its output (stdout and stderr, the last 64 KiB)
/// returned; the whole group is stopped (SIGTERM, then SIGKILL after `grace`) at `timeout` or on
/// a stop request.
pub async fn run_bounded(
    mut command: Command,
    timeout: Duration,
    grace: Duration,
    stop: &mut watch::Receiver<StopRequest>,
) -> Result<(std::process::ExitStatus, String), Bounded> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(Bounded::Spawn)?;
    let pgid = child.id().unwrap_or(0);
    // Output is read on the side: a command that leaves a process holding its pipes open must
    // not keep us waiting once it exited.
    let output = Arc::new(Mutex::new(Vec::new()));
    let readers: Vec<_> = [
        child.stdout.take().map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        child.stderr.take().map(|e| Box::new(e) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    .map(|mut pipe| {
        let output = output.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut buf).await {
                let mut kept = output.lock().expect("output");
                kept.extend_from_slice(&buf[..n]);
                let over = kept.len().saturating_sub(64 * 1024);
                kept.drain(..over);
            }
        })
    })
    .collect();
    let text =
        |output: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&output.lock().expect("output")).into_owned();
    let stopped = async {
        loop {
            if stop.changed().await.is_err() || *stop.borrow() != StopRequest::None {
                return;
            }
        }
    };
    let why = tokio::select! {
        status = child.wait() => {
            if pgid != 0 {
                signal_group(pgid, Signal::SIGKILL); // whatever it left behind in its group
            }
            for r in readers {
                let _ = tokio::time::timeout(Duration::from_millis(200), r).await;
            }
            return status.map(|s| (s, text(&output))).map_err(Bounded::Spawn);
        }
        _ = tokio::time::sleep(timeout) => Bounded::TimedOut,
        _ = stopped => Bounded::Stopped,
    };
    let kill_now = matches!(why, Bounded::Stopped) && *stop.borrow() == StopRequest::Kill;
    crate::os::process::terminate_group(pgid, &mut child, grace, kill_now, stop).await;
    Err(why)
}
