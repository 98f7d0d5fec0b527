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
