//! SQLite schema, as an append-only list of steps tracked by `PRAGMA user_version`.
//!
//! Step N (1-based) takes the schema from version N-1 to N. Never edit a released step;
//! append a new one (team keys, usage ledger, rate limits, ...).

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Storage TTLs (`expires_at` of affinity, turns, counters) are unix milliseconds; record
/// times (`created_at`, and every time of a key, including its `expires_at`) are unix seconds.
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
    // 2: team keys, rate-limit counters, usage ledger. Key times are unix seconds; JSON
    // columns hold string arrays.
    "CREATE TABLE keys (
        id           TEXT PRIMARY KEY NOT NULL,
        name         TEXT NOT NULL UNIQUE,
        hash         TEXT NOT NULL UNIQUE,
        prefix       TEXT NOT NULL,
        models_json  TEXT NOT NULL,
        regions_json TEXT NOT NULL,
        rpm          INTEGER,
        tpm          INTEGER,
        daily_tokens INTEGER,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER,
        revoked_at   INTEGER
     );
     CREATE TABLE counters (
        name       TEXT PRIMARY KEY NOT NULL,
        value      INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
     );
     CREATE INDEX counters_expires_at ON counters (expires_at);
     CREATE TABLE usage (
        day              TEXT NOT NULL,
        key_id           TEXT NOT NULL,
        model            TEXT NOT NULL,
        region           TEXT NOT NULL,
        requests         INTEGER NOT NULL,
        errors           INTEGER NOT NULL,
        input_tokens     INTEGER NOT NULL,
        output_tokens    INTEGER NOT NULL,
        cached_tokens    INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL,
        tool_calls       INTEGER NOT NULL,
        PRIMARY KEY (day, key_id, model, region)
     ) WITHOUT ROWID;",
    // 3: the team key (id) that created each response and turn (tenant isolation); NULL for
    // rows written before, which team keys therefore never see.
    "ALTER TABLE affinity ADD COLUMN owner TEXT;
     ALTER TABLE turns ADD COLUMN owner TEXT;",
    // 4: keys listing index: `/admin/keys` pages seek to (created_at,
    // name), the listing order, instead of scanning and sorting every key per page. An
    // index only, and IF NOT EXISTS, so it is harmless in whatever position it ends up.
    "CREATE INDEX IF NOT EXISTS keys_created_at_name ON keys (created_at, name);",
    // 5: requests whose usage was estimated (streams that ended without the upstream's
    // count), so a ledger reader knows which figures are the upstream's own.
    "ALTER TABLE usage ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0;",
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
    let current =
        usize::try_from(found).map_err(|_| StoreError::SchemaTooNew { found, supported })?;
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
