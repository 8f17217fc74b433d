//! Connections: one server (`redis://`, `rediss://` with rustls) or a Redis Cluster
//! (`redis+cluster://h1:p1,h2:p2`, `rediss+cluster://…`) through the client's cluster support,
//! behind one [`Conn`] so the store's code does not care which.

use super::errors::scrub;
use crate::store::StoreError;
use redis::{Cmd, ConnectionLike, RedisResult, Value};
use std::time::Duration;

/// How long a connection may take, and how long an answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Where connections come from.
#[derive(Clone)]
pub(super) enum Client {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

/// One open connection.
pub(super) enum Conn {
    Single(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

/// The cluster form of an address: `redis+cluster://[user:pass@]h1:p1,h2:p2[?…]`.
fn cluster_nodes(url: &str) -> Option<(bool, Vec<String>)> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("redis+cluster://") {
        (false, r)
    } else {
        (true, url.strip_prefix("rediss+cluster://")?)
    };
    let (creds, hosts) = match rest.rsplit_once('@') {
        Some((c, h)) => (format!("{c}@"), h),
        None => (String::new(), rest),
    };
    let (hosts, tail) = match hosts.find(['/', '?']) {
        Some(i) => hosts.split_at(i),
        None => (hosts, ""),
    };
    let scheme = if tls { "rediss" } else { "redis" };
    let nodes = hosts.split(',').filter(|h| !h.is_empty()).map(|h| format!("{scheme}://{creds}{h}{tail}"));
    Some((tls, nodes.collect()))
}

/// A private CA (and a client certificate for mutual TLS) for `rediss://`, from
/// SWARM_REDIS_CA_CERT / SWARM_REDIS_CLIENT_CERT and SWARM_REDIS_CLIENT_KEY, each a PEM file.
fn tls_certificates(address: &str) -> Result<redis::TlsCertificates, StoreError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |var: &str| -> Result<Option<Vec<u8>>, StoreError> {
        match std::env::var_os(var) {
            None => Ok(None),
            Some(path) => std::fs::read(&path).map(Some).map_err(|e| StoreError::Unreachable {
                address: address.into(),
                message: format!("cannot read {var} ({}): {e}", std::path::Path::new(&path).display()),
            }),
        }
    };
    let root_cert = read("SWARM_REDIS_CA_CERT")?;
    let client_tls = match (read("SWARM_REDIS_CLIENT_CERT")?, read("SWARM_REDIS_CLIENT_KEY")?) {
        (Some(client_cert), Some(client_key)) => Some(redis::ClientTlsConfig { client_cert, client_key }),
        _ => None,
    };
    Ok(redis::TlsCertificates { client_tls, root_cert })
}

impl Client {
    /// The client for `url` (its password already moved where the library looks); `address` is
    /// the masked form, for messages.
    pub(super) fn new(url: &str, address: &str) -> Result<Client, StoreError> {
        let bad = |e: &dyn std::fmt::Display| StoreError::Unreachable {
            address: address.into(),
            message: scrub(&e.to_string(), url),
        };
        if let Some((tls, nodes)) = cluster_nodes(url) {
            if nodes.is_empty() {
                return Err(StoreError::BadAddress(address.into()));
            }
            let mut builder = redis::cluster::ClusterClientBuilder::new(nodes)
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(IO_TIMEOUT);
            if tls {
                builder = builder.certs(tls_certificates(address)?);
            }
            return builder.build().map(Client::Cluster).map_err(|e| bad(&e));
        }
        if url.starts_with("rediss://") {
            redis::Client::build_with_tls(url, tls_certificates(address)?)
                .map(Client::Single)
                .map_err(|e| bad(&e))
        } else {
            redis::Client::open(url).map(Client::Single).map_err(|e| bad(&e))
        }
    }

    pub(super) fn connect(&self) -> RedisResult<Conn> {
        match self {
            Client::Single(client) => {
                let c = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
                c.set_read_timeout(Some(IO_TIMEOUT))?;
                c.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(Conn::Single(c))
            }
            Client::Cluster(client) => Ok(Conn::Cluster(Box::new(client.get_connection()?))),
        }
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Client::Cluster(_))
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(&mut self, cmd: &[u8], offset: usize, count: usize) -> RedisResult<Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_command(cmd),
            Conn::Cluster(c) => c.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }

    fn supports_pipelining(&self) -> bool {
        match self {
            Conn::Single(c) => c.supports_pipelining(),
            Conn::Cluster(c) => c.supports_pipelining(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Conn::Single(c) => c.check_connection(),
            Conn::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Conn::Single(c) => c.is_open(),
            Conn::Cluster(c) => c.is_open(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cluster_nodes;

    #[test]
    fn cluster_addresses_name_every_node() {
        let (tls, nodes) = cluster_nodes("redis+cluster://u:p@h1:1,h2:2").unwrap();
        assert!(!tls);
        assert_eq!(nodes, ["redis://u:p@h1:1", "redis://u:p@h2:2"]);
        let (tls, nodes) = cluster_nodes("rediss+cluster://h1:1,h2:2/?protocol=resp3").unwrap();
        assert!(tls);
        assert_eq!(nodes, ["rediss://h1:1/?protocol=resp3", "rediss://h2:2/?protocol=resp3"]);
        assert!(cluster_nodes("redis://h:1").is_none());
    }
}
