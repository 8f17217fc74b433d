//! `swarm fake-llm`: swarm's scripted OpenAI-compatible model server, for rehearsals that spend
//! no tokens and for tests. Runs until Ctrl-C or SIGTERM.

use crate::cli::FakeLlmArgs;
use crate::error::{CliError, CliResult};
use std::io::Write;
use std::net::SocketAddr;

pub fn fake_llm(args: FakeLlmArgs) -> CliResult {
    let mut scenario = swarm_fakellm::Scenario::from_file(&args.scenario).map_err(CliError::invalid)?;
    if args.log.is_some() {
        scenario.log = args.log;
    }
    let models: Vec<String> = scenario.models.keys().cloned().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::other)?;
    runtime.block_on(async move {
        // Listening for the signals before saying where it serves: a caller that reads the
        // address and stops the server at once must find it listening.
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).map_err(CliError::other)?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(CliError::other)?;
        let server =
            swarm_fakellm::serve(scenario, SocketAddr::new(args.host, args.port)).await.map_err(|e| {
                CliError::invalid(anyhow::anyhow!("cannot serve on {}:{}: {e}", args.host, args.port))
            })?;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening {} (models: {})", server.base_url(), models.join(", "));
        let _ = out.flush();
        drop(out);
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = term.recv() => {}
        }
        server.shutdown().await.map_err(CliError::other)?;
        Ok(0)
    })
}
