//! `swarm plan check|show`.

use crate::cli::PlanCommand;
use crate::error::{CliError, CliResult};
use crate::output::outln;
use crate::project::Project;
use std::io::{IsTerminal, Write};
use std::path::Path;
use swarm_core::plan::Plan;

/// Loads and validates a plan; on errors prints every diagnostic and fails with exit 2.
pub fn load(project: &Project, path: &Path, json: bool) -> CliResult<Plan> {
    let ctx = project.plan_context(path);
    swarm_core::plan::load(path, &ctx).map_err(|diags| {
        if json {
            // Shaped like an event too, so `swarm run --json` consumers see a `kind`.
            let v = serde_json::json!({ "kind": "plan_invalid", "ok": false, "file": diags.file, "errors": diags.items.iter().map(|d| d.masked()).collect::<Vec<_>>() });
            outln!("{v}");
        } else {
            // `swarm run` shares this and keeps SIGPIPE ignored: no panic on a closed stream.
            let _ = std::io::stderr().lock().write_all(diags.render(std::io::stderr().is_terminal()).as_bytes());
        }
        CliError::printed(2)
    })
}

pub fn plan(store: Option<&str>, config: Option<&Path>, cmd: PlanCommand) -> CliResult {
    let project = Project::discover(store, config)?;
    match cmd {
        PlanCommand::Check { plan, json } => {
            let p = load(&project, &plan, json)?;
            if json {
                println!("{}", serde_json::json!({ "ok": true, "name": p.name, "tasks": p.tasks.len() }));
            } else {
                let edges: usize = p.tasks.iter().map(|t| t.depends.len()).sum();
                println!(
                    "{}: ok — plan `{}`, {} tasks, {} dependencies",
                    plan.display(),
                    p.name,
                    p.tasks.len(),
                    edges
                );
            }
        }
        PlanCommand::Show { plan, json } => {
            let p = load(&project, &plan, json)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&p).expect("plan serializes"));
            } else {
                print!("{}", crate::render::plan(&p));
            }
        }
    }
    Ok(0)
}
