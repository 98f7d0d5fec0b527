//! The SQL the SQLite store runs, and rows decoded back into records.

use super::*;

pub(super) fn fetch_turn(
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

pub(super) const KEY_COLUMNS: &str = key_columns!();

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
pub(super) fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}

/// A row of `day, key_id, model, region` and the [`USAGE_COUNTERS`].
pub(super) fn usage_from_row(row: &Row<'_>) -> rusqlite::Result<UsageRow> {
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
pub(super) fn key_from_row(row: &Row<'_>) -> rusqlite::Result<Result<KeyRecord, StoreError>> {
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
pub(super) static UPSERT_USAGE: LazyLock<String> = LazyLock::new(|| {
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
