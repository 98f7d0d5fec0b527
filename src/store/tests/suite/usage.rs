//! Rate counters, the usage ledger, and the purge of expired records of every kind.

use super::*;
use crate::store::{Affinity, UsageRow};

pub(crate) async fn counters_add_and_read(f: &Fixture) {
    let s = &f.store;
    assert_eq!(s.get_counter("rpm:k1").await.unwrap(), 0);
    assert_eq!(s.incr_counter("rpm:k1", 3, HOUR).await.unwrap(), 3);
    assert_eq!(s.incr_counter("rpm:k1", 4, HOUR).await.unwrap(), 7);
    assert_eq!(s.incr_counter("rpm:k1", 0, HOUR).await.unwrap(), 7);
    assert_eq!(s.get_counter("rpm:k1").await.unwrap(), 7);
    assert_eq!(s.incr_counter("tpm:k1", 1000, HOUR).await.unwrap(), 1000);
    assert_eq!(s.get_counter("rpm:k1").await.unwrap(), 7);
}

pub(crate) async fn counters_window_is_not_extended(f: &Fixture) {
    let s = &f.store;
    let ttl = f.short_ttl();
    assert_eq!(s.incr_counter("w", 1, ttl).await.unwrap(), 1);
    f.pass(ttl / 2).await;
    assert_eq!(s.incr_counter("w", 1, ttl).await.unwrap(), 2);
    f.expire(ttl / 2).await;
    assert_eq!(
        s.get_counter("w").await.unwrap(),
        0,
        "expired at creation + ttl"
    );
    assert_eq!(
        s.incr_counter("w", 5, ttl).await.unwrap(),
        5,
        "a new window"
    );
    assert_eq!(s.get_counter("w").await.unwrap(), 5);
}

