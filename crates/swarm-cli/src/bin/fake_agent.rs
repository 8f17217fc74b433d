//! fake-agent: a stand-in agent process for tests and rehearsals. Flags, applied in order:
//!   --print N          print N numbered lines to stdout
//!   --stderr TEXT      print TEXT to stderr
//!   --write PATH=TEXT  write a file
//!   --sleep DUR        sleep (e.g. 500ms, 3s)
//!   --ignore-term      ignore SIGTERM from now on
//!   --grandchild FILE  fork a grandchild that sleeps for an hour; its pid goes to FILE
//!   --daemon FILE      double-fork a daemon in a new session (it keeps ignoring SIGTERM if
//!                      --ignore-term came first) that sleeps for an hour; its pid goes to FILE
//!   --pidfile FILE     write our own pid to FILE
//!   --fail-first N FILE  exit 1 on the first N runs (counted in FILE), then continue
//!   --spam DUR         print lines as fast as possible for DUR
//!   --garbage          print invalid UTF-8 and a truncated JSON line
//!   --exit CODE        exit with CODE (default 0 at the end)

use std::io::Write;
use std::time::{Duration, Instant};

fn dur(s: &str) -> Duration {
    if let Some(ms) = s.strip_suffix("ms") {
        Duration::from_millis(ms.parse().expect("ms"))
    } else if let Some(sec) = s.strip_suffix('s') {
        Duration::from_secs_f64(sec.parse().expect("seconds"))
    } else {
        Duration::from_secs_f64(s.parse().expect("seconds"))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let next = |i: &mut usize| {
        *i += 1;
        args.get(*i).cloned().unwrap_or_else(|| panic!("missing value for {}", args[*i - 1]))
    };
    while i < args.len() {
        match args[i].as_str() {
            "--print" => {
                let n: usize = next(&mut i).parse().expect("count");
                let mut out = std::io::stdout().lock();
                for k in 1..=n {
                    let _ = writeln!(out, "line {k}");
                }
                let _ = out.flush();
            }
            "--stderr" => eprintln!("{}", next(&mut i)),
            "--write" => {
                let spec = next(&mut i);
                let (path, text) = spec.split_once('=').expect("PATH=TEXT");
                std::fs::write(path, text).expect("write file");
            }
            "--sleep" => std::thread::sleep(dur(&next(&mut i))),
            "--ignore-term" => unsafe {
                nix::sys::signal::signal(
                    nix::sys::signal::Signal::SIGTERM,
                    nix::sys::signal::SigHandler::SigIgn,
                )
                .expect("ignore SIGTERM");
            },
            "--grandchild" => {
                let file = next(&mut i);
                let child =
                    std::process::Command::new("sleep").arg("3600").spawn().expect("spawn grandchild");
                std::fs::write(&file, child.id().to_string()).expect("write grandchild pid");
                std::mem::forget(child);
            }
            "--daemon" => {
                let file = next(&mut i);
                daemon(&file);
            }
            "--pidfile" => std::fs::write(next(&mut i), std::process::id().to_string()).expect("pidfile"),
            "--fail-first" => {
                let n: u32 = next(&mut i).parse().expect("count");
                let file = next(&mut i);
                let seen: u32 =
                    std::fs::read_to_string(&file).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
                std::fs::write(&file, (seen + 1).to_string()).expect("counter");
                if seen < n {
                    eprintln!("failing on purpose ({} of {n})", seen + 1);
                    std::process::exit(1);
                }
            }
            "--spam" => {
                let until = Instant::now() + dur(&next(&mut i));
                let mut out = std::io::stdout().lock();
                let mut k = 0u64;
                while Instant::now() < until {
                    k += 1;
                    if writeln!(out, "spam {k} lorem ipsum dolor sit amet").is_err() {
                        break;
                    }
                }
            }
            "--garbage" => {
                let mut out = std::io::stdout().lock();
                let _ = out
                    .write_all(b"\xff\xfe not utf8 \xc3\x28\n{\"type\":\"step_finish\",\"tokens\":{\"inp\n");
                let _ = out.flush();
            }
            "--exit" => std::process::exit(next(&mut i).parse().expect("exit code")),
            other => {
                eprintln!("fake-agent: unknown flag {other}");
                std::process::exit(64);
            }
        }
        i += 1;
    }
}

/// The classic double fork: the daemon ends up in its own session, its parent gone, so neither
/// the process group nor the parent chain ties it to the attempt any more.
fn daemon(file: &str) {
    use nix::unistd::{fork, setsid, ForkResult};
    // Safety: single-threaded here; the children only call async-signal-safe functions and
    // `std::fs::write` before sleeping or exiting.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Parent { child } => {
            let _ = nix::sys::wait::waitpid(child, None);
            // Return only once the daemon has written its pid.
            let until = Instant::now() + Duration::from_secs(5);
            while std::fs::read_to_string(file).map_or(true, |s| s.trim().is_empty())
                && Instant::now() < until
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        ForkResult::Child => {
            let _ = setsid();
            match unsafe { fork() }.expect("fork") {
                ForkResult::Parent { .. } => std::process::exit(0),
                ForkResult::Child => {
                    let tmp = format!("{file}.tmp");
                    std::fs::write(&tmp, std::process::id().to_string()).expect("daemon pid");
                    std::fs::rename(&tmp, file).expect("daemon pid");
                    std::thread::sleep(Duration::from_secs(3600));
                    std::process::exit(0);
                }
            }
        }
    }
}
