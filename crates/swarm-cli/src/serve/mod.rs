//! The orchestrator's face: `swarm mcp` (MCP over stdio) and `swarm serve` (MCP over streamable
//! HTTP, the JSON API, live events and the dashboard), both on one [`app::App`] and its engine.

pub mod app;
pub mod conn;
mod dashboard;
pub mod http;
mod live_log;
pub mod mcp;
pub mod sessions;
pub mod stdio;
pub mod token;
pub mod views;

use crate::cli::{McpArgs, ServeArgs};
use crate::error::{CliError, CliResult};
use crate::project::Project;
use anyhow::anyhow;
use std::net::SocketAddr;
use std::path::Path;

fn runtime() -> tokio::runtime::Runtime {
    crate::commands::run::runtime()
}

fn app(
    store: Option<&str>,
    config: Option<&Path>,
    dir: Option<&Path>,
    rt: &tokio::runtime::Runtime,
) -> CliResult<std::sync::Arc<app::App>> {
    if let Some(dir) = dir {
        std::env::set_current_dir(dir)
            .map_err(|e| CliError::invalid(anyhow!("--project {}: {e}", dir.display())))?;
    }
    let project = Project::discover(store, config)?;
    swarm_agents::Registry::from_config(&project.config).map_err(CliError::invalid)?;
    // Runs start here: the store is created as `swarm run` would.
    let engine = project.engine(project.create_store()?)?;
    Ok(app::App::new(project, engine, rt.handle().clone()))
}

/// `swarm mcp`: MCP over stdio. stdout carries protocol messages only; everything else goes to
/// stderr.
pub fn mcp(store: Option<&str>, config: Option<&Path>, args: McpArgs) -> CliResult {
    let rt = runtime();
    let app = app(store, config, args.project.as_deref(), &rt)?;
    rt.block_on(async move {
        use rmcp::ServiceExt;
        let server = mcp::SwarmMcp::new(app.clone())
            .serve(stdio::stdio())
            .await
            .map_err(|e| CliError::other(anyhow!("MCP over stdio: {e}")))?;
        let _ = server.waiting().await;
        app.shutdown().await;
        Ok(0)
    })
}

/// `swarm serve`: everything on one address.
pub fn serve(store: Option<&str>, config: Option<&Path>, args: ServeArgs) -> CliResult {
    let bind: SocketAddr = args.bind.parse().map_err(|e| {
        CliError::invalid(anyhow!("--bind {}: not an address like 127.0.0.1:7878 ({e})", args.bind))
    })?;
    let given = match &args.token_env {
        Some(var) => match std::env::var(var) {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
            _ => {
                return Err(CliError::invalid(anyhow!("--token-env {var}: the variable is not set or empty")))
            }
        },
        None => None,
    };
    let open_bind = !bind.ip().is_loopback();
    if open_bind && given.is_none() {
        return Err(CliError::invalid(anyhow!(
            "--bind {bind} is reachable from other hosts: give a bearer token with --token-env VAR (requests without it get 401)"
        )));
    }
    let rt = runtime();
    let app = app(store, config, args.project.as_deref(), &rt)?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| CliError::invalid(anyhow!("cannot listen on {bind}: {e}")))?;
        let local = listener.local_addr().map_err(CliError::other)?;
        let (token, file) = match given {
            Some(token) => (token, None),
            None => {
                // On loopback, any local user and any agent can connect: swarm's own token.
                app.project.ensure_state_dir();
                let file = token::token_file(&app.project.state_dir);
                (token::own_token(&file).map_err(CliError::invalid)?, Some(file))
            }
        };
        // Listening for the signals before saying where it serves.
        let shutdown = shutdown_signal();
        announce(local, file.as_deref().map(|f| (f, token.as_str())), args.json);
        let guard = http::Guard::new(local, token);
        let router = http::router(app.clone(), guard, open_bind, sessions::SessionLimits::from_env());
        conn::serve(listener, router, conn::ConnLimits::from_env(), shutdown).await;
        app.shutdown().await;
        Ok(0)
    })
}

/// Where the server is. With swarm's own token, the dashboard's address carries it (after `#`:
/// browsers never send it on) and MCP clients are told where it is; a token given with
/// `--token-env` is never printed.
fn announce(local: SocketAddr, own: Option<(&Path, &str)>, json: bool) {
    let dashboard = match own {
        Some((_, token)) => format!("http://{local}/#token={token}"),
        None => format!("http://{local}/"),
    };
    eprintln!("swarm serve: dashboard {dashboard} · MCP http://{local}/mcp · API http://{local}/api/runs");
    if let Some((file, _)) = own {
        eprintln!(
            "swarm serve: every request needs `Authorization: Bearer <token>`; the token is in {}",
            file.display()
        );
    }
    if json {
        let file = own.map(|(f, _)| f.display().to_string());
        println!("{}", serde_json::json!({ "listening": local.to_string(), "token_file": file }));
    }
}

/// Ctrl-C or SIGTERM, listened for from the call on (inside the runtime).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let signals = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()));
    async move {
        let (Ok(mut int), Ok(mut term)) = signals else { return std::future::pending().await };
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
    }
}
