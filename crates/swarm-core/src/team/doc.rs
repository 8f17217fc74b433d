//! The declared state as markdown: the document `swarm state doc` prints and `[state] doc`
//! writes for the agents' rule files, and the section of a task's prompt that names its keys.

use super::decl::{KeyDecl, StateDecl};
use std::fmt::Write;

/// The whole declaration, for people and rule files.
pub fn render_doc(decl: &StateDecl, namespace: &str) -> String {
    let mut s = format!(
        "# Shared state of `{namespace}`\n\n\
         Agents of this plan share versioned JSON values under these keys (`*` matches any text). \
         Read with `swarm state get KEY --json` (prints the value and its `version`); write with \
         `swarm state set KEY 'JSON' --if-version N` so a concurrent write is never lost (exit 1 \
         on a version conflict: read again and retry). A value that breaks its key's schema is \
         refused (exit 2), and so is a write by a task that is not among its writers (exit 1).\n"
    );
    if decl.strict {
        s.push_str("\nOnly the keys below may be written (`strict`).\n");
    }
    for (key, k) in &decl.keys {
        s.push('\n');
        key_section(&mut s, key, k);
    }
    s
}

/// The prompt section for `task`: the keys it may write and those it may read, with shapes.
pub fn render_for_task(decl: &StateDecl, task: &str) -> String {
    let (write, read) = decl.split_for(task);
    let mut s = String::from(
        "## Shared state\n\nThis plan declares shared state (versioned JSON values every agent of the run can read). \
         Read a key with `swarm state get KEY --json` (its `version` is in the answer); write with \
         `swarm state set KEY 'JSON' --if-version N` (N = the version you read, 0 for a new key; \
         on a version conflict read again and retry). Values must follow the key's schema.\n",
    );
    let list = |s: &mut String, title: &str, keys: &[(&str, &KeyDecl)]| {
        if keys.is_empty() {
            return;
        }
        let _ = write!(s, "\n{title}\n");
        for (key, k) in keys {
            s.push('\n');
            key_section(s, key, k);
        }
    };
    list(&mut s, "### Keys you may write", &write);
    list(&mut s, "### Keys you may read (others write them)", &read);
    if decl.strict {
        s.push_str("\nWrites to any other key are refused.\n");
    }
    s
}

fn key_section(s: &mut String, key: &str, k: &KeyDecl) {
    let writers = if k.writers.is_empty() { "anyone".to_string() } else { k.writers.join(", ") };
    let _ = writeln!(s, "#### `{key}`\n\nwriters: {writers}");
    if let Some(file) = &k.schema_file {
        let _ = writeln!(s, "schema file: `{file}`");
    }
    if let Some(schema) = &k.schema {
        let pretty = serde_json::to_string_pretty(schema).expect("JSON values serialize");
        let _ = writeln!(s, "\n```json\n{pretty}\n```");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_task_sees_its_own_keys_apart_from_the_others() {
        let decl: StateDecl = serde_json::from_value(json!({
            "keys": {
                "research/*": {"writers": ["research"], "schema": {"type": "object"}},
                "draft": {"writers": ["write"]}
            }
        }))
        .unwrap();
        let text = render_for_task(&decl, "research");
        let (mine, others) = text.split_once("### Keys you may read").unwrap();
        assert!(mine.contains("#### `research/*`") && mine.contains("\"type\": \"object\""), "{text}");
        assert!(others.contains("#### `draft`\n\nwriters: write"), "{text}");
        assert!(text.contains("--if-version N"));
        let doc = render_doc(&decl, "ns");
        assert!(doc.starts_with("# Shared state of `ns`") && doc.contains("#### `draft`"), "{doc}");
    }
}
