//! Behaviours every backend must share. Each takes a fresh [`Fixture`].

use std::time::Duration;

use serde_json::json;

use super::Fixture;
use crate::store::{Affinity, KeyRecord, StoreError, Turn, UsageDelta, UsageRow};

const HOUR: Duration = Duration::from_secs(3600);

fn turn(id: &str, previous: Option<&str>) -> Turn {
    Turn {
        response_id: id.to_owned(),
        previous_response_id: previous.map(str::to_owned),
        region: "intl".to_owned(),
        input: vec![json!({"role": "user", "content": format!("question {id}")})],
        output: vec![json!({"type": "message", "content": [{"type": "output_text", "text": id}]})],
        created_at: 1_700_000_000,
        owner: None,
    }
}

fn ids(turns: &[Turn]) -> Vec<&str> {
    turns.iter().map(|t| t.response_id.as_str()).collect()
}

fn key(id: &str, name: &str, created_at: i64) -> KeyRecord {
    KeyRecord {
        id: id.to_owned(),
        name: name.to_owned(),
        hash: format!("{:0>64}", hex_of(id)),
        prefix: format!("sk-qgw-{id}"),
        models: vec!["qwen-*".to_owned(), "qwen3-max".to_owned()],
        regions: vec![],
        rpm: Some(60),
        tpm: None,
        daily_tokens: Some(1_000_000),
        created_at,
        expires_at: None,
        revoked_at: None,
    }
}

/// A stand-in for a SHA-256 hex digest: distinct per id, lowercase hex.
fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn delta(day: &str, key_id: &str, model: &str, region: &str, n: u64) -> UsageDelta {
    UsageDelta {
        day: day.to_owned(),
        key_id: key_id.to_owned(),
        model: model.to_owned(),
        region: region.to_owned(),
        requests: 1,
        errors: n % 2,
        input_tokens: 100 * n,
        output_tokens: 10 * n,
        cached_tokens: n,
        reasoning_tokens: 2 * n,
        tool_calls: 3 * n,
        estimated: n % 3,
    }
}

