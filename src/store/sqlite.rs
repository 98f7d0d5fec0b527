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

fn open_blocking(path: &str) -> Result<Connection, StoreError> {
    let op = backend("open");
    let mut conn = if path == ":memory:" {
        Connection::open_in_memory()
    } else {
        owner_only(path)?;
        Connection::open(path)
    }
    .map_err(&op)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(&op)?;
    // WAL lets readers run alongside a writer; `:memory:` answers "memory" and stays so.
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .map_err(&op)?;
    // With WAL, NORMAL loses at most the last commits on power loss, never integrity.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(&op)?;
    migrations::apply(&mut conn)?;
    Ok(conn)
}

/// The database holds key hashes and every key's usage: owner read/write only.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;

/// Makes `path` owner-only before SQLite opens it, whatever the process umask: a missing
/// file is created here with mode 0600 (SQLite would create it 0644 & !umask), and SQLite's
/// unix VFS gives the `-wal`, `-shm` and `-journal` files it creates the database file's
/// mode. An existing database (or leftover `-wal`/`-shm`) readable by others is tightened
/// to 0600 with one warning. `file:` URIs are left to SQLite.
#[cfg(unix)]
fn owner_only(path: &str) -> Result<(), StoreError> {
    use std::fs::{OpenOptions, Permissions};
    use std::io::ErrorKind;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    if path.starts_with("file:") {
        return Ok(());
    }
    let failed = |what: String, err: std::io::Error| StoreError::Backend {
        op: "open",
        source: format!("{what}: {err}").into(),
    };
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        // The umask may have taken bits off `mode` (never added any); fchmod is exact.
        Ok(file) => {
            return file
                .set_permissions(Permissions::from_mode(FILE_MODE))
                .map_err(|e| failed(format!("cannot set the mode of {path}"), e));
        }
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
        Err(err) => return Err(failed(format!("cannot create {path}"), err)),
    }
    let mut tightened = Vec::new();
    for file in [
        path.to_owned(),
        format!("{path}-wal"),
        format!("{path}-shm"),
        format!("{path}-journal"),
    ] {
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            continue;
        }
        // Not fatal (e.g. a file owned by another user): SQLite may still open it, and
        // the operator is told.
        match std::fs::set_permissions(&file, Permissions::from_mode(FILE_MODE)) {
            Ok(()) => tightened.push(format!("{file} (was {mode:04o})")),
            Err(err) => tracing::warn!(
                file = %file,
                mode = %format!("{mode:04o}"),
                error = %err,
                "store file is readable by others and cannot be made 0600"
            ),
        }
    }
    if !tightened.is_empty() {
        tracing::warn!(
            files = %tightened.join(", "),
            "store files were readable by others; tightened to 0600"
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn owner_only(_path: &str) -> Result<(), StoreError> {
    Ok(())
}

fn fetch_turn(
    conn: &Connection,
    id: &str,
    now: i64,
    op: &'static str,
) -> Result<Option<Turn>, StoreError> {
    let row = conn
        .query_row(
            "SELECT response_id, previous_response_id, region, input_json, output_json, created_at,
                    owner
             FROM turns WHERE response_id = ?1 AND expires_at > ?2",
            params![id, now],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, i64>(5)?,
                    row.get::<_, Option<String>>(6)?,
                ))
            },
        )
        .optional()
        .map_err(backend(op))?;
    let Some((response_id, previous_response_id, region, input, output, created_at, owner)) = row
    else {
        return Ok(None);
    };
    Ok(Some(Turn {
        response_id,
        previous_response_id,
        region,
        input: serde_json::from_str(&input).map_err(codec(op))?,
        output: serde_json::from_str(&output).map_err(codec(op))?,
        created_at,
        owner,
    }))
}

/// The columns [`key_from_row`] reads, as a literal so `concat!` can build queries with it.
macro_rules! key_columns {
    () => {
        "id, name, hash, prefix, models_json, regions_json, rpm, tpm, daily_tokens, \
         created_at, expires_at, revoked_at"
    };
}

