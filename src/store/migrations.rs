//! SQLite schema, as an append-only list of steps tracked by `PRAGMA user_version`.
//!
//! Step N (1-based) takes the schema from version N-1 to N. Never edit a released step;
//! append a new one (team keys, usage ledger, rate limits, ...).

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// `expires_at` columns are unix milliseconds; `created_at` is unix seconds.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: response-id affinity and conversation turns.
    "CREATE TABLE affinity (
        response_id TEXT PRIMARY KEY NOT NULL,
        region      TEXT NOT NULL,
        expires_at  INTEGER NOT NULL
     );
     CREATE INDEX affinity_expires_at ON affinity (expires_at);
     CREATE TABLE turns (
        response_id          TEXT PRIMARY KEY NOT NULL,
        previous_response_id TEXT,
        region               TEXT NOT NULL,
        input_json           TEXT NOT NULL,
        output_json          TEXT NOT NULL,
        created_at           INTEGER NOT NULL,
        expires_at           INTEGER NOT NULL
     );
     CREATE INDEX turns_expires_at ON turns (expires_at);",
];

/// Brings the schema up to date in one IMMEDIATE transaction, so two gateways starting on
/// the same file cannot both run a step, and a failed step leaves the old version intact.
pub(crate) fn apply(conn: &mut Connection) -> Result<(), StoreError> {
    let backend = |source: rusqlite::Error| StoreError::Backend {
        op: "migrate",
        source: Box::new(source),
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(backend)?;
    let supported = MIGRATIONS.len();
    let current = usize::try_from(found).map_err(|_| StoreError::SchemaTooNew {
        found,
        supported,
    })?;
    if current > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    if current == supported {
        return Ok(());
    }
    for (index, step) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.execute_batch(step)
            .map_err(|source| StoreError::Migration {
                version: index + 1,
                source: Box::new(source),
            })?;
    }
    tx.pragma_update(None, "user_version", supported as i64)
        .map_err(backend)?;
    tx.commit().map_err(backend)
}
