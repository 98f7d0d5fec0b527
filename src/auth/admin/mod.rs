//! Key administration and usage reports, shared by `qwen-gateway keys ...` and the `/admin`
//! HTTP API so both validate, answer and format the same way.

use super::{AuthError, keys};
use crate::calendar;
use crate::store::{KeyRecord, Store, UsageCursor, UsageRow};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// A key to create (the body of `POST /admin/keys`, or `keys create`'s options).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    /// Glob patterns (`qwen3-*`); empty: any model.
    #[serde(default)]
    pub models: Vec<String>,
    /// Region names; empty: any region.
    #[serde(default)]
    pub regions: Vec<String>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub daily_tokens: Option<u64>,
    /// Lifetime from now, e.g. `30d`; none: never expires.
    #[serde(default, with = "humantime_serde")]
    pub expires: Option<Duration>,
}

/// A created key: the raw value (shown once) and what was stored.
#[derive(Debug)]
pub struct Created {
    pub key: keys::RawKey,
    pub record: KeyRecord,
}

fn invalid(message: impl Into<String>) -> AuthError {
    AuthError::InvalidRequest(message.into())
}

/// Checks a new key's fields; `known_regions` are the configured region names (empty:
/// not checked).
pub fn validate(spec: &NewKey, known_regions: &[String]) -> Result<(), AuthError> {
    let name = spec.name.as_str();
    if name.is_empty() || name.len() > 64 {
        return Err(invalid("A key's name must be 1 to 64 characters long."));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
    {
        return Err(invalid(format!(
            "Invalid key name '{name}': use letters, digits, '-', '_', '.' and '@'."
        )));
    }
    if name.starts_with("key_") {
        return Err(invalid(
            "A key's name may not start with 'key_' (that is how key ids look).",
        ));
    }
    if spec.models.iter().any(|m| m.trim().is_empty()) {
        return Err(invalid("A model pattern may not be empty."));
    }
    if !known_regions.is_empty()
        && let Some(bad) = spec.regions.iter().find(|r| !known_regions.contains(r))
    {
        return Err(invalid(format!(
            "Unknown region '{bad}'; configured regions: {}.",
            known_regions.join(", ")
        )));
    }
    for (what, value) in [
        ("rpm", spec.rpm),
        ("tpm", spec.tpm),
        ("daily_tokens", spec.daily_tokens),
    ] {
        if value == Some(0) {
            return Err(invalid(format!(
                "'{what}' must be at least 1 (leave it out for no limit)."
            )));
        }
    }
    if spec.expires.is_some_and(|d| d.is_zero()) {
        return Err(invalid("'expires' must be longer than 0s."));
    }
    Ok(())
}

/// Creates a key: random, stored only as its SHA-256. A taken name is refused.
pub async fn create_key(
    store: &Store,
    spec: NewKey,
    known_regions: &[String],
) -> Result<Created, AuthError> {
    validate(&spec, known_regions)?;
    let raw = keys::generate()?;
    let now = calendar::now_secs();
    let expires_at = spec
        .expires
        .map(|d| now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
    let record = KeyRecord {
        id: keys::new_id()?,
        name: spec.name,
        hash: raw.hash(),
        prefix: raw.display_prefix(),
        models: spec.models,
        regions: spec.regions,
        rpm: spec.rpm,
        tpm: spec.tpm,
        daily_tokens: spec.daily_tokens,
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    store.create_key(&record).await?;
    Ok(Created { key: raw, record })
}

/// A key as lists show it: never the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub models: Vec<String>,
    pub regions: Vec<String>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub daily_tokens: Option<u64>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub status: KeyStatus,
}

/// Whether a key is accepted now: what the list's filter, the CLI table and the dashboard
/// show (serialised `active`, `revoked`, `expired`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Revoked,
    Expired,
}

impl KeyStatus {
    pub fn of(record: &KeyRecord, now: i64) -> Self {
        if record.revoked_at.is_some() {
            Self::Revoked
        } else if record.is_active(now) {
            Self::Active
        } else {
            Self::Expired
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

impl KeyView {
    pub fn of(record: &KeyRecord, now: i64) -> Self {
        let status = KeyStatus::of(record, now);
        Self {
            id: record.id.clone(),
            name: record.name.clone(),
            prefix: record.prefix.clone(),
            models: record.models.clone(),
            regions: record.regions.clone(),
            rpm: record.rpm,
            tpm: record.tpm,
            daily_tokens: record.daily_tokens,
            created_at: calendar::rfc3339(record.created_at),
            expires_at: record.expires_at.map(calendar::rfc3339),
            revoked_at: record.revoked_at.map(calendar::rfc3339),
            status,
        }
    }
}

/// Items per page of `/admin/keys` and `/admin/usage` when `limit` is not given.
pub const DEFAULT_PAGE: usize = 100;

/// The largest `limit`: a page is read, serialised and sent in one piece.
pub const MAX_PAGE: usize = 1000;

/// Longest `after` accepted: ids are short, and a usage cursor holds at most a day, a key
/// id, a model name (clipped to 128 characters by the ledger) and a region, hex-encoded.
const MAX_CURSOR_CHARS: usize = 4096;

/// A page as OpenAI's list endpoints answer it: `first_id`/`last_id` are the cursors of the
/// first and last item (`null` on an empty page); the next page is `after=<last_id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListPage<T> {
    pub object: &'static str,
    pub data: Vec<T>,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
    pub has_more: bool,
}

fn invalid_param(param: &'static str, message: String) -> AuthError {
    AuthError::InvalidParam { param, message }
}

/// At most 64 characters of a client's value, for echoing it in an error.
fn clipped(text: &str) -> String {
    let mut out: String = text.chars().take(64).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// `limit` from the query: absent → [`DEFAULT_PAGE`]; otherwise an integer from 1 to
/// [`MAX_PAGE`].
pub fn page_limit(raw: Option<&str>) -> Result<usize, AuthError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_PAGE);
    };
    let digits = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit());
    match raw.parse::<usize>() {
        Ok(n) if digits && (1..=MAX_PAGE).contains(&n) => Ok(n),
        _ => Err(invalid_param(
            "limit",
            format!(
                "Invalid 'limit': '{}'. Expected an integer from 1 to {MAX_PAGE} (default {DEFAULT_PAGE}).",
                clipped(raw)
            ),
        )),
    }
}

