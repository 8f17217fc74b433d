//! `swarm logs RUN TASK [-f]`: an attempt's captured output.

use crate::cli::LogsArgs;
use crate::error::{CliError, CliResult};
use crate::project::Project;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

pub fn logs(store: Option<&str>, config: Option<&Path>, args: LogsArgs) -> CliResult {
    let project = Project::discover(store, config)?;
    let engine = project.engine(project.open_store()?)?;
    let find = || engine.task_log(&args.run, &args.task, args.attempt).map_err(CliError::from_engine);
    let mut log = find()?;
    if log.path.is_none() && !args.follow {
        eprintln!("task `{}` has not started yet", args.task);
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    let mut offset = 0u64;
    // Where the run's feed was read to, for an attempt whose log is on another host.
    let mut fed = "0-0".to_string();
    let mut last_check = Instant::now();
    loop {
        match &log.path {
            Some(path) if elsewhere(path) => {
                let said = engine.feed_output(&log.run_id, (&log.task_id, log.attempt), &fed);
                if let Some((lines, after)) = said.map_err(CliError::from_engine)? {
                    fed = after;
                    lines.iter().try_for_each(|l| writeln!(out, "{l}")).map_err(CliError::other)?;
                }
            }
            // No file: the attempt has printed nothing (logs are created on first output).
            Some(path) => offset += copy_from(path, offset, &mut out)?,
            None => {}
        }
        let over = || engine.run_over(&log.run_id);
        if !args.follow || (log.ended && log.path.is_some()) || (log.path.is_none() && over()) {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
        if last_check.elapsed() > Duration::from_millis(300) {
            last_check = Instant::now();
            let mut now = find()?;
            if now.attempt != log.attempt && args.attempt.is_none() && log.path.is_some() {
                // A new attempt started: drain the old log first, then move on.
                if let Some(path) = &log.path {
                    let _ = copy_from(path, offset, &mut out);
                }
                let _ = writeln!(out, "--- attempt {} ---", now.attempt);
                (offset, fed) = (0, "0-0".into());
            }
            now.ended |= !now.ended && over();
            log = now;
        }
    }
}

/// Whether the attempt's log lies on another host: not even its directory is here (an attempt
/// a worker ran on a host without the run's checkout). Its output is read from the run's feed.
fn elsewhere(path: &Path) -> bool {
    path.parent().is_some_and(|dir| !dir.is_dir())
}

/// Writes what `path` holds past `offset` to `out`; how many bytes.
fn copy_from(path: &Path, offset: u64, out: &mut impl Write) -> CliResult<u64> {
    let Ok(mut f) = std::fs::File::open(path) else { return Ok(0) };
    f.seek(SeekFrom::Start(offset)).map_err(CliError::other)?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).map_err(CliError::other)?;
    out.write_all(&buf).map_err(CliError::other)?;
    out.flush().map_err(CliError::other)?;
    Ok(buf.len() as u64)
}
