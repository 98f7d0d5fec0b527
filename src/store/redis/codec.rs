//! Records ⇄ Redis hashes and members: every value JSON, so names may contain anything.

use super::*;

/// The usage row's identity as a JSON array: unambiguous whatever the names contain.
pub(super) fn usage_member(
    day: &str,
    key_id: &str,
    model: &str,
    region: &str,
) -> Result<String, StoreError> {
    serde_json::to_string(&[day, key_id, model, region]).map_err(codec("record_usage"))
}

/// Hash fields of a key record, each value JSON; `None`s are left out so `HSETNX` can
/// set `revoked_at` exactly once.
pub(super) fn encode_key(key: &KeyRecord) -> Result<Vec<(String, String)>, StoreError> {
    let op = "create_key";
    let value = serde_json::to_value(key).map_err(codec(op))?;
    let serde_json::Value::Object(map) = value else {
        return Ok(Vec::new());
    };
    Ok(map
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k, v.to_string()))
        .collect())
}

/// The inverse of [`encode_key`]; an empty hash means no such key.
pub(super) fn decode_key(
    op: &'static str,
    fields: HashMap<String, String>,
) -> Result<Option<KeyRecord>, StoreError> {
    if fields.is_empty() {
        return Ok(None);
    }
    let mut map = serde_json::Map::new();
    for (field, value) in fields {
        map.insert(field, serde_json::from_str(&value).map_err(codec(op))?);
    }
    serde_json::from_value(serde_json::Value::Object(map))
        .map(Some)
        .map_err(codec(op))
}
