//! Team keys end to end: a gateway with `auth.mode = "keys"` over mock regions, state in a
//! SQLite file in a temporary directory — refusals, header forms, model and region limits,
//! rate limits and their headers, the usage ledger, the admin API, restarts, and the real
//! binary's `keys` commands and logs.

mod common;

use common::*;
use mock_model_studio::MockServer;
use qwen_gateway::auth::{admin, keys};
use qwen_gateway::store::{KeyRecord, Store, UsageRow};
use qwen_gateway::usage::Usage;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MODEL: &str = "qwen3-max-2026-01-23";
const ADMIN: &str = "admin-token-for-the-keys-tests-4f2a";
const BIN: &str = env!("CARGO_BIN_EXE_qwen-gateway");

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

/// Fixed one-minute windows: start a minute-bound test well inside one.
async fn away_from_minute_boundary() {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        % 60.0;
    if secs > 50.0 {
        tokio::time::sleep(Duration::from_secs_f64(60.5 - secs)).await;
    }
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

#[tokio::test]
async fn missing_unknown_revoked_and_expired_keys_get_401_and_open_paths_stay_open() {
    let t = Team::start().await;
    let good = new_key(t.store(), "good", |_| {}).await;
    let old = keys::generate().unwrap();
    let now = qwen_gateway::calendar::now_secs();
    t.store()
        .create_key(&KeyRecord {
            id: "key_expired".into(),
            name: "old".into(),
            hash: old.hash(),
            prefix: old.display_prefix(),
            models: vec![],
            regions: vec![],
            rpm: None,
            tpm: None,
            daily_tokens: None,
            created_at: now - 100,
            expires_at: Some(now - 10),
            revoked_at: None,
        })
        .await
        .unwrap();
    // The good key with its last character changed (to one it is not: a key ending in `x`
    // once made this "wrong" key the good one, 1 run in 62).
    let last = if good.ends_with('x') { 'y' } else { 'x' };
    let wrong = format!("{}{last}", &good[..good.len() - 1]);
    for (key, says) in [
        (None, "didn't provide an API key"),
        (Some(wrong.as_str()), "Incorrect API key"),
        (Some(old.expose()), "expired"),
    ] {
        for path in ["/v1/responses", "/v1/chat/completions"] {
            let body = json!({"model": MODEL, "input": "hi", "messages": [{"role": "user", "content": "hi"}]});
            let (status, error) = error_of(post(&t.gw, path, key, body, &[]).await).await;
            assert_eq!(status, 401, "{path} {key:?}");
            assert_eq!(error["code"], "invalid_api_key");
            assert_eq!(error["type"], "invalid_request_error");
            assert!(error["message"].as_str().unwrap().contains(says), "{error}");
        }
        let mut req = client().get(t.gw.url("/v1/models"));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        assert_eq!(req.send().await.unwrap().status(), 401);
    }
    assert_eq!(served(&t.mock), 0, "refused requests never go upstream");
    for path in ["/healthz", "/readyz", "/metrics"] {
        let res = client().get(t.gw.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path} needs no key");
    }

    // Revoked where the CLI or another replica would: refused here within a second.
    assert_eq!(ask(&t.gw, &good).await.status(), 200);
    let revoked = Instant::now();
    t.store()
        .revoke_key("good", qwen_gateway::calendar::now_secs())
        .await
        .unwrap();
    let committed = revoked.elapsed();
    let mut last_accepted = Duration::ZERO;
    let refused = loop {
        let sent = Instant::now();
        let res = ask(&t.gw, &good).await;
        if res.status() == 401 {
            let (_, error) = error_of(res).await;
            assert!(error["message"].as_str().unwrap().contains("revoked"));
            break sent.duration_since(revoked);
        }
        last_accepted = sent.duration_since(revoked);
        assert!(revoked.elapsed() < Duration::from_millis(1500));
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // The cache keeps a lookup at most `auth.key_cache_ttl` = 1s: nothing is accepted later
    // than a second after the revocation was written.
    eprintln!("revoked key last accepted after {last_accepted:?}, refused from {refused:?}");
    assert!(
        last_accepted <= committed + Duration::from_secs(1),
        "{last_accepted:?}"
    );
    assert!(
        refused <= committed + Duration::from_millis(1100),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_key_is_accepted_in_each_header_form_and_never_sent_upstream() {
    let t = Team::start().await;
    let key = new_key(t.store(), "forms", |_| {}).await;
    for (name, value) in [
        ("authorization", format!("Bearer {key}")),
        ("authorization", format!("bearer {key}")),
        ("api-key", key.clone()),
        ("x-api-key", key.clone()),
    ] {
        let res = client()
            .post(t.gw.url("/v1/responses"))
            .header(name, value)
            .json(&json!({"model": MODEL, "input": "hi"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{name}");
    }
    let chat = client()
        .post(t.gw.url("/v1/chat/completions"))
        .header("x-api-key", &key)
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 200);
    for r in t.mock.requests() {
        for (name, value) in &r.headers {
            assert!(
                !value.contains(&key),
                "the gateway key went upstream in {name}"
            );
        }
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {UPSTREAM_KEY}").as_str())
        );
    }
}

#[tokio::test]
async fn models_outside_a_keys_patterns_are_refused_with_403_naming_the_model() {
    let t = Team::start().await;
    let key = new_key(t.store(), "qwen3-only", |k| {
        k.models = vec!["qwen3-*".into()]
    })
    .await;
    // Directly, and through the alias `gpt-4o` → qwen3-max (the resolved name matches).
    for model in [MODEL, "gpt-4o"] {
        let body = json!({"model": model, "input": "hi"});
        assert_eq!(
            post(&t.gw, "/v1/responses", Some(&key), body, &[])
                .await
                .status(),
            200
        );
    }
    let before = served(&t.mock);
    for path in ["/v1/responses", "/v1/chat/completions"] {
        let body = json!({"model": "qwen2.5-72b-instruct", "input": "hi", "messages": [{"role": "user", "content": "hi"}], "stream": true});
        let (status, error) = error_of(post(&t.gw, path, Some(&key), body, &[]).await).await;
        assert_eq!(status, 403, "{path}");
        assert_eq!(error["code"], "model_not_allowed");
        assert_eq!(error["param"], "model");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("'qwen2.5-72b-instruct'") && message.contains("qwen3-*"),
            "{message}"
        );
    }
    assert_eq!(served(&t.mock), before, "refused before going upstream");
    // A key allowed only the alias may use it.
    let alias_only = new_key(t.store(), "alias-only", |k| {
        k.models = vec!["gpt-4o".into()]
    })
    .await;
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let res = post(&t.gw, "/v1/chat/completions", Some(&alias_only), body, &[]).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_region_limited_key_is_served_only_by_its_regions_even_when_they_are_down() {
    let r0 = start_mock().await;
    let r1 = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = team_toml(
        &[r0.base_url(), r1.base_url()],
        &dir.path().join("gw.db"),
        "",
    );
    let gw = start_gateway(&toml).await;
    let anywhere = new_key(&gw.store, "anywhere", |_| {}).await;
    let only_r1 = new_key(&gw.store, "only-r1", |k| k.regions = vec!["r1".into()]).await;

    assert_eq!(ask(&gw, &anywhere).await.status(), 200);
    assert_eq!((served(&r0), served(&r1)), (1, 0), "r0 is preferred");
    r0.clear();
    let chat = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(ask(&gw, &only_r1).await.status(), 200);
    let streamed = post(
        &gw,
        "/v1/responses",
        Some(&only_r1),
        json!({"model": MODEL, "input": "hi", "stream": true}),
        &[],
    )
    .await;
    assert_eq!(streamed.status(), 200);
    let _ = streamed.bytes().await.unwrap();
    let res = post(
        &gw,
        "/v1/chat/completions",
        Some(&only_r1),
        chat.clone(),
        &[],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!((served(&r0), served(&r1)), (0, 3));

    // r1 sick: its own 503 comes back; r0 is never tried.
    r1.set_default_header("x-mock-status", "503");
    let res = ask(&gw, &only_r1).await;
    assert_eq!(res.status(), 503);
    // (Chat Completions reports an upstream 5xx as the gateway's 502.)
    let res = post(&gw, "/v1/chat/completions", Some(&only_r1), chat, &[]).await;
    assert_eq!(res.status(), 502);
    // r1's breaker is open now: a clear gateway 503 naming the region, still never r0.
    let (status, error) = error_of(ask(&gw, &only_r1).await).await;
    assert_eq!(status, 503);
    assert_eq!(error["code"], "no_upstream_available");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("r1") && !message.contains("r0"),
        "{message}"
    );
    assert_eq!(served(&r0), 0, "a key limited to r1 never reaches r0");
    // Meanwhile an unrestricted key is served by r0.
    assert_eq!(ask(&gw, &anywhere).await.status(), 200);
    assert_eq!(served(&r0), 1);

    // A key whose only region this gateway does not serve: 403, and nothing goes upstream.
    let elsewhere = new_key(&gw.store, "beijing-only", |k| {
        k.regions = vec!["beijing".into()]
    })
    .await;
    let (before0, before1) = (served(&r0), served(&r1));
    for path in ["/v1/responses", "/v1/chat/completions"] {
        let body = json!({"model": MODEL, "input": "hi",
                          "messages": [{"role": "user", "content": "hi"}]});
        let (status, error) = error_of(post(&gw, path, Some(&elsewhere), body, &[]).await).await;
        assert_eq!(status, 403, "{path}");
        assert_eq!(error["code"], "region_not_allowed", "{path}: {error}");
        assert!(
            error["message"].as_str().unwrap().contains("beijing"),
            "{error}"
        );
    }
    assert_eq!((served(&r0), served(&r1)), (before0, before1));
}

#[tokio::test]
async fn the_rpm_limit_refuses_with_retry_after_and_openai_headers() {
    away_from_minute_boundary().await;
    let t = Team::start().await;
    let key = new_key(t.store(), "rpm3", |k| k.rpm = Some(3)).await;
    let unlimited = new_key(t.store(), "free", |_| {}).await;
    for remaining in ["2", "1", "0"] {
        let res = ask(&t.gw, &key).await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            header(&res, "x-ratelimit-limit-requests").as_deref(),
            Some("3")
        );
        assert_eq!(
            header(&res, "x-ratelimit-remaining-requests").as_deref(),
            Some(remaining)
        );
        let reset = header(&res, "x-ratelimit-reset-requests").unwrap();
        assert!(reset.ends_with('s'), "{reset}");
        assert_eq!(header(&res, "x-ratelimit-limit-tokens"), None);
    }
    let res = ask(&t.gw, &key).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = header(&res, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        header(&res, "x-ratelimit-remaining-requests").as_deref(),
        Some("0")
    );
    assert_eq!(
        header(&res, "x-ratelimit-limit-requests").as_deref(),
        Some("3")
    );
    let (_, error) = error_of(res).await;
    assert_eq!(error["code"], "rate_limit_exceeded");
    assert_eq!(error["type"], "requests");
    assert!(
        error["message"].as_str().unwrap().contains("RPM"),
        "{error}"
    );
    // Chat is limited by the same counter; other keys are not.
    let chat = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]});
    let res = post(&t.gw, "/v1/chat/completions", Some(&key), chat, &[]).await;
    assert_eq!(res.status(), 429);
    let res = ask(&t.gw, &unlimited).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "x-ratelimit-limit-requests"), None);
    assert_eq!(served(&t.mock), 4);
}