fn conflict_text(result: Result<(), StoreError>) -> String {
    match result {
        Err(StoreError::Conflict { what }) => what,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

pub(super) async fn affinity_put_get_expire(f: &Fixture) {
    let s = &f.store;
    let short = f.short_ttl();
    s.put_affinity("resp_long", &Affinity::new("intl", None), HOUR)
        .await
        .unwrap();
    s.put_affinity("resp_short", &Affinity::new("cn", None), short)
        .await
        .unwrap();
    assert_eq!(
        s.get_affinity("resp_long")
            .await
            .unwrap()
            .map(|a| a.region)
            .as_deref(),
        Some("intl")
    );
    assert_eq!(
        s.get_affinity("resp_short")
            .await
            .unwrap()
            .map(|a| a.region)
            .as_deref(),
        Some("cn")
    );
    assert_eq!(s.get_affinity("resp_unknown").await.unwrap(), None);

    s.put_affinity("resp_long", &Affinity::new("us", None), HOUR)
        .await
        .unwrap();
    assert_eq!(
        s.get_affinity("resp_long")
            .await
            .unwrap()
            .map(|a| a.region)
            .as_deref(),
        Some("us")
    );

    f.expire(short).await;
    assert_eq!(s.get_affinity("resp_short").await.unwrap(), None);
    assert_eq!(
        s.get_affinity("resp_long")
            .await
            .unwrap()
            .map(|a| a.region)
            .as_deref(),
        Some("us")
    );

    // A zero TTL is expired at once.
    s.put_affinity("resp_long", &Affinity::new("intl", None), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(s.get_affinity("resp_long").await.unwrap(), None);
}

pub(super) async fn affinity_and_turns_keep_their_owner(f: &Fixture) {
    let s = &f.store;
    let owned = Affinity::new("intl", Some("key_a".to_owned()));
    s.put_affinity("resp_owned", &owned, HOUR).await.unwrap();
    assert_eq!(s.get_affinity("resp_owned").await.unwrap(), Some(owned));
    let mut t = turn("resp_owned", None);
    t.owner = Some("key_a".to_owned());
    s.put_turn(&t, HOUR).await.unwrap();
    assert_eq!(s.get_turn("resp_owned").await.unwrap(), Some(t));
    let anonymous = turn("resp_anon", None);
    s.put_turn(&anonymous, HOUR).await.unwrap();
    assert_eq!(
        s.get_turn("resp_anon").await.unwrap().and_then(|t| t.owner),
        None
    );
}

pub(super) async fn affinity_delete(f: &Fixture) {
    let s = &f.store;
    s.put_affinity("resp_1", &Affinity::new("intl", None), HOUR)
        .await
        .unwrap();
    assert!(s.delete_affinity("resp_1").await.unwrap());
    assert_eq!(s.get_affinity("resp_1").await.unwrap(), None);
    assert!(!s.delete_affinity("resp_1").await.unwrap());
    assert!(!s.delete_affinity("resp_never").await.unwrap());
}

pub(super) async fn turns_put_get_expire(f: &Fixture) {
    let s = &f.store;
    let short = f.short_ttl();
    let long = turn("resp_a", None);
    let brief = turn("resp_b", Some("resp_a"));
    s.put_turn(&long, HOUR).await.unwrap();
    s.put_turn(&brief, short).await.unwrap();
    assert_eq!(s.get_turn("resp_a").await.unwrap(), Some(long.clone()));
    assert_eq!(s.get_turn("resp_b").await.unwrap(), Some(brief));
    assert_eq!(s.get_turn("resp_none").await.unwrap(), None);

    let mut replaced = long.clone();
    replaced.region = "cn".to_owned();
    s.put_turn(&replaced, HOUR).await.unwrap();
    assert_eq!(s.get_turn("resp_a").await.unwrap(), Some(replaced.clone()));

    f.expire(short).await;
    assert_eq!(s.get_turn("resp_b").await.unwrap(), None);
    assert_eq!(s.get_turn("resp_a").await.unwrap(), Some(replaced));
}

pub(super) async fn history_follows_chain(f: &Fixture) {
    let s = &f.store;
    for t in [
        turn("r1", None),
        turn("r2", Some("r1")),
        turn("r3", Some("r2")),
    ] {
        s.put_turn(&t, HOUR).await.unwrap();
    }
    let h = s.history("r3", 10).await.unwrap();
    assert_eq!(ids(&h.turns), ["r1", "r2", "r3"]);
    assert!(h.complete);
    assert_eq!(h.turns[2], turn("r3", Some("r2")));

    let h = s.history("r1", 10).await.unwrap();
    assert_eq!(ids(&h.turns), ["r1"]);
    assert!(h.complete);

    let h = s.history("r_unknown", 10).await.unwrap();
    assert!(h.turns.is_empty());
    assert!(!h.complete);
}

pub(super) async fn history_truncates_at_max_turns(f: &Fixture) {
    let s = &f.store;
    let mut previous: Option<String> = None;
    for i in 1..=5 {
        let id = format!("r{i}");
        s.put_turn(&turn(&id, previous.as_deref()), HOUR)
            .await
            .unwrap();
        previous = Some(id);
    }
    let h = s.history("r5", 2).await.unwrap();
    assert_eq!(ids(&h.turns), ["r4", "r5"]);
    assert!(h.complete, "stopping at max_turns is not a missing link");
    assert!(h.truncated, "older turns were left");
    let h = s.history("r5", 5).await.unwrap();
    assert!(!h.truncated, "exactly max_turns turns, none left");

    let h = s.history("r5", 0).await.unwrap();
    assert!(h.turns.is_empty());
}

pub(super) async fn history_missing_link_is_incomplete(f: &Fixture) {
    let s = &f.store;
    s.put_turn(&turn("r2", Some("r1_gone")), HOUR)
        .await
        .unwrap();
    s.put_turn(&turn("r3", Some("r2")), HOUR).await.unwrap();
    let h = s.history("r3", 10).await.unwrap();
    assert_eq!(ids(&h.turns), ["r2", "r3"]);
    assert!(!h.complete);
}

pub(super) async fn history_expired_link_is_incomplete(f: &Fixture) {
    let s = &f.store;
    let short = f.short_ttl();
    s.put_turn(&turn("r1", None), short).await.unwrap();
    s.put_turn(&turn("r2", Some("r1")), HOUR).await.unwrap();
    assert!(s.history("r2", 10).await.unwrap().complete);
    f.expire(short).await;
    let h = s.history("r2", 10).await.unwrap();
    assert_eq!(ids(&h.turns), ["r2"]);
    assert!(!h.complete);
}

pub(super) async fn history_cycle_is_incomplete(f: &Fixture) {
    let s = &f.store;
    s.put_turn(&turn("ra", Some("rb")), HOUR).await.unwrap();
    s.put_turn(&turn("rb", Some("ra")), HOUR).await.unwrap();
    let h = s.history("ra", 100).await.unwrap();
    assert_eq!(ids(&h.turns), ["rb", "ra"]);
    assert!(!h.complete);
}

pub(super) async fn keys_create_lookup_list(f: &Fixture) {
    let s = &f.store;
    assert!(s.list_keys().await.unwrap().is_empty());
    let late = key("k3", "aaa-late", 200);
    let b = key("k2", "bbb", 100);
    let mut a = key("k1", "aaa", 100);
    a.expires_at = Some(10_000);
    a.regions = vec!["intl".to_owned()];
    a.tpm = Some(u64::from(u32::MAX) + 1);
    for k in [&late, &b, &a] {
        s.create_key(k).await.unwrap();
    }
    assert_eq!(s.key_by_hash(&a.hash).await.unwrap(), Some(a.clone()));
    assert_eq!(s.key_by_hash(&b.hash).await.unwrap(), Some(b.clone()));
    assert_eq!(s.key_by_hash(&"0".repeat(64)).await.unwrap(), None);
    assert_eq!(s.list_keys().await.unwrap(), [a, b, late]);
}

pub(super) async fn keys_conflicts_write_nothing(f: &Fixture) {
    let s = &f.store;
    let original = key("k1", "ci", 100);
    s.create_key(&original).await.unwrap();

    let mut same_id = key("k1", "other", 101);
    same_id.hash = hex_of("different-1");
    assert!(conflict_text(s.create_key(&same_id).await).contains("key id `k1`"));

    let same_name = key("k2", "ci", 102);
    assert!(conflict_text(s.create_key(&same_name).await).contains("key name `ci`"));

    let mut same_hash = key("k3", "prod", 103);
    same_hash.hash.clone_from(&original.hash);
    let text = conflict_text(s.create_key(&same_hash).await);
    assert!(
        !text.contains(&original.hash),
        "the hash is not echoed: {text}"
    );

    // Nothing of the refused keys was written, indexes included.
    assert_eq!(
        s.list_keys().await.unwrap(),
        std::slice::from_ref(&original)
    );
    assert_eq!(s.key_by_hash(&same_name.hash).await.unwrap(), None);
    assert_eq!(s.key_by_hash(&original.hash).await.unwrap(), Some(original));
    assert!(!s.revoke_key("prod", 1).await.unwrap());
    assert!(!s.revoke_key("k2", 1).await.unwrap());
}

pub(super) async fn keys_created_in_a_batch(f: &Fixture) {
    let s = &f.store;
    let batch: Vec<KeyRecord> = (0..50)
        .map(|i| key(&format!("b{i:02}"), &format!("batch-{i:02}"), 100 + i))
        .collect();
    s.create_keys(&batch).await.unwrap();
    assert_eq!(s.list_keys().await.unwrap(), batch);
    assert_eq!(
        s.key_by_hash(&batch[7].hash).await.unwrap().as_ref(),
        Some(&batch[7])
    );
    s.create_keys(&[]).await.unwrap();

    // A conflict with the store, or within the batch, is the error.
    let taken = [key("new1", "fresh-1", 1), key("new2", "batch-03", 1)];
    assert!(conflict_text(s.create_keys(&taken).await).contains("key name `batch-03`"));
    let twice = [key("new3", "fresh-3", 1), key("new4", "fresh-3", 1)];
    assert!(conflict_text(s.create_keys(&twice).await).contains("key name `fresh-3`"));
    // SQLite and memory wrote nothing of either batch; Redis kept the keys before the
    // conflict.
    let kept = if s.backend() == "redis" { 52 } else { 50 };
    assert_eq!(s.list_keys().await.unwrap().len(), kept);
    assert_eq!(s.key_by_id("new4").await.unwrap(), None);
}

pub(super) async fn keys_revoke(f: &Fixture) {
    let s = &f.store;
    let k = key("k1", "ci", 100);
    let other = key("k2", "prod", 100);
    s.create_key(&k).await.unwrap();
    s.create_key(&other).await.unwrap();
    assert!(k.is_active(500));

    assert!(s.revoke_key("ci", 500).await.unwrap());
    assert!(s.revoke_key("k1", 900).await.unwrap(), "found again by id");
    let revoked = s.key_by_hash(&k.hash).await.unwrap().unwrap();
    assert_eq!(
        revoked.revoked_at,
        Some(500),
        "the first revocation time stays"
    );
    assert!(!revoked.is_active(500));
    assert_eq!(
        revoked,
        KeyRecord {
            revoked_at: Some(500),
            ..k
        }
    );

    assert!(!s.revoke_key("nope", 500).await.unwrap());
    assert_eq!(s.key_by_hash(&other.hash).await.unwrap(), Some(other));
}

pub(super) async fn keys_found_by_id_and_by_name(f: &Fixture) {
    let s = &f.store;
    let a = key("k1", "alice", 100);
    let b = key("k2", "bob", 100);
    s.create_key(&a).await.unwrap();
    s.create_key(&b).await.unwrap();
    assert_eq!(s.key_by_id("k1").await.unwrap(), Some(a.clone()));
    assert_eq!(s.key_by_id("alice").await.unwrap(), None, "a name is no id");
    assert_eq!(s.key_by_name("bob").await.unwrap(), Some(b.clone()));
    assert_eq!(s.key_by_name("k2").await.unwrap(), None, "an id is no name");
    assert_eq!(s.key_by_name("nobody").await.unwrap(), None);
    assert!(s.revoke_key("alice", 5).await.unwrap());
    let revoked = s.key_by_id("k1").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(5));
    assert_eq!(s.key_by_name("alice").await.unwrap(), Some(revoked));

    let ids = ["k1", "k2", "k9", ""].map(String::from);
    let names = s.key_names(&ids).await.unwrap();
    let expected = std::collections::HashMap::from([
        ("k1".to_owned(), "alice".to_owned()),
        ("k2".to_owned(), "bob".to_owned()),
    ]);
    assert_eq!(names, expected);
    assert!(s.key_names(&[]).await.unwrap().is_empty());
}

pub(super) async fn keys_revoke_prefers_id_over_name(f: &Fixture) {
    let s = &f.store;
    let target = key("alpha", "first", 100);
    let decoy = key("beta", "alpha", 100);
    s.create_key(&target).await.unwrap();
    s.create_key(&decoy).await.unwrap();
    assert!(s.revoke_key("alpha", 7).await.unwrap());
    let keys = s.list_keys().await.unwrap();
    let revoked: Vec<(&str, Option<i64>)> =
        keys.iter().map(|k| (k.id.as_str(), k.revoked_at)).collect();
    assert_eq!(revoked, [("beta", None), ("alpha", Some(7))]);
}

/// Every page of `list_keys_page` with `limit`, each resuming after the last key of the one
/// before; the keys in order, and how many pages.
async fn all_key_pages(s: &crate::store::Store, limit: usize) -> (Vec<KeyRecord>, usize) {
    let mut seen: Vec<KeyRecord> = Vec::new();
    let mut pages = 0;
    loop {
        let page = s.list_keys_page(seen.last(), limit).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= limit);
        assert!(
            !page.has_more || page.items.len() == limit,
            "a short page is the last"
        );
        seen.extend(page.items);
        if !page.has_more {
            return (seen, pages);
        }
        assert!(pages < 1_000, "pages never end");
    }
}

pub(super) async fn keys_pages_follow_the_listing_order(f: &Fixture) {
    let s = &f.store;
    assert_eq!(
        s.list_keys_page(None, 10).await.unwrap(),
        crate::store::Page {
            items: vec![],
            has_more: false
        }
    );
    // Many keys per second, created out of name order: ties broken by name.
    const N: usize = 250;
    for i in 0..N {
        let name = format!("key-{:03}", (i * 37) % N);
        let created_at = 1_000 + ((i * 13) % 5) as i64;
        s.create_key(&key(&format!("id{i:03}"), &name, created_at))
            .await
            .unwrap();
    }
    let mut expected = s.list_keys().await.unwrap();
    assert_eq!(expected.len(), N);
    expected.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
    assert_eq!(
        s.list_keys().await.unwrap(),
        expected,
        "list_keys is sorted"
    );
    for (limit, pages) in [(7, 36), (10, 25), (N, 1), (1000, 1), (1, N)] {
        let (seen, count) = all_key_pages(s, limit).await;
        assert_eq!(seen, expected, "limit {limit}");
        assert_eq!(count, pages, "limit {limit}");
    }
    let first = s.list_keys_page(None, 3).await.unwrap();
    assert!(first.has_more);
    assert_eq!(first.items, expected[..3]);
    // A key created after a page was read, sorting before its end, does not shift later
    // pages: they resume after the cursor's (created_at, name).
    let cursor = expected[99].clone();
    s.create_key(&key("late", "aaa-early", cursor.created_at))
        .await
        .unwrap();
    let next = s.list_keys_page(Some(&cursor), 5).await.unwrap();
    assert_eq!(next.items, expected[100..105]);
    let last = s.list_keys_page(Some(&expected[N - 1]), 5).await.unwrap();
    assert!(last.items.is_empty() && !last.has_more);
}

pub(super) async fn counters_add_and_read(f: &Fixture) {
    let s = &f.store;
    assert_eq!(s.get_counter("rpm:k1").await.unwrap(), 0);
    assert_eq!(s.incr_counter("rpm:k1", 3, HOUR).await.unwrap(), 3);
    assert_eq!(s.incr_counter("rpm:k1", 4, HOUR).await.unwrap(), 7);
    assert_eq!(s.incr_counter("rpm:k1", 0, HOUR).await.unwrap(), 7);
    assert_eq!(s.get_counter("rpm:k1").await.unwrap(), 7);
    assert_eq!(s.incr_counter("tpm:k1", 1000, HOUR).await.unwrap(), 1000);
    assert_eq!(s.get_counter("rpm:k1").await.unwrap(), 7);
}

pub(super) async fn counters_window_is_not_extended(f: &Fixture) {
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

pub(super) async fn counters_concurrent_increments_are_exact(f: &Fixture) {
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

pub(super) async fn usage_adds_into_rows(f: &Fixture) {
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

pub(super) async fn usage_since_filters_by_day(f: &Fixture) {
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

pub(super) async fn usage_pages_follow_the_ledger_order(f: &Fixture) {
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

pub(super) async fn usage_concurrent_records_are_exact(f: &Fixture) {
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

pub(super) async fn purge_expired_removes_only_expired(f: &Fixture) {
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
