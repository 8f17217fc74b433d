//! completion.json (docs/contract.md §5): what an agent writes when it finishes, and its validation
//! against the published JSON Schema (`swarm schema completion`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::OnceLock;

mod duplicates;

/// The version of the completion format this swarm writes and reads.
pub const COMPLETION_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Completion {
    /// Always 1 for this format.
    #[schemars(range(min = 1, max = 1))]
    pub schema_version: u32,
    pub run_id: String,
    pub task_id: String,
    pub status: CompletionStatus,
    /// What was done, one paragraph.
    pub summary: String,
    #[serde(default)]
    pub files_changed: Vec<String>,
    #[serde(default)]
    pub tests: Vec<TestRun>,
    #[serde(default)]
    pub follow_ups: Vec<String>,
    #[serde(default)]
    pub blockers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompletionStatus {
    Done,
    Partial,
    Blocked,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRun {
    pub command: String,
    pub passed: bool,
}

/// Parses and validates completion.json text; see [`parse_bytes`].
pub fn parse(
    text: &str,
    expect_run: Option<&str>,
    expect_task: Option<&str>,
) -> Result<Completion, Vec<String>> {
    parse_bytes(text.as_bytes(), expect_run, expect_task)
}

/// Parses and validates completion.json as an agent wrote it. On failure, every problem found,
/// one per entry: bytes that are not UTF-8 (at which offset), a JSON syntax error (with line and
/// column), or else every key given twice in one object (`<json pointer>: duplicate key …`, at any
/// depth: JSON parsers disagree on which one wins) and every schema violation as
/// `<json pointer>: <message>` (the pointer is empty for the document itself), then any
/// `run_id`/`task_id` that differs from the expected one.
pub fn parse_bytes(
    bytes: &[u8],
    expect_run: Option<&str>,
    expect_task: Option<&str>,
) -> Result<Completion, Vec<String>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let (line, column) = line_col(&bytes[..at]);
        vec![format!(
            "not valid UTF-8: byte 0x{:02x} at offset {at} (line {line}, column {column})",
            bytes[at]
        )]
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| vec![format!("not valid JSON: {e}")])?;
    let mut errors = duplicates::duplicate_keys(text);
    errors.extend(schema_errors(&value));
    if !errors.is_empty() {
        return Err(errors);
    }
    let completion: Completion = match serde_json::from_value(value) {
        Ok(c) => c,
        // The schema is generated from the type, so this means the two drifted apart.
        Err(e) => return Err(vec![format!(": {e}")]),
    };
    let expected =
        [("run_id", &completion.run_id, expect_run), ("task_id", &completion.task_id, expect_task)];
    for (field, found, want) in expected {
        if let Some(want) = want.filter(|w| *w != found) {
            errors.push(format!(
                "/{field}: expected {}, found {}",
                Value::from(want),
                Value::from(found.as_str())
            ));
        }
    }
    if errors.is_empty() {
        Ok(completion)
    } else {
        Err(errors)
    }
}

/// 1-based line and char column just after `prefix` (which must be UTF-8 up to its end).
pub(crate) fn line_col(prefix: &[u8]) -> (usize, usize) {
    let line_start = prefix.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
    let line = prefix.iter().filter(|&&c| c == b'\n').count() + 1;
    let column = String::from_utf8_lossy(&prefix[line_start..]).chars().count() + 1;
    (line, column)
}

