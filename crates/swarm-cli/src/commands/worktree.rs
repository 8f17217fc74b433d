//! `swarm diff`, `swarm merge`, `swarm clean`: a run's worktree work, looked at, brought home
//! and cleared away, each only when the user asks.

use crate::cli::{CleanArgs, DiffArgs, MergeArgs};
use crate::error::{CliError, CliResult};
use crate::project::Project;
use std::path::Path;

pub fn diff(store: Option<&str>, config: Option<&Path>, args: DiffArgs) -> CliResult {
    let project = Project::discover(store, config)?;
    let engine = project.engine(project.open_store()?)?;
    let d = engine.diff(&args.run, &args.task, args.stat).map_err(CliError::from_engine)?;
    if args.json {
        println!("{}", serde_json::to_string(&d).expect("a diff serializes"));
        return Ok(0);
    }
    if d.commit.is_none() {
        eprintln!("task `{}` has not been brought back: its worktree as it stands now", d.task);
    }
    print!("{}", d.diff);
    if !d.untracked.is_empty() {
        eprintln!("not yet tracked: {}", d.untracked.join(", "));
    }
    Ok(0)
}

pub fn merge(store: Option<&str>, config: Option<&Path>, args: MergeArgs) -> CliResult {
    let project = Project::discover(store, config)?;
    let engine = project.engine(project.open_store()?)?;
    let m = engine.merge(&args.run, args.into.as_deref(), args.squash).map_err(CliError::from_engine)?;
    let code = if m.outcome == "conflict" { 1 } else { 0 };
    if args.json {
        println!("{}", serde_json::to_string(&m).expect("a merge result serializes"));
        return Ok(code);
    }
    match m.outcome {
        "up_to_date" => println!("{} already has everything of {}", m.into, m.integration_branch),
        "conflict" => {
            eprintln!(
                "merging {} into {} conflicts in {}: {} is unchanged",
                m.integration_branch,
                m.into,
                m.conflict_paths.join(", "),
                m.into
            );
        }
        _ => println!(
            "merged {} into {} ({} file(s); now at {})",
            m.integration_branch,
            m.into,
            m.files_changed.len(),
            &m.commit[..m.commit.len().min(12)]
        ),
    }
    Ok(code)
}

pub fn clean(store: Option<&str>, config: Option<&Path>, args: CleanArgs) -> CliResult {
    let project = Project::discover(store, config)?;
    let engine = project.engine(project.open_store()?)?;
    let c = engine.clean(&args.run, args.branches).map_err(CliError::from_engine)?;
    if args.json {
        println!("{}", serde_json::to_string(&c).expect("a clean result serializes"));
        return Ok(0);
    }
    println!(
        "run {}: removed {} worktree(s){}",
        c.run_id,
        c.worktrees_removed.len(),
        if args.branches {
            let remote = match c.remote_refs_deleted.len() {
                0 => String::new(),
                n => format!(" and {n} ref(s) on the run's repository"),
            };
            format!(", deleted {} branch(es){remote}", c.branches_deleted.len())
        } else {
            String::new()
        }
    );
    Ok(0)
}
