//! Security: client credentials never travel upstream, upstream keys never leave the gateway
//! (logs at debug level, error bodies, /readyz, /metrics), redirects never carry the key,
//! the default bind is loopback, and CORS is off.

mod common;

use common::*;
use mock_model_studio::{MockConfig, MockServer};
use serde_json::{Value, json};
use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

const MODEL: &str = "qwen3-max-2026-01-23";
const BIN: &str = env!("CARGO_BIN_EXE_qwen-gateway");
const CLIENT_SECRET: &str = "client-secret-do-not-forward";

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn client_credentials_never_reach_the_upstream() {
    let (gw, mock) = gateway_with_mock("").await;
    let c = client();
    let with_credentials = |req: reqwest::RequestBuilder| {
        req.header("authorization", format!("Bearer {CLIENT_SECRET}-1"))
            .header("api-key", format!("{CLIENT_SECRET}-2"))
            .header("x-api-key", format!("{CLIENT_SECRET}-3"))
            .header("cookie", format!("session={CLIENT_SECRET}-4"))
            .header("proxy-authorization", format!("Basic {CLIENT_SECRET}-5"))
            .header("x-forwarded-for", "10.0.0.1")
    };
    for stream in [false, true] {
        let res = with_credentials(c.post(gw.url("/v1/responses")))
            .json(&json!({"model": MODEL, "input": "hi", "stream": stream}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let _ = res.bytes().await.unwrap();
        let res = with_credentials(c.post(gw.url("/v1/chat/completions")))
            .json(&json!({"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let _ = res.bytes().await.unwrap();
    }
    let id = mock.requests()[0].response_body.clone();
    let id: Value = serde_json::from_slice(&id).unwrap();
    let res =
        with_credentials(c.get(gw.url(&format!("/v1/responses/{}", id["id"].as_str().unwrap()))))
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 200);
    let requests = mock.requests();
    assert_eq!(requests.len(), 5);
    for r in &requests {
        let all = format!("{:?}", r.headers);
        assert!(
            !all.contains(CLIENT_SECRET),
            "client credential forwarded: {all}"
        );
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {UPSTREAM_KEY}").as_str())
        );
        for name in [
            "api-key",
            "x-api-key",
            "cookie",
            "proxy-authorization",
            "x-forwarded-for",
        ] {
            assert!(r.header(name).is_none(), "{name} forwarded: {all}");
        }
    }
}

/// A redirect from the upstream is never followed: the key would go wherever it points.
#[tokio::test]
async fn upstream_redirects_are_not_followed() {
    let thief = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let thief_addr = thief.local_addr().unwrap();
    let visited = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = visited.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = thief.accept().await {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let redirector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirector_addr = redirector.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = redirector.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = s.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://{thief_addr}/steal\r\ncontent-length: 0\r\n\r\n"
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    let gw = start_gateway(&config_toml(&[format!("http://{redirector_addr}")], "")).await;
    // A client that does not follow redirects either, so only the gateway could.
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/v1/responses", "/v1/chat/completions"] {
        let res = c
            .post(gw.url(path))
            .json(&json!({"model": MODEL, "input": "hi", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        // Not relayed either: a client following it would take its own credentials there.
        assert_eq!(res.status(), 502);
        assert!(res.headers().get("location").is_none());
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "upstream_error", "{body}");
        assert!(!body.to_string().contains(UPSTREAM_KEY));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !visited.load(std::sync::atomic::Ordering::SeqCst),
        "the gateway followed a redirect"
    );
}

#[test]
fn default_bind_is_loopback() {
    let settings =
        qwen_gateway::config::Settings::load_with_env(None, Some(Default::default())).unwrap();
    assert!(
        settings.server.listen.ip().is_loopback(),
        "{}",
        settings.server.listen
    );
    let out = Command::new(BIN)
        .arg("check")
        .env_remove("QWEN_GATEWAY_CONFIG")
        .env_remove("QWEN_GATEWAY__SERVER__LISTEN")
        .env("DASHSCOPE_API_KEY", "sk-x")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("listen = \"127.0.0.1:8080\""), "{stdout}");
}

/// A browser's CORS preflight for a chat request from `origin`.
async fn preflight(gw: &Gateway, origin: &str) -> reqwest::Response {
    client()
        .request(reqwest::Method::OPTIONS, gw.url("/v1/chat/completions"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("gateway answers")
}

/// With `server.cors_allow_origins`, a listed origin's preflight succeeds without a key
/// (team mode: browsers send none on preflights), its requests carry the CORS headers, and
/// any other origin gets none.
#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let (gw, _mock) = gateway_with_mock(
        "[server]\ncors_allow_origins = [\"https://app.example.com\"]\n[auth]\nmode = \"keys\"\n",
    )
    .await;
    let c = client();
    let ok = preflight(&gw, "https://app.example.com").await;
    assert!(ok.status().is_success(), "{}", ok.status());
    let h = ok.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(!h.contains_key("access-control-allow-credentials"));
    // A real request from that origin: refused (no key) but readable by the page's script.
    let refused = c
        .post(gw.url("/v1/responses"))
        .header("origin", "https://app.example.com")
        .json(&json!({"model": MODEL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let other = preflight(&gw, "https://evil.example").await;
    assert!(!other.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn cors_is_off() {
    let (gw, _mock) = gateway_with_mock("").await;
    let c = client();
    let origin = "https://evil.example";
    let preflight = preflight(&gw, origin).await;
    assert!(
        !preflight.status().is_success(),
        "a preflight must not succeed: {}",
        preflight.status()
    );
    let get = c
        .get(gw.url("/v1/models"))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    let post = c
        .post(gw.url("/v1/responses"))
        .header("origin", origin)
        .json(&json!({"model": MODEL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
    for res in [&preflight, &get, &post] {
        for name in res.headers().keys() {
            assert!(
                !name.as_str().starts_with("access-control-"),
                "CORS header {name} without CORS configured"
            );
        }
    }
}

/// The real binary at debug level, driven through successes and every kind of failure
/// (a 401 from a region whose key is wrong included): the keys appear in no log line, no
/// response body or header, and not in /readyz or /metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_keys_never_leave_the_gateway() {
    const KEY_R0: &str = "sk-r0-secret-4c1f9a7e2b";
    const KEY_R1: &str = "sk-r1-secret-8d0b3e6f5a";
    // r0 only accepts some other key: the gateway's key gets a 401 there.
    let r0 = MockServer::start(MockConfig {
        keys: vec!["the-only-valid-key".into()],
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let r1 = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    let toml = config_toml(
        &[r0.base_url(), r1.base_url()],
        "[server]\nlisten = \"127.0.0.1:0\"\n",
    )
    .replace(
        "first_byte_timeout = \"3s\"",
        "first_byte_timeout = \"500ms\"",
    )
    .replace(
        "stream_idle_timeout = \"3s\"",
        "stream_idle_timeout = \"500ms\"\nhold_first_event = \"100ms\"\nbreaker_threshold = 1000",
    );
    std::fs::write(&path, toml).unwrap();
    let log_path = dir.path().join("gateway.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--config", path.to_str().unwrap()])
        .env_remove("QWEN_GATEWAY_CONFIG")
        .env("TEST_KEY_R0", KEY_R0)
        .env("TEST_KEY_R1", KEY_R1)
        .env("RUST_LOG", "debug")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    // Killed however the test ends, so a failed run leaves no gateway behind.
    let mut child = KillOnDrop(child);
    let addr = {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(at) = text.find("listening on http://") {
                let rest = &text[at + "listening on http://".len()..];
                break rest.split('/').next().unwrap().to_owned();
            }
            assert!(Instant::now() < deadline, "no address logged:\n{text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let base = format!("http://{addr}");
    let c = client();
    let mut seen = String::new();
    let faults: &[&[(&str, &str)]] = &[
        &[],
        &[("x-mock-status", "500")],
        &[("x-mock-status", "429"), ("x-mock-retry-after", "1")],
        &[("x-mock-status", "502"), ("x-mock-error-style", "html")],
        &[("x-mock-drop-after", "0")],
        &[("x-mock-drop-after", "5")],
        &[("x-mock-header-delay-ms", "2000")],
        &[("x-mock-malformed-at", "3")],
        &[("x-mock-fail", "rate_limit")],
        &[("x-mock-fail", "moderation")],
        // Last: a 403 is relayed as the answer; a 401 quarantines r1's key.
        &[("x-mock-status", "403"), ("x-mock-error-style", "nested")],
        &[("x-mock-status", "401")],
    ];
    for headers in faults {
        for (path, stream) in [
            ("/v1/responses", false),
            ("/v1/responses", true),
            ("/v1/chat/completions", false),
            ("/v1/chat/completions", true),
        ] {
            let mut req = c
                .post(format!("{base}{path}"))
                .header("authorization", format!("Bearer {CLIENT_SECRET}"))
                .json(&json!({"model": MODEL, "input": "hi", "stream": stream,
                              "messages": [{"role": "user", "content": "hi"}]}));
            for (k, v) in *headers {
                req = req.header(*k, *v);
            }
            let res = req.send().await.unwrap();
            seen.push_str(&format!("{:?}\n", res.headers()));
            seen.push_str(&String::from_utf8_lossy(
                &res.bytes().await.unwrap_or_default(),
            ));
            // Let rested keys come back, so every fault reaches a mock.
            if headers.iter().any(|(_, v)| *v == "429") {
                tokio::time::sleep(Duration::from_millis(1100)).await;
            }
        }
    }
    for extra in [
        "/readyz",
        "/metrics",
        "/v1/models",
        "/healthz",
        "/v1/responses/nope",
    ] {
        let res = c.get(format!("{base}{extra}")).send().await.unwrap();
        seen.push_str(&format!("{:?}\n", res.headers()));
        seen.push_str(&res.text().await.unwrap());
    }
    // The 401 really happened: r0 refused the gateway's key, and its key is quarantined.
    assert!(r0.requests().iter().any(|r| r.status == 401));
    assert!(r1.requests().len() > 10);
    let _ = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.0.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.0.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut logs = String::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.lines().count() > 50, "debug logging was on:\n{logs}");
    assert!(
        logs.contains("TEST_KEY_R0"),
        "the key's variable is named instead"
    );
    for key in [KEY_R0, KEY_R1] {
        // Not the key, and not a recognisable part of it either.
        for needle in [key, &key[3..15], &key[key.len() - 10..]] {
            assert!(!logs.contains(needle), "upstream key in the logs");
            assert!(!seen.contains(needle), "upstream key in a response");
        }
    }
    assert!(
        !logs.contains(CLIENT_SECRET),
        "client credential in the logs"
    );
    println!(
        "OBSERVED | upstream keys | {} log lines at debug, {} bytes of responses incl. /readyz and /metrics | no key, no key fragment |",
        logs.lines().count(),
        seen.len()
    );
}
