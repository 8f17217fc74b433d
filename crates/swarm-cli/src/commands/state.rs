//! `swarm state get|set|delete|list|watch`: the namespace's shared state, versioned JSON
//! documents agents of a plan read and write (with compare-and-set) while they run.

use crate::error::{CliError, CliResult};
use crate::project::Project;
use anyhow::anyhow;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use swarm_core::state_doc::{Actor, StateChange};
use swarm_runner::{EngineError, SharedState};
use swarm_store::StoreError;

#[derive(Args, Debug)]
#[command(
    after_help = "Exit codes: 0 ok · 1 version conflict, or `get` of a missing key · 2 invalid input or store problem.\n\
Every change is recorded with who made it (SWARM_RUN_ID, SWARM_TASK_ID, SWARM_ATTEMPT, host, pid) in the namespace's change feed \
and, when made by an agent of a run, in that run's events (`swarm events RUN`)."
)]
pub struct StateArgs {
    /// Namespace whose state to use. Default: SWARM_NAMESPACE (swarm sets it for every agent), else the name of the git root (or current) directory.
    #[arg(long, global = true, env = "SWARM_NAMESPACE", hide_env_values = true, value_name = "NS")]
    pub namespace: Option<String>,
    #[command(subcommand)]
    pub command: StateCommand,
}

