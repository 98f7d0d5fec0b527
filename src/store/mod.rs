//! Gateway state behind one interface: response-id affinity, conversation turns, team keys,
//! rate-limit counters and the usage ledger.
//!
//! Enum dispatch rather than a trait object keeps the async methods plain `async fn`s
//! (no boxing, no async-trait) while backends stay swappable by configuration
//! (`store.url`): `memory` for tests and throwaway runs, `sqlite://PATH` as the embedded
//! default, and `redis://...` when several replicas must share state.
//!
//! Affinity, turns and counters carry an expiry; expired records are invisible to reads at
//! once and are physically removed by [`Store::purge_expired`], which the gateway calls
//! periodically (Redis expires them by itself). Keys and usage rows never expire.

mod chain;
mod clock;
pub mod memory;
mod migrations;
mod records;
pub mod redis;
pub mod sqlite;

#[cfg(test)]
mod tests;

use crate::config::StoreUrl;
use std::collections::HashMap;
use std::time::Duration;

pub(crate) use chain::walk_chain;
pub use clock::Clock;
pub(crate) use records::key_conflict;
pub use records::{Affinity, KeyRecord, Page, USAGE_COUNTERS, UsageCursor, UsageDelta, UsageRow};

/// The configured state store. Cloning is cheap and clones share the same state.
#[derive(Debug, Clone)]
pub enum Store {
    Memory(memory::MemoryStore),
    Sqlite(sqlite::SqliteStore),
    Redis(redis::RedisStore),
}

/// Why a store operation failed. Messages name the operation, never API keys or URLs'
/// credentials.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A `store.url` given as a string (the configuration parses its own when it loads).
    #[error(transparent)]
    Url(#[from] crate::config::StoreUrlError),
    #[error("store {op} failed: {source}")]
    Backend {
        op: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("store migration to schema version {version} failed: {source}")]
    Migration {
        version: usize,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Refuse rather than guess: an older binary must not write into a newer schema.
    #[error(
        "store schema version {found} is newer than this gateway supports ({supported}); upgrade the gateway"
    )]
    SchemaTooNew { found: i64, supported: usize },
    #[error("store {op}: stored record is not valid JSON: {source}")]
    Codec {
        op: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The blocking worker panicked or was cancelled (runtime shutting down).
    #[error("store {op} failed: worker task did not complete")]
    TaskFailed { op: &'static str },
    /// A unique field is taken, e.g. ``key name `ci` ``. The key hash is never named.
    #[error("{what} already exists")]
    Conflict { what: String },
}

/// One request/response exchange, kept so a conversation can be replayed by
/// `previous_response_id` (e.g. to another region, or for Chat Completions clients).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Turn {
    pub response_id: String,
    pub previous_response_id: Option<String>,
    pub region: String,
    /// The request's input items (a string input already normalised by the caller).
    pub input: Vec<serde_json::Value>,
    /// The response's output items.
    pub output: Vec<serde_json::Value>,
    /// Unix seconds.
    pub created_at: i64,
    /// The team key (id) that created it, as in [`Affinity::owner`]: a replay uses only
    /// turns of the key asking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// A conversation chain, oldest turn first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub turns: Vec<Turn>,
    /// `false` when the walk hit a missing or expired turn (or a cycle) before reaching a
    /// turn without `previous_response_id`; stopping at `max_turns` does not make it false.
    pub complete: bool,
    /// The walk stopped at `max_turns` with older turns left: `turns` is only the newest part.
    pub truncated: bool,
}