/// Every violation of the completion schema by `value`, as `<json pointer>: <message>`.
pub fn schema_errors(value: &Value) -> Vec<String> {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| {
        // The schema `swarm schema completion` prints (see `crate::schema`).
        let schema = serde_json::to_value(schemars::schema_for!(Completion)).expect("schemas serialize");
        jsonschema::validator_for(&schema).expect("the generated completion schema compiles")
    });
    validator
        .iter_errors(value)
        .map(|e| match e.kind() {
            // The library names only the first two choices; an agent fixing its file needs all.
            jsonschema::error::ValidationErrorKind::Enum { options } => {
                format!("{}: {} is not one of {options}", e.instance_path(), e.instance())
            }
            _ => format!("{}: {e}", e.instance_path()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({
            "schema_version": 1, "run_id": "r1", "task_id": "t1", "status": "done",
            "summary": "did it", "files_changed": ["a.rs"],
            "tests": [{ "command": "cargo test", "passed": true }],
            "follow_ups": [], "blockers": []
        })
    }

    fn errors(v: &Value) -> Vec<String> {
        parse(&v.to_string(), Some("r1"), Some("t1")).unwrap_err()
    }

    #[test]
    fn a_valid_report_parses_and_optional_lists_default_to_empty() {
        let c = parse(&valid().to_string(), Some("r1"), Some("t1")).unwrap();
        assert_eq!(c.status, CompletionStatus::Done);
        assert_eq!(c.tests, vec![TestRun { command: "cargo test".into(), passed: true }]);
        let minimal = r#"{"schema_version":1,"run_id":"r1","task_id":"t1","status":"partial","summary":"s"}"#;
        let c = parse(minimal, None, None).unwrap();
        assert!(c.files_changed.is_empty() && c.blockers.is_empty());
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let errs = parse("{\n  \"status\": \"done\",\n}", None, None).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("not valid JSON: "), "{errs:?}");
        assert!(errs[0].contains("line 3 column 1"), "{errs:?}");
        let errs = parse("", None, None).unwrap_err();
        assert!(errs[0].contains("line 1 column 0"), "{errs:?}");
    }

    #[test]
    fn every_schema_error_is_listed_with_its_pointer() {
        let mut v = valid();
        v["status"] = json!("finished");
        v.as_object_mut().unwrap().remove("summary");
        v["files_changed"] = json!("a.rs");
        v["tests"][0]["passed"] = json!("yes");
        v["extra"] = json!(1);
        v["schema_version"] = json!(2);
        let errs = errors(&v);
        let has = |prefix: &str, text: &str| errs.iter().any(|e| e.starts_with(prefix) && e.contains(text));
        assert!(
            errs.contains(
                &r#"/status: "finished" is not one of ["done","partial","blocked","failed"]"#.into()
            ),
            "{errs:#?}"
        );
        assert!(has(": ", r#""summary" is a required property"#), "{errs:#?}");
        assert!(has("/files_changed: ", r#""a.rs" is not of type "array""#), "{errs:#?}");
        assert!(has("/tests/0/passed: ", r#""yes" is not of type "boolean""#), "{errs:#?}");
        assert!(has(": ", "extra"), "unknown fields are errors: {errs:#?}");
        assert!(has("/schema_version: ", "maximum"), "{errs:#?}");
        assert_eq!(errs.len(), 6, "{errs:#?}");
    }

    #[test]
    fn a_document_that_is_not_an_object_is_a_schema_error() {
        assert_eq!(errors(&json!([1])), vec![r#": [1] is not of type "object""#.to_string()]);
    }

    #[test]
    fn invalid_utf8_is_an_error_at_its_offset() {
        let mut bytes = valid().to_string().into_bytes();
        let at = bytes.windows(6).position(|w| w == b"did it").unwrap() + 4;
        bytes[at] = 0xff;
        let errs = parse_bytes(&bytes, Some("r1"), Some("t1")).unwrap_err();
        assert_eq!(
            errs,
            vec![format!("not valid UTF-8: byte 0xff at offset {at} (line 1, column {})", at + 1)]
        );
        // A truncated multi-byte character at the very end.
        let errs = parse_bytes(b"{\n\"summary\": \"\xc3", None, None).unwrap_err();
        assert_eq!(errs, vec!["not valid UTF-8: byte 0xc3 at offset 14 (line 2, column 13)".to_string()]);
        assert!(parse_bytes(valid().to_string().as_bytes(), Some("r1"), Some("t1")).is_ok());
    }

    #[test]
    fn duplicate_keys_are_errors_at_any_depth() {
        let text = r#"{"schema_version": 1, "run_id": "r1", "task_id": "t1", "status": "done",
  "summary": "first", "summary": "second",
  "tests": [ { "command": "a", "passed": true, "command": "b" } ],
  "a/b~c": 1, "a/b~c": 2, "n": { "x": { "y": 1, "y": 2 } } }"#;
        let errs = parse_bytes(text.as_bytes(), Some("r1"), Some("t1")).unwrap_err();
        let dups: Vec<&String> = errs.iter().filter(|e| e.contains("duplicate key")).collect();
        assert_eq!(
            dups,
            vec![
                r#"/summary: duplicate key "summary" at line 2, column 23 (first at line 2, column 3)"#,
                r#"/tests/0/command: duplicate key "command" at line 3, column 48 (first at line 3, column 16)"#,
                r#"/a~1b~0c: duplicate key "a/b~c" at line 4, column 15 (first at line 4, column 3)"#,
                r#"/n/x/y: duplicate key "y" at line 4, column 49 (first at line 4, column 41)"#,
            ],
            "{errs:#?}"
        );
        // Schema errors are still listed (here: the unknown keys), all at once.
        assert!(errs.iter().any(|e| e.starts_with(": ") && e.contains("'n'")), "{errs:#?}");
        // An escaped spelling of the same key is the same key.
        let text = r#"{"schema_version": 1, "run_id": "r1", "task_id": "t1", "status": "done", "summary": "s", "st\u0061tus": "failed"}"#;
        let errs = parse(text, None, None).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(errs[0].starts_with(r#"/status: duplicate key "status" at line 1, column 90"#), "{errs:#?}");
    }

    #[test]
    fn run_and_task_must_be_the_expected_ones() {
        let mut v = valid();
        v["run_id"] = json!("other-run");
        v["task_id"] = json!("other-task");
        assert_eq!(
            errors(&v),
            vec![
                r#"/run_id: expected "r1", found "other-run""#.to_string(),
                r#"/task_id: expected "t1", found "other-task""#.to_string()
            ]
        );
        assert!(parse(&v.to_string(), None, None).is_ok(), "no expectation, no mismatch");
    }
}
