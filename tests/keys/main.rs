//! Team keys end to end: a gateway with `auth.mode = "keys"` over mock regions, state in a
//! SQLite file in a temporary directory — refusals, header forms, model and region limits,
//! rate limits and their headers, the usage ledger, the admin API, restarts, and the real
//! binary's `keys` commands and logs.
//!
//! The tests are in modules by subject; the shared rig (a keys-mode `Team`, keys, requests,
//! the ledger's rows, the mock's usage) is here.

#[path = "../common/mod.rs"]
mod common;

mod admin_api;
mod authentication;
mod binary;
mod limits;
mod usage;

use common::*;
use mock_model_studio::MockServer;
use qwen_gateway::auth::admin;
use qwen_gateway::store::{Store, UsageRow};
use qwen_gateway::usage::Usage;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const MODEL: &str = "qwen3-max-2026-01-23";
const ADMIN: &str = "admin-token-for-the-keys-tests-4f2a";

/// A gateway config over `urls` (regions `r0`, `r1`, ...) with team keys on and the store
/// in `db`, plus `extra` TOML.
fn team_toml(urls: &[String], db: &Path, extra: &str) -> String {
    let store = format!("url = \"sqlite://{}\"", db.display());
    let breaker = "first_byte_timeout = \"3s\"\nbreaker_threshold = 2\nbreaker_cooldown = \"30s\"";
    config_toml(urls, &format!("[auth]\nmode = \"keys\"\n{extra}"))
        .replace("url = \"memory\"", &store)
        .replace("first_byte_timeout = \"3s\"", breaker)
}

/// One mock region, a keys-mode gateway over it with the admin API on, a SQLite store.
struct Team {
    gw: Gateway,
    mock: MockServer,
    _dir: tempfile::TempDir,
}

impl Team {
    async fn start() -> Team {
        let mock = start_mock().await;
        let dir = tempfile::tempdir().unwrap();
        let toml = team_toml(&[mock.base_url()], &dir.path().join("gw.db"), "");
        let gw = start_gateway_with_admin(&toml, Some(ADMIN)).await;
        Team {
            gw,
            mock,
            _dir: dir,
        }
    }

    fn store(&self) -> &Store {
        &self.gw.store
    }
}

async fn new_key(store: &Store, name: &str, edit: impl FnOnce(&mut admin::NewKey)) -> String {
    let mut spec = admin::NewKey {
        name: name.into(),
        ..Default::default()
    };
    edit(&mut spec);
    let created = admin::create_key(store, spec, &[]).await.unwrap();
    created.key.expose().to_owned()
}

async fn key_id(store: &Store, name: &str) -> String {
    store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.name == name)
        .unwrap()
        .id
}

async fn post(
    gw: &Gateway,
    path: &str,
    key: Option<&str>,
    body: Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = client().post(gw.url(path)).json(&body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.expect("gateway answers")
}

async fn ask(gw: &Gateway, key: &str) -> reqwest::Response {
    post(
        gw,
        "/v1/responses",
        Some(key),
        json!({"model": MODEL, "input": "hi"}),
        &[],
    )
    .await
}

fn served(mock: &MockServer) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.path == "/responses")
        .count()
}

async fn error_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.expect("JSON error body");
    (status, body["error"].clone())
}

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Every upstream usage the mock reported, summed: bodies and streams' terminal events.
fn mock_usage(mock: &MockServer) -> Usage {
    let mut sum = Usage::default();
    for r in mock.requests().iter().filter(|r| r.path == "/responses") {
        let usage = match serde_json::from_slice::<Value>(&r.response_body) {
            Ok(body) => Usage::from_responses(&body["usage"]),
            Err(_) => sse_json(&r.response_body)
                .iter()
                .find(|e| e["type"] == "response.completed")
                .and_then(|e| Usage::from_responses(&e["response"]["usage"])),
        };
        sum.add(&usage.expect("the mock reported usage"));
    }
    sum
}

/// The key's ledger rows once `requests` requests are booked (writes are asynchronous).
async fn booked(store: &Store, key_id: &str, requests: u64) -> Vec<UsageRow> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rows: Vec<UsageRow> = store
            .usage(None)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.key_id == key_id)
            .collect();
        let total: u64 = rows.iter().map(|r| r.requests).sum();
        if total >= requests || Instant::now() > deadline {
            assert_eq!(total, requests, "booked requests: {rows:?}");
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
