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
        } else if ["redis://", "rediss://", "redis+cluster://", "rediss+cluster://"]
            .iter()
            .any(|scheme| text.starts_with(scheme))
        {
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

    /// The secrets [`Address::describe`] hides (one per line, in order), for a process that
    /// gets the described address and must connect: see [`unmask`].
    pub fn secret(&self) -> Option<String> {
        match self {
            Address::Sqlite(_) => None,
            Address::Redis(url) => {
                let (_, secrets) = split_secrets(url);
                (!secrets.is_empty()).then(|| secrets.join("\n"))
            }
        }
    }
}

/// The text that stands for a secret in a masked address.
const MASK: &str = "***";

/// Masks the secrets of a store address: the password of `scheme://user:pass@host` (anything
/// before the last `@`, if there is no `user:`), and the values of query parameters such as
/// `?password=` or `&pass=`. Text that is no URL at all is masked as well as it can be.
pub fn mask(url: &str) -> String {
    split_secrets(url).0
}

/// Puts the secrets (as [`Address::secret`] gives them) back into a masked address, in the order
/// they were taken out. An address without `***` is returned as it is.
pub fn unmask(masked: &str, secret: &str) -> String {
    let secrets: Vec<&str> = secret.split('\n').collect();
    let mut out = masked.to_string();
    for i in 0..secrets.len().max(masked.matches(MASK).count()) {
        // The first `***` left is always the next secret's place: an earlier secret may itself
        // hold an inner one (a userinfo masked together with a query), so look again each time.
        let Some(at) = out.find(MASK) else { break };
        let s = secrets.get(i).or(secrets.last()).copied().unwrap_or_default();
        out.replace_range(at..at + MASK.len(), s);
    }
    out
}

/// Query parameters whose values are secrets.
fn is_secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["pass", "pwd", "secret", "token", "auth", "key"].iter().any(|w| n.contains(w))
}

/// The masked address and its secrets in the order of their places in the masked text.
fn split_secrets(url: &str) -> (String, Vec<String>) {
    let mut query_secrets = Vec::new();
    let mut text = url.to_string();
    // Query values first, so an `@` inside one is gone before the userinfo is looked for.
    if let Some(q) = url.find('?') {
        let (head, query) = url.split_at(q + 1);
        let (query, fragment) = match query.find('#') {
            Some(h) => query.split_at(h),
            None => (query, ""),
        };
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, value)) if is_secret_param(name) && !value.is_empty() => {
                    query_secrets.push(value.to_string());
                    format!("{name}={MASK}")
                }
                _ => param.to_string(),
            })
            .collect();
        text = format!("{head}{}{fragment}", params.join("&"));
    }
    // The userinfo: everything between the scheme and the last `@` (over-masking a value with an
    // `@` is better than printing a password that holds a `/` or `?`).
    let start = match text.find("://") {
        Some(i) => i + 3,
        None => match text.find(':') {
            Some(i) => i + 1,
            None => return (text, query_secrets),
        },
    };
    let mut secrets = Vec::new();
    if let Some(at) = text[start..].rfind('@') {
        let creds = &text[start..start + at];
        let (user, secret) = match creds.split_once(':') {
            Some((user, pass)) => (format!("{user}:"), pass),
            None => (String::new(), creds),
        };
        if !secret.is_empty() {
            secrets.push(secret.to_string());
            text = format!("{}{user}{MASK}{}", &text[..start], &text[start + at..]);
        }
    }
    secrets.extend(query_secrets);
    (text, secrets)
}

/// Tunables of a store, from `[store]` in `swarm.toml`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events kept per run (Redis streams are capped at about this many entries).
    pub event_retention: usize,
    /// Whether opening may create the store (an embedded store's file, a Redis schema marker).
    /// Commands that only read never create one.
    pub create: bool,
    /// Namespaces to look for runs in besides those the store's global index names (Redis: a
    /// user whose ACL confines it to its namespaces cannot read that index).
    pub namespaces: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options { event_retention: crate::redis_store::EVENTS_MAXLEN, create: true, namespaces: vec![] }
    }
}

pub fn open(address: &Address, options: Options) -> Result<Arc<dyn Store>, StoreError> {
    match address {
        Address::Sqlite(path) if options.create => Ok(Arc::new(SqliteStore::open(path)?)),
        Address::Sqlite(path) => Ok(Arc::new(SqliteStore::open_existing(path)?)),
        Address::Redis(url) => Ok(Arc::new(
            crate::RedisStore::connect_in(url, options.create, &options.namespaces)?
                .with_retention(options.event_retention),
        )),
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
        assert_eq!(mask("redis://h:1?password=secret"), "redis://h:1?password=***");
        assert_eq!(
            mask("redis://h:1/0?protocol=resp3&password=s&x=1"),
            "redis://h:1/0?protocol=resp3&password=***&x=1"
        );
        assert_eq!(mask("rediss://h/?PASS=s#f"), "rediss://h/?PASS=***#f");
        assert_eq!(mask("redis://h/?password=a@b"), "redis://h/?password=***");
        assert_eq!(mask("foo://user:secret@host"), "foo://user:***@host");
        assert_eq!(mask("foo:user:secret@host"), "foo:user:***@host");
        assert_eq!(mask("redis://token@host"), "redis://***@host");
        assert_eq!(mask("redis://u:p/s?s@host:1"), "redis://u:***@host:1");
        assert_eq!(mask("sqlite:.swarm/state.db"), "sqlite:.swarm/state.db");
        assert_eq!(mask("redis://h:1?db=2"), "redis://h:1?db=2");
    }

    #[test]
    fn unmasking_restores_every_secret() {
        for url in [
            "redis://user:secret@host:6379/2",
            "redis://:secret@host",
            "redis://h:1?password=secret",
            "redis://u:one@h:1/0?password=two&x=1",
            "redis://h/?password=x&a=b@c",
            "redis://token@host",
            "redis://host:6379",
        ] {
            let a = Address::Redis(url.into());
            let back = match a.secret() {
                Some(s) => unmask(&a.describe(), &s),
                None => a.describe(),
            };
            assert_eq!(back, url);
            assert!(a.secret().is_none_or(|s| !a.describe().contains(&s)), "{url}");
        }
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
        assert!(matches!(Address::parse("redis+cluster://h:1,h:2", base).unwrap(), Address::Redis(_)));
        assert!(Address::parse("postgres://u:pw@h", base).unwrap_err().to_string().contains("u:***@h"));
    }
}