#[tokio::test]
async fn token_limits_count_usage_and_refuse_once_the_window_is_spent() {
    away_from_minute_boundary().await;
    let t = Team::start().await;
    let tpm = new_key(t.store(), "tpm", |k| k.tpm = Some(5)).await;
    let daily = new_key(t.store(), "daily", |k| {
        k.daily_tokens = Some(5);
        k.tpm = Some(1_000_000);
    })
    .await;
    for (key, name, kind) in [(&tpm, "tpm", "TPM"), (&daily, "daily", "TPD")] {
        let res = ask(&t.gw, key).await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            header(&res, "x-ratelimit-limit-tokens").as_deref(),
            Some("5")
        );
        assert_eq!(
            header(&res, "x-ratelimit-remaining-tokens").as_deref(),
            Some("5")
        );
        let used: Value = res.json().await.unwrap();
        let total = used["usage"]["total_tokens"].as_u64().unwrap();
        assert!(total > 5, "one answer spends the window: {total}");
        // The tokens are counted when the response ends, in the background.
        let id = key_id(t.store(), name).await;
        booked(t.store(), &id, 1).await;
        let deadline = Instant::now() + Duration::from_secs(3);
        let res = loop {
            let res = ask(&t.gw, key).await;
            if res.status() != 200 || Instant::now() > deadline {
                break res;
            }
        };
        assert_eq!(res.status(), 429, "{name}");
        assert!(header(&res, "retry-after").is_some());
        assert_eq!(
            header(&res, "x-ratelimit-remaining-tokens").as_deref(),
            Some("0")
        );
        let (_, error) = error_of(res).await;
        assert_eq!(error["type"], "tokens");
        assert!(error["message"].as_str().unwrap().contains(kind), "{error}");
    }
}

