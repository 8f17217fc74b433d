//! The committed JSON Schemas under `schema/` must match the Rust types. After changing a stored
//! type, regenerate them with `SWARM_BLESS=1 cargo test -p swarm-core --test schemas`.

use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schema")
}

#[test]
fn committed_schemas_match_the_types() {
    let bless = std::env::var_os("SWARM_BLESS").is_some();
    let mut stale = Vec::new();
    for (name, schema) in swarm_core::schema::all() {
        let path = dir().join(format!("{name}.schema.json"));
        let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if bless {
            std::fs::create_dir_all(dir()).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "schemas drifted from the Rust types: {stale:?}\nregenerate: SWARM_BLESS=1 cargo test -p swarm-core --test schemas"
    );
}

#[test]
fn schemas_are_draft_2020_12_and_describe_the_contract_fields() {
    let completion = swarm_core::schema::get("completion").unwrap();
    assert_eq!(completion["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let required: Vec<&str> =
        completion["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for field in ["schema_version", "run_id", "task_id", "status", "summary"] {
        assert!(required.contains(&field), "completion.json requires {field}");
    }
    let report = swarm_core::schema::get("report").unwrap();
    for field in ["run_id", "plan", "state", "started_at", "ended_at", "tasks"] {
        assert!(report["properties"].get(field).is_some(), "report.json has {field}");
    }
}

#[test]
fn a_contract_completion_example_deserializes() {
    let example = r#"{
      "schema_version": 1, "run_id": "r", "task_id": "schema", "status": "done",
      "summary": "what was done", "files_changed": ["docs/schema.md"],
      "tests": [ { "command": "cargo test", "passed": true } ],
      "follow_ups": ["x"], "blockers": []
    }"#;
    let c: swarm_core::completion::Completion = serde_json::from_str(example).unwrap();
    assert_eq!(c.status, swarm_core::completion::CompletionStatus::Done);
}
