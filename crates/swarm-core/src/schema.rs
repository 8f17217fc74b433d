//! JSON Schemas (draft 2020-12) of every document swarm stores or exchanges, generated from the
//! Rust types. The committed copies under `schema/` are checked against these in the tests.

use schemars::{schema_for, JsonSchema};
use serde_json::Value;

/// `(name, schema)` for every document, in a stable order.
pub fn all() -> Vec<(&'static str, Value)> {
    fn one<T: JsonSchema>() -> Value {
        serde_json::to_value(schema_for!(T)).expect("schemas serialize")
    }
    vec![
        ("completion", one::<crate::completion::Completion>()),
        ("event", one::<crate::event::Event>()),
        ("plan", one::<crate::plan::Plan>()),
        ("report", one::<crate::report::RunReport>()),
        ("run", one::<crate::report::RunRecord>()),
        ("state_change", one::<crate::state_doc::StateChange>()),
        ("state_entry", one::<crate::state_doc::StateEntry>()),
        ("task", one::<crate::report::TaskReport>()),
    ]
}

pub fn get(name: &str) -> Option<Value> {
    all().into_iter().find(|(n, _)| *n == name).map(|(_, s)| s)
}

pub fn names() -> Vec<&'static str> {
    all().into_iter().map(|(n, _)| n).collect()
}
