//! Runs the fake model server from the command line until SIGINT/SIGTERM (the server of
//! `swarm fake-llm`, without the rest of swarm):
//! `cargo run -p swarm-fakellm --example serve -- --scenario FILE --port N`.
//! Prints `listening http://ADDR/v1` once it accepts requests (`--port 0` picks a free port).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser)]
struct Args {
    /// The scenario TOML file.
    #[arg(long)]
    scenario: PathBuf,
    #[arg(long, default_value_t = 8999)]
    port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Append one JSON line per request to this file (overrides the scenario's `log`).
    #[arg(long)]
    log: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut scenario = swarm_fakellm::Scenario::from_file(&args.scenario)?;
    if args.log.is_some() {
        scenario.log = args.log;
    }
    let server = swarm_fakellm::serve(scenario, SocketAddr::new(args.host, args.port)).await?;
    println!("listening {}", server.base_url());
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    server.shutdown().await?;
    Ok(())
}
