//! Embedded backend: one SQLite file (WAL), safe to share between gateway processes on one
//! host. Every call runs on the blocking pool so SQLite's file I/O never stalls the runtime.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, ToSql, TransactionBehavior, params};

use super::records::{USAGE_COUNTERS, UsageFrom, to_i64, to_u64};
use super::{
    Affinity, Clock, History, KeyRecord, Page, StoreError, Turn, UsageCursor, UsageDelta, UsageRow,
    key_conflict, migrations, walk_chain,
};

mod file;
mod sql;

use file::open_blocking;
pub(crate) use sql::*;

/// How long a write waits for another process's lock before failing with "database is
/// locked"; long enough to ride out a checkpoint, short enough to surface a stuck peer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One connection behind a mutex: SQLite serialises writers anyway, and a single
/// connection makes `:memory:` databases shared by every clone.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    clock: Clock,
}

fn backend(op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |source| StoreError::Backend {
        op,
        source: Box::new(source),
    }
}

fn codec(op: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |source| StoreError::Codec { op, source }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, or a private in-memory one for
    /// `:memory:`, and brings its schema up to date.
    pub async fn open(path: String, clock: Clock) -> Result<SqliteStore, StoreError> {
        let conn = tokio::task::spawn_blocking(move || open_blocking(&path))
            .await
            .map_err(|_| StoreError::TaskFailed { op: "open" })??;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            clock,
        })
    }

    /// Runs `f` with the connection and the current time (unix ms) on the blocking pool.
    async fn call<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, i64) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let now = self.clock.now_millis();
        tokio::task::spawn_blocking(move || {
            // A panic while locked cannot leave a half-written row: an open transaction is
            // rolled back when dropped, so the connection is taken over.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn, now)
        })
        .await
        .map_err(|_| StoreError::TaskFailed { op })?
    }

    pub(crate) async fn put_affinity(
        &self,
        response_id: &str,
        affinity: &Affinity,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let (id, affinity) = (response_id.to_owned(), affinity.clone());
        let expires_at = self.clock.expiry(ttl);
        self.call("put_affinity", move |conn, _| {
            conn.execute(
                "INSERT OR REPLACE INTO affinity (response_id, region, owner, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![id, affinity.region, affinity.owner, expires_at],
            )
            .map_err(backend("put_affinity"))?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn get_affinity(
        &self,
        response_id: &str,
    ) -> Result<Option<Affinity>, StoreError> {
        let id = response_id.to_owned();
        self.call("get_affinity", move |conn, now| {
            conn.query_row(
                "SELECT region, owner FROM affinity WHERE response_id = ?1 AND expires_at > ?2",
                params![id, now],
                |row| Ok(Affinity::new(row.get::<_, String>(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(backend("get_affinity"))
        })
        .await
    }

    pub(crate) async fn delete_affinity(&self, response_id: &str) -> Result<bool, StoreError> {
        let id = response_id.to_owned();
        self.call("delete_affinity", move |conn, now| {
            // Deletes an expired row too, but only reports a live one as known.
            let deleted = conn
                .query_row(
                    "DELETE FROM affinity WHERE response_id = ?1 RETURNING expires_at > ?2",
                    params![id, now],
                    |row| row.get::<_, bool>(0),
                )
                .optional()
                .map_err(backend("delete_affinity"))?;
            Ok(deleted.unwrap_or(false))
        })
        .await
    }

    pub(crate) async fn put_turn(&self, turn: &Turn, ttl: Duration) -> Result<(), StoreError> {
        let input = serde_json::to_string(&turn.input).map_err(codec("put_turn"))?;
        let output = serde_json::to_string(&turn.output).map_err(codec("put_turn"))?;
        let turn = turn.clone();
        let expires_at = self.clock.expiry(ttl);
        self.call("put_turn", move |conn, _| {
            conn.execute(
                "INSERT OR REPLACE INTO turns (response_id, previous_response_id, region,
                     input_json, output_json, created_at, expires_at, owner)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    turn.response_id,
                    turn.previous_response_id,
                    turn.region,
                    input,
                    output,
                    turn.created_at,
                    expires_at,
                    turn.owner
                ],
            )
            .map_err(backend("put_turn"))?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn get_turn(&self, response_id: &str) -> Result<Option<Turn>, StoreError> {
        let id = response_id.to_owned();
        self.call("get_turn", move |conn, now| {
            fetch_turn(conn, &id, now, "get_turn")
        })
        .await
    }

    pub(crate) async fn history(
        &self,
        response_id: &str,
        max_turns: usize,
    ) -> Result<History, StoreError> {
        let start = response_id.to_owned();
        self.call("history", move |conn, now| {
            // One read transaction: a consistent snapshot even while others write.
            let tx = conn.transaction().map_err(backend("history"))?;
            walk_chain(&start, max_turns, |id| fetch_turn(&tx, id, now, "history"))
        })
        .await
    }

    pub(crate) async fn create_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        self.create_keys(std::slice::from_ref(key)).await
    }

    /// One IMMEDIATE transaction for the whole batch: it takes the write lock first, so
    /// check-then-insert is atomic across processes (the UNIQUE constraints are the
    /// backstop), and a conflict rolls every key of the batch back.
    pub(crate) async fn create_keys(&self, keys: &[KeyRecord]) -> Result<(), StoreError> {
        let op = "create_key";
        let mut rows = Vec::with_capacity(keys.len());
        for key in keys {
            let models = serde_json::to_string(&key.models).map_err(codec(op))?;
            let regions = serde_json::to_string(&key.regions).map_err(codec(op))?;
            rows.push((key.clone(), models, regions));
        }
        self.call(op, move |conn, _| {
            let fail = backend(op);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&fail)?;
            {
                let mut find = tx
                    .prepare_cached(&format!(
                        "SELECT {KEY_COLUMNS} FROM keys WHERE id = ?1 OR name = ?2 OR hash = ?3"
                    ))
                    .map_err(&fail)?;
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO keys (id, name, hash, prefix, models_json, regions_json,
                             rpm, tpm, daily_tokens, created_at, expires_at, revoked_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    )
                    .map_err(&fail)?;
                for (key, models, regions) in &rows {
                    // Keys inserted earlier in this transaction are seen too.
                    let existing = find
                        .query_map(params![key.id, key.name, key.hash], key_from_row)
                        .map_err(&fail)?
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(&fail)?
                        .into_iter()
                        .collect::<Result<Vec<_>, _>>()?;
                    if let Some(err) = key_conflict(&existing, key) {
                        return Err(err);
                    }
                    insert
                        .execute(params![
                            key.id,
                            key.name,
                            key.hash,
                            key.prefix,
                            models,
                            regions,
                            key.rpm.map(to_i64),
                            key.tpm.map(to_i64),
                            key.daily_tokens.map(to_i64),
                            key.created_at,
                            key.expires_at,
                            key.revoked_at
                        ])
                        .map_err(&fail)?;
                }
            }
            tx.commit().map_err(&fail)
        })
        .await
    }

    pub(crate) async fn key_by_hash(&self, hash: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.key_where("key_by_hash", "hash", hash).await
    }

    pub(crate) async fn key_by_id(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.key_where("key_by_id", "id", id).await
    }

    pub(crate) async fn key_by_name(&self, name: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.key_where("key_by_name", "name", name).await
    }

    /// The key whose `column` (`id`, `name` or `hash`: each its own index) is `value`.
    async fn key_where(
        &self,
        op: &'static str,
        column: &'static str,
        value: &str,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let value = value.to_owned();
        self.call(op, move |conn, _| {
            conn.prepare_cached(&key_where_sql(column))
                .and_then(|mut stmt| stmt.query_row(params![value], key_from_row).optional())
                .map_err(backend(op))?
                .transpose()
        })
        .await
    }

    pub(crate) async fn key_names(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        let ids = ids.to_vec();
        self.call("key_names", move |conn, _| {
            let op = backend("key_names");
            let mut stmt = conn
                .prepare_cached("SELECT name FROM keys WHERE id = ?1")
                .map_err(&op)?;
            let mut names = HashMap::with_capacity(ids.len());
            for id in ids {
                let name: Option<String> = stmt
                    .query_row(params![id], |row| row.get(0))
                    .optional()
                    .map_err(&op)?;
                if let Some(name) = name {
                    names.insert(id, name);
                }
            }
            Ok(names)
        })
        .await
    }

    pub(crate) async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.call("list_keys", move |conn, _| {
            let op = backend("list_keys");
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {KEY_COLUMNS} FROM keys ORDER BY created_at, name"
                ))
                .map_err(&op)?;
            let rows = stmt.query_map([], key_from_row).map_err(&op)?;
            let mut keys = Vec::new();
            for row in rows {
                keys.push(row.map_err(&op)??);
            }
            Ok(keys)
        })
        .await
    }

    pub(crate) async fn list_keys_page(
        &self,
        after: Option<&KeyRecord>,
        limit: usize,
    ) -> Result<Page<KeyRecord>, StoreError> {
        let after = after.map(|k| (k.created_at, k.name.clone()));
        let fetch = limit_param(limit);
        self.call("list_keys_page", move |conn, _| {
            let op = backend("list_keys_page");
            let mut keys = Vec::new();
            let mut stmt;
            let rows = match &after {
                Some((created_at, name)) => {
                    stmt = conn.prepare_cached(KEYS_PAGE_AFTER).map_err(&op)?;
                    stmt.query_map(params![created_at, name, fetch], key_from_row)
                }
                None => {
                    stmt = conn.prepare_cached(KEYS_PAGE_FIRST).map_err(&op)?;
                    stmt.query_map(params![fetch], key_from_row)
                }
            }
            .map_err(&op)?;
            for row in rows {
                keys.push(row.map_err(&op)??);
            }
            Ok(Page::of(keys, limit))
        })
        .await
    }

    pub(crate) async fn revoke_key(&self, id_or_name: &str, at: i64) -> Result<bool, StoreError> {
        let target = id_or_name.to_owned();
        self.call("revoke_key", move |conn, _| {
            let op = backend("revoke_key");
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&op)?;
            let id: Option<String> = tx
                .query_row(REVOKE_FIND_ID, params![target], |row| row.get(0))
                .optional()
                .map_err(&op)?;
            let Some(id) = id else {
                return Ok(false);
            };
            tx.execute(
                "UPDATE keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
                params![id, at],
            )
            .map_err(&op)?;
            tx.commit().map_err(&op)?;
            Ok(true)
        })
        .await
    }

    pub(crate) async fn incr_counter(
        &self,
        name: &str,
        by: u64,
        ttl: Duration,
    ) -> Result<u64, StoreError> {
        let name = name.to_owned();
        let expires_at = self.clock.expiry(ttl);
        self.call("incr_counter", move |conn, now| {
            // One statement, so atomic across processes; an expired row restarts the
            // window (SET expressions all see the old row).
            let value: i64 = conn
                .query_row(
                    "INSERT INTO counters (name, value, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET
                        value = CASE WHEN expires_at > ?4
                                     THEN value + excluded.value ELSE excluded.value END,
                        expires_at = CASE WHEN expires_at > ?4
                                     THEN expires_at ELSE excluded.expires_at END
                     RETURNING value",
                    params![name, to_i64(by), expires_at, now],
                    |row| row.get(0),
                )
                .map_err(backend("incr_counter"))?;
            Ok(to_u64(value))
        })
        .await
    }

    pub(crate) async fn get_counter(&self, name: &str) -> Result<u64, StoreError> {
        let name = name.to_owned();
        self.call("get_counter", move |conn, now| {
            let value: Option<i64> = conn
                .query_row(
                    "SELECT value FROM counters WHERE name = ?1 AND expires_at > ?2",
                    params![name, now],
                    |row| row.get(0),
                )
                .optional()
                .map_err(backend("get_counter"))?;
            Ok(value.map_or(0, to_u64))
        })
        .await
    }

    pub(crate) async fn record_usage(&self, delta: &UsageDelta) -> Result<(), StoreError> {
        let delta = delta.clone();
        self.call("record_usage", move |conn, _| {
            let counts = delta.counters().map(to_i64);
            let mut args: Vec<&dyn ToSql> =
                vec![&delta.day, &delta.key_id, &delta.model, &delta.region];
            args.extend(counts.iter().map(|c| c as &dyn ToSql));
            conn.prepare_cached(&UPSERT_USAGE)
                .and_then(|mut stmt| stmt.execute(args.as_slice()))
                .map_err(backend("record_usage"))?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn usage(&self, since_day: Option<&str>) -> Result<Vec<UsageRow>, StoreError> {
        let since = since_day.map(str::to_owned);
        self.call("usage", move |conn, _| {
            let op = backend("usage");
            let columns = USAGE_COUNTERS.join(", ");
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT day, key_id, model, region, {columns} FROM usage
                     WHERE ?1 IS NULL OR day >= ?1
                     ORDER BY day, key_id, model, region"
                ))
                .map_err(&op)?;
            let rows = stmt
                .query_map(params![since], usage_from_row)
                .map_err(&op)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(&op)
        })
        .await
    }

    pub(crate) async fn usage_page(
        &self,
        since_day: Option<&str>,
        after: Option<&UsageCursor>,
        limit: usize,
    ) -> Result<Page<UsageRow>, StoreError> {
        // Owned copies for the blocking pool; the same bound the other backends use.
        enum From {
            Start,
            Day(String),
            After(UsageCursor),
        }
        let from = match UsageFrom::new(since_day, after) {
            UsageFrom::Start => From::Start,
            UsageFrom::Day(day) => From::Day(day.to_owned()),
            UsageFrom::After(c) => From::After(c.clone()),
        };
        let fetch = limit_param(limit);
        self.call("usage_page", move |conn, _| {
            let op = backend("usage_page");
            let (condition, args): (&str, Vec<&dyn ToSql>) = match &from {
                From::Start => ("", vec![&fetch]),
                From::Day(day) => (USAGE_FROM_DAY, vec![&fetch, day]),
                From::After(c) => (
                    USAGE_AFTER_ROW,
                    vec![&fetch, &c.day, &c.key_id, &c.model, &c.region],
                ),
            };
            let mut stmt = conn
                .prepare_cached(&usage_page_sql(condition))
                .map_err(&op)?;
            let rows = stmt
                .query_map(args.as_slice(), usage_from_row)
                .map_err(&op)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(&op)?;
            Ok(Page::of(rows, limit))
        })
        .await
    }

    pub(crate) async fn purge_expired(&self) -> Result<u64, StoreError> {
        self.call("purge_expired", move |conn, now| {
            let op = backend("purge_expired");
            let tx = conn.transaction().map_err(&op)?;
            let mut removed = 0u64;
            for table in ["affinity", "turns", "counters"] {
                let n = tx
                    .execute(
                        &format!("DELETE FROM {table} WHERE expires_at <= ?1"),
                        [now],
                    )
                    .map_err(&op)?;
                removed += n as u64;
            }
            tx.commit().map_err(&op)?;
            Ok(removed)
        })
        .await
    }
}
