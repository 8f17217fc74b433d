//! `swarm serve`'s connections: HTTP/1 by hyper, with a deadline for a request's headers (a client
//! that sends them a byte at a time, or sends none on a kept-alive connection, is cut off instead of
//! holding its connection forever) and a cap on connections at once (past it, new ones wait in the
//! listen backlog). axum's own `serve` offers neither.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// A request's headers must have arrived this long after its first byte was awaited.
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl ConnLimits {
    pub const DEFAULT: ConnLimits =
        ConnLimits { header_read_timeout: Duration::from_secs(30), max_connections: 512 };

    /// The defaults; tests make them small with `SWARM_SERVE_HEADER_TIMEOUT_S` and
    /// `SWARM_SERVE_MAX_CONNECTIONS` (not part of the interface).
    pub fn from_env() -> ConnLimits {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse::<f64>().ok());
        let mut limits = ConnLimits::DEFAULT;
        if let Some(secs) = var("SWARM_SERVE_HEADER_TIMEOUT_S").filter(|s| s.is_finite() && *s > 0.0) {
            limits.header_read_timeout = Duration::from_secs_f64(secs);
        }
        if let Some(max) = var("SWARM_SERVE_MAX_CONNECTIONS").filter(|m| *m >= 1.0) {
            limits.max_connections = max as usize;
        }
        limits
    }
}

/// Serves `router` on `listener` until `shutdown`, then lets the connections finish what they
/// were doing (as `axum::serve(..).with_graceful_shutdown(..)` does).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    eprintln!("swarm serve: accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
