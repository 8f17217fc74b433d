//! The front matter's `state:` block (docs/contract.md §12) read from the YAML tree: turned into a
//! [`StateDecl`], with `schema_file`s read in and every schema compiled, each problem at its
//! line and column.

use super::front_matter::Node;
use super::PlanContext;
use crate::diagnostic::Sink;
use crate::team::{compile, StateDecl};
use serde_json::{Map, Number, Value};
use std::ops::Range;
use yaml_rust2::scanner::TScalarStyle;

/// The declaration `node` (the value of `state:`, whose key is at `key_span`) writes.
pub(super) fn parse(
    node: &Node,
    key_span: Range<usize>,
    ctx: &PlanContext,
    sink: &mut Sink,
) -> Option<StateDecl> {
    let value = to_json(node, sink)?;
    let mut decl: StateDecl = match serde_json::from_value(value) {
        Ok(d) => d,
        Err(e) => {
            sink.error(key_span, format!("bad `state`: {e}"))
                .label("expected `strict`, `doc` and `keys: {KEY: {writers, schema | schema_file}}`");
            return None;
        }
    };
    for (key, k) in &mut decl.keys {
        let span = key_node(node, key, "schema_file").unwrap_or_else(|| node.span());
        match (&k.schema, &k.schema_file) {
            (Some(_), Some(_)) => {
                sink.error(span, format!("`{key}` has both `schema` and `schema_file`")).label("keep one");
            }
            (None, Some(file)) => k.schema = read_schema(file, ctx, span, sink),
            _ => {}
        }
        if let Some(schema) = &k.schema {
            if let Err(e) = compile(schema) {
                let span = key_node(node, key, "schema").unwrap_or_else(|| node.span());
                sink.error(span, format!("bad JSON Schema for `{key}`: {e}"))
                    .label("not a valid JSON Schema 2020-12");
            }
        }
    }
    Some(decl)
}

/// Reports every schema of a declaration that does not compile (the JSON form), at `span`.
pub(super) fn check_schemas(decl: &StateDecl, span: &Range<usize>, sink: &mut Sink) {
    for (key, k) in &decl.keys {
        if let Some(Err(e)) = k.schema.as_ref().map(compile) {
            sink.error(span.clone(), format!("bad JSON Schema for `{key}`: {e}"));
        }
    }
}

fn read_schema(file: &str, ctx: &PlanContext, span: Range<usize>, sink: &mut Sink) -> Option<Value> {
    let path = ctx.plan_dir.as_deref().map_or_else(|| file.into(), |d| d.join(file));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            sink.error(span, format!("cannot read schema file `{}`: {e}", path.display()));
            return None;
        }
    };
    match serde_json::from_str(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            sink.error(span, format!("schema file `{}` is not JSON: {e}", path.display()));
            None
        }
    }
}

/// The span of the key `field` in `keys.<key>` of the `state:` tree.
fn key_node(state: &Node, key: &str, field: &str) -> Option<Range<usize>> {
    let (_, keys) = get(state, "keys")?;
    let (_, entry) = get(keys, key)?;
    get(entry, field).map(|(k, _)| k.span())
}

fn get<'n>(node: &'n Node, name: &str) -> Option<(&'n Node, &'n Node)> {
    let Node::Map { entries, .. } = node else { return None };
    entries
        .iter()
        .find(|(k, _)| matches!(k, Node::Scalar { value, .. } if value == name))
        .map(|(k, v)| (k, v))
}

/// YAML as JSON: plain scalars may be null, booleans or numbers; quoted ones are strings.
fn to_json(node: &Node, sink: &mut Sink) -> Option<Value> {
    Some(match node {
        Node::Scalar { value, style: TScalarStyle::Plain, .. } => plain(value),
        Node::Scalar { value, .. } => Value::String(value.clone()),
        Node::Seq { items, .. } => {
            Value::Array(items.iter().map(|i| to_json(i, sink)).collect::<Option<_>>()?)
        }
        Node::Map { entries, .. } => {
            let mut map = Map::new();
            for (k, v) in entries {
                let Node::Scalar { value: key, .. } = k else {
                    sink.error(k.span(), "keys under `state` must be plain names");
                    return None;
                };
                map.insert(key.clone(), to_json(v, sink)?);
            }
            Value::Object(map)
        }
        Node::Alias { span } => {
            sink.error(span.clone(), "YAML aliases are not supported under `state`");
            return None;
        }
    })
}

fn plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => {
            if let Ok(i) = text.parse::<i64>() {
                return Value::Number(i.into());
            }
            match text.parse::<f64>().ok().and_then(Number::from_f64) {
                Some(n) if !text.starts_with('.') => Value::Number(n),
                _ => Value::String(text.to_string()),
            }
        }
    }
}