#[tokio::test]
async fn usage_is_exact_after_plain_and_streamed_requests_on_both_endpoints() {
    const N: usize = 3;
    let t = Team::start().await;
    let key = new_key(t.store(), "ledger", |k| k.rpm = Some(1000)).await;
    let id = key_id(t.store(), "ledger").await;
    let mut previous: Option<String> = None;
    for i in 0..N {
        // Plain, chained (cached tokens), with thinking (reasoning) and a web search (x_tools).
        let mut body = json!({"model": MODEL, "input": format!("plain {i}"), "enable_thinking": true,
            "tools": [{"type": "web_search"}]});
        if let Some(prev) = &previous {
            body["previous_response_id"] = json!(prev);
        }
        let res = post(&t.gw, "/v1/responses", Some(&key), body, &[]).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        previous = body["id"].as_str().map(str::to_owned);
        let res = post(
            &t.gw,
            "/v1/responses",
            Some(&key),
            json!({"model": "gpt-4o", "input": "stream", "stream": true, "enable_thinking": true}),
            &[],
        )
        .await;
        assert_eq!(res.status(), 200);
        let _ = res.bytes().await.unwrap();
        for stream in [false, true] {
            let body = json!({"model": MODEL, "stream": stream,
                "messages": [{"role": "user", "content": "chat"}]});
            let res = post(&t.gw, "/v1/chat/completions", Some(&key), body, &[]).await;
            assert_eq!(res.status(), 200);
            let _ = res.bytes().await.unwrap();
        }
    }
    let rows = booked(t.store(), &id, 4 * N as u64).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(
        row.model, MODEL,
        "aliases are booked under the upstream model"
    );
    assert_eq!(row.region, "r0");
    assert_eq!(row.day, qwen_gateway::calendar::today());
    assert_eq!(row.errors, 0);
    let expected = mock_usage(&t.mock);
    assert!(expected.cached_tokens > 0 && expected.reasoning_tokens > 0);
    assert_eq!(expected.tool_calls, N as u64);
    let got = Usage {
        input_tokens: row.input_tokens,
        output_tokens: row.output_tokens,
        cached_tokens: row.cached_tokens,
        reasoning_tokens: row.reasoning_tokens,
        tool_calls: row.tool_calls,
    };
    assert_eq!(got, expected);
    eprintln!("ledger after {} requests: {row:?}", 4 * N);
}

