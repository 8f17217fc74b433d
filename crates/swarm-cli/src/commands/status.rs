//! `swarm status` and `swarm runs`: read-only views of the store, safe while a run is live.

use crate::cli::{RunsArgs, StatusArgs};
use crate::error::{CliError, CliResult};
use crate::project::Project;
use std::path::Path;
use swarm_core::report::RunReport;

pub fn status(store: Option<&str>, config: Option<&Path>, args: StatusArgs) -> CliResult {
    let project = Project::discover(store, config)?;
    let store = project.open_store()?;
    let run_id = store.resolve(args.run.as_deref()).map_err(CliError::from_store)?;
    let record = store
        .run(&run_id)
        .map_err(CliError::from_store)?
        .ok_or_else(|| CliError::invalid(anyhow::anyhow!("no run `{run_id}`")))?;
    let tasks = store.tasks(&run_id).map_err(CliError::from_store)?;
    let report = RunReport::build(&record, tasks);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
    } else {
        print!("{}", crate::render::status(&report, &record));
    }
    Ok(0)
}

pub fn runs(store: Option<&str>, config: Option<&Path>, args: RunsArgs) -> CliResult {
    let project = Project::discover(store, config)?;
    let store = project.open_store()?;
    let runs = store.runs(args.limit).map_err(CliError::from_store)?;
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
