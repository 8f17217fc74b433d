//! MCP sessions of `swarm serve`. A client of a handshake revision (before 2026-07-28) holds a
//! session on the server from its `initialize` on; rmcp's [`LocalSessionManager`] keeps as many
//! as are asked for. [`Sessions`] bounds them: at most [`SessionLimits::max`] live at once, each
//! closed after [`SessionLimits::idle`] without a request (rmcp's own keep-alive). A new session
//! past the limit takes the place of the least recently used one that has been idle a while
//! (none of its requests or streams open); when there is none it is refused with 503.

use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError, LocalSessionWorker,
};
use rmcp::transport::streamable_http_server::session::ServerSseMessage;
use rmcp::transport::streamable_http_server::{SessionId, SessionManager};
use rmcp::transport::WorkerTransport;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio_stream::{Stream, StreamExt};

#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Live sessions at most.
    pub max: usize,
    /// A session without a request for this long is closed.
    pub idle: Duration,
}

impl SessionLimits {
    pub const DEFAULT: SessionLimits = SessionLimits { max: 128, idle: Duration::from_secs(30 * 60) };

    /// The defaults; tests make them small with `SWARM_SERVE_MCP_MAX_SESSIONS` and
    /// `SWARM_SERVE_MCP_IDLE_S` (not part of the interface).
    pub fn from_env() -> SessionLimits {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse::<f64>().ok());
        let mut limits = SessionLimits::DEFAULT;
        if let Some(max) = var("SWARM_SERVE_MCP_MAX_SESSIONS").filter(|m| *m >= 1.0) {
            limits.max = max as usize;
        }
        if let Some(idle) = var("SWARM_SERVE_MCP_IDLE_S").filter(|s| s.is_finite() && *s > 0.0) {
            limits.idle = Duration::from_secs_f64(idle);
        }
        limits
    }

    /// How long a session must have been idle before a new one may take its place: a client that
    /// is between two calls keeps its session.
    fn replaceable_after(&self) -> Duration {
        (self.idle / 4).min(Duration::from_secs(60))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionsError {
    #[error(
        "too many MCP sessions: {max} are open and busy (the limit); retry later, or close one (DELETE /mcp)"
    )]
    Full { max: usize },
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
}

struct Use {
    last: Instant,
    /// Requests and streams of the session under way.
    open: usize,
}

#[derive(Default)]
struct Table {
    uses: HashMap<SessionId, Use>,
    /// Sessions being created (their ids not known yet).
    coming: usize,
}

pub struct Sessions {
    local: LocalSessionManager,
    limits: SessionLimits,
    table: Arc<Mutex<Table>>,
}

impl Sessions {
    pub fn new(limits: SessionLimits) -> Sessions {
        let mut local = LocalSessionManager::default();
        local.session_config.keep_alive = Some(limits.idle);
        Sessions { local, limits, table: Arc::default() }
    }

    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session a new one would take the place of: the least recently used of those idle long
    /// enough.
    fn replaceable(&self, table: &Table) -> Option<SessionId> {
        let after = self.limits.replaceable_after();
        let idle = table.uses.iter().filter(|(_, u)| u.open == 0 && u.last.elapsed() >= after);
        idle.min_by_key(|(_, u)| u.last).map(|(id, _)| id.clone())
    }

    /// Whether a new session would be had now.
    pub fn has_room(&self) -> bool {
        let table = self.table();
        table.uses.len() + table.coming < self.limits.max || self.replaceable(&table).is_some()
    }

    /// A place for a new session, held by the returned guard until the session arrives: free, or a
    /// replaceable session's, which is returned to be closed.
    fn reserve(&self) -> Result<(Coming, Option<SessionId>), SessionsError> {
        let mut table = self.table();
        let replaced = if table.uses.len() + table.coming < self.limits.max {
            None
        } else {
            let id = self.replaceable(&table).ok_or(SessionsError::Full { max: self.limits.max })?;
            table.uses.remove(&id);
            Some(id)
        };
        table.coming += 1;
        Ok((Coming { table: Some(self.table.clone()) }, replaced))
    }

    /// Marks a request or stream of the session under way until the returned guard is dropped.
    fn open(&self, id: &SessionId) -> Open {
        if let Some(u) = self.table().uses.get_mut(id) {
            u.open += 1;
            u.last = Instant::now();
        }
        Open { table: self.table.clone(), id: id.clone() }
    }

    /// A stream that keeps its session busy while it lasts.
    fn busy<S: Stream<Item = ServerSseMessage> + Send + Sync + 'static>(
        &self,
        id: &SessionId,
        stream: S,
    ) -> impl Stream<Item = ServerSseMessage> + Send + Sync + 'static {
        let open = self.open(id);
        stream.map(move |m| {
            let _busy = &open;
            m
        })
    }
}

/// A place reserved for a session being created; given back if it never arrives (an error, or the
/// request dropped halfway).
struct Coming {
    table: Option<Arc<Mutex<Table>>>,
}

impl Coming {
    fn arrive(mut self, id: SessionId) {
        if let Some(table) = self.table.take() {
            let mut table = table.lock().unwrap_or_else(|p| p.into_inner());
            table.coming -= 1;
            table.uses.insert(id, Use { last: Instant::now(), open: 0 });
        }
    }
}

impl Drop for Coming {
    fn drop(&mut self) {
        if let Some(table) = self.table.take() {
            table.lock().unwrap_or_else(|p| p.into_inner()).coming -= 1;
        }
    }
}

struct Open {
    table: Arc<Mutex<Table>>,
    id: SessionId,
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = table.uses.get_mut(&self.id) {
            u.open = u.open.saturating_sub(1);
            u.last = Instant::now();
        }
    }
}

impl SessionManager for Sessions {
    type Error = SessionsError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), SessionsError> {
        let (coming, replaced) = self.reserve()?;
        if let Some(replaced) = replaced {
            // Its worker stops; rmcp then closes it here again, which finds nothing.
            let _ = self.local.close_session(&replaced).await;
        }
        let (id, transport) = self.local.create_session().await?;
        coming.arrive(id.clone());
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, SessionsError> {
        let _open = self.open(id);
        Ok(self.local.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, SessionsError> {
        Ok(self.local.has_session(id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), SessionsError> {
        self.table().uses.remove(id);
        Ok(self.local.close_session(id).await?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, SessionsError> {
        let stream = self.local.create_stream(id, message).await?;
        Ok(self.busy(id, stream))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), SessionsError> {
        let _open = self.open(id);
        Ok(self.local.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, SessionsError> {
        let stream = self.local.create_standalone_stream(id).await?;
        Ok(self.busy(id, stream))
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, SessionsError> {
        let stream = self.local.resume(id, last_event_id).await?;
        Ok(self.busy(id, stream))
    }
}