/// A client leaving does not stop the upstream generating (and billing) the answer: the
/// gateway reads on to the terminal event, without relaying, and books the real usage.
#[tokio::test]
async fn an_abandoned_stream_is_read_to_its_end_and_its_usage_booked() {
    let t = Team::start().await;
    let key = new_key(t.store(), "quitter", |k| k.tpm = Some(1_000_000)).await;
    let id = key_id(t.store(), "quitter").await;
    let slow = [("x-mock-tokens", "60"), ("x-mock-delay-ms", "20")];
    for (path, body) in [
        (
            "/v1/responses",
            json!({"model": MODEL, "input": "long", "stream": true}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": MODEL, "stream": true, "messages": [{"role": "user", "content": "long"}]}),
        ),
    ] {
        let res = post(&t.gw, path, Some(&key), body, &slow).await;
        assert_eq!(res.status(), 200);
        read_events_then_leave(res, 3).await;
    }
    assert!(
        eventually(Duration::from_secs(10), || t.mock.stats().completed_streams
            == 2)
        .await,
        "the upstream streams were not read to their end: {:?}",
        t.mock.stats()
    );
    assert_eq!(t.mock.stats().cancelled_streams, 0);
    let rows = booked(t.store(), &id, 2).await;
    assert_eq!(rows[0].model, MODEL);
    assert_eq!(rows[0].region, "r0");
    assert_eq!(rows[0].errors, 0, "the client leaving is not an error");
    // The mock's count for 60 tokens each (its usage, not a guess).
    assert!(rows[0].output_tokens >= 120, "{rows:?}");
    assert_eq!(rows[0].estimated, 0, "{rows:?}");
}

/// With `upstream.abandoned_stream_drain = "0s"` the upstream is closed at once and the
/// usage is estimated from what was relayed.
#[tokio::test]
async fn without_draining_an_abandoned_stream_is_closed_at_once_and_estimated() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = team_toml(&[mock.base_url()], &dir.path().join("gw.db"), "").replace(
        "request_timeout = \"10s\"\n",
        "request_timeout = \"10s\"\nabandoned_stream_drain = \"0s\"\n",
    );
    let gw = start_gateway_with_admin(&toml, Some(ADMIN)).await;
    let key = new_key(&gw.store, "quitter", |k| k.tpm = Some(1_000_000)).await;
    let id = key_id(&gw.store, "quitter").await;
    let slow = [("x-mock-tokens", "500"), ("x-mock-delay-ms", "20")];
    let res = post(
        &gw,
        "/v1/responses",
        Some(&key),
        json!({"model": MODEL, "input": "long", "stream": true}),
        &slow,
    )
    .await;
    read_events_then_leave(res, 8).await;
    assert!(
        eventually(Duration::from_secs(3), || mock.stats().cancelled_streams
            == 1)
        .await,
        "{:?}",
        mock.stats()
    );
    let rows = booked(&gw.store, &id, 1).await;
    assert!(rows[0].output_tokens > 0, "an estimate is booked: {rows:?}");
    assert!(rows[0].input_tokens > 0, "{rows:?}");
    assert_eq!(rows[0].estimated, 1, "and marked as one: {rows:?}");
}

