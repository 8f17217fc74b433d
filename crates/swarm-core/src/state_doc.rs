//! Shared state: the versioned key → JSON documents agents of one namespace read and write
//! (`swarm state …`), who wrote them, and the change feed `swarm state watch` follows.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// One key of a namespace's shared state.
///
/// Field order matters to the Redis store: `key` and `version` come before the user's `value`,
/// so the first `"version":` in the serialized document is always the entry's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StateEntry {
    pub key: String,
    /// 1 when the key is created, +1 on every write. A deleted key starts again at 1.
    pub version: u64,
    pub value: Value,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<Actor>,
}

/// Who made a change: the agent attempt (from `SWARM_RUN_ID`, `SWARM_TASK_ID`, `SWARM_ATTEMPT`)
/// and the process, when known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Actor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StateOp {
    Set,
    Delete,
    /// A write the key's declaration refused (schema or writers); nothing was written.
    Refused,
}

impl StateOp {
    pub fn as_str(self) -> &'static str {
        match self {
            StateOp::Set => "set",
            StateOp::Delete => "delete",
            StateOp::Refused => "refused",
        }
    }
}

impl std::fmt::Display for StateOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a namespace's change feed. `seq` increases by one per change in the namespace.
///
/// As with [`StateEntry`], `seq` and `version` precede the user's `value` on purpose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StateChange {
    pub seq: u64,
    pub namespace: String,
    pub key: String,
    pub op: StateOp,
    /// The version written by a `set`; the version the entry had when it was deleted.
    pub version: u64,
    /// The value written by a `set` (which may be JSON `null`); absent for a `delete`.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub value: Option<Value>,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Actor>,
    /// Why a write was refused (`op: refused`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A present field is `Some`, even when it is `null` (a `set` of JSON null).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_of_null_keeps_its_value_through_json() {
        let change = StateChange {
            seq: 1,
            namespace: "ns".into(),
            key: "k".into(),
            op: StateOp::Set,
            version: 1,
            value: Some(Value::Null),
            at: Utc::now(),
            by: None,
            reason: None,
        };
        let back: StateChange = serde_json::from_str(&serde_json::to_string(&change).unwrap()).unwrap();
        assert_eq!(back, change);
        let delete = StateChange { op: StateOp::Delete, value: None, ..change };
        let back: StateChange = serde_json::from_str(&serde_json::to_string(&delete).unwrap()).unwrap();
        assert_eq!(back, delete);
    }

    #[test]
    fn version_precedes_the_value_in_the_document() {
        let entry = StateEntry {
            key: "\"version\":9".into(),
            version: 3,
            value: serde_json::json!({ "version": 7 }),
            updated_at: Utc::now(),
            updated_by: None,
        };
        let doc = serde_json::to_string(&entry).unwrap();
        let first = doc.find("\"version\":").unwrap();
        assert_eq!(&doc[first..first + 11], "\"version\":3", "{doc}");
    }
}
