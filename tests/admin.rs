//! The `/admin` API's hardening, over HTTP on loopback: failed admin-token attempts throttled
//! per client address (127.0.0.1 and 127.0.0.2 are two clients: Linux routes all of 127/8 to
//! `lo`), and pagination of `/admin/keys` and `/admin/usage` with many keys and rows.

mod common;

use common::*;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

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
    let _ = child.kill();
    let _ = child.wait();
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
        lines.push(line);
    }
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
