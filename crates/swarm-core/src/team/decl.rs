//! Declared shared state (docs/contract.md §12): which keys a plan's agents share, the JSON Schema each
//! key's value must follow and which tasks may write it; the check every write path runs.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The `state:` block of a plan's front matter (or `[state]` in swarm.toml).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateDecl {
    /// Writes to keys no declaration matches are refused.
    #[serde(default)]
    pub strict: bool,
    /// Where the rendered declaration is written in each task's working directory at run start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// Keys or glob patterns (`research/*`). A key is governed by its exact entry, else by the
    /// most specific matching pattern (the most literal characters), whatever the order written.
    #[serde(default)]
    pub keys: BTreeMap<String, KeyDecl>,
}

/// One declared key or key pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyDecl {
    /// Task ids or patterns that may write the key; empty: anyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writers: Vec<String>,
    /// A JSON Schema (2020-12) every value written must satisfy; a `schema_file` is read into it
    /// when the plan is loaded, so a stored run carries the schema itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// Where the schema came from, when it was a file (for messages and the rendered doc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_file: Option<String>,
}

/// A declared key (or pattern) with its declaration.
pub type Declared<'a> = (&'a str, &'a KeyDecl);

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The value breaks the key's schema: `path` is a JSON pointer into the value.
    #[error("value for `{key}` breaks its schema at {path}: {rule}")]
    Schema { key: String, path: String, rule: String },
    /// The writer is not among the key's writers.
    #[error("task `{task}` may not write `{key}`: only {} may (declared for `{pattern}`)", writers.join(", "))]
    NotOwner { key: String, task: String, pattern: String, writers: Vec<String> },
    /// `strict: true` and no declaration matches the key.
    #[error("key `{key}` is not declared and the plan's state is strict; declared: {declared}")]
    Undeclared { key: String, declared: String },
}

impl Refusal {
    /// The exit code the contract gives it: a schema violation is invalid input (2); a writer
    /// without the right to write (or to an undeclared key) is a refusal (1).
    pub fn exit_code(&self) -> i32 {
        match self {
            Refusal::Schema { .. } => 2,
            Refusal::NotOwner { .. } | Refusal::Undeclared { .. } => 1,
        }
    }
}

impl StateDecl {
    /// The declaration that governs `key` with its pattern: an exact key first, else the
    /// matching pattern with the most literal characters.
    pub fn find(&self, key: &str) -> Option<(&str, &KeyDecl)> {
        if let Some((k, d)) = self.keys.get_key_value(key) {
            return Some((k.as_str(), d));
        }
        let literal = |p: &str| p.chars().filter(|c| !matches!(c, '*' | '?')).count();
        self.keys
            .iter()
            .filter(|(p, _)| glob(p, key))
            .max_by_key(|(p, _)| literal(p))
            .map(|(p, d)| (p.as_str(), d))
    }

    /// Whether `task` (`None`: the user, outside any run) may write `value` (`None`: a delete)
    /// to `key`.
    pub fn check_write(&self, task: Option<&str>, key: &str, value: Option<&Value>) -> Result<(), Refusal> {
        let Some((pattern, decl)) = self.find(key) else {
            if self.strict {
                let declared = self.keys.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
                return Err(Refusal::Undeclared { key: key.into(), declared });
            }
            return Ok(());
        };
        if let Some(task) = task {
            if !decl.may_write(task) {
                return Err(Refusal::NotOwner {
                    key: key.into(),
                    task: task.into(),
                    pattern: pattern.into(),
                    writers: decl.writers.clone(),
                });
            }
        }
        match (value, &decl.schema) {
            (Some(value), Some(schema)) => check_schema(key, schema, value),
            _ => Ok(()),
        }
    }

    /// The keys `task` may write, and those it may only read.
    pub fn split_for(&self, task: &str) -> (Vec<Declared<'_>>, Vec<Declared<'_>>) {
        self.keys.iter().map(|(k, d)| (k.as_str(), d)).partition(|(_, d)| d.may_write(task))
    }
}