/// A page of keys in listing order (created, then name) after the key whose id is `after`
/// (the previous page's `last_id`). The cursor is looked up by id, then the store seeks past
/// its (created_at, name).
pub async fn list_keys_page(
    store: &Store,
    after: Option<&str>,
    limit: usize,
) -> Result<ListPage<KeyView>, AuthError> {
    let after = match after {
        None => None,
        Some(id) if id.len() > MAX_CURSOR_CHARS => {
            return Err(invalid_param("after", "Invalid 'after': too long.".into()));
        }
        Some(id) => Some(store.key_by_id(id).await?.ok_or_else(|| {
            invalid_param(
                "after",
                format!(
                    "Invalid 'after': no key has the id '{}'. Pass the 'last_id' of the previous page.",
                    clipped(id)
                ),
            )
        })?),
    };
    let page = store.list_keys_page(after.as_ref(), limit).await?;
    let now = calendar::now_secs();
    let data: Vec<KeyView> = page.items.iter().map(|r| KeyView::of(r, now)).collect();
    Ok(ListPage {
        object: "list",
        first_id: data.first().map(|k| k.id.clone()),
        last_id: data.last().map(|k| k.id.clone()),
        data,
        has_more: page.has_more,
    })
}

/// The opaque `/admin/usage` cursor of a row: its (day, key id, model, region) as a JSON
/// array, hex-encoded, so it survives any URL and any characters in the names.
pub fn usage_cursor_text(cursor: &UsageCursor) -> String {
    let parts = [&cursor.day, &cursor.key_id, &cursor.model, &cursor.region];
    // Serialising four strings cannot fail.
    let json = serde_json::to_string(&parts).unwrap_or_default();
    json.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The inverse of [`usage_cursor_text`]; `None` for anything it did not produce (bad hex,
/// not four strings, a day that is no `YYYY-MM-DD` date).
pub fn parse_usage_cursor(text: &str) -> Option<UsageCursor> {
    if text.is_empty()
        || text.len() > MAX_CURSOR_CHARS
        || !text.len().is_multiple_of(2)
        || !text.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    let bytes: Vec<u8> = text
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            let hex = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(hex, 16).ok()
        })
        .collect::<Option<_>>()?;
    let [day, key_id, model, region]: [String; 4] = serde_json::from_slice(&bytes).ok()?;
    if calendar::parse_day(&day).as_deref() != Some(day.as_str()) {
        return None;
    }
    Some(UsageCursor {
        day,
        key_id,
        model,
        region,
    })
}

/// `since` from a query or the command line: a day, `today` or a span back such as `7d`.
fn since_param(since: Option<&str>) -> Result<Option<String>, AuthError> {
    since
        .map(|text| {
            calendar::since_day(text).ok_or_else(|| {
                invalid_param(
                    "since",
                    format!(
                        "Invalid 'since' date '{}': use YYYY-MM-DD, 'today' or a span back such as '7d'.",
                        clipped(text)
                    ),
                )
            })
        })
        .transpose()
}

