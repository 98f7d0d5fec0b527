//! Gateway state behind one interface: response-id affinity and conversation turns now,
//! team keys, usage and rate limits later.
//!
//! Enum dispatch rather than a trait object keeps the async methods plain `async fn`s
//! (no boxing, no async-trait) while backends stay swappable by configuration
//! (`store.url`): `memory` for tests and throwaway runs, `sqlite://PATH` as the embedded
//! default, and later `redis://...` when several replicas must share state.
//!
//! Every record carries an expiry; expired records are invisible to reads at once and are
//! physically removed by [`Store::purge_expired`], which the gateway calls periodically.

mod clock;
pub mod memory;
mod migrations;
pub mod sqlite;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::time::Duration;

pub use clock::Clock;

/// The configured state store. Cloning is cheap and clones share the same state.
#[derive(Debug, Clone)]
pub enum Store {
    Memory(memory::MemoryStore),
    Sqlite(sqlite::SqliteStore),
}

/// Why a store operation failed. Messages name the operation, never keys or URLs' credentials.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Only the scheme is kept: a full URL (e.g. `redis://user:pass@host`) may hold a password.
    #[error(
        "unsupported store url scheme `{scheme}` (expected `memory` or `sqlite://PATH`)"
    )]
    UnsupportedUrl { scheme: String },
    #[error("invalid store url: {reason}")]
    InvalidUrl { reason: &'static str },
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
}

/// A conversation chain, oldest turn first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub turns: Vec<Turn>,
    /// `false` when the walk hit a missing or expired turn (or a cycle) before reaching a
    /// turn without `previous_response_id`; stopping at `max_turns` does not make it false.
    pub complete: bool,
}

impl Store {
    /// Opens the store named by `url` using the system clock.
    ///
    /// `memory` → in-process maps; `sqlite://PATH` (relative, absolute as `sqlite:///abs`, or
    /// `sqlite://:memory:`) → SQLite with migrations applied. Anything else is
    /// [`StoreError::UnsupportedUrl`].
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with_clock(url, Clock::System).await
    }

    /// Like [`Store::open`] with an explicit clock, so expiry can be tested without sleeping.
    pub async fn open_with_clock(url: &str, clock: Clock) -> Result<Store, StoreError> {
        if url == "memory" {
            return Ok(Store::Memory(memory::MemoryStore::new(clock)));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::InvalidUrl {
                    reason: "`sqlite://` needs a path, e.g. `sqlite://qwen-gateway.db`",
                });
            }
            return Ok(Store::Sqlite(
                sqlite::SqliteStore::open(path.to_owned(), clock).await?,
            ));
        }
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        Err(StoreError::UnsupportedUrl {
            scheme: scheme.to_owned(),
        })
    }

    /// Backend name, for logs and `/readyz`.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Sqlite(_) => "sqlite",
        }
    }

    /// Records which region created `response_id`: Model Studio ids exist only there.
    pub async fn put_affinity(
        &self,
        response_id: &str,
        region: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(s) => s.put_affinity(response_id, region, ttl),
            Store::Sqlite(s) => s.put_affinity(response_id, region, ttl).await,
        }
    }

    /// The region that created `response_id`; `None` when unknown or expired.
    pub async fn get_affinity(&self, response_id: &str) -> Result<Option<String>, StoreError> {
        match self {
            Store::Memory(s) => s.get_affinity(response_id),
            Store::Sqlite(s) => s.get_affinity(response_id).await,
        }
    }

    /// Stores (or replaces) a turn under its `response_id`.
    pub async fn put_turn(&self, turn: &Turn, ttl: Duration) -> Result<(), StoreError> {
        match self {
            Store::Memory(s) => s.put_turn(turn, ttl),
            Store::Sqlite(s) => s.put_turn(turn, ttl).await,
        }
    }

    /// The turn stored under `response_id`; `None` when unknown or expired.
    pub async fn get_turn(&self, response_id: &str) -> Result<Option<Turn>, StoreError> {
        match self {
            Store::Memory(s) => s.get_turn(response_id),
            Store::Sqlite(s) => s.get_turn(response_id).await,
        }
    }

    /// The chain ending at `response_id`, oldest first, following `previous_response_id`;
    /// at most `max_turns` (the newest are kept). Stops at a missing link with
    /// `complete = false`, returning what it found.
    pub async fn history(
        &self,
        response_id: &str,
        max_turns: usize,
    ) -> Result<History, StoreError> {
        match self {
            Store::Memory(s) => s.history(response_id, max_turns),
            Store::Sqlite(s) => s.history(response_id, max_turns).await,
        }
    }

    /// Deletes expired records and returns how many went. Reads already ignore them; this
    /// only reclaims space.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        match self {
            Store::Memory(s) => s.purge_expired(),
            Store::Sqlite(s) => s.purge_expired().await,
        }
    }
}

/// Walks a chain backwards from `start` with `fetch`, shared by all backends so they agree on
/// truncation, missing links and cycles (a cycle would otherwise loop until `max_turns`).
pub(crate) fn walk_chain(
    start: &str,
    max_turns: usize,
    mut fetch: impl FnMut(&str) -> Result<Option<Turn>, StoreError>,
) -> Result<History, StoreError> {
    let mut turns: Vec<Turn> = Vec::new();
    let mut seen = HashSet::new();
    let mut next = Some(start.to_owned());
    let mut complete = true;
    while let Some(id) = next.take() {
        if turns.len() >= max_turns {
            break;
        }
        if !seen.insert(id.clone()) {
            complete = false;
            break;
        }
        match fetch(&id)? {
            Some(turn) => {
                next.clone_from(&turn.previous_response_id);
                turns.push(turn);
            }
            None => {
                complete = false;
                break;
            }
        }
    }
    turns.reverse();
    Ok(History { turns, complete })
}
