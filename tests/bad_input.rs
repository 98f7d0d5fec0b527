//! Bad input from clients: malformed, oversized, hostile or slow requests. Each must get the
//! right 4xx (never a 5xx, never a dropped connection from a panic), must not reach the
//! upstream unless it is valid, and the gateway must keep serving afterwards.
//!
//! Each case prints an `OBSERVED |` row (run with `--nocapture`) for `docs/reliability.md`.

mod common;

use common::*;
use mock_model_studio::MockServer;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MODEL: &str = "qwen3-max-2026-01-23";
const HEADER_TIMEOUT: Duration = Duration::from_millis(300);
const BODY_TIMEOUT: Duration = Duration::from_millis(500);
const LIMIT: usize = 1024 * 1024;
const SLACK: Duration = Duration::from_millis(1500);

async fn gateway() -> (Gateway, MockServer) {
    gateway_with_mock(&format!(
        "[server]\nmax_body_bytes = {LIMIT}\nheader_read_timeout = \"{}ms\"\nbody_read_timeout = \"{}ms\"\n",
        HEADER_TIMEOUT.as_millis(),
        BODY_TIMEOUT.as_millis()
    ))
    .await
}

fn observe(input: &str, target: &str, seen: &str) {
    println!("OBSERVED | {input} | {target} | {seen} |");
}

/// An OpenAI-shaped 4xx; returns the error object.
async fn openai_error(res: reqwest::Response, status: u16) -> Value {
    assert_openai_error(res, status).await["error"].clone()
}

