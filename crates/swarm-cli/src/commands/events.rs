//! `swarm events [RUN] [-f] [--json]`: a run's recorded events, from either store.

use crate::cli::EventsArgs;
use crate::error::{CliError, CliResult};
use crate::project::Project;
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use swarm_core::event::{Event, EventKind};
use swarm_runner::Followed;

pub fn events(store: Option<&str>, config: Option<&Path>, args: EventsArgs) -> CliResult {
    let project = Project::discover(store, config)?;
    let engine = project.engine(project.open_store()?)?;
    let mut follow = engine.follow(args.run.as_deref(), 0).map_err(CliError::from_engine)?;
    let mut out = std::io::stdout().lock();
    loop {
        // Without -f: what is stored now, then done.
        let wait = if args.follow { Duration::from_secs(1) } else { Duration::ZERO };
        let batch = match follow.next(wait).map_err(CliError::from_engine)? {
            Followed::Events(batch) => batch,
            Followed::Idle if args.follow => continue,
            Followed::Idle | Followed::Ended => return Ok(0),
        };
        for (seq, ev) in &batch {
            let line = if args.json {
                serde_json::to_string(ev).expect("events serialize")
            } else {
                human(*seq, ev)
            };
            if writeln!(out, "{line}").is_err() {
                return Ok(0); // reader went away (e.g. `| head`)
            }
        }
        let _ = out.flush();
    }
}

fn human(seq: u64, ev: &Event) -> String {
    let what = match &ev.kind {
        EventKind::RunStarted { plan, tasks, concurrency, resumed, .. } => {
            format!(
                "run {} plan {plan}: {tasks} tasks, concurrency {concurrency}",
                if *resumed { "resumed" } else { "started" }
            )
        }
        EventKind::TaskState { task, state, reason, detail } => format!(
            "{task} {state}{}{}",
            reason.map(|r| format!(" ({r})")).unwrap_or_default(),
            detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
        ),
        EventKind::AttemptStarted { task, attempt, agent, model, pid } => format!(
            "{task} attempt {attempt} started ({agent}{}{})",
            model.as_deref().map(|m| format!(", {m}")).unwrap_or_default(),
            pid.map(|p| format!(", pid {p}")).unwrap_or_default()
        ),
        EventKind::AttemptFinished { task, attempt, exit_code, reason, detail } => format!(
            "{task} attempt {attempt} ended{}{}{}",
            exit_code.map(|c| format!(" with exit code {c}")).unwrap_or_default(),
            reason.map(|r| format!(" ({r})")).unwrap_or_default(),
            detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
        ),
        EventKind::RetryScheduled { task, next_attempt, delay_ms } => {
            format!("{task} attempt {next_attempt} in {:.1}s", *delay_ms as f64 / 1000.0)
        }
        EventKind::CancelRequested { source } => format!("cancel requested ({source})"),
        EventKind::Warning { message } => format!("warning: {message}"),
        EventKind::RunFinished { state, succeeded, failed, blocked, cancelled } => format!(
            "run {state}: {succeeded} succeeded, {failed} failed, {blocked} blocked, {cancelled} cancelled"
        ),
        other => serde_json::to_string(other).unwrap_or_default(),
    };
    format!("{seq:>6} {} {what}", ev.timestamp.format("%H:%M:%S%.3f"))
}
