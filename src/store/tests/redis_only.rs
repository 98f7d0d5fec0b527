//! Redis specifics: the URL form `Store::open` takes, and credentials kept out of errors.

use std::error::Error as _;

use super::redis_server::redis_target;
use crate::store::redis::RedisStore;
use crate::store::{Store, StoreError};

/// Every message in the error's chain, and its Debug form: all of it may reach a log.
fn everything_said(err: &StoreError) -> String {
    let mut text = format!("{err} / {err:?}");
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(&format!(" / {e}"));
        source = e.source();
    }
    text
}

#[tokio::test]
async fn open_by_url() {
    let Some(target) = redis_target(&[]).await else {
        return;
    };
    let store = Store::open(&target.url).await.unwrap();
    assert_eq!(store.backend(), "redis");
    // Read-only: the server may be shared (QWEN_GATEWAY_TEST_REDIS_URL).
    let absent = format!("absent-{}", uuid::Uuid::new_v4().simple());
    assert_eq!(store.get_counter(&absent).await.unwrap(), 0);
    assert!(!format!("{store:?}").contains("127.0.0.1"));
}

/// Keys written by a gateway that predates `keys-by-created` (or by one still running as
/// another replica) are added to it before a page is read.
#[tokio::test]
async fn key_pages_rebuild_a_missing_listing_index() {
    let Some(target) = redis_target(&[]).await else {
        return;
    };
    let prefix = format!("qgw-test-{}:", uuid::Uuid::new_v4().simple());
    let store = Store::Redis(RedisStore::connect(&target.url, &prefix).await.unwrap());
    for i in 0..25 {
        let record = crate::store::KeyRecord {
            id: format!("id{i}"),
            name: format!("name-{:02}", 24 - i),
            hash: format!("{i:064}"),
            prefix: "qgw-x".into(),
            models: vec![],
            regions: vec![],
            rpm: None,
            tpm: None,
            daily_tokens: None,
            created_at: 1_000 + i64::from(i % 3),
            expires_at: None,
            revoked_at: None,
        };
        store.create_key(&record).await.unwrap();
    }
    let expected = store.list_keys().await.unwrap();
    let client = ::redis::Client::open(target.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // As an older gateway would have left it: no index, or one missing some keys.
    for damage in [
        ::redis::cmd("DEL")
            .arg(format!("{prefix}keys-by-created"))
            .clone(),
        ::redis::cmd("ZREM")
            .arg(format!("{prefix}keys-by-created"))
            .arg("name-03")
            .arg("name-17")
            .clone(),
    ] {
        let _: i64 = damage.query_async(&mut conn).await.unwrap();
        let mut seen = Vec::new();
        loop {
            let page = store.list_keys_page(seen.last(), 4).await.unwrap();
            seen.extend(page.items);
            if !page.has_more {
                break;
            }
        }
        assert_eq!(seen, expected);
    }
    if target.is_shared() {
        super::redis_server::delete_prefixed(&target.url, &prefix).await;
    }
}

#[tokio::test]
async fn unreachable_server_error_hides_password() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://gateway:hunter2@127.0.0.1:{port}/0");
    let err = RedisStore::connect(&url, "qgw:").await.unwrap_err();
    let said = everything_said(&err);
    assert!(!said.contains("hunter2"), "{said}");
    assert!(said.contains("connect"), "{said}");
}

#[tokio::test]
async fn wrong_password_error_hides_password() {
    let Some(target) = redis_target(&["--requirepass", "right-one"]).await else {
        return;
    };
    let url = target.url.replace("redis://", "redis://:hunter2@");
    let err = RedisStore::connect(&url, "qgw:").await.unwrap_err();
    let said = everything_said(&err);
    assert!(!said.contains("hunter2"), "{said}");
}