/// A normal request still succeeds on both endpoints.
async fn still_serving(gw: &Gateway) {
    let c = client();
    let res = c
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": MODEL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = c
        .post(gw.url("/v1/chat/completions"))
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn post_raw(gw: &Gateway, path: &str, body: Vec<u8>) -> reqwest::Response {
    client()
        .post(gw.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

const PATHS: [&str; 2] = ["/v1/responses", "/v1/chat/completions"];

#[tokio::test]
async fn malformed_bodies_are_400_before_the_upstream() {
    let (gw, mock) = gateway().await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("invalid JSON", b"{\"model\": \"x\", ".to_vec()),
        ("empty body", Vec::new()),
        ("JSON but not an object", b"[1, 2, 3]".to_vec()),
        (
            "invalid UTF-8 inside a string",
            [&b"{\"model\":\"qwen3-max-2026-01-23\",\"input\":\"\xff\xfe\",\"messages\":\"\xc3\x28\"}"[..]].concat(),
        ),
        ("a NUL byte outside strings", b"{\"model\":\0\"x\"}".to_vec()),
        ("deeply nested JSON (100k `[`)", vec![b'['; 100_000]),
        (
            "deep nesting inside an object (100k `[`)",
            [&b"{\"model\":\"qwen3-max-2026-01-23\",\"input\":"[..], &vec![b'['; 100_000]].concat(),
        ),
        (
            "deep nesting of objects (50k `{\"a\":`)",
            b"{\"a\":".repeat(50_000),
        ),
    ];
    for (name, body) in cases {
        for path in PATHS {
            let err = openai_error(post_raw(&gw, path, body.clone()).await, 400).await;
            assert_eq!(err["type"], "invalid_request_error");
            observe(name, path, "400 `invalid_request_error`");
        }
    }
    assert!(
        mock.requests().is_empty(),
        "nothing invalid reached the upstream"
    );
    still_serving(&gw).await;
}

#[tokio::test]
async fn wrong_types_and_missing_fields() {
    let (gw, mock) = gateway().await;
    let chat = "/v1/chat/completions";
    let responses = "/v1/responses";
    let msgs = json!([{"role": "user", "content": "hi"}]);
    // Refused by the gateway itself, OpenAI-shaped.
    let local: Vec<(&str, &str, Value, Option<&str>)> = vec![
        (
            "`model` is a number",
            responses,
            json!({"model": 5, "input": "hi"}),
            None,
        ),
        (
            "`stream` is a string",
            responses,
            json!({"model": MODEL, "input": "hi", "stream": "yes"}),
            None,
        ),
        (
            "missing `model`",
            chat,
            json!({"messages": msgs}),
            Some("model"),
        ),
        (
            "`model` is a number",
            chat,
            json!({"model": 5, "messages": msgs}),
            Some("model"),
        ),
        (
            "missing `messages`",
            chat,
            json!({"model": MODEL}),
            Some("messages"),
        ),
        (
            "`messages` is a string",
            chat,
            json!({"model": MODEL, "messages": "hi"}),
            Some("messages"),
        ),
        (
            "`messages` is empty",
            chat,
            json!({"model": MODEL, "messages": []}),
            Some("messages"),
        ),
        (
            "a message's `role` is a number",
            chat,
            json!({"model": MODEL, "messages": [{"role": 5, "content": "hi"}]}),
            None,
        ),
        (
            "`stream` is a string",
            chat,
            json!({"model": MODEL, "messages": msgs, "stream": "yes"}),
            Some("stream"),
        ),
        (
            "`n` is negative",
            chat,
            json!({"model": MODEL, "messages": msgs, "n": -1}),
            Some("n"),
        ),
        (
            "`temperature` is a string",
            chat,
            json!({"model": MODEL, "messages": msgs, "temperature": "hot"}),
            Some("temperature"),
        ),
    ];
    for (name, path, body, param) in local {
        let err = openai_error(
            client()
                .post(gw.url(path))
                .json(&body)
                .send()
                .await
                .unwrap(),
            400,
        )
        .await;
        if let Some(param) = param {
            assert_eq!(err["param"], param, "{name}: {err}");
        }
        observe(
            name,
            path,
            &format!(
                "400 `invalid_request_error`, param `{}`",
                err["param"].as_str().unwrap_or("null")
            ),
        );
    }
    assert!(mock.requests().is_empty());
    // /v1/responses is a pass-through: the fields it does not read are Model Studio's to
    // judge, and its 400 is relayed.
    for (name, body) in [
        ("missing `model`", json!({"input": "hi"})),
        ("missing `input`", json!({"model": MODEL})),
        ("`input` is a number", json!({"model": MODEL, "input": 5})),
    ] {
        let res = client()
            .post(gw.url(responses))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{name}");
        let body: Value = res.json().await.unwrap();
        assert!(body["message"].is_string(), "{body}");
        observe(
            name,
            responses,
            "400 relayed from the upstream (pass-through)",
        );
    }
    // Unknown fields: passed through on /v1/responses, dropped on chat.
    let res = client()
        .post(gw.url(responses))
        .json(&json!({"model": MODEL, "input": "hi", "x_future": {"a": [1]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        mock.requests().last().unwrap().body.as_ref().unwrap()["x_future"],
        json!({"a": [1]})
    );
    observe("unknown fields", responses, "200, passed through unchanged");
    let res = client()
        .post(gw.url(chat))
        .json(&json!({"model": MODEL, "messages": msgs, "x_future": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        mock.requests()
            .last()
            .unwrap()
            .body
            .as_ref()
            .unwrap()
            .get("x_future")
            .is_none()
    );
    observe("unknown fields", chat, "200, dropped (logged at debug)");
    still_serving(&gw).await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let (gw, mock) = gateway().await;
    for path in PATHS {
        // Content-Length over the limit: refused before reading.
        let big = json!({"model": MODEL, "input": "x".repeat(2 * LIMIT)}).to_string();
        let err = openai_error(post_raw(&gw, path, big.into_bytes()).await, 413).await;
        assert_eq!(err["code"], "request_too_large");
        observe(
            "body over `max_body_bytes` (2 MiB, Content-Length)",
            path,
            "413 `request_too_large`",
        );
        // Chunked, no length announced: refused once the limit is passed.
        let chunks =
            (0..40).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 64 * 1024])));
        let res = client()
            .post(gw.url(path))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
            .send()
            .await
            .unwrap();
        openai_error(res, 413).await;
        observe(
            "body over `max_body_bytes` (2.5 MiB, chunked)",
            path,
            "413 `request_too_large`",
        );
        // A Content-Length of a terabyte with a few bytes behind it: answered at once.
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000000000000\r\n\r\n{{\"model\""
        );
        let (status, _, elapsed) =
            raw_exchange(&gw, request.into_bytes(), Duration::from_secs(5)).await;
        assert_eq!(status, 413);
        assert!(elapsed < SLACK, "{elapsed:?}");
        observe(
            "`Content-Length: 1000000000000`, 8 bytes sent",
            path,
            "413 at once",
        );
    }
    assert!(mock.requests().is_empty());
    still_serving(&gw).await;
}

#[tokio::test]
async fn huge_and_hostile_headers_are_4xx() {
    let (gw, mock) = gateway().await;
    let body = json!({"model": MODEL, "input": "hi"}).to_string();
    let request = |headers: &str| {
        format!(
            "POST /v1/responses HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{headers}\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        (
            "one 1 MiB header",
            request(&format!("x-big: {}\r\n", "a".repeat(1 << 20))),
            &[431, 400],
        ),
        (
            "200 headers",
            request(
                &(0..200)
                    .map(|i| format!("x-h{i}: v\r\n"))
                    .collect::<String>(),
            ),
            &[431, 400],
        ),
        (
            "bare CR inside a header value",
            request("x-custom: a\rinjected: evil\r\n"),
            &[400],
        ),
        (
            "obs-fold (header continuation line)",
            request("x-custom: a\r\n injected: evil\r\n"),
            &[400],
        ),
        (
            "NUL inside a header value",
            request("x-custom: a\0b\r\n"),
            &[400],
        ),
        (
            "a header name with a space",
            request("x custom: a\r\n"),
            &[400],
        ),
        (
            "a request line 100 KiB long",
            format!(
                "GET /{} HTTP/1.1\r\nhost: x\r\n\r\n",
                "a".repeat(100 * 1024)
            )
            .into_bytes(),
            &[414, 431, 400, 404],
        ),
        (
            "not HTTP at all",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n".to_vec(),
            &[400],
        ),
    ];
    for (name, bytes, allowed) in cases {
        let (status, text, _) = raw_exchange(&gw, bytes, Duration::from_secs(5)).await;
        assert!(
            allowed.contains(&status),
            "{name}: status {status}: {}",
            &text[..text.len().min(300)]
        );
        observe(
            name,
            "/v1/responses (raw HTTP/1.1)",
            &format!("{status}, connection closed"),
        );
    }
    // Nothing that looked injected reached the upstream.
    for r in mock.requests() {
        assert!(
            r.header("injected").is_none() && r.header("x-custom").is_none(),
            "{:?}",
            r.headers
        );
    }
    // CR/LF spelled out is just text: forwarded verbatim as one header value, never split.
    let res = client()
        .post(gw.url("/v1/responses"))
        .header("user-agent", "a%0d%0ainjected: evil\\r\\n")
        .json(&json!({"model": MODEL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let last = mock.requests().pop().unwrap();
    assert_eq!(
        last.header("user-agent"),
        Some("a%0d%0ainjected: evil\\r\\n")
    );
    assert!(last.header("injected").is_none());
    observe(
        "CR/LF percent- or backslash-escaped in a header value",
        "/v1/responses",
        "200, forwarded verbatim as one header",
    );
    // And reqwest itself refuses to build a header with a raw CR/LF.
    assert!(reqwest::header::HeaderValue::from_str("a\r\ninjected: evil").is_err());
    still_serving(&gw).await;
}

#[tokio::test]
async fn slow_clients_are_disconnected() {
    let (gw, mock) = gateway().await;
    // Half a request head, then nothing: closed after server.header_read_timeout.
    let (status, text, elapsed) = raw_exchange(
        &gw,
        b"POST /v1/responses HTTP/1.1\r\nhost: x\r\ncontent-type: appl".to_vec(),
        Duration::from_secs(10),
    )
    .await;
    assert!(elapsed >= HEADER_TIMEOUT, "{elapsed:?}");
    assert!(
        elapsed < HEADER_TIMEOUT + SLACK,
        "slow-loris kept its connection: {elapsed:?}"
    );
    assert!(status == 0 || status == 408, "{text}");
    observe(
        "slow loris: half the headers, then silence",
        "any",
        &format!(
            "connection closed after {} ms (header_read_timeout 300 ms), no response",
            elapsed.as_millis()
        ),
    );
    // An idle connection that never sends anything is closed too.
    let (_, _, elapsed) = raw_exchange(&gw, Vec::new(), Duration::from_secs(10)).await;
    assert!(elapsed < HEADER_TIMEOUT + SLACK, "{elapsed:?}");
    observe(
        "a connection that sends nothing",
        "any",
        &format!("closed after {} ms", elapsed.as_millis()),
    );
    // The whole head, then a body that stalls: 408 after server.body_read_timeout.
    for path in PATHS {
        let (status, text, elapsed) = raw_exchange(
            &gw,
            format!("POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"model\":").into_bytes(),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(status, 408, "{text}");
        assert!(text.contains("request_timeout"), "{text}");
        assert!(
            elapsed >= BODY_TIMEOUT && elapsed < BODY_TIMEOUT + SLACK,
            "{elapsed:?}"
        );
        observe(
            "slow body: the head, 9 of 100 body bytes, then silence",
            path,
            &format!(
                "408 `request_timeout` after {} ms (body_read_timeout 500 ms)",
                elapsed.as_millis()
            ),
        );
    }
    // Many at once do not stop the gateway from serving others.
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(b"POST /v1/responses HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    still_serving(&gw).await;
    tokio::time::sleep(HEADER_TIMEOUT + Duration::from_millis(300)).await;
    for mut s in slow {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(SLACK, s.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "a slow connection was left open"
        );
    }
    observe(
        "50 slow-loris connections at once",
        "any",
        "all closed; normal requests served meanwhile",
    );
    assert!(
        mock.requests().iter().all(|r| r.body.is_some()),
        "only whole requests went upstream"
    );
    still_serving(&gw).await;
}

/// The head timeout is for request heads only: a response that streams for much longer than
/// it is not cut.
#[tokio::test]
async fn long_streams_outlive_the_header_read_timeout() {
    let (gw, mock) = gateway().await;
    let c = client();
    for path in PATHS {
        let started = Instant::now();
        let res = c
            .post(gw.url(path))
            .header("x-mock-tokens", "12")
            .header("x-mock-delay-ms", "100")
            .json(&json!({"model": MODEL, "input": "hi", "stream": true,
                          "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let text = res.text().await.unwrap();
        let elapsed = started.elapsed();
        assert!(elapsed > HEADER_TIMEOUT * 3, "{elapsed:?}");
        assert!(
            text.contains("response.completed") || text.trim_end().ends_with("data: [DONE]"),
            "{text}"
        );
        assert!(
            !text.contains("\"type\":\"error\"") && !text.contains("data: {\"error\""),
            "the stream ended in an error"
        );
        observe(
            "a stream lasting 4× header_read_timeout",
            path,
            &format!("200, complete after {} ms", elapsed.as_millis()),
        );
    }
    still_serving(&gw).await;
    assert_eq!(
        mock.stats().open_connections,
        1,
        "one pooled connection, reused"
    );
}

#[tokio::test]
async fn wrong_methods_and_unknown_paths() {
    let (gw, mock) = gateway().await;
    let c = client();
    let cases: Vec<(reqwest::Method, &str, u16)> = vec![
        (reqwest::Method::GET, "/v1/responses", 405),
        (reqwest::Method::PUT, "/v1/responses", 405),
        (reqwest::Method::GET, "/v1/chat/completions", 405),
        (reqwest::Method::PATCH, "/v1/chat/completions", 405),
        (reqwest::Method::DELETE, "/v1/chat/completions", 405),
        (reqwest::Method::POST, "/v1/models", 405),
        (reqwest::Method::POST, "/healthz", 405),
        (reqwest::Method::POST, "/v1/responses/resp_1", 405),
        (reqwest::Method::OPTIONS, "/v1/chat/completions", 405),
        (reqwest::Method::GET, "/v2/chat/completions", 404),
        (reqwest::Method::POST, "/v1/responsesX", 404),
        (reqwest::Method::GET, "/", 404),
        (reqwest::Method::GET, "/v1/../../etc/passwd", 404),
        (reqwest::Method::GET, "/%2e%2e/%2e%2e/etc/passwd", 404),
        (reqwest::Method::POST, "/v1/chat/completions/extra", 404),
    ];
    for (method, path, status) in cases {
        let res = c
            .request(method.clone(), gw.url(path))
            .json(&json!({"model": MODEL, "input": "hi"}))
            .send()
            .await
            .unwrap();
        let err = openai_error(res, status).await;
        observe(
            &format!("{method} {path}"),
            "-",
            &format!("{status} `{}`", err["code"].as_str().unwrap_or("null")),
        );
    }
    assert!(mock.requests().is_empty());
    still_serving(&gw).await;
}
