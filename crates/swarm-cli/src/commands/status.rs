//! `swarm status` and `swarm runs`: read-only views of runs, safe while a run is live.

use crate::cli::{RunsArgs, StatusArgs};
use crate::error::{CliError, CliResult};
use crate::project::Project;
use std::path::Path;

pub fn status(store: Option<&str>, config: Option<&Path>, args: StatusArgs) -> CliResult {
    let project = Project::discover(store, config)?;
    let engine = project.engine(project.open_store()?)?;
    let (record, report) = engine.record(args.run.as_deref()).map_err(CliError::from_engine)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
    } else {
        print!("{}", crate::render::status(&report, &record));
    }
    Ok(0)
}

pub fn runs(store: Option<&str>, config: Option<&Path>, args: RunsArgs) -> CliResult {
    let project = Project::discover(store, config)?;
    let engine = project.engine(project.open_store()?)?;
    let runs = engine.runs(args.limit).map_err(CliError::from_engine)?;
    if args.json {
        let rows: Vec<_> = runs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "run_id": r.run_id, "plan": r.plan, "namespace": r.namespace, "state": r.state,
                    "started_at": r.started_at, "ended_at": r.ended_at, "tasks": r.spec.tasks.len(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows).expect("rows serialize"));
    } else {
        print!("{}", crate::render::runs(&runs));
    }
    Ok(0)
}
