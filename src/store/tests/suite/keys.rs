//! Team keys: creation, conflicts, lookups, revocation, pages.

use super::*;

pub(crate) async fn keys_create_lookup_list(f: &Fixture) {
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

pub(crate) async fn keys_conflicts_write_nothing(f: &Fixture) {
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

pub(crate) async fn keys_created_in_a_batch(f: &Fixture) {
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

pub(crate) async fn keys_revoke(f: &Fixture) {
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

pub(crate) async fn keys_found_by_id_and_by_name(f: &Fixture) {
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

pub(crate) async fn keys_revoke_prefers_id_over_name(f: &Fixture) {
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

pub(crate) async fn keys_pages_follow_the_listing_order(f: &Fixture) {
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
