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
    /// `active`, `revoked` or `expired`.
    pub status: &'static str,
}

impl KeyView {
    pub fn of(record: &KeyRecord, now: i64) -> Self {
        let status = if record.revoked_at.is_some() {
            "revoked"
        } else if record.is_active(now) {
            "active"
        } else {
            "expired"
        };
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

/// Revokes the key with this id (tried first) or name and returns it as it now stands.
/// Two indexed lookups at most, never a listing: a gateway may hold 100,000 keys.
pub async fn revoke_key(store: &Store, id_or_name: &str) -> Result<KeyView, AuthError> {
    let record = match store.key_by_id(id_or_name).await? {
        Some(record) => record,
        None => store
            .key_by_name(id_or_name)
            .await?
            .ok_or_else(|| AuthError::KeyNotFound(id_or_name.to_owned()))?,
    };
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
    pub day: String,
    pub key_id: String,
    pub key_name: Option<String>,
    pub model: String,
    pub region: String,
    pub requests: u64,
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    pub tool_calls: u64,
    /// Requests whose usage is an estimate, not the upstream's count.
    pub estimated: u64,
}

/// The ledger from `since` (a day `YYYY-MM-DD`, `today`, or a span back such as `7d`) on,
/// with key names, sorted by day, key name, model, region.
pub async fn usage(store: &Store, since: Option<&str>) -> Result<Vec<UsageLine>, AuthError> {
    let since = since_param(since)?;
    let rows = store.usage(since.as_deref()).await?;
    let mut lines = named_lines(store, rows).await?;
    // Day, then key as people read it (name), then model and region.
    lines.sort_by(|a, b| {
        (&a.day, key_label(a), &a.model, &a.region).cmp(&(
            &b.day,
            key_label(b),
            &b.model,
            &b.region,
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
        .map(|r: UsageRow| UsageLine {
            key_name: names.get(&r.key_id).cloned(),
            day: r.day,
            key_id: r.key_id,
            model: r.model,
            region: r.region,
            requests: r.requests,
            errors: r.errors,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cached_tokens: r.cached_tokens,
            reasoning_tokens: r.reasoning_tokens,
            tool_calls: r.tool_calls,
            estimated: r.estimated,
        })
        .collect())
}

/// Columns left-aligned (text) or right-aligned (numbers), two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>], numeric: &[bool]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .zip(numeric)
            .map(|((cell, &w), &num)| {
                if num {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        parts.join("  ").trim_end().to_owned()
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.clone()));
        out.push('\n');
    }
    out
}

fn or_dash(v: &str) -> String {
    if v.is_empty() { "-".into() } else { v.into() }
}

fn key_label(line: &UsageLine) -> String {
    match (&line.key_name, line.key_id.as_str()) {
        (Some(name), _) => name.clone(),
        (None, "") => "(no key)".into(),
        (None, id) => id.to_owned(),
    }
}

const USAGE_COLUMNS: [&str; 13] = [
    "day",
    "key_id",
    "key_name",
    "model",
    "region",
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "tool_calls",
    "estimated",
];

fn numbers(l: &UsageLine) -> [u64; 8] {
    [
        l.requests,
        l.errors,
        l.input_tokens,
        l.output_tokens,
        l.cached_tokens,
        l.reasoning_tokens,
        l.tool_calls,
        l.estimated,
    ]
}

/// The ledger as a table with a total line.
pub fn usage_table(lines: &[UsageLine]) -> String {
    let header = [
        "DAY",
        "KEY",
        "MODEL",
        "REGION",
        "REQUESTS",
        "ERRORS",
        "INPUT",
        "OUTPUT",
        "CACHED",
        "REASONING",
        "TOOLS",
        "ESTIMATED",
    ];
    let mut numeric = vec![false; 4];
    numeric.extend([true; 8]);
    let mut totals = [0u64; 8];
    let mut rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            let n = numbers(l);
            for (t, v) in totals.iter_mut().zip(n) {
                *t = t.saturating_add(v);
            }
            let mut row = vec![
                l.day.clone(),
                key_label(l),
                or_dash(&l.model),
                or_dash(&l.region),
            ];
            row.extend(n.iter().map(u64::to_string));
            row
        })
        .collect();
    if lines.len() > 1 {
        let mut total = vec![
            "TOTAL".to_owned(),
            String::new(),
            String::new(),
            String::new(),
        ];
        total.extend(totals.iter().map(u64::to_string));
        rows.push(total);
    }
    if lines.is_empty() {
        return "no usage recorded\n".to_owned();
    }
    table(&header, &rows, &numeric)
}

/// A CSV field, quoted when it needs to be (RFC 4180).
fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

/// The ledger as CSV with a header line.
pub fn usage_csv(lines: &[UsageLine]) -> String {
    let mut out = USAGE_COLUMNS.join(",");
    out.push('\n');
    for l in lines {
        let mut fields = vec![
            csv_field(&l.day),
            csv_field(&l.key_id),
            csv_field(l.key_name.as_deref().unwrap_or("")),
            csv_field(&l.model),
            csv_field(&l.region),
        ];
        fields.extend(numbers(l).iter().map(u64::to_string));
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// Keys as a table.
pub fn keys_table(views: &[KeyView]) -> String {
    if views.is_empty() {
        return "no keys\n".to_owned();
    }
    let header = [
        "ID", "NAME", "PREFIX", "STATUS", "MODELS", "REGIONS", "RPM", "TPM", "DAILY", "CREATED",
        "EXPIRES",
    ];
    let numeric = [
        false, false, false, false, false, false, true, true, true, false, false,
    ];
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |n| n.to_string());
    let list = |v: &[String]| {
        if v.is_empty() {
            "*".to_owned()
        } else {
            v.join(",")
        }
    };
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|k| {
            vec![
                k.id.clone(),
                k.name.clone(),
                k.prefix.clone(),
                k.status.to_owned(),
                list(&k.models),
                list(&k.regions),
                opt(k.rpm),
                opt(k.tpm),
                opt(k.daily_tokens),
                k.created_at.clone(),
                k.expires_at.clone().unwrap_or_else(|| "never".into()),
            ]
        })
        .collect();
    table(&header, &rows, &numeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> NewKey {
        NewKey {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn validation_names_the_problem() {
        let regions = vec!["singapore".to_owned()];
        assert!(validate(&spec("alice"), &regions).is_ok());
        for bad in ["", "a b", "key_x", &"x".repeat(65)] {
            assert!(validate(&spec(bad), &regions).is_err(), "{bad}");
        }
        let mut s = spec("a");
        s.regions = vec!["mars".into()];
        let err = validate(&s, &regions).unwrap_err().to_string();
        assert!(err.contains("mars") && err.contains("singapore"), "{err}");
        let mut s = spec("a");
        s.rpm = Some(0);
        assert!(validate(&s, &regions).is_err());
    }

    #[test]
    fn page_limits_default_and_bound() {
        assert_eq!(page_limit(None).unwrap(), DEFAULT_PAGE);
        assert_eq!(page_limit(Some("1")).unwrap(), 1);
        assert_eq!(page_limit(Some("1000")).unwrap(), 1000);
        let huge = "9".repeat(100);
        for bad in ["0", "1001", "-1", "+5", "abc", "", "1.5", " 5", "5 ", &huge] {
            match page_limit(Some(bad)) {
                Err(AuthError::InvalidParam { param, message }) => {
                    assert_eq!(param, "limit");
                    assert!(message.contains("1 to 1000"), "{message}");
                    assert!(message.len() < 200, "the value is clipped: {message}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn usage_cursors_round_trip_and_refuse_anything_else() {
        let cursor = UsageCursor {
            day: "2026-01-02".into(),
            key_id: "key_x".into(),
            model: "qwen max|\"odd\" ✓&after=1".into(),
            region: "r0".into(),
        };
        let text = usage_cursor_text(&cursor);
        assert!(text.bytes().all(|b| b.is_ascii_hexdigit()), "{text}");
        assert_eq!(parse_usage_cursor(&text), Some(cursor));
        let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
        for bad in [
            String::new(),
            "zz".into(),
            "abc".into(),
            "+1".into(),
            "ÿÿ".into(),
            hex("[1,2,3,4]"),
            hex(r#"["2026-01-02","k","m"]"#),
            hex(r#"["2026-02-30","k","m","r"]"#),
            hex(r#"["yesterday","k","m","r"]"#),
            "0".repeat(MAX_CURSOR_CHARS + 2),
        ] {
            assert_eq!(parse_usage_cursor(&bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn create_list_revoke_and_usage() {
        let store = Store::open("memory").await.unwrap();
        let mut s = spec("alice");
        s.expires = Some(Duration::from_secs(3600));
        s.rpm = Some(5);
        let created = create_key(&store, s, &[]).await.unwrap();
        assert!(created.record.expires_at.is_some());
        assert_eq!(created.record.hash, keys::hash_key(created.key.expose()));
        assert!(create_key(&store, spec("alice"), &[]).await.is_err());
        let list = list_keys(&store).await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].status, "active");
        let json = serde_json::to_string(&list).unwrap();
        assert!(!json.contains(&created.record.hash));
        assert!(!json.contains(created.key.expose()));
        assert!(keys_table(&list).contains("alice"));
        let revoked = revoke_key(&store, "alice").await.unwrap();
        assert_eq!(revoked.status, "revoked");
        assert!(matches!(
            revoke_key(&store, "bob").await,
            Err(AuthError::KeyNotFound(_))
        ));

        store
            .record_usage(&crate::store::UsageDelta {
                day: "2026-01-23".into(),
                key_id: created.record.id.clone(),
                model: "m".into(),
                region: "r0".into(),
                requests: 2,
                input_tokens: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        store
            .record_usage(&crate::store::UsageDelta {
                day: "2026-01-24".into(),
                model: "m,x".into(),
                requests: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        let lines = usage(&store, Some("2026-01-01")).await.unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].key_name.as_deref(), Some("alice"));
        let table = usage_table(&lines);
        assert!(table.contains("alice") && table.contains("(no key)") && table.contains("TOTAL"));
        let csv = usage_csv(&lines);
        assert!(csv.starts_with("day,key_id,key_name,model,region,requests"));
        assert!(csv.contains("\"m,x\""));
        assert_eq!(usage(&store, Some("2026-01-24")).await.unwrap().len(), 1);
        assert!(usage(&store, Some("2026-02-30")).await.is_err());
    }
}
