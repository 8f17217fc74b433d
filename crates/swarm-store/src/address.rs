//! Store addresses (`sqlite:PATH`, `redis://…`) and opening the matching backend.

use crate::{SqliteStore, Store, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Sqlite(PathBuf),
    Redis(String),
}

impl Address {
    /// Parses a store address; relative SQLite paths resolve against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Address, StoreError> {
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(StoreError::BadAddress(text.into()));
            }
            let p = Path::new(path);
            Ok(Address::Sqlite(if p.is_absolute() { p.into() } else { base.join(p) }))
        } else if text.starts_with("redis://") || text.starts_with("rediss://") {
            Ok(Address::Redis(text.into()))
        } else {
            Err(StoreError::BadAddress(mask(text)))
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Address::Sqlite(p) => format!("sqlite:{}", p.display()),
            Address::Redis(url) => mask(url),
        }
    }
}

/// Masks the password in `scheme://user:pass@host`.
pub fn mask(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.into() };
    let rest = &url[scheme_end + 3..];
    let Some(at) = rest.rfind('@') else { return url.into() };
    let creds = &rest[..at];
    let masked = match creds.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".into(),
    };
    format!("{}{}@{}", &url[..scheme_end + 3], masked, &rest[at + 1..])
}

/// Tunables of a store, from `[store]` in `swarm.toml`.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Events kept per run (Redis streams are capped at about this many entries).
    pub event_retention: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { event_retention: crate::redis_store::EVENTS_MAXLEN }
    }
}

pub fn open(address: &Address, options: Options) -> Result<Arc<dyn Store>, StoreError> {
    match address {
        Address::Sqlite(path) => Ok(Arc::new(SqliteStore::open(path)?)),
        Address::Redis(url) => {
            Ok(Arc::new(crate::RedisStore::open(url)?.with_retention(options.event_retention)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(mask("redis://user:secret@host:6379/2"), "redis://user:***@host:6379/2");
        assert_eq!(mask("redis://:secret@host"), "redis://:***@host");
        assert_eq!(mask("redis://host:6379"), "redis://host:6379");
    }

    #[test]
    fn parses_addresses() {
        let base = Path::new("/repo");
        assert_eq!(
            Address::parse("sqlite:.swarm/state.db", base).unwrap(),
            Address::Sqlite("/repo/.swarm/state.db".into())
        );
        assert_eq!(Address::parse("sqlite:/tmp/x.db", base).unwrap(), Address::Sqlite("/tmp/x.db".into()));
        assert!(matches!(Address::parse("redis://h:1", base).unwrap(), Address::Redis(_)));
        assert!(Address::parse("postgres://u:pw@h", base).unwrap_err().to_string().contains("u:***@h"));
    }
}
