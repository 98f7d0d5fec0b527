//! What only a file-backed store has: data that outlives the process, and a schema version.

use std::time::Duration;

use rusqlite::Connection;

use super::START_MILLIS;
use crate::store::migrations::MIGRATIONS;
use crate::store::sqlite::{
    KEYS_PAGE_AFTER, KEYS_PAGE_FIRST, REVOKE_FIND_ID, USAGE_AFTER_ROW, USAGE_FROM_DAY,
    key_where_sql, usage_page_sql,
};
use crate::store::{Affinity, Clock, Store, StoreError, UsageDelta};

const HOUR: Duration = Duration::from_secs(3600);

fn db_url(dir: &tempfile::TempDir) -> (std::path::PathBuf, String) {
    let path = dir.path().join("gateway.db");
    let url = format!("sqlite://{}", path.display());
    (path, url)
}

#[tokio::test]
async fn reopen_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let (_, url) = db_url(&dir);
    let clock = Clock::manual(START_MILLIS);
    let usage = UsageDelta {
        day: "2026-01-01".into(),
        model: "qwen-plus".into(),
        region: "intl".into(),
        requests: 1,
        input_tokens: 42,
        ..UsageDelta::default()
    };
    {
        let store = Store::open_with_clock(&url, clock.clone()).await.unwrap();
        store
            .put_affinity("resp_1", &Affinity::new("cn", None), HOUR)
            .await
            .unwrap();
        store.incr_counter("rpm", 2, HOUR).await.unwrap();
        store.record_usage(&usage).await.unwrap();
    }
    let store = Store::open_with_clock(&url, clock).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    assert_eq!(
        store
            .get_affinity("resp_1")
            .await
            .unwrap()
            .map(|a| a.region)
            .as_deref(),
        Some("cn")
    );
    assert_eq!(store.get_counter("rpm").await.unwrap(), 2);
    let rows = store.usage(None).await.unwrap();
    assert_eq!((rows.len(), rows[0].input_tokens), (1, 42));
}

#[tokio::test]
async fn uses_wal_and_records_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let (path, url) = db_url(&dir);
    drop(Store::open(&url).await.unwrap());
    let conn = Connection::open(path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(version, MIGRATIONS.len() as i64);
}

#[tokio::test]
async fn refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (path, url) = db_url(&dir);
    drop(Store::open(&url).await.unwrap());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    match Store::open(&url).await {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (99, MIGRATIONS.len()));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[tokio::test]
async fn upgrades_a_version_1_database_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (path, url) = db_url(&dir);
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO affinity (response_id, region, expires_at) VALUES ('old', 'intl', ?1)",
            [i64::MAX],
        )
        .unwrap();
    }
    let store = Store::open(&url).await.unwrap();
    assert_eq!(
        store
            .get_affinity("old")
            .await
            .unwrap()
            .map(|a| a.region)
            .as_deref(),
        Some("intl")
    );
    assert_eq!(store.incr_counter("new", 1, HOUR).await.unwrap(), 1);
}

/// SQLite's plan for `sql`, one detail per step (`SCAN t` means a full scan).
fn query_plan(conn: &Connection, sql: &str) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    // Unbound parameters are NULL: enough to plan with.
    let mut rows = stmt.raw_query();
    let mut steps = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        steps.push(row.get::<_, String>(3).unwrap());
    }
    steps.join("; ")
}

#[tokio::test]
async fn key_lookups_and_revocation_use_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let (path, url) = db_url(&dir);
    drop(Store::open(&url).await.unwrap());
    let conn = Connection::open(path).unwrap();
    for sql in [
        key_where_sql("id"),
        key_where_sql("name"),
        key_where_sql("hash"),
        REVOKE_FIND_ID.to_owned(),
        "SELECT name FROM keys WHERE id = ?1".to_owned(),
    ] {
        let plan = query_plan(&conn, &sql);
        assert!(plan.contains("USING INDEX"), "{sql}: {plan}");
        assert!(!plan.contains("SCAN"), "{sql}: {plan}");
    }
}

#[tokio::test]
async fn pages_seek_through_indexes_and_never_sort() {
    let dir = tempfile::tempdir().unwrap();
    let (path, url) = db_url(&dir);
    drop(Store::open(&url).await.unwrap());
    let conn = Connection::open(path).unwrap();
    let first = query_plan(&conn, KEYS_PAGE_FIRST);
    assert!(
        first.contains("USING INDEX keys_created_at_name"),
        "{first}"
    );
    let after = query_plan(&conn, KEYS_PAGE_AFTER);
    assert!(
        after.contains("SEARCH keys USING INDEX keys_created_at_name"),
        "{after}"
    );
    // The table is clustered on its primary key: the first page walks it in order, the
    // others seek into it.
    let usage_first = query_plan(&conn, &usage_page_sql(""));
    assert_eq!(usage_first, "SCAN usage");
    for condition in [USAGE_FROM_DAY, USAGE_AFTER_ROW] {
        let plan = query_plan(&conn, &usage_page_sql(condition));
        assert!(
            plan.starts_with("SEARCH usage USING PRIMARY KEY"),
            "{condition}: {plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
    eprintln!("plans: keys first page: {first}; keys after a cursor: {after}");
    for plan in [first, after] {
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
}

#[tokio::test]
async fn rejects_bad_urls_without_echoing_them() {
    match Store::open("sqlite://").await {
        Err(StoreError::Url(crate::config::StoreUrlError::SqliteWithoutPath)) => {}
        other => panic!("expected SqliteWithoutPath, got {other:?}"),
    }
    let err = Store::open("postgres://admin:hunter2@db/x")
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::Url(crate::config::StoreUrlError::Unsupported { .. })
    ));
    assert!(!err.to_string().contains("hunter2"), "{err}");
}