const KEY_COLUMNS: &str = key_columns!();

/// The first page of keys, in listing order, through `keys_created_at_name`.
pub(crate) const KEYS_PAGE_FIRST: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM keys ORDER BY created_at, name LIMIT ?1"
);

/// The page after the key with (created_at, name) = (?1, ?2): a seek in
/// `keys_created_at_name`, not a scan.
pub(crate) const KEYS_PAGE_AFTER: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM keys WHERE (created_at, name) > (?1, ?2) ORDER BY created_at, name LIMIT ?3"
);

/// A page of the ledger from a bound ([`USAGE_FROM_DAY`], [`USAGE_AFTER_ROW`] or none), at
/// most `?1` rows: a seek in the primary key (the table is clustered on it).
pub(crate) fn usage_page_sql(condition: &str) -> String {
    let columns = USAGE_COUNTERS.join(", ");
    format!(
        "SELECT day, key_id, model, region, {columns} FROM usage {condition}
         ORDER BY day, key_id, model, region LIMIT ?1"
    )
}

pub(crate) const USAGE_FROM_DAY: &str = "WHERE day >= ?2";
pub(crate) const USAGE_AFTER_ROW: &str = "WHERE (day, key_id, model, region) > (?2, ?3, ?4, ?5)";

/// SQLite's `LIMIT` for a page of `limit`: one more row, to tell whether more follow.
fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}

/// A row of `day, key_id, model, region` and the [`USAGE_COUNTERS`].
fn usage_from_row(row: &Row<'_>) -> rusqlite::Result<UsageRow> {
    let mut c = [0u64; 8];
    for (i, slot) in c.iter_mut().enumerate() {
        *slot = to_u64(row.get(4 + i)?);
    }
    Ok(UsageRow::from_parts(
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        c,
    ))
}

/// A key by one of its unique columns (`id`, `name`, `hash`), each backed by its
/// UNIQUE/PRIMARY KEY index.
pub(crate) fn key_where_sql(column: &str) -> String {
    format!("SELECT {KEY_COLUMNS} FROM keys WHERE {column} = ?1")
}

/// The id of the key whose id, else name, is `?1`: two index lookups. By id first, so a
/// key named like another key's id cannot shadow it.
pub(crate) const REVOKE_FIND_ID: &str = "SELECT id FROM keys WHERE id = ?1
     UNION ALL SELECT id FROM keys WHERE name = ?1 LIMIT 1";

/// A row of [`KEY_COLUMNS`]; the outer error is SQLite's, the inner one a bad JSON column.
fn key_from_row(row: &Row<'_>) -> rusqlite::Result<Result<KeyRecord, StoreError>> {
    let limit = |i: usize| -> rusqlite::Result<Option<u64>> {
        Ok(row.get::<_, Option<i64>>(i)?.map(to_u64))
    };
    let list = |i: usize| -> rusqlite::Result<Result<Vec<String>, StoreError>> {
        let json: String = row.get(i)?;
        Ok(serde_json::from_str(&json).map_err(codec("read key")))
    };
    let (models, regions) = match (list(4)?, list(5)?) {
        (Ok(models), Ok(regions)) => (models, regions),
        (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
    };
    Ok(Ok(KeyRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        hash: row.get(2)?,
        prefix: row.get(3)?,
        models,
        regions,
        rpm: limit(6)?,
        tpm: limit(7)?,
        daily_tokens: limit(8)?,
        created_at: row.get(9)?,
        expires_at: row.get(10)?,
        revoked_at: row.get(11)?,
    }))
}

/// `INSERT ... ON CONFLICT DO UPDATE` adding every counter: one statement, so atomic.
static UPSERT_USAGE: LazyLock<String> = LazyLock::new(|| {
    let columns = USAGE_COUNTERS.join(", ");
    let adds = USAGE_COUNTERS
        .iter()
        .map(|c| format!("{c} = {c} + excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO usage (day, key_id, model, region, {columns})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (day, key_id, model, region) DO UPDATE SET {adds}"
    )
});