/// A page of the ledger from `since` on, in the store's order (day, key id, model, region),
/// after the row whose cursor is `after` (the previous page's `last_id`), with key names.
pub async fn usage_page(
    store: &Store,
    since: Option<&str>,
    after: Option<&str>,
    limit: usize,
) -> Result<ListPage<UsageLine>, AuthError> {
    let since = since_param(since)?;
    let after = after
        .map(|text| {
            parse_usage_cursor(text).ok_or_else(|| {
                invalid_param(
                    "after",
                    "Invalid 'after': not a cursor of this endpoint. Pass the 'last_id' of the previous page."
                        .into(),
                )
            })
        })
        .transpose()?;
    let page = store
        .usage_page(since.as_deref(), after.as_ref(), limit)
        .await?;
    let first_id = page.items.first().map(|r| usage_cursor_text(&r.cursor()));
    let last_id = page.items.last().map(|r| usage_cursor_text(&r.cursor()));
    Ok(ListPage {
        object: "list",
        data: named_lines(store, page.items).await?,
        first_id,
        last_id,
        has_more: page.has_more,
    })
}

/// Every key, revoked and expired ones included.
pub async fn list_keys(store: &Store) -> Result<Vec<KeyView>, AuthError> {
    let now = calendar::now_secs();
    Ok(store
        .list_keys()
        .await?
        .iter()
        .map(|r| KeyView::of(r, now))
        .collect())
}

/// The record with this id (tried first) or name. Two indexed lookups at most, never a
/// listing: a gateway may hold 100,000 keys.
async fn find_key(store: &Store, id_or_name: &str) -> Result<KeyRecord, AuthError> {
    match store.key_by_id(id_or_name).await? {
        Some(record) => Ok(record),
        None => store
            .key_by_name(id_or_name)
            .await?
            .ok_or_else(|| AuthError::KeyNotFound(id_or_name.to_owned())),
    }
}

/// The key with this id (tried first) or name, as lists show it.
pub async fn get_key(store: &Store, id_or_name: &str) -> Result<KeyView, AuthError> {
    let record = find_key(store, id_or_name).await?;
    Ok(KeyView::of(&record, calendar::now_secs()))
}

/// Revokes the key with this id (tried first) or name and returns it as it now stands.
pub async fn revoke_key(store: &Store, id_or_name: &str) -> Result<KeyView, AuthError> {
    let record = find_key(store, id_or_name).await?;
    let now = calendar::now_secs();
    if !store.revoke_key(&record.id, now).await? {
        return Err(AuthError::KeyNotFound(id_or_name.to_owned()));
    }
    let mut record = record;
    record.revoked_at.get_or_insert(now);
    Ok(KeyView::of(&record, now))
}

/// One ledger row with the key's name (`None` for usage without a key: `auth.mode = "none"`,
/// or a key that no longer exists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageLine {
    /// Serialised inline: a line is a row's fields plus `key_name`.
    #[serde(flatten)]
    pub row: UsageRow,
    pub key_name: Option<String>,
}

/// The ledger from `since` (a day `YYYY-MM-DD`, `today`, or a span back such as `7d`) on,
/// with key names, sorted by day, key name, model, region.
pub async fn usage(store: &Store, since: Option<&str>) -> Result<Vec<UsageLine>, AuthError> {
    let since = since_param(since)?;
    let rows = store.usage(since.as_deref()).await?;
    let mut lines = named_lines(store, rows).await?;
    // Day, then key as people read it (name), then model and region.
    lines.sort_by(|a, b| {
        let (a_row, b_row) = (&a.row, &b.row);
        (&a_row.day, key_label(a), &a_row.model, &a_row.region).cmp(&(
            &b_row.day,
            key_label(b),
            &b_row.model,
            &b_row.region,
        ))
    });
    Ok(lines)
}

/// Ledger rows with their keys' names, looked up for the key ids these rows have (not by
/// listing every key).
async fn named_lines(store: &Store, rows: Vec<UsageRow>) -> Result<Vec<UsageLine>, AuthError> {
    let mut ids: Vec<String> = rows
        .iter()
        .filter(|r| !r.key_id.is_empty())
        .map(|r| r.key_id.clone())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let names: HashMap<String, String> = store.key_names(&ids).await?;
    Ok(rows
        .into_iter()
        .map(|row: UsageRow| UsageLine {
            key_name: names.get(&row.key_id).cloned(),
            row,
        })
        .collect())
}

mod render;

use render::key_label;
pub use render::{keys_table, usage_csv, usage_csv_for_spreadsheets, usage_table};

#[cfg(test)]
mod tests;
