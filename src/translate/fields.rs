//! Typed reads of optional request fields, with OpenAI-style 400s on the wrong type.
//!
//! `null` counts as absent everywhere, as it does for OpenAI.

use super::TranslateError;
use serde_json::{Map, Value};

pub(crate) type Obj = Map<String, Value>;

/// The value of `key` unless it is missing or `null`.
pub(crate) fn present<'a>(obj: &'a Obj, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// "a string", "an integer", ... for messages like OpenAI's.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a decimal",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn invalid_type(param: &str, expected: &str, got: &Value) -> TranslateError {
    TranslateError::invalid_code(
        param,
        "invalid_type",
        format!(
            "Invalid type for '{param}': expected {expected}, but got {} instead.",
            type_name(got)
        ),
    )
}

pub(crate) fn missing(param: &str) -> TranslateError {
    TranslateError::invalid_code(
        param,
        "missing_required_parameter",
        format!("Missing required parameter: '{param}'."),
    )
}

pub(crate) fn opt_bool(obj: &Obj, key: &str) -> Result<Option<bool>, TranslateError> {
    present(obj, key)
        .map(|v| v.as_bool().ok_or_else(|| invalid_type(key, "a boolean", v)))
        .transpose()
}

pub(crate) fn opt_number(obj: &Obj, key: &str) -> Result<Option<f64>, TranslateError> {
    present(obj, key)
        .map(|v| v.as_f64().ok_or_else(|| invalid_type(key, "a number", v)))
        .transpose()
}

pub(crate) fn opt_int(obj: &Obj, key: &str) -> Result<Option<i64>, TranslateError> {
    present(obj, key)
        .map(|v| v.as_i64().ok_or_else(|| invalid_type(key, "an integer", v)))
        .transpose()
}

pub(crate) fn opt_str<'a>(obj: &'a Obj, key: &str) -> Result<Option<&'a str>, TranslateError> {
    present(obj, key)
        .map(|v| v.as_str().ok_or_else(|| invalid_type(key, "a string", v)))
        .transpose()
}

pub(crate) fn opt_object<'a>(obj: &'a Obj, key: &str) -> Result<Option<&'a Obj>, TranslateError> {
    present(obj, key)
        .map(|v| {
            v.as_object()
                .ok_or_else(|| invalid_type(key, "an object", v))
        })
        .transpose()
}

pub(crate) fn opt_array<'a>(
    obj: &'a Obj,
    key: &str,
) -> Result<Option<&'a Vec<Value>>, TranslateError> {
    present(obj, key)
        .map(|v| v.as_array().ok_or_else(|| invalid_type(key, "an array", v)))
        .transpose()
}

/// Like [`opt_str`] but for a nested field, naming the full path in the error.
pub(crate) fn nested_str<'a>(
    obj: &'a Obj,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, TranslateError> {
    present(obj, key)
        .map(|v| v.as_str().ok_or_else(|| invalid_type(path, "a string", v)))
        .transpose()
}

/// A required, non-empty string at `path`.
pub(crate) fn required_str<'a>(
    obj: &'a Obj,
    key: &str,
    path: &str,
) -> Result<&'a str, TranslateError> {
    match nested_str(obj, key, path)? {
        Some(s) if !s.is_empty() => Ok(s),
        Some(_) => Err(TranslateError::invalid_code(
            path,
            "empty_string",
            format!("Invalid '{path}': empty string. Expected a non-empty string."),
        )),
        None => Err(missing(path)),
    }
}
