//! Upstream TLS as real Model Studio is reached: `https://`, the certificate checked against
//! the trusted CAs (here only the mock's own, through `upstream.extra_ca_file`), HTTP/2 by
//! ALPN when `http2 = "alpn"`, and the connect timeout bounding the TLS handshake too.

mod common;

use common::*;
use mock_model_studio::{Alpn, MockConfig, MockServer};
use serde_json::json;
use std::time::{Duration, Instant};

const MODEL: &str = "qwen3-max-2026-01-23";

/// A gateway with one region at `mock` (TLS), `http2` as given, trusting `ca_pem` if any.
async fn gateway_over_tls(
    mock: &MockServer,
    http2: &str,
    ca_pem: Option<&str>,
) -> (Gateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut extra = String::new();
    if let Some(pem) = ca_pem {
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, pem).unwrap();
        extra = format!("extra_ca_file = {:?}\n", path.display().to_string());
    }
    let toml = config_toml(&[mock.base_url()], "").replace(
        "[regions.r0]\n",
        &format!("{extra}[regions.r0]\nhttp2 = \"{http2}\"\n"),
    );
    assert!(toml.contains("https://127.0.0.1:"), "{toml}");
    (start_gateway(&toml).await, dir)
}

#[tokio::test]
async fn over_tls_alpn_negotiates_http2_and_multiplexes_one_connection() {
    let mock = MockServer::start_tls(MockConfig::default(), Alpn::H2AndHttp11)
        .await
        .unwrap();
    let (gw, _dir) = gateway_over_tls(&mock, "alpn", mock.ca_pem()).await;
    // The protocol is known only once a handshake is done: a burst before the first
    // connection is up opens one each (as with any ALPN client pool). One request first.
    let res = client()
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": MODEL, "input": "first"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    four_kinds_at_once(&gw, 4).await;
    let recorded = mock.requests();
    assert_eq!(recorded.len(), 5);
    assert!(
        recorded.iter().all(|r| r.version == "HTTP/2.0"),
        "{:?}",
        recorded.iter().map(|r| &r.version).collect::<Vec<_>>()
    );
    assert!(
        recorded
            .iter()
            .all(|r| r.header("authorization") == Some(&*format!("Bearer {UPSTREAM_KEY}")))
    );
    assert_eq!(mock.stats().accepted_connections, 1, "{:?}", mock.stats());
}

#[tokio::test]
async fn over_tls_the_gateway_speaks_http1_when_h2_is_off_or_not_picked() {
    // `alpn` against a server that only offers http/1.1, and `off` against one offering h2.
    for (alpn, http2) in [(Alpn::Http11Only, "alpn"), (Alpn::H2AndHttp11, "off")] {
        let mock = MockServer::start_tls(MockConfig::default(), alpn)
            .await
            .unwrap();
        let (gw, _dir) = gateway_over_tls(&mock, http2, mock.ca_pem()).await;
        four_kinds_at_once(&gw, 4).await;
        let recorded = mock.requests();
        assert_eq!(recorded.len(), 4, "{alpn:?} {http2}");
        assert!(
            recorded.iter().all(|r| r.version == "HTTP/1.1"),
            "{alpn:?} {http2}: {:?}",
            recorded.iter().map(|r| &r.version).collect::<Vec<_>>()
        );
        // One connection per request open at once: four.
        assert_eq!(mock.stats().accepted_connections, 4, "{:?}", mock.stats());
    }
}

#[tokio::test]
async fn an_upstream_whose_certificate_no_trusted_ca_signed_gets_no_request() {
    let mock = MockServer::start_tls(MockConfig::default(), Alpn::H2AndHttp11)
        .await
        .unwrap();
    // Trusting the system's and the Mozilla roots only: the mock's CA is none of them.
    let (gw, _dir) = gateway_over_tls(&mock, "alpn", None).await;
    for stream in [false, true] {
        let res = client()
            .post(gw.url("/v1/responses"))
            .json(&json!({"model": MODEL, "input": "hi", "stream": stream}))
            .send()
            .await
            .unwrap();
        let body = assert_openai_error(res, 502).await;
        assert_eq!(body["error"]["code"], "upstream_unreachable", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("certificate"), "{message}");
        assert!(!message.contains(UPSTREAM_KEY), "{message}");
    }
    // The handshake failed before any request: the key never left the gateway.
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn a_tls_handshake_that_never_finishes_is_bounded_by_connect_timeout() {
    // Accepts TCP connections and never answers the ClientHello.
    let (addr, held) = hold_connections().await;
    // connect_timeout is 1 s in test configurations, first_byte_timeout 3 s.
    let toml = config_toml(&[format!("https://{addr}")], "");
    let gw = start_gateway(&toml).await;
    let started = Instant::now();
    let res = client()
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": MODEL, "input": "hi", "stream": true}))
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    let body = assert_openai_error(res, 504).await;
    assert_eq!(body["error"]["code"], "upstream_timeout", "{body}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_millis(2500),
        "answered after {waited:?}: the handshake must be cut at connect_timeout (1 s)"
    );
    held.abort();
}

#[tokio::test]
async fn an_extra_ca_file_without_a_certificate_stops_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.pem");
    std::fs::write(&path, "not a certificate\n").unwrap();
    let toml = config_toml(&["https://127.0.0.1:9".into()], "").replace(
        "[regions.r0]\n",
        &format!(
            "extra_ca_file = {:?}\n[regions.r0]\n",
            path.display().to_string()
        ),
    );
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, toml).unwrap();
    let settings = qwen_gateway::config::Settings::load_with_env(
        Some(&config),
        Some(std::collections::HashMap::new()),
    )
    .unwrap();
    let regions = settings
        .resolve_regions(|_| Some(UPSTREAM_KEY.into()))
        .unwrap()
        .usable;
    let store = qwen_gateway::store::Store::connect(
        &settings.store.url,
        qwen_gateway::store::Clock::System,
    )
    .await
    .unwrap();
    let Err(err) = qwen_gateway::server::AppState::new(settings, regions, store) else {
        panic!("a CA file with no certificate is refused");
    };
    let text = err.to_string();
    assert!(
        text.contains("extra_ca_file") && text.contains("empty.pem"),
        "{text}"
    );
}
