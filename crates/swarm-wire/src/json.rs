//! Typed reads of untyped JSON: each accessor says which format and field was wrong instead of
//! panicking or silently defaulting.

use crate::{Format, WireError};
use serde_json::{Map, Value};

pub(crate) type Obj = Map<String, Value>;

/// Parses a body, naming the format on failure.
pub fn parse(format: Format, bytes: &[u8]) -> Result<Value, WireError> {
    serde_json::from_slice(bytes).map_err(|source| WireError::NotJson { format, source })
}

pub(crate) fn obj<'a>(format: Format, v: &'a Value, what: &str) -> Result<&'a Obj, WireError> {
    v.as_object().ok_or_else(|| WireError::malformed(format, what, "expected an object"))
}

/// The field under its camelCase or snake_case name (Gemini's REST API accepts both).
pub(crate) fn either<'a>(o: &'a Obj, camel: &str, snake: &str) -> Option<&'a Value> {
    o.get(camel).or_else(|| o.get(snake)).filter(|v| !v.is_null())
}

/// A field that may be absent or null, but when present must be a string.
pub(crate) fn opt_str<'a>(format: Format, o: &'a Obj, key: &str) -> Result<Option<&'a str>, WireError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(WireError::malformed(format, key, "expected a string")),
    }
}

pub(crate) fn req_str<'a>(format: Format, o: &'a Obj, key: &str) -> Result<&'a str, WireError> {
    opt_str(format, o, key)?.ok_or_else(|| WireError::malformed(format, key, "missing"))
}

/// A field that may be absent or null, but when present must be an array.
pub(crate) fn opt_array<'a>(format: Format, o: &'a Obj, key: &str) -> Result<&'a [Value], WireError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(WireError::malformed(format, key, "expected an array")),
    }
}

pub(crate) fn opt_u64(format: Format, o: &Obj, key: &str) -> Result<Option<u64>, WireError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| WireError::malformed(format, key, "expected a count")),
    }
}

pub(crate) fn opt_bool(format: Format, o: &Obj, key: &str) -> Result<Option<bool>, WireError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(WireError::malformed(format, key, "expected true or false")),
    }
}

/// Copies `from` of `src` to `to` of `dst` when present and not null.
pub(crate) fn copy(src: &Obj, from: &str, dst: &mut Obj, to: &str) {
    if let Some(v) = src.get(from).filter(|v| !v.is_null()) {
        dst.insert(to.to_string(), v.clone());
    }
}

/// A string made of string-or-number `v`, for stop sequences and the like.
pub(crate) fn strings(format: Format, v: &Value, what: &str) -> Result<Vec<String>, WireError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| WireError::malformed(format, what, "expected strings"))
            })
            .collect(),
        _ => Err(WireError::malformed(format, what, "expected a string or strings")),
    }
}

/// JSON text of a tool call's arguments: objects are serialised, strings kept.
pub(crate) fn arguments_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "{}".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Parses a tool call's JSON arguments into the object the structured formats need.
pub(crate) fn arguments_object(format: Format, text: &str) -> Result<Value, WireError> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Obj::new()));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(WireError::malformed(format, "tool call arguments", "not a JSON object")),
        Err(e) => Err(WireError::malformed(format, "tool call arguments", format!("not JSON: {e}"))),
    }
}
