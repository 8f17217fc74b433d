//! The store's account of itself on Redis: the server's version and persistence, and the key
//! schema's version, checked when the store is opened.

use super::keys::{ns_keys, LAYOUT, META};
use super::{RedisStore, SCHEMA_VERSION};
use crate::store::{Store, StoreError};
use redis::Commands;

/// The major version in a `schema_version` field.
fn major(key: &str, v: &str) -> Result<u32, StoreError> {
    v.split('.').next().and_then(|m| m.parse().ok()).ok_or_else(|| StoreError::Corrupt {
        key: format!("{key} schema_version"),
        message: format!("not a version: {v:?}"),
    })
}

impl RedisStore {
    /// Refuses a store (the global marker, where readable, or a namespace's own) written by a
    /// newer swarm; a writer marks a new store (where it may).
    pub(super) fn check_schema(&self, create: bool) -> Result<(), StoreError> {
        let mut found: Vec<(String, Option<String>)> = vec![];
        if let Some(v) = self.global_read(|c| c.hget(META, "schema_version"))? {
            found.push((META.into(), v));
        }
        for ns in self.index.known() {
            let key = ns_keys(&ns).meta;
            if let Some(v) = self.in_namespace(&ns, |c| c.hget(&key, "schema_version"))? {
                found.push((key, v));
            }
        }
        for (key, v) in &found {
            if let Some(v) = v {
                let major = major(key, v)?;
                if major > SCHEMA_VERSION {
                    return Err(StoreError::SchemaTooNew { found: major, known: SCHEMA_VERSION });
                }
            }
        }
        if create && found.first().is_some_and(|(key, v)| key == META && v.is_none()) {
            // A new store: nothing to migrate.
            self.global_write(|c| c.hset_nx(META, "schema_version", SCHEMA_VERSION))?;
            self.global_write(|c| c.hset_nx(META, "layout", LAYOUT))?;
        }
        Ok(())
    }

    pub(super) fn report_health(&self) -> Result<crate::Health, StoreError> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        // INFO may be forbidden to this user (ACL) too; then the version is unknown.
        let version = match self.server_version() {
            Some(v) => v,
            None => {
                warnings.push("cannot read the server's version (INFO not allowed for this user)".into());
                "unknown".into()
            }
        };
        let parts: Vec<u32> = version.split('.').filter_map(|p| p.parse().ok()).collect();
        if parts.len() >= 2 && (parts[0], parts[1]) < (6, 2) {
            errors.push(format!("Redis {version} is too old: swarm needs 6.2 or newer"));
        }
        // CONFIG may be forbidden to this user (ACL); then persistence is unknown, not wrong.
        let config = |name: &str| -> Option<String> {
            self.with(|c| redis::cmd("CONFIG").arg("GET").arg(name).query::<Vec<String>>(c))
                .ok()
                .and_then(|v| v.get(1).cloned())
        };
        let persistence = match (config("appendonly"), config("save")) {
            (Some(aof), Some(save)) => {
                if aof != "yes" && save.trim().is_empty() {
                    warnings
                        .push("neither AOF nor RDB snapshots are on: a Redis restart loses every run".into());
                }
                format!("appendonly={aof}, save=\"{save}\"")
            }
            _ => {
                warnings
                    .push("cannot read persistence settings (CONFIG GET not allowed for this user)".into());
                "unknown".into()
            }
        };
        let schema: Option<String> = self.global_read(|c| c.hget(META, "schema_version"))?.flatten();
        Ok(crate::Health {
            backend: "redis",
            address: self.describe(),
            server_version: version,
            schema_version: schema
                .and_then(|s| s.split('.').next().and_then(|m| m.parse().ok()))
                .unwrap_or(SCHEMA_VERSION),
            persistence,
            errors,
            warnings,
        })
    }

    /// `redis_version` from `INFO server`; on a Cluster every primary answers, and the oldest
    /// one counts.
    fn server_version(&self) -> Option<String> {
        let answer: redis::Value = self.with(|c| redis::cmd("INFO").arg("server").query(c)).ok()?;
        let texts: Vec<String> = match answer {
            redis::Value::Map(nodes) => {
                nodes.into_iter().filter_map(|(_, text)| redis::from_redis_value(text).ok()).collect()
            }
            one => redis::from_redis_value(one).ok().into_iter().collect(),
        };
        let version = |text: &String| {
            text.lines().find_map(|l| l.strip_prefix("redis_version:")).map(|v| v.trim().to_string())
        };
        let numeric = |v: &String| v.split('.').map(|p| p.parse().unwrap_or(0)).collect::<Vec<u32>>();
        texts.iter().filter_map(version).min_by_key(numeric)
    }
}
