//! Plain records for team keys and the usage ledger, shared by every backend.

use serde::{Deserialize, Serialize};

use super::StoreError;

/// Where a response id lives and who may see it: the region that created it (Model Studio
/// ids exist only there) and the team key that did (its id), so one tenant never reads,
/// deletes or continues another's responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Affinity {
    pub region: String,
    /// `None`: created without a team key (`auth.mode = "none"`), or stored before owners
    /// were recorded; team keys never see such an id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl Affinity {
    pub fn new(region: impl Into<String>, owner: Option<String>) -> Self {
        Self {
            region: region.into(),
            owner,
        }
    }
}

/// A team API key as the gateway keeps it.
///
/// Only the SHA-256 of the raw key is stored, so a leaked database does not leak usable
/// keys. Validity (`revoked_at`, `expires_at`) is judged by the caller with
/// [`KeyRecord::is_active`]: lookups still return revoked or expired keys so the gateway can
/// say why a key is refused.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    /// Unique, human-chosen; keys are revoked or rotated by name.
    pub name: String,
    /// Lowercase hex SHA-256 of the raw key; unique.
    pub hash: String,
    /// The first ~12 characters of the raw key, for display only.
    pub prefix: String,
    /// Glob patterns of allowed models; empty allows all.
    pub models: Vec<String>,
    /// Allowed regions; empty allows all.
    pub regions: Vec<String>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub daily_tokens: Option<u64>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; a policy of the key, not a storage TTL (the record stays).
    pub expires_at: Option<i64>,
    /// Unix seconds; set once by [`super::Store::revoke_key`].
    pub revoked_at: Option<i64>,
}

/// The hash is left out: it identifies a live key, so it stays out of logs too.
impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("hash", &"<redacted>")
            .field("prefix", &self.prefix)
            .field("models", &self.models)
            .field("regions", &self.regions)
            .field("rpm", &self.rpm)
            .field("tpm", &self.tpm)
            .field("daily_tokens", &self.daily_tokens)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

impl KeyRecord {
    /// Neither revoked nor past its expiry at `now` (unix seconds).
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

/// Usage to add to the ledger row for (`day`, `key_id`, `model`, `region`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageDelta {
    /// `YYYY-MM-DD`, UTC; compared as text, so the format matters.
    pub day: String,
    /// Empty when the gateway runs without team keys.
    pub key_id: String,
    pub model: String,
    pub region: String,
    pub requests: u64,
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    pub tool_calls: u64,
    /// Requests whose usage is an estimate (the stream ended without the upstream's count).
    #[serde(default)]
    pub estimated: u64,
}

/// One ledger row: the sum of every [`UsageDelta`] recorded for its (day, key, model,
/// region). The same shape as a delta (the key and the counters), so one type serves both
/// and the counters are listed once.
pub type UsageRow = UsageDelta;

/// The counter columns of a delta/row in one fixed order, so backends that store them by
/// name (SQL columns, Redis hash fields) list them once.
pub const USAGE_COUNTERS: [&str; 8] = [
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "tool_calls",
    "estimated",
];

impl UsageDelta {
    /// The counters in [`USAGE_COUNTERS`] order.
    pub fn counters(&self) -> [u64; 8] {
        [
            self.requests,
            self.errors,
            self.input_tokens,
            self.output_tokens,
            self.cached_tokens,
            self.reasoning_tokens,
            self.tool_calls,
            self.estimated,
        ]
    }
}

impl UsageRow {
    /// A row for the delta's (day, key, model, region) with the given counters in
    /// [`USAGE_COUNTERS`] order.
    pub(crate) fn from_parts(
        day: String,
        key_id: String,
        model: String,
        region: String,
        c: [u64; 8],
    ) -> UsageRow {
        UsageRow {
            day,
            key_id,
            model,
            region,
            requests: c[0],
            errors: c[1],
            input_tokens: c[2],
            output_tokens: c[3],
            cached_tokens: c[4],
            reasoning_tokens: c[5],
            tool_calls: c[6],
            estimated: c[7],
        }
    }

