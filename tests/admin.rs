//! The `/admin` API's hardening, over HTTP on loopback: failed admin-token attempts throttled
//! per client address (127.0.0.1 and 127.0.0.2 are two clients: Linux routes all of 127/8 to
//! `lo`), and pagination of `/admin/keys` and `/admin/usage` with many keys and rows.

mod common;

use common::*;
use qwen_gateway::store::{KeyRecord, UsageDelta};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

const ADMIN: &str = "admin-token-for-the-admin-tests-9c1d";
const BIN: &str = env!("CARGO_BIN_EXE_qwen-gateway");

/// A gateway with the admin API on, one region that is never called, the store at `url`.
async fn admin_gateway(store_url: &str) -> Gateway {
    let toml = config_toml(&["http://127.0.0.1:9".to_owned()], "")
        .replace("url = \"memory\"", &format!("url = \"{store_url}\""));
    start_gateway_with_admin(&toml, Some(ADMIN)).await
}

/// A client whose connections come from `ip` (a loopback address).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::from(ip)))
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn get_with(
    c: &reqwest::Client,
    gw: &Gateway,
    path: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let mut req = c.get(gw.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.expect("gateway answers")
}

#[tokio::test]
async fn failed_admin_tokens_are_throttled_per_client_address() {
    let gw = admin_gateway("memory").await;
    let first = client_from([127, 0, 0, 1]);
    let second = client_from([127, 0, 0, 2]);
    for n in 1..=10 {
        let res = get_with(&first, &gw, "/admin/keys", Some("wrong-token")).await;
        let body = assert_openai_error(res, 401).await;
        assert_eq!(body["error"]["code"], "invalid_admin_token", "attempt {n}");
    }
    // The 11th wrong token from the same address.
    let res = get_with(&first, &gw, "/admin/keys", Some("wrong-token")).await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
    let body = assert_openai_error(res, 429).await;
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["code"], "admin_auth_throttled");
    assert!(!body.to_string().contains("wrong-token"));
    // The right token, no token, other /admin paths: all 429 from this address for now.
    for (path, token) in [
        ("/admin/keys", Some(ADMIN)),
        ("/admin/usage", Some(ADMIN)),
        ("/admin/keys", None),
    ] {
        let res = get_with(&first, &gw, path, token).await;
        assert!(res.headers().contains_key("retry-after"));
        let body = assert_openai_error(res, 429).await;
        assert_eq!(body["error"]["code"], "admin_auth_throttled", "{path}");
    }
    // Another address is not throttled, and its failures are its own.
    let res = get_with(&second, &gw, "/admin/keys", Some(ADMIN)).await;
    assert_eq!(res.status(), 200);
    let res = get_with(&second, &gw, "/admin/keys", Some("wrong-token")).await;
    assert_eq!(res.status(), 401);
    let res = get_with(&second, &gw, "/admin/keys", Some(ADMIN)).await;
    assert_eq!(res.status(), 200);
    // The throttle is for /admin only.
    let res = get_with(&first, &gw, "/v1/models", None).await;
    assert_eq!(res.status(), 200);
    let metrics = get_with(&first, &gw, "/metrics", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("qwen_gateway_auth_refusals_total{reason=\"admin_throttled\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn failed_attempts_are_logged_with_the_address_never_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gw.toml");
    let toml = config_toml(
        &["http://127.0.0.1:9".to_owned()],
        "[server]\nlisten = \"127.0.0.1:0\"\n",
    );
    std::fs::write(&config, toml).unwrap();
    let mut command = std::process::Command::new(BIN);
    command
        .args(["serve", "--config", config.to_str().unwrap()])
        .env_remove("QWEN_GATEWAY_CONFIG")
        .env_remove("RUST_LOG")
        .env("QWEN_GATEWAY_ADMIN_TOKEN", ADMIN)
        .env("TEST_KEY_R0", UPSTREAM_KEY)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    let (mut child, addr, rx) = spawn_logged(command);
    let c = client_from([127, 0, 0, 1]);
    let guesses: Vec<String> = (0..12)
        .map(|i| format!("guess-{i}-of-the-admin-token"))
        .collect();
    let mut statuses = Vec::new();
    for guess in &guesses {
        let res = c
            .get(format!("http://{addr}/admin/keys"))
            .bearer_auth(guess)
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses[..10], [401; 10]);
    assert_eq!(statuses[10..], [429, 429]);
    // Log lines are written by a background thread: wait for them (bounded) before the stop.
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines
        .iter()
        .filter(|l: &&String| l.contains("admin-token attempts") || l.contains("missing or wrong"))
        .count()
        < 11
    {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => lines.push(line),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines.extend(rx.try_iter());
    let failed: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("admin token missing or wrong"))
        .collect();
    assert_eq!(failed.len(), 10, "{lines:#?}");
    assert!(
        failed
            .iter()
            .all(|l| l.contains("WARN") && l.contains("client=127.0.0.1"))
    );
    let throttled: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("too many failed admin-token attempts"))
        .collect();
    assert_eq!(throttled.len(), 1, "logged once per window: {lines:#?}");
    let all = lines.join("\n");
    for guess in &guesses {
        assert!(
            !all.contains(guess.as_str()),
            "a presented token reached the logs"
        );
    }
    assert!(!all.contains(ADMIN));
}