/// A client that hangs up while the gateway still waits for the upstream's head (here a
/// slow non-streaming answer) is still logged and booked once: nothing is lost.
#[tokio::test]
async fn a_client_gone_before_the_head_is_still_booked() {
    let t = Team::start().await;
    let key = new_key(t.store(), "impatient", |_| {}).await;
    let id = key_id(t.store(), "impatient").await;
    for (path, body) in [
        ("/v1/responses", json!({"model": MODEL, "input": "slow"})),
        (
            "/v1/chat/completions",
            json!({"model": MODEL, "messages": [{"role": "user", "content": "slow"}]}),
        ),
    ] {
        let gave_up = client()
            .post(t.gw.url(path))
            .bearer_auth(&key)
            .header("x-mock-header-delay-ms", "1500")
            .timeout(Duration::from_millis(200))
            .json(&body)
            .send()
            .await;
        assert!(gave_up.is_err(), "the client gives up first");
    }
    let rows = booked(t.store(), &id, 2).await;
    assert_eq!(rows[0].model, MODEL);
    assert_eq!(rows[0].errors, 0, "the client leaving is not an error");
}

#[tokio::test]
async fn without_auth_usage_is_booked_under_an_empty_key_id() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = team_toml(&[mock.base_url()], &dir.path().join("gw.db"), "")
        .replace("mode = \"keys\"", "mode = \"none\"");
    let gw = start_gateway(&toml).await;
    let res = post(
        &gw,
        "/v1/responses",
        None,
        json!({"model": MODEL, "input": "hi"}),
        &[],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers().get("x-ratelimit-limit-requests"), None);
    let res = client().get(gw.url("/v1/models")).send().await.unwrap();
    assert_eq!(res.status(), 200, "no key needed");
    let rows = booked(&gw.store, "", 1).await;
    assert_eq!(rows[0].input_tokens, mock_usage(&mock).input_tokens);
}