impl KeyDecl {
    pub fn may_write(&self, task: &str) -> bool {
        self.writers.is_empty() || self.writers.iter().any(|w| glob(w, task))
    }
}

/// Compiles a schema as JSON Schema 2020-12; the error names what is wrong with it.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::draft202012::options().should_validate_formats(true).build(schema).map_err(|e| {
        let at = e.instance_path().to_string();
        if at.is_empty() {
            e.to_string()
        } else {
            format!("at {at}: {e}")
        }
    })
}

fn check_schema(key: &str, schema: &Value, value: &Value) -> Result<(), Refusal> {
    let validator =
        compile(schema).map_err(|e| Refusal::Schema { key: key.into(), path: "(schema)".into(), rule: e })?;
    let Some(e) = validator.iter_errors(value).next() else { return Ok(()) };
    let path = e.instance_path().to_string();
    let path = if path.is_empty() { "/".to_string() } else { path };
    let rule = format!("{} ({} at {})", e, e.kind().keyword(), e.schema_path());
    Err(Refusal::Schema { key: key.into(), path, rule })
}

/// `*` matches any run of characters (`/` included), `?` one character; the rest is literal.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) && p[pi] != '*' {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decl() -> StateDecl {
        StateDecl {
            strict: false,
            doc: None,
            keys: BTreeMap::from([(
                "research/*".to_string(),
                KeyDecl {
                    writers: vec!["research".into(), "research-*".into()],
                    schema: Some(json!({
                        "type": "object", "required": ["topic", "findings"],
                        "properties": {"topic": {"type": "string"},
                                       "findings": {"type": "array", "items": {"type": "string"}}}
                    })),
                    schema_file: None,
                },
            )]),
        }
    }

    #[test]
    fn globs_match_keys_and_task_ids() {
        assert!(glob("research/*", "research/x/y"));
        assert!(glob("research-*", "research-2"));
        assert!(!glob("research-*", "research"));
        assert!(glob("a?c", "abc") && !glob("a?c", "ac"));
        assert!(glob("*", "") && glob("exact", "exact") && !glob("exact", "exactly"));
    }

    #[test]
    fn a_value_that_breaks_the_schema_names_the_path_and_rule() {
        let bad = json!({"topic": "t", "findings": ["a", 3]});
        let err = decl().check_write(Some("research"), "research/x", Some(&bad)).unwrap_err();
        let Refusal::Schema { path, rule, .. } = &err else { panic!("{err:?}") };
        assert_eq!(path, "/findings/1");
        assert!(rule.contains("type"), "{rule}");
        assert_eq!(err.exit_code(), 2);
        let good = json!({"topic": "t", "findings": ["a"]});
        assert_eq!(decl().check_write(Some("research-2"), "research/x", Some(&good)), Ok(()));
        let missing = decl().check_write(None, "research/x", Some(&json!({"topic": "t"}))).unwrap_err();
        assert!(missing.to_string().contains("findings"), "{missing}");
    }

    #[test]
    fn only_writers_may_write_and_the_user_always_may() {
        let good = json!({"topic": "t", "findings": []});
        let err = decl().check_write(Some("write"), "research/x", Some(&good)).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("only research, research-* may"), "{err}");
        assert_eq!(decl().check_write(None, "research/x", Some(&good)), Ok(()));
        assert!(decl().check_write(Some("write"), "research/x", None).is_err(), "deletes are writes too");
    }

    #[test]
    fn undeclared_keys_are_free_unless_strict() {
        assert_eq!(decl().check_write(Some("write"), "notes", Some(&json!(1))), Ok(()));
        let strict = StateDecl { strict: true, ..decl() };
        let err = strict.check_write(None, "notes", Some(&json!(1))).unwrap_err();
        assert!(matches!(err, Refusal::Undeclared { .. }), "{err:?}");
    }

    #[test]
    fn broken_schemas_do_not_compile() {
        assert!(compile(&json!({"type": "strnig"})).is_err());
        assert!(compile(&json!({"type": "object"})).is_ok());
    }
}