#[derive(Subcommand, Debug)]
pub enum StateCommand {
    /// Print a key's value as JSON (exit 1 if there is no such key).
    Get {
        key: String,
        /// Print the whole entry: key, value, version, updated_at, updated_by.
        #[arg(long)]
        json: bool,
    },
    /// Write a key; prints its new version.
    Set {
        key: String,
        /// The value, as JSON (`42`, `true`, `{"a":1}`, `'"quoted"'`). Text that is not valid JSON
        /// is stored as a JSON string: `swarm state set k hello` stores "hello".
        value: String,
        /// Write only if the key is at version N now (0: only if it does not exist yet); else
        /// exit 1 naming the version found.
        #[arg(long, value_name = "N")]
        if_version: Option<u64>,
        /// Print the new entry as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a key (deleting a missing key is not an error).
    Delete {
        key: String,
        /// Delete only if the key is at version N now; else exit 1 naming the version found.
        #[arg(long, value_name = "N")]
        if_version: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// List keys (starting with PREFIX), sorted, with their versions and values.
    List {
        prefix: Option<String>,
        /// Print a JSON array of entries.
        #[arg(long)]
        json: bool,
    },
    /// Print the declared shared state (keys, writers, schemas) as markdown, for the agents'
    /// rule files: the plan's `state:` with --plan, else the namespace's latest run's, else
    /// swarm.toml's `[state]`.
    Doc {
        /// Read the declaration from this plan.
        #[arg(long, value_name = "PLAN")]
        plan: Option<std::path::PathBuf>,
    },
    /// Print changes (of keys starting with PREFIX) as they happen, until Ctrl-C.
    Watch {
        prefix: Option<String>,
        /// One JSON change per line: seq, namespace, key, op, version, value, at, by.
        #[arg(long)]
        json: bool,
        /// Print the changes already recorded first (the oldest one kept onwards).
        #[arg(long)]
        from_start: bool,
    },
}

/// How often `watch` asks the store for new changes.
const POLL: Duration = Duration::from_millis(100);

pub fn state(store: Option<&str>, config: Option<&Path>, args: StateArgs) -> CliResult {
    let project = Project::discover(store, config)?;
    if let StateCommand::Doc { plan: Some(path) } = &args.command {
        let plan = crate::commands::plan::load(&project, path, false)?;
        return print_doc(plan.state.as_ref(), &plan.namespace);
    }
    let ns = match args.namespace.filter(|n| !n.is_empty()) {
        Some(ns) => ns,
        None => project.default_namespace(),
    };
    if let StateCommand::Doc { .. } = &args.command {
        // No store yet: nothing ran, so swarm.toml's `[state]` is all there is.
        let Ok(store) = project.open_store() else { return print_doc(project.config.state.as_ref(), &ns) };
        let engine = project.engine(store)?;
        let decl = engine.shared_state(&ns, actor()).declaration().map_err(CliError::from_engine)?;
        return print_doc(decl.as_ref(), &ns);
    }
    // `set` creates the store (state may be seeded before any run); nothing else does.
    let store = match &args.command {
        StateCommand::Set { .. } => project.create_store()?,
        _ => project.open_store()?,
    };
    let engine = project.engine(store)?;
    let state = engine.shared_state(&ns, actor());
    let failed = CliError::from_engine;
    match args.command {
        StateCommand::Get { key, json } => {
            check_key(&key)?;
            let Some(entry) = state.get(&key).map_err(failed)? else {
                return Err(CliError::other(anyhow!("no key `{key}` in namespace `{ns}`")));
            };
            if json {
                println!("{}", to_json(&entry));
            } else {
                println!("{}", serde_json::to_string_pretty(&entry.value).expect("JSON values serialize"));
            }
        }
        StateCommand::Set { key, value, if_version, json } => {
            check_key(&key)?;
            let value = serde_json::from_str(&value).unwrap_or(Value::String(value));
            let entry = state.set(&key, &value, if_version).map_err(failed)?;
            if json {
                println!("{}", to_json(&entry));
            } else {
                println!("{key}: version {}", entry.version);
            }
        }
        StateCommand::Delete { key, if_version, json } => {
            check_key(&key)?;
            let existed = state.delete(&key, if_version).map_err(failed)?;
            if json {
                println!("{}", json!({ "namespace": ns, "key": key, "deleted": existed }));
            } else {
                println!("{key}: {}", if existed { "deleted" } else { "no such key" });
            }
        }
        StateCommand::List { prefix, json } => list(&state, prefix.as_deref().unwrap_or(""), json)?,
        StateCommand::Doc { .. } => unreachable!("answered above"),
        StateCommand::Watch { prefix, json, from_start } => {
            return watch(&state, prefix.as_deref().unwrap_or(""), json, from_start)
        }
    }
    Ok(0)
}

fn print_doc(decl: Option<&swarm_core::team::StateDecl>, ns: &str) -> CliResult {
    let Some(decl) = decl else {
        return Err(CliError::invalid(anyhow!(
            "no shared state is declared for namespace `{ns}`: add `state:` to the plan's front matter or `[state]` to swarm.toml"
        )));
    };
    print!("{}", swarm_core::team::render_doc(decl, ns));
    Ok(0)
}

fn list(state: &SharedState<'_>, prefix: &str, json: bool) -> CliResult<()> {
    let entries = state.list(prefix).map_err(CliError::from_engine)?;
    if json {
        println!("{}", to_json(&entries));
    } else {
        let width = entries.iter().map(|e| e.key.chars().count()).max().unwrap_or(0).min(40);
        for e in &entries {
            println!("{:<width$}  v{:<4} {}", e.key, e.version, short(&e.value));
        }
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), CliError> {
    if key.is_empty() {
        return Err(CliError::invalid(anyhow!("a key must not be empty")));
    }
    Ok(())
}

/// Who is writing: the agent attempt swarm started (its environment says so), and this process.
pub(crate) fn actor() -> Actor {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    Actor {
        run_id: var("SWARM_RUN_ID"),
        task_id: var("SWARM_TASK_ID"),
        attempt: var("SWARM_ATTEMPT").and_then(|a| a.parse().ok()),
        host: Some(swarm_runner::util::hostname()),
        pid: Some(std::process::id()),
    }
}

fn watch(state: &SharedState<'_>, prefix: &str, json: bool, from_start: bool) -> CliResult {
    let mut after = if from_start { 0 } else { state.last_seq().map_err(CliError::from_engine)? };
    let mut out = std::io::stdout().lock();
    let mut outage = false;
    loop {
        let batch = match state.changes(after, 1000) {
            Ok(batch) => batch,
            // A long-lived watcher rides out a store restart instead of exiting.
            Err(e @ EngineError::Store(StoreError::Unreachable { .. })) => {
                if !outage {
                    eprintln!("warning: {e}; retrying");
                    outage = true;
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            Err(e) => return Err(CliError::from_engine(e)),
        };
        outage = false;
        if let Some(first) = batch.first().filter(|c| after > 0 && c.seq > after + 1) {
            eprintln!(
                "warning: {} changes were trimmed from the feed before they could be shown",
                first.seq - after - 1
            );
        }
        for change in &batch {
            after = change.seq;
            if !change.key.starts_with(prefix) {
                continue;
            }
            let line = if json { to_json(change) } else { human(change) };
            if writeln!(out, "{line}").is_err() {
                return Ok(0); // the reader went away (e.g. `| head`)
            }
        }
        if out.flush().is_err() {
            return Ok(0);
        }
        if batch.len() < 1000 {
            std::thread::sleep(POLL);
        }
    }
}

fn human(c: &StateChange) -> String {
    let what = match (&c.value, &c.reason) {
        (_, Some(reason)) => format!("{} {}: {reason}", c.op, c.key),
        (Some(v), None) => format!("{} {} v{} = {}", c.op, c.key, c.version, short(v)),
        (None, None) => format!("{} {} v{}", c.op, c.key, c.version),
    };
    let by = c.by.as_ref().map(who).unwrap_or_default();
    format!("{} {what}{by}", c.at.with_timezone(&chrono::Local).format("%H:%M:%S%.3f"))
}

/// ` by TASK#ATTEMPT of RUN` for an agent, ` by pid PID@HOST` for anyone else.
fn who(a: &Actor) -> String {
    match (&a.task_id, &a.run_id) {
        (Some(task), run) => format!(
            " by {task}{}{}",
            a.attempt.map(|n| format!("#{n}")).unwrap_or_default(),
            run.as_deref().map(|r| format!(" of {r}")).unwrap_or_default()
        ),
        (None, Some(run)) => format!(" by run {run}"),
        (None, None) => match (a.pid, &a.host) {
            (Some(pid), Some(host)) => format!(" by pid {pid}@{host}"),
            _ => String::new(),
        },
    }
}

/// A value on one line, cut to a readable length.
fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() <= 100 {
        return text;
    }
    let cut: String = text.chars().take(99).collect();
    format!("{cut}…")
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("state documents serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_core::state_doc::StateEntry;

    #[test]
    fn agents_are_named_by_task_attempt_and_run() {
        let a = Actor {
            run_id: Some("r1".into()),
            task_id: Some("t".into()),
            attempt: Some(2),
            host: Some("h".into()),
            pid: Some(9),
        };
        assert_eq!(who(&a), " by t#2 of r1");
        assert_eq!(who(&Actor { host: Some("h".into()), pid: Some(9), ..Actor::default() }), " by pid 9@h");
        assert_eq!(short(&json!("x".repeat(200))).chars().count(), 100);
    }

    #[test]
    fn entries_print_as_their_documents() {
        let e = StateEntry {
            key: "k".into(),
            version: 1,
            value: json!(1),
            updated_at: chrono::Utc::now(),
            updated_by: None,
        };
        let back: StateEntry = serde_json::from_str(&to_json(&e)).unwrap();
        assert_eq!(back, e);
    }
}