#[tokio::test]
async fn the_admin_api_needs_its_token_and_manages_keys_and_usage() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = team_toml(&[mock.base_url()], &dir.path().join("gw.db"), "");

    // No token configured: /admin does not exist, whatever is sent.
    let off = start_gateway_with_admin(&toml, None).await;
    for (method, path) in [
        ("GET", "/admin/keys"),
        ("POST", "/admin/keys"),
        ("DELETE", "/admin/keys/x"),
        ("GET", "/admin/usage"),
        ("PUT", "/admin/keys"),
    ] {
        let res = client()
            .request(method.parse().unwrap(), off.url(path))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{method} {path}");
    }
    off.stop().await;

    let gw = start_gateway_with_admin(&toml, Some(ADMIN)).await;
    for token in [None, Some("wrong"), Some(&ADMIN[1..])] {
        let mut req = client().get(gw.url("/admin/keys"));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let (status, error) = error_of(req.send().await.unwrap()).await;
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(error["code"], "invalid_admin_token");
    }
    // A team key is not an admin token.
    let team_key = new_key(&gw.store, "member", |_| {}).await;
    let res = client()
        .get(gw.url("/admin/keys"))
        .bearer_auth(&team_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let admin = |method: &str, path: &str| {
        client()
            .request(method.parse().unwrap(), gw.url(path))
            .bearer_auth(ADMIN)
    };
    let res = admin("POST", "/admin/keys")
        .json(
            &json!({"name": "alice", "models": ["qwen3-*"], "regions": ["r0"], "rpm": 60,
            "tpm": 100000, "daily_tokens": 1000000, "expires": "30d"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(header(&res, "cache-control").as_deref(), Some("no-store"));
    let created: Value = res.json().await.unwrap();
    let raw = created["key"].as_str().unwrap().to_owned();
    assert!(raw.starts_with("qgw-") && raw.len() >= 36);
    assert_eq!(created["name"], "alice");
    assert_eq!(created["rpm"], 60);
    assert_eq!(created["status"], "active");
    assert!(created["expires_at"].is_string());
    assert!(created.get("hash").is_none());
    // Refusals with reasons.
    for (body, status) in [
        (json!({"name": "alice"}), 409),
        (json!({"name": "bob", "regions": ["mars"]}), 400),
        (json!({"name": "bob", "rpm": 0}), 400),
        (json!({"name": "bob", "rmp": 5}), 400),
        (json!({"name": "bad name"}), 400),
    ] {
        let res = admin("POST", "/admin/keys")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{body}");
    }
    // The new key works, and its use shows in /admin/usage.
    assert_eq!(ask(&gw, &raw).await.status(), 200);
    let id = created["id"].as_str().unwrap();
    booked(&gw.store, id, 1).await;
    let usage: Value = admin("GET", "/admin/usage?since=2000-01-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = &usage["data"][0];
    assert_eq!(row["key_name"], "alice");
    assert_eq!(row["requests"], 1);
    assert!(row["input_tokens"].as_u64().unwrap() > 0);
    let future: Value = admin("GET", "/admin/usage?since=2999-01-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(future["data"], json!([]));
    let res = admin("GET", "/admin/usage?since=yesterdayish")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    let list: Value = admin("GET", "/admin/keys")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = list.to_string();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert!(!text.contains(&raw) && !text.contains(&keys::hash_key(&raw)));
    assert!(!text.contains("hash"));

    let res = admin("DELETE", "/admin/keys/alice").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let revoked: Value = res.json().await.unwrap();
    assert_eq!(revoked["status"], "revoked");
    // Revoked through this gateway: refused here at once.
    assert_eq!(ask(&gw, &raw).await.status(), 401);
    let res = admin("DELETE", "/admin/keys/nobody").send().await.unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn keys_and_usage_survive_a_restart() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = team_toml(&[mock.base_url()], &dir.path().join("gw.db"), "");
    let gw = start_gateway_with_admin(&toml, Some(ADMIN)).await;
    let created: Value = client()
        .post(gw.url("/admin/keys"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "durable"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let raw = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        assert_eq!(ask(&gw, &raw).await.status(), 200);
    }
    // Stopping waits for the ledger's writes.
    gw.stop().await;
    let gw = start_gateway(&toml).await;
    let rows = booked(&gw.store, &id, 2).await;
    assert!(rows[0].output_tokens > 0);
    assert_eq!(ask(&gw, &raw).await.status(), 200);
    booked(&gw.store, &id, 3).await;
}

// ---- the real binary: `keys` commands, and what reaches its logs and its database ----

fn gateway_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("QWEN_GATEWAY_CONFIG")
        .env_remove("QWEN_GATEWAY_ADMIN_TOKEN")
        .env_remove("RUST_LOG")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

/// Runs a `keys ...` command with `--config`; (status, stdout, stderr).
fn keys_cmd(config: &Path, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["keys", args[0], "--config", config.to_str().unwrap()];
    all.extend_from_slice(&args[1..]);
    let out = gateway_command(&all).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_config(dir: &Path, mock: &MockServer, extra: &str) -> (PathBuf, PathBuf) {
    let db = dir.join("team.db");
    let config = dir.join("gw.toml");
    let toml = team_toml(
        &[mock.base_url()],
        &db,
        &format!("{extra}[server]\nlisten = \"127.0.0.1:0\"\n"),
    );
    std::fs::write(&config, toml).unwrap();
    (config, db)
}

/// `serve` as a child process; its address, and its stderr lines as they come.
fn spawn_serve(
    config: &Path,
) -> (
    std::process::Child,
    String,
    std::sync::mpsc::Receiver<String>,
) {
    let mut command = gateway_command(&["serve", "--config", config.to_str().unwrap()]);
    command
        .env("TEST_KEY_R0", UPSTREAM_KEY)
        .env("RUST_LOG", "debug");
    spawn_logged(command)
}

fn stop(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("gateway did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every file of the SQLite database (main file, WAL, shared memory), concatenated.
fn database_bytes(db: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    let name = db.file_name().unwrap().to_string_lossy().into_owned();
    for entry in std::fs::read_dir(db.parent().unwrap()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with(&name) {
            all.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raw_key_never_reaches_the_database_or_the_logs() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, db) = write_config(dir.path(), &mock, "");
    let (ok, stdout, stderr) = keys_cmd(&config, &["create", "--name", "ci", "--rpm", "100"]);
    assert!(ok, "{stderr}");
    let raw = stdout.trim().to_owned();
    assert!(raw.starts_with("qgw-"), "{stdout}");
    assert!(!stderr.contains(&raw), "the key is printed on stdout only");
    assert!(stderr.contains("shown only this once"), "{stderr}");
    let hash = keys::hash_key(&raw);

    let (child, addr, rx) = spawn_serve(&config);
    let c = client();
    let url = format!("http://{addr}/v1/responses");
    let plain = c
        .post(&url)
        .bearer_auth(&raw)
        .json(&json!({"model": MODEL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    let streamed = c
        .post(format!("http://{addr}/v1/chat/completions"))
        .header("x-api-key", &raw)
        .json(&json!({"model": MODEL, "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let _ = streamed.bytes().await.unwrap();
    let last = if raw.ends_with('Z') { 'Y' } else { 'Z' };
    let wrong = format!("{}{last}", &raw[..raw.len() - 1]);
    let refused = c
        .post(&url)
        .bearer_auth(&wrong)
        .json(&json!({"model": MODEL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let refused_body = refused.text().await.unwrap();
    assert!(
        !refused_body.contains(&wrong),
        "a wrong key is not echoed back"
    );
    stop(child);
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
        lines.push(line);
    }
    let logs = lines.join("\n");
    assert!(logs.contains("qwen_gateway::access"), "{logs}");
    let key_id = {
        let (_, out, _) = keys_cmd(&config, &["list", "--format", "json"]);
        let list: Value = serde_json::from_str(&out).unwrap();
        list[0]["id"].as_str().unwrap().to_owned()
    };
    assert!(logs.contains(&key_id), "the access log names the key id");
    for secret in [raw.as_str(), wrong.as_str(), hash.as_str(), &raw[4..]] {
        assert!(!logs.contains(secret), "a key or hash in the logs");
    }
    let bytes = database_bytes(&db);
    assert!(!bytes.is_empty());
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(contains(&hash), "the hash is what is stored");
    assert!(
        !contains(&raw) && !contains(&raw[4..]),
        "the raw key is in the database"
    );
    assert!(!contains(&wrong[4..]));
    eprintln!(
        "checked {} log lines and {} database bytes: no raw key",
        lines.len(),
        bytes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_cli_creates_lists_revokes_and_reports_usage_in_each_format() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _db) = write_config(dir.path(), &mock, "");
    let (ok, alice, err) = keys_cmd(
        &config,
        &[
            "create",
            "--name",
            "alice",
            "--models",
            "qwen3-*",
            "gpt-4o",
            "--regions",
            "r0",
            "--rpm",
            "60",
            "--tpm",
            "100000",
            "--daily-tokens",
            "2000000",
            "--expires",
            "30d",
        ],
    );
    assert!(ok, "{err}");
    let alice = alice.trim().to_owned();
    let (ok, bob, err) = keys_cmd(&config, &["create", "--name", "bob"]);
    assert!(ok, "{err}");
    let bob = bob.trim().to_owned();
    let (ok, _, err) = keys_cmd(&config, &["create", "--name", "bob"]);
    assert!(
        !ok && err.contains("bob") && err.contains("already exists"),
        "{err}"
    );
    let (ok, _, err) = keys_cmd(&config, &["create", "--name", "carol", "--regions", "mars"]);
    assert!(!ok && err.contains("mars"), "{err}");

    let (ok, table, _) = keys_cmd(&config, &["list"]);
    assert!(ok);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains("alice") && table.contains("qwen3-*,gpt-4o") && table.contains("active")
    );
    let (_, json_list, _) = keys_cmd(&config, &["list", "--format", "json"]);
    let list: Value = serde_json::from_str(&json_list).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["regions"], json!(["r0"]));
    assert_eq!(list[0]["daily_tokens"], 2_000_000);
    for text in [&table, &json_list] {
        assert!(!text.contains(&alice) && !text.contains(&keys::hash_key(&alice)));
    }

    // Some traffic through a gateway on the same database, then the reports.
    let toml = std::fs::read_to_string(&config).unwrap();
    let gw = start_gateway(&toml).await;
    for key in [&alice, &alice, &bob] {
        assert_eq!(ask(&gw, key).await.status(), 200);
    }
    let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        post(&gw, "/v1/chat/completions", Some(&bob), chat, &[])
            .await
            .status(),
        200
    );
    let bob_id = list[1]["id"].as_str().unwrap().to_owned();
    booked(&gw.store, &bob_id, 2).await;
    gw.stop().await;
    let expected = mock_usage(&mock);

    let (ok, table, err) = keys_cmd(&config, &["usage"]);
    assert!(ok, "{err}");
    eprintln!("keys usage:\n{table}");
    assert!(table.starts_with("DAY"), "{table}");
    assert!(table.contains("alice") && table.contains("bob") && table.contains("TOTAL"));
    let (_, json_usage, _) = keys_cmd(&config, &["usage", "--format", "json", "--since", "today"]);
    let rows: Value = serde_json::from_str(&json_usage).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let sum = |field: &str| rows.iter().map(|r| r[field].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("requests"), 4);
    assert_eq!(sum("input_tokens"), expected.input_tokens);
    assert_eq!(sum("output_tokens"), expected.output_tokens);
    let by_name = |name: &str| rows.iter().find(|r| r["key_name"] == name).unwrap();
    assert_eq!(by_name("alice")["requests"], 2);
    assert_eq!(by_name("bob")["requests"], 2);
    let (_, csv, _) = keys_cmd(&config, &["usage", "--format", "csv", "--since", "1d"]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "day,key_id,key_name,model,region,requests,errors,input_tokens,output_tokens,cached_tokens,reasoning_tokens,tool_calls,estimated"
        )
    );
    assert_eq!(lines.count(), 2);
    let (_, none, _) = keys_cmd(&config, &["usage", "--since", "2999-01-01"]);
    assert_eq!(none.trim(), "no usage recorded");
    let (ok, _, err) = keys_cmd(&config, &["usage", "--since", "someday"]);
    assert!(!ok && err.contains("someday"), "{err}");

    let (ok, out, err) = keys_cmd(&config, &["revoke", "alice"]);
    assert!(ok, "{err}");
    assert!(out.contains("revoked key 'alice'"), "{out}");
    let (ok, _, err) = keys_cmd(&config, &["revoke", "nobody"]);
    assert!(!ok && err.contains("nobody"), "{err}");
    let (_, table, _) = keys_cmd(&config, &["list"]);
    let alice_line = table.lines().find(|l| l.contains("alice")).unwrap();
    assert!(alice_line.contains("revoked"), "{table}");
    let gw = start_gateway(&toml).await;
    assert_eq!(ask(&gw, &alice).await.status(), 401);
    assert_eq!(ask(&gw, &bob).await.status(), 200);
}