pub(crate) async fn counters_concurrent_increments_are_exact(f: &Fixture) {
    let replicas = [f.store.clone(), f.replica().await];
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let s = replicas[(i % 2) as usize].clone();
        tasks.push(tokio::spawn(async move {
            let one = s.incr_counter("hits", 1, HOUR).await.unwrap();
            s.incr_counter("tokens", i, HOUR).await.unwrap();
            one
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=50).collect::<Vec<u64>>(),
        "each increment saw its own value"
    );
    assert_eq!(f.store.get_counter("hits").await.unwrap(), 50);
    assert_eq!(
        replicas[1].get_counter("tokens").await.unwrap(),
        (0..50).sum::<u64>()
    );
}

pub(crate) async fn usage_adds_into_rows(f: &Fixture) {
    let s = &f.store;
    assert!(s.usage(None).await.unwrap().is_empty());
    s.record_usage(&delta("2026-01-02", "k1", "qwen-plus", "intl", 1))
        .await
        .unwrap();
    s.record_usage(&delta("2026-01-02", "k1", "qwen-plus", "intl", 2))
        .await
        .unwrap();
    s.record_usage(&delta("2026-01-01", "", "qwen:max", "cn", 5))
        .await
        .unwrap();
    s.record_usage(&delta("2026-01-02", "k1", "qwen-plus", "cn", 7))
        .await
        .unwrap();
    let rows = s.usage(None).await.unwrap();
    let expected = [
        UsageRow::from_parts(
            "2026-01-01".into(),
            "".into(),
            "qwen:max".into(),
            "cn".into(),
            [1, 1, 500, 50, 5, 10, 15, 2],
        ),
        UsageRow::from_parts(
            "2026-01-02".into(),
            "k1".into(),
            "qwen-plus".into(),
            "cn".into(),
            [1, 1, 700, 70, 7, 14, 21, 1],
        ),
        UsageRow::from_parts(
            "2026-01-02".into(),
            "k1".into(),
            "qwen-plus".into(),
            "intl".into(),
            [2, 1, 300, 30, 3, 6, 9, 3],
        ),
    ];
    assert_eq!(rows, expected);
}

pub(crate) async fn usage_since_filters_by_day(f: &Fixture) {
    let s = &f.store;
    for day in ["2025-12-31", "2026-01-01", "2026-01-02", "2026-02-01"] {
        for key_id in ["k2", "k1"] {
            s.record_usage(&delta(day, key_id, "m", "intl", 1))
                .await
                .unwrap();
        }
    }
    let days_keys = |rows: Vec<UsageRow>| -> Vec<(String, String)> {
        rows.into_iter().map(|r| (r.day, r.key_id)).collect()
    };
    let since = days_keys(s.usage(Some("2026-01-02")).await.unwrap());
    assert_eq!(
        since,
        [
            ("2026-01-02".into(), "k1".into()),
            ("2026-01-02".into(), "k2".into()),
            ("2026-02-01".into(), "k1".into()),
            ("2026-02-01".into(), "k2".into()),
        ]
    );
    assert_eq!(s.usage(Some("2025-01-01")).await.unwrap().len(), 8);
    assert!(s.usage(Some("2026-03-01")).await.unwrap().is_empty());
}

/// Every page of `usage_page` with `since` and `limit`, each resuming after the last row of
/// the one before.
async fn all_usage_pages(
    s: &crate::store::Store,
    since: Option<&str>,
    limit: usize,
) -> Vec<UsageRow> {
    let mut seen: Vec<UsageRow> = Vec::new();
    for _ in 0..1_000 {
        let cursor = seen.last().map(UsageRow::cursor);
        let page = s.usage_page(since, cursor.as_ref(), limit).await.unwrap();
        assert!(page.items.len() <= limit);
        seen.extend(page.items);
        if !page.has_more {
            return seen;
        }
    }
    panic!("pages never end");
}

pub(crate) async fn usage_pages_follow_the_ledger_order(f: &Fixture) {
    let s = &f.store;
    let empty = s.usage_page(None, None, 10).await.unwrap();
    assert!(empty.items.is_empty() && !empty.has_more);
    for day in ["2026-01-03", "2026-01-01", "2026-01-02"] {
        for key_id in ["k2", "", "k10", "k1"] {
            for model in ["qwen-plus", "qwen3-max", "qwen"] {
                for region in ["intl", "cn"] {
                    s.record_usage(&delta(day, key_id, model, region, 1))
                        .await
                        .unwrap();
                }
            }
        }
    }
    let all = s.usage(None).await.unwrap();
    assert_eq!(all.len(), 72);
    for limit in [5, 24, 72, 100] {
        assert_eq!(all_usage_pages(s, None, limit).await, all, "limit {limit}");
    }
    let since = s.usage(Some("2026-01-02")).await.unwrap();
    assert_eq!(since.len(), 48);
    assert_eq!(all_usage_pages(s, Some("2026-01-02"), 7).await, since);
    // A cursor before `since` starts at `since`; one after it wins.
    let early = all[3].cursor();
    let page = s
        .usage_page(Some("2026-01-02"), Some(&early), 5)
        .await
        .unwrap();
    assert_eq!(page.items, since[..5]);
    let later = since[10].cursor();
    let page = s
        .usage_page(Some("2026-01-02"), Some(&later), 5)
        .await
        .unwrap();
    assert_eq!(page.items, since[11..16]);
    // A cursor need not be a row: the page starts at the next row after it.
    let between = crate::store::UsageCursor {
        day: "2026-01-01".into(),
        key_id: "k1".into(),
        model: "qwen-plus".into(),
        region: "zz".into(),
    };
    let page = s.usage_page(None, Some(&between), 1).await.unwrap();
    let next = all
        .iter()
        .find(|r| {
            (
                r.day.as_str(),
                r.key_id.as_str(),
                r.model.as_str(),
                r.region.as_str(),
            ) > ("2026-01-01", "k1", "qwen-plus", "zz")
        })
        .unwrap();
    assert_eq!(page.items, std::slice::from_ref(next));
    assert!(page.has_more);
    let end = s
        .usage_page(None, Some(&all[71].cursor()), 5)
        .await
        .unwrap();
    assert!(end.items.is_empty() && !end.has_more);
}

pub(crate) async fn usage_concurrent_records_are_exact(f: &Fixture) {
    let replicas = [f.store.clone(), f.replica().await];
    let mut tasks = Vec::new();
    for i in 0..40u64 {
        let s = replicas[(i % 2) as usize].clone();
        tasks.push(tokio::spawn(async move {
            s.record_usage(&delta("2026-01-01", "k", "m", "r", i))
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let rows = f.store.usage(None).await.unwrap();
    assert_eq!(rows.len(), 1);
    let sum: u64 = (0..40).sum();
    assert_eq!(rows[0].requests, 40);
    assert_eq!(rows[0].errors, 20);
    assert_eq!(rows[0].input_tokens, 100 * sum);
    assert_eq!(rows[0].tool_calls, 3 * sum);
}

pub(crate) async fn purge_expired_removes_only_expired(f: &Fixture) {
    let s = &f.store;
    let short = f.short_ttl();
    s.put_affinity("gone", &Affinity::new("intl", None), short)
        .await
        .unwrap();
    s.put_affinity("kept", &Affinity::new("intl", None), HOUR)
        .await
        .unwrap();
    s.put_turn(&turn("gone", None), short).await.unwrap();
    s.put_turn(&turn("kept", None), HOUR).await.unwrap();
    s.incr_counter("gone", 1, short).await.unwrap();
    s.incr_counter("kept", 1, HOUR).await.unwrap();
    s.create_key(&key("k1", "ci", 1)).await.unwrap();
    s.record_usage(&delta("2026-01-01", "k1", "m", "r", 1))
        .await
        .unwrap();
    assert_eq!(s.purge_expired().await.unwrap(), 0, "nothing expired yet");

    f.expire(short).await;
    // Redis expires keys by itself and has nothing to purge.
    let expected = if s.backend() == "redis" { 0 } else { 3 };
    assert_eq!(s.purge_expired().await.unwrap(), expected);
    assert_eq!(s.purge_expired().await.unwrap(), 0);

    assert_eq!(s.get_affinity("gone").await.unwrap(), None);
    assert_eq!(
        s.get_affinity("kept")
            .await
            .unwrap()
            .map(|a| a.region)
            .as_deref(),
        Some("intl")
    );
    assert_eq!(s.get_turn("gone").await.unwrap(), None);
    assert!(s.get_turn("kept").await.unwrap().is_some());
    assert_eq!(s.get_counter("gone").await.unwrap(), 0);
    assert_eq!(s.get_counter("kept").await.unwrap(), 1);
    assert_eq!(s.list_keys().await.unwrap().len(), 1);
    assert_eq!(s.usage(None).await.unwrap().len(), 1);
}