// ---- pagination ----

/// Keys for the pagination tests: `n` of them, 37 per second of `created_at`, their names
/// and ids scrambled (a bijection of the index), so listing order is neither insertion, id
/// nor name order.
fn many_keys(n: usize) -> Vec<KeyRecord> {
    (0..n)
        .map(|i| KeyRecord {
            id: format!("key_t{:06}", (i * 7919) % n),
            name: format!("user-{:06}", (i * 104_729) % n),
            hash: format!("{i:064x}"),
            prefix: "qgw-test".into(),
            models: vec![],
            regions: vec![],
            rpm: None,
            tpm: None,
            daily_tokens: None,
            created_at: 1_700_000_000 + (i / 37) as i64,
            expires_at: None,
            revoked_at: None,
        })
        .collect()
}

/// How many keys the big pagination test creates: 100,000 unless
/// `QWEN_GATEWAY_TEST_PAGE_KEYS` says otherwise.
fn key_count() -> usize {
    std::env::var("QWEN_GATEWAY_TEST_PAGE_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

async fn admin_get(gw: &Gateway, path: &str) -> (u16, Value) {
    let res = get_with(&client(), gw, path, Some(ADMIN)).await;
    let status = res.status().as_u16();
    (status, res.json().await.expect("JSON body"))
}

/// Every page of `path` (which has its own query, e.g. `?limit=1000`), following `last_id`
/// into `after`; the items and the number of pages.
async fn all_pages(gw: &Gateway, path: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    for pages in 1.. {
        let url = match &after {
            Some(cursor) => format!("{path}&after={cursor}"),
            None => path.to_owned(),
        };
        let (status, page) = admin_get(gw, &url).await;
        assert_eq!(status, 200, "{url}: {page}");
        assert_eq!(page["object"], "list");
        let data = page["data"].as_array().unwrap().clone();
        let has_more = page["has_more"].as_bool().unwrap();
        if data.is_empty() {
            assert!(page["first_id"].is_null() && page["last_id"].is_null());
        }
        items.extend(data);
        if !has_more {
            return (items, pages);
        }
        after = Some(page["last_id"].as_str().unwrap().to_owned());
    }
    unreachable!()
}

async fn assert_bad_param(gw: &Gateway, path: &str, param: &str) {
    let res = get_with(&client(), gw, path, Some(ADMIN)).await;
    let body = assert_openai_error(res, 400).await;
    assert_eq!(body["error"]["type"], "invalid_request_error", "{path}");
    assert_eq!(body["error"]["param"], param, "{path}: {body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(param),
        "{path}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_paged_in_order_and_revoked_by_name_among_many() {
    let n = key_count();
    let dir = tempfile::tempdir().unwrap();
    let gw = admin_gateway(&format!("sqlite://{}", dir.path().join("gw.db").display())).await;
    let keys = many_keys(n);
    // In batches (one SQLite transaction each): key by key takes minutes in a debug build.
    let started = Instant::now();
    for batch in keys.chunks(10_000) {
        gw.store.create_keys(batch).await.unwrap();
    }
    let inserted = started.elapsed();

    let mut expected: Vec<&KeyRecord> = keys.iter().collect();
    expected.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
    let expected_ids: Vec<&str> = expected.iter().map(|k| k.id.as_str()).collect();

    // The default page: 100 keys, more to come.
    let (status, page) = admin_get(&gw, "/admin/keys").await;
    assert_eq!(status, 200);
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 100.min(n));
    assert_eq!(page["has_more"], n > 100);
    assert_eq!(page["first_id"], expected_ids[0]);
    assert_eq!(page["last_id"], expected_ids[data.len() - 1]);
    assert!(!page.to_string().contains("hash"));

    // Every key exactly once, in order, 1000 at a time.
    let started = Instant::now();
    let (all, pages) = all_pages(&gw, "/admin/keys?limit=1000").await;
    let paged = started.elapsed();
    let seen: Vec<&str> = all.iter().map(|k| k["id"].as_str().unwrap()).collect();
    assert_eq!(seen.len(), n);
    assert!(seen == expected_ids, "pages are not in listing order");
    let distinct: std::collections::HashSet<&str> = seen.iter().copied().collect();
    assert_eq!(distinct.len(), n, "a key was listed twice");
    assert_eq!(pages, n.div_ceil(1000));

    // The store's share of that: the same pages read directly, each timed (with a keyset
    // seek the last pages cost what the first do).
    let started = Instant::now();
    let mut cursor: Option<KeyRecord> = None;
    let mut page_times = Vec::new();
    loop {
        let asked = Instant::now();
        let page = gw
            .store
            .list_keys_page(cursor.as_ref(), 1000)
            .await
            .unwrap();
        page_times.push(asked.elapsed());
        cursor = page.items.last().cloned();
        if !page.has_more {
            break;
        }
    }
    let from_store = started.elapsed();
    assert_eq!(page_times.len(), pages);
    let tenth = (pages / 10).max(1);
    let first_pages = page_times[..tenth].iter().sum::<Duration>() / tenth as u32;
    let last_pages = page_times[pages - tenth..].iter().sum::<Duration>() / tenth as u32;

    // Revoking by name (and by id) among them: indexed lookups.
    let middle = expected[n / 2];
    let started = Instant::now();
    let res = client()
        .delete(gw.url(&format!("/admin/keys/{}", middle.name)))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let revoked_in = started.elapsed();
    assert_eq!(res.status(), 200);
    let revoked: Value = res.json().await.unwrap();
    assert_eq!(
        (revoked["id"].as_str(), revoked["status"].as_str()),
        (Some(middle.id.as_str()), Some("revoked"))
    );
    let stored = gw.store.key_by_id(&middle.id).await.unwrap().unwrap();
    assert!(stored.revoked_at.is_some());
    let by_id = expected[n - 1];
    let started = Instant::now();
    let res = client()
        .delete(gw.url(&format!("/admin/keys/{}", by_id.id)))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let revoked_by_id_in = started.elapsed();
    assert_eq!(res.status(), 200);
    let again = expected[n / 3];
    let started = Instant::now();
    let res = client()
        .delete(gw.url(&format!("/admin/keys/{}", again.name)))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let revoked_again_in = started.elapsed();
    assert_eq!(res.status(), 200);
    let res = client()
        .delete(gw.url("/admin/keys/user-nobody"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // Revoked keys stay listed, in place.
    let cursor = expected[n / 2 - 1].id.as_str();
    let (_, page) = admin_get(&gw, &format!("/admin/keys?limit=1&after={cursor}")).await;
    assert_eq!(page["data"][0]["status"], "revoked");

    // Bad parameters name themselves.
    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("limit=-5", "limit"),
        ("limit=", "limit"),
        ("limit=5&limit=6", "limit"),
        ("after=key_nonexistent", "after"),
        ("after=user-000001", "after"),
    ] {
        assert_bad_param(&gw, &format!("/admin/keys?{query}"), param).await;
    }
    eprintln!(
        "{n} keys: inserted through the store in {inserted:.1?}; {pages} pages of 1000 over HTTP \
         in {paged:.1?} (the store's reads alone: {from_store:.1?}; a page of the first tenth {first_pages:.1?} on average, of the last tenth {last_pages:.1?}); revoked by name in \
         {revoked_in:.1?} (the first write after the import), by id in {revoked_by_id_in:.1?}, \
         by name again in {revoked_again_in:.1?}"
    );
}

#[tokio::test]
async fn usage_is_paged_with_names_and_opaque_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let gw = admin_gateway(&format!("sqlite://{}", dir.path().join("gw.db").display())).await;
    let keys = many_keys(40);
    gw.store.create_keys(&keys).await.unwrap();
    // 3 days × (40 keys + no key + a key that no longer exists) × 2 models × 2 regions.
    let mut key_ids: Vec<String> = keys.iter().map(|k| k.id.clone()).collect();
    key_ids.extend(["".to_owned(), "key_gone".to_owned()]);
    for day in ["2026-03-02", "2026-03-01", "2026-03-03"] {
        for key_id in &key_ids {
            for model in ["qwen3-max", "qwen-plus, \"fast\" & cheap"] {
                for region in ["singapore", "beijing"] {
                    let delta = UsageDelta {
                        day: day.into(),
                        key_id: key_id.clone(),
                        model: model.into(),
                        region: region.into(),
                        requests: 1,
                        input_tokens: 10,
                        ..Default::default()
                    };
                    gw.store.record_usage(&delta).await.unwrap();
                }
            }
        }
    }
    let rows = gw.store.usage(None).await.unwrap();
    assert_eq!(rows.len(), 3 * 42 * 4);
    let names: std::collections::HashMap<&str, &str> = keys
        .iter()
        .map(|k| (k.id.as_str(), k.name.as_str()))
        .collect();

    let (status, page) = admin_get(&gw, "/admin/usage").await;
    assert_eq!(status, 200);
    assert_eq!(page["data"].as_array().unwrap().len(), 100);
    assert_eq!(page["has_more"], true);
    let cursor = page["last_id"].as_str().unwrap();
    assert!(cursor.bytes().all(|b| b.is_ascii_hexdigit()), "{cursor}");

    let since = gw.store.usage(Some("2026-03-02")).await.unwrap();
    assert_eq!(since.len(), 2 * 42 * 4);
    for (query, limit, expected) in [
        ("?limit=50", 50, rows.clone()),
        ("?limit=7&since=2026-03-02", 7, since),
    ] {
        let (lines, pages) = all_pages(&gw, &format!("/admin/usage{query}")).await;
        assert_eq!(pages, expected.len().div_ceil(limit), "{query}");
        assert_eq!(lines.len(), expected.len(), "{query}");
        for (line, row) in lines.iter().zip(&expected) {
            let got = (
                line["day"].as_str().unwrap(),
                line["key_id"].as_str().unwrap(),
                line["model"].as_str().unwrap(),
                line["region"].as_str().unwrap(),
            );
            assert_eq!(
                got,
                (
                    row.day.as_str(),
                    row.key_id.as_str(),
                    row.model.as_str(),
                    row.region.as_str()
                ),
                "{query}"
            );
            assert_eq!(
                line["key_name"].as_str(),
                names.get(row.key_id.as_str()).copied()
            );
            assert_eq!(line["requests"], 1);
        }
    }
    for (query, param) in [
        ("after=not-a-cursor", "after"),
        ("after=6869", "after"),
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("since=someday", "since"),
    ] {
        assert_bad_param(&gw, &format!("/admin/usage?{query}"), param).await;
    }
    // An empty page past the end.
    let last = rows.last().unwrap();
    let cursor = qwen_gateway::auth::admin::usage_cursor_text(&last.cursor());
    let (status, page) = admin_get(&gw, &format!("/admin/usage?after={cursor}")).await;
    assert_eq!(status, 200);
    assert_eq!(page["data"], serde_json::json!([]));
    assert_eq!(page["has_more"], false);
    assert!(page["first_id"].is_null() && page["last_id"].is_null());
}