    /// Adds a delta's counters (saturating: a ledger must not wrap to a small number).
    pub(crate) fn add(&mut self, delta: &UsageDelta) {
        self.requests = self.requests.saturating_add(delta.requests);
        self.errors = self.errors.saturating_add(delta.errors);
        self.input_tokens = self.input_tokens.saturating_add(delta.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(delta.output_tokens);
        self.cached_tokens = self.cached_tokens.saturating_add(delta.cached_tokens);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(delta.reasoning_tokens);
        self.tool_calls = self.tool_calls.saturating_add(delta.tool_calls);
        self.estimated = self.estimated.saturating_add(delta.estimated);
    }

    /// Sort key: day, key id, model, region.
    pub(crate) fn sort_key(&self) -> (&str, &str, &str, &str) {
        (&self.day, &self.key_id, &self.model, &self.region)
    }
}

impl UsageRow {
    /// Where a page ending with this row resumes.
    pub fn cursor(&self) -> UsageCursor {
        UsageCursor {
            day: self.day.clone(),
            key_id: self.key_id.clone(),
            model: self.model.clone(),
            region: self.region.clone(),
        }
    }
}

/// A ledger row's identity: a page of the ledger resumes just after it (it need not exist).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageCursor {
    pub day: String,
    pub key_id: String,
    pub model: String,
    pub region: String,
}

/// Where a page of the ledger starts, `since` and the cursor folded into one bound: rows
/// after the cursor all have `day >= cursor.day`, and when `since` is later than that, every
/// row from `since` on is after the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UsageFrom<'a> {
    Start,
    /// Rows of this day (`YYYY-MM-DD`) and later.
    Day(&'a str),
    /// Rows strictly after this one.
    After(&'a UsageCursor),
}

impl<'a> UsageFrom<'a> {
    pub(crate) fn new(since: Option<&'a str>, after: Option<&'a UsageCursor>) -> Self {
        match (since, after) {
            (Some(day), Some(after)) if day > after.day.as_str() => UsageFrom::Day(day),
            (_, Some(after)) => UsageFrom::After(after),
            (Some(day), None) => UsageFrom::Day(day),
            (None, None) => UsageFrom::Start,
        }
    }
}

/// One page of a listing, and whether more follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

impl<T> Page<T> {
    /// From up to `limit + 1` items fetched: the extra one only says there is more.
    pub(crate) fn of(mut items: Vec<T>, limit: usize) -> Self {
        let has_more = items.len() > limit;
        items.truncate(limit);
        Page { items, has_more }
    }
}

/// The unique fields of a key, in the order conflicts are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyField {
    Id,
    Name,
    Hash,
}

impl KeyField {
    /// The [`StoreError::Conflict`] for `key` clashing on this field; the hash is not echoed.
    pub(crate) fn conflict(self, key: &KeyRecord) -> StoreError {
        let what = match self {
            KeyField::Id => format!("key id `{}`", key.id),
            KeyField::Name => format!("key name `{}`", key.name),
            KeyField::Hash => "a key with the same hash".to_owned(),
        };
        StoreError::Conflict { what }
    }
}

/// The first conflict between `new` and any of `existing` (id, then name, then hash).
pub(crate) fn key_conflict<'a>(
    existing: impl IntoIterator<Item = &'a KeyRecord>,
    new: &KeyRecord,
) -> Option<StoreError> {
    let existing: Vec<&KeyRecord> = existing.into_iter().collect();
    let clash = |field: KeyField, same: fn(&KeyRecord, &KeyRecord) -> bool| {
        existing.iter().any(|k| same(k, new)).then_some(field)
    };
    clash(KeyField::Id, |a, b| a.id == b.id)
        .or_else(|| clash(KeyField::Name, |a, b| a.name == b.name))
        .or_else(|| clash(KeyField::Hash, |a, b| a.hash == b.hash))
        .map(|field| field.conflict(new))
}

/// SQLite and Redis hold integers as i64; larger values are clamped rather than wrapped.
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Reads a stored i64 back; a negative value can only come from outside the gateway and
/// counts as 0.
pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
