//! The `swarm` binary.

mod cli;
mod commands;
mod error;
mod output;
mod progress;
mod project;
mod render;
mod serve;

use clap::Parser;
use cli::{Cli, Command};
use error::CliError;

fn main() {
    // First, while swarm is one thread: agents (same user) must not read provider keys from
    // /proc/<swarm pid>/environ or swarm's memory.
    if let Err(e) = swarm_runner::secrets::seal() {
        output::errln!("warning: {e}; agents running as you may read swarm's environment");
    }
    let cli = Cli::parse();
    if !cli.command.outlives_its_stdout() {
        output::die_on_broken_pipe();
    }
    let code = match dispatch(cli) {
        Ok(code) => code,
        Err(CliError { code, error, printed }) => {
            if !printed {
                output::errln!("error: {error:#}");
            }
            code
        }
    };
    std::process::exit(code);
}

fn dispatch(cli: Cli) -> error::CliResult {
    let store = cli.store.as_deref();
    let config = cli.config.as_deref();
    match cli.command {
        Command::Run(args) => commands::run::run(store, config, args),
        Command::Plan(cmd) => commands::plan::plan(store, config, cmd),
        Command::Status(args) => commands::status::status(store, config, args),
        Command::Runs(args) => commands::status::runs(store, config, args),
        Command::Resume(args) => commands::run::resume(store, config, args),
        Command::Cancel(args) => commands::cancel::cancel(store, config, args),
        Command::Logs(args) => commands::logs::logs(store, config, args),
        Command::Schema(args) => commands::schema::schema(args),
        Command::Doctor(args) => commands::doctor::doctor(store, config, args),
        Command::Agents(args) => commands::agents::agents(store, config, args),
        Command::Models(args) => commands::models::models(store, config, args),
        Command::FakeLlm(args) => commands::fake_llm::fake_llm(args),
        Command::Events(args) => commands::events::events(store, config, args),
        Command::State(args) => commands::state::state(store, config, args),
        Command::Report(args) => commands::report::report(args),
        Command::Diff(args) => commands::worktree::diff(store, config, args),
        Command::Merge(args) => commands::worktree::merge(store, config, args),
        Command::Clean(args) => commands::worktree::clean(store, config, args),
        Command::Mcp(args) => serve::mcp(store, config, args),
        Command::Serve(args) => serve::serve(store, config, args),
        Command::Worker(args) => commands::worker::worker(store, config, args),
        Command::Workers(args) => commands::worker::workers(store, config, args),
        Command::WorkerGuard => Ok(swarm_runner::remote::guard::guard_main()),
    }
}
