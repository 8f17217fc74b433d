//! `swarm logs RUN TASK [-f]`: an attempt's captured output.

use crate::cli::LogsArgs;
use crate::error::{CliError, CliResult};
use crate::project::Project;
use anyhow::anyhow;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};
use swarm_core::state::RunState;

pub fn logs(store: Option<&str>, config: Option<&Path>, args: LogsArgs) -> CliResult {
    let project = Project::discover(store, config)?;
    let store = project.open_store()?;
    let run_id = store.resolve(Some(&args.run)).map_err(CliError::from_store)?;
    let find = || -> CliResult<(Option<String>, bool, u32)> {
        let tasks = store.tasks(&run_id).map_err(CliError::from_store)?;
        let task = tasks.iter().find(|t| t.id == args.task).ok_or_else(|| {
            let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
            CliError::invalid(anyhow!("run {run_id} has no task `{}` (tasks: {})", args.task, ids.join(", ")))
        })?;
        let attempt = match args.attempt {
            Some(n) => task.attempts.iter().find(|a| a.n == n),
            None => task.attempts.last(),
        };
        Ok(match attempt {
            Some(a) => (a.log.clone(), a.ended_at.is_some(), a.n),
            None => (None, false, 0),
        })
    };
    let run_over = || store.run(&run_id).ok().flatten().is_none_or(|r| r.state != RunState::Running);
    let (mut log, mut ended, mut n) = find()?;
    if log.is_none() && !args.follow {
        if let Some(a) = args.attempt {
            return Err(CliError::invalid(anyhow!("task `{}` has no attempt {a}", args.task)));
        }
        eprintln!("task `{}` has not started yet", args.task);
        return Ok(0);
    }
    let mut offset = 0u64;
    let mut out = std::io::stdout().lock();
    let mut last_check = Instant::now();
    loop {
        if let Some(path) = &log {
            if let Ok(mut f) = std::fs::File::open(path) {
                f.seek(SeekFrom::Start(offset)).map_err(CliError::other)?;
                let mut buf = Vec::new();
                f.read_to_end(&mut buf).map_err(CliError::other)?;
                offset += buf.len() as u64;
                out.write_all(&buf).map_err(CliError::other)?;
                out.flush().map_err(CliError::other)?;
            }
            // No file: the attempt has printed nothing (logs are created on first output).
        }
        if !args.follow || (ended && log.is_some()) || (log.is_none() && run_over()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if last_check.elapsed() > Duration::from_millis(300) {
            last_check = Instant::now();
            let (l, e, new_n) = find()?;
            if new_n != n && args.attempt.is_none() && log.is_some() {
                // A new attempt started: drain the old log first, then move on.
                if let Some(path) = &log {
                    if let Ok(mut f) = std::fs::File::open(path) {
                        let _ = f.seek(SeekFrom::Start(offset));
                        let mut buf = Vec::new();
                        let _ = f.read_to_end(&mut buf);
                        let _ = out.write_all(&buf);
                    }
                }
                let _ = writeln!(out, "--- attempt {new_n} ---");
                offset = 0;
            }
            (log, ended, n) = (l, e, new_n);
            if !ended && run_over() {
                ended = true;
            }
        }
    }
    Ok(0)
}
