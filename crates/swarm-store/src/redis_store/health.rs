//! The store's account of itself on Redis: the server's version and persistence, and the key
//! schema's version, checked when the store is opened.

use super::{RedisStore, META, SCHEMA_VERSION};
use crate::store::{Store, StoreError};
use redis::Commands;

impl RedisStore {
    pub(super) fn check_schema(&self, create: bool) -> Result<(), StoreError> {
        let found: Option<String> = self.with(|c| c.hget(META, "schema_version"))?;
        match found {
            None if !create => Ok(()),
            None => {
                let _: bool = self.with(|c| c.hset_nx(META, "schema_version", SCHEMA_VERSION))?;
                Ok(())
            }
            Some(v) => {
                let major: u32 =
                    v.split('.').next().and_then(|m| m.parse().ok()).ok_or_else(|| StoreError::Corrupt {
                        key: format!("{META} schema_version"),
                        message: format!("not a version: {v:?}"),
                    })?;
                if major > SCHEMA_VERSION {
                    return Err(StoreError::SchemaTooNew { found: major, known: SCHEMA_VERSION });
                }
                Ok(())
            }
        }
    }

    pub(super) fn report_health(&self) -> Result<crate::Health, StoreError> {
        let info: redis::InfoDict = self.with(|c| redis::cmd("INFO").arg("server").query(c))?;
        let version: String = info.get("redis_version").unwrap_or_else(|| "unknown".into());
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
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
        let schema: Option<String> = self.with(|c| c.hget(META, "schema_version"))?;
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
}