/// Calls the same method on whichever backend this is; only memory is synchronous.
macro_rules! dispatch {
    ($store:expr, $method:ident($($arg:expr),*)) => {
        match $store {
            Store::Memory(s) => s.$method($($arg),*),
            Store::Sqlite(s) => s.$method($($arg),*).await,
            Store::Redis(s) => s.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// Opens the store named by `url` using the system clock.
    ///
    /// `memory` → in-process maps; `sqlite://PATH` (relative, absolute as `sqlite:///abs`, or
    /// `sqlite://:memory:`) → SQLite with migrations applied; `redis://[user:pass@]host[:port][/db]`
    /// → Redis under the `qgw:` key prefix. Anything else is [`StoreError::Url`].
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with_clock(url, Clock::System).await
    }

    /// Like [`Store::open`] with an explicit clock, so expiry can be tested without sleeping.
    /// Redis ignores the clock: its server decides expiry.
    pub async fn open_with_clock(url: &str, clock: Clock) -> Result<Store, StoreError> {
        Store::connect(&StoreUrl::parse(url)?, clock).await
    }

    /// Opens the backend `url` names (the configuration's `store.url`, already parsed).
    pub async fn connect(url: &StoreUrl, clock: Clock) -> Result<Store, StoreError> {
        Ok(match url {
            StoreUrl::Memory => Store::Memory(memory::MemoryStore::new(clock)),
            StoreUrl::Sqlite(path) => {
                Store::Sqlite(sqlite::SqliteStore::open(path.clone(), clock).await?)
            }
            StoreUrl::Redis(url) => {
                Store::Redis(redis::RedisStore::connect(url, redis::DEFAULT_PREFIX).await?)
            }
        })
    }

    /// Backend name, for logs and `/readyz`.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Sqlite(_) => "sqlite",
            Store::Redis(_) => "redis",
        }
    }

    /// Records which region (and team key) created `response_id`.
    pub async fn put_affinity(
        &self,
        response_id: &str,
        affinity: &Affinity,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        dispatch!(self, put_affinity(response_id, affinity, ttl))
    }

    /// The region and owner of `response_id`; `None` when unknown or expired.
    pub async fn get_affinity(&self, response_id: &str) -> Result<Option<Affinity>, StoreError> {
        dispatch!(self, get_affinity(response_id))
    }

    /// Forgets `response_id`'s region (the response was deleted); `true` when it was known.
    pub async fn delete_affinity(&self, response_id: &str) -> Result<bool, StoreError> {
        dispatch!(self, delete_affinity(response_id))
    }

    /// Stores (or replaces) a turn under its `response_id`.
    pub async fn put_turn(&self, turn: &Turn, ttl: Duration) -> Result<(), StoreError> {
        dispatch!(self, put_turn(turn, ttl))
    }

    /// The turn stored under `response_id`; `None` when unknown or expired.
    pub async fn get_turn(&self, response_id: &str) -> Result<Option<Turn>, StoreError> {
        dispatch!(self, get_turn(response_id))
    }

    /// The chain ending at `response_id`, oldest first, following `previous_response_id`;
    /// at most `max_turns` (the newest are kept). Stops at a missing link with
    /// `complete = false`, returning what it found.
    pub async fn history(
        &self,
        response_id: &str,
        max_turns: usize,
    ) -> Result<History, StoreError> {
        dispatch!(self, history(response_id, max_turns))
    }

    /// Adds a team key. A taken id, name or hash is [`StoreError::Conflict`], checked
    /// atomically so two replicas cannot both create the same name.
    pub async fn create_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        dispatch!(self, create_key(key))
    }

    /// Adds many keys at once (an import; tests' fixtures), each checked as
    /// [`Store::create_key`] checks it, against the store and the keys before it. The first
    /// conflict is the error: SQLite (one transaction) and memory (one lock) then write none
    /// of `keys`; Redis creates them one by one and keeps those before it.
    pub async fn create_keys(&self, keys: &[KeyRecord]) -> Result<(), StoreError> {
        dispatch!(self, create_keys(keys))
    }

    /// The key whose raw value hashes to `hash` (lowercase hex SHA-256), revoked or not.
    pub async fn key_by_hash(&self, hash: &str) -> Result<Option<KeyRecord>, StoreError> {
        dispatch!(self, key_by_hash(hash))
    }

    /// The key with this id, revoked or not (an indexed lookup in every backend).
    pub async fn key_by_id(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        dispatch!(self, key_by_id(id))
    }

    /// The key with this name, revoked or not (an indexed lookup in every backend).
    pub async fn key_by_name(&self, name: &str) -> Result<Option<KeyRecord>, StoreError> {
        dispatch!(self, key_by_name(name))
    }

    /// The names of the keys among `ids` (id → name; unknown ids are left out), one
    /// indexed lookup per id: reports name the keys of the rows they show without listing
    /// every key.
    pub async fn key_names(&self, ids: &[String]) -> Result<HashMap<String, String>, StoreError> {
        dispatch!(self, key_names(ids))
    }

    /// Every key, revoked ones included, ordered by `created_at` then `name`.
    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        dispatch!(self, list_keys())
    }

    /// Up to `limit` keys in [`Store::list_keys`]'s order (`created_at`, then `name`),
    /// starting just after `after` (`None`: from the first). A keyset page: the store seeks
    /// to `after`'s (created_at, name) through an index and reads `limit + 1` keys, so a
    /// page costs the same wherever it is, and keys created meanwhile never shift a page.
    pub async fn list_keys_page(
        &self,
        after: Option<&KeyRecord>,
        limit: usize,
    ) -> Result<Page<KeyRecord>, StoreError> {
        dispatch!(self, list_keys_page(after, limit))
    }

    /// Revokes the key whose id (tried first) or name is `id_or_name` at `at` (unix
    /// seconds), found through the id and name indexes. `false` when there is no such key;
    /// revoking again keeps the first time.
    pub async fn revoke_key(&self, id_or_name: &str, at: i64) -> Result<bool, StoreError> {
        dispatch!(self, revoke_key(id_or_name, at))
    }

    /// Adds `by` to counter `name` and returns the new value, atomically across replicas
    /// sharing the store. A missing or expired counter starts afresh and expires `ttl` later;
    /// later increments do not extend that (fixed windows for rate limits).
    pub async fn incr_counter(
        &self,
        name: &str,
        by: u64,
        ttl: Duration,
    ) -> Result<u64, StoreError> {
        dispatch!(self, incr_counter(name, by, ttl))
    }

    /// The counter's value; 0 when absent or expired.
    pub async fn get_counter(&self, name: &str) -> Result<u64, StoreError> {
        dispatch!(self, get_counter(name))
    }

    /// Adds `delta` into its (day, key, model, region) ledger row, creating it if needed,
    /// atomically across replicas.
    pub async fn record_usage(&self, delta: &UsageDelta) -> Result<(), StoreError> {
        dispatch!(self, record_usage(delta))
    }

    /// Ledger rows from `since_day` (inclusive, `YYYY-MM-DD`) on, or all of them, sorted by
    /// day, key id, model, region.
    pub async fn usage(&self, since_day: Option<&str>) -> Result<Vec<UsageRow>, StoreError> {
        dispatch!(self, usage(since_day))
    }

    /// Up to `limit` ledger rows from `since_day` on (inclusive), starting just after
    /// `after`, in the store's order: day, key id, model, region (on Redis, the order of
    /// the rows' JSON identities, the same but for names with characters sorting below `"`,
    /// such as spaces, or needing JSON escapes). Seeks through the ledger's key and reads
    /// `limit + 1` rows.
    pub async fn usage_page(
        &self,
        since_day: Option<&str>,
        after: Option<&UsageCursor>,
        limit: usize,
    ) -> Result<Page<UsageRow>, StoreError> {
        dispatch!(self, usage_page(since_day, after, limit))
    }

    /// Deletes expired records and returns how many went. Reads already ignore them; this
    /// only reclaims space (always 0 on Redis, which expires keys itself).
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        dispatch!(self, purge_expired())
    }
}
