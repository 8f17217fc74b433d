//! `swarm cancel`: stops a run from any terminal, through the engine (which asks its
//! orchestrator through the store, or closes the run itself when the orchestrator is gone).

use crate::cli::CancelArgs;
use crate::error::{CliError, CliResult};
use crate::project::Project;
use std::path::Path;

pub fn cancel(store: Option<&str>, config: Option<&Path>, args: CancelArgs) -> CliResult {
    let project = Project::discover(store, config)?;
    let engine = project.engine(project.open_store()?)?;
    let (run_id, outcome) = engine.cancel(&args.run, "swarm cancel").map_err(CliError::from_engine)?;
    let (state, how) = (outcome.state(), outcome.how());
    if args.json {
        println!("{}", serde_json::json!({ "run_id": run_id, "state": state, "how": how }));
    } else {
        println!("run {run_id} {state} ({how})");
    }
    Ok(0)
}
