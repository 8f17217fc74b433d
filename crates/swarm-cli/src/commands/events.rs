//! `swarm events [RUN] [-f] [--json]`: a run's recorded events, from either store.

use crate::cli::EventsArgs;
use crate::error::{CliError, CliResult};
use crate::project::Project;
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use swarm_core::event::{Event, EventKind};
use swarm_core::state::RunState;

pub fn events(store: Option<&str>, config: Option<&Path>, args: EventsArgs) -> CliResult {
    let project = Project::discover(store, config)?;
    let store = project.open_store()?;
    let run_id = store.resolve(args.run.as_deref()).map_err(CliError::from_store)?;
    let mut after = 0;
    let mut out = std::io::stdout().lock();
    loop {
        let batch = store.events(&run_id, after, 1000).map_err(CliError::from_store)?;
        let finished = batch.iter().any(|(_, e)| matches!(e.kind, EventKind::RunFinished { .. }));
        for (seq, ev) in &batch {
            after = *seq;
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
        if batch.len() == 1000 {
            continue;
        }
        if !args.follow || finished {
            return Ok(0);
        }
        let running =
            store.run(&run_id).map_err(CliError::from_store)?.is_some_and(|r| r.state == RunState::Running);
        if !running && store.events(&run_id, after, 1).map_err(CliError::from_store)?.is_empty() {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
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
