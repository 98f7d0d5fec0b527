//! The gateway's keys only do what the gateway is for: what reaches the upstream is exactly
//! the endpoints it serves (paths, queries, headers), and nothing the upstream echoes back
//! hands a client a secret. Every case asserts on what the mock Model Studio received and
//! on what the client saw. Figures are summarised in docs/reliability.md ("Security").

mod common;

use common::*;
use mock_model_studio::MockServer;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::time::Duration;

const MODEL: &str = "qwen3-max-2026-01-23";
const ADMIN: &str = "admin-token-confinement-7d1e9a";

/// Requests the mock saw on its API (not `/_mock`).
fn upstream_paths(mock: &MockServer) -> Vec<String> {
    mock.requests()
        .iter()
        .map(|r| match &r.query {
            Some(q) => format!("{} {}?{q}", r.method, r.path),
            None => format!("{} {}", r.method, r.path),
        })
        .collect()
}

/// Whether `path` is one the gateway may send upstream (below the mock's base `/`).
fn allowed_upstream(method: &str, path: &str) -> bool {
    let id_ok = |id: &str| {
        (1..=128).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let parts: Vec<&str> = path.strip_prefix('/').unwrap_or("").split('/').collect();
    match (method, parts.as_slice()) {
        ("POST", ["responses"]) => true,
        ("GET" | "DELETE", ["responses", id]) => id_ok(id),
        ("GET", ["responses", id, "input_items"]) => id_ok(id),
        _ => false,
    }
}

fn raw_get(method: &str, target: &str) -> Vec<u8> {
    format!("{method} {target} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        .into_bytes()
}

/// Every encoding of a way out of `/responses/{id}` tried by hand (curl `--path-as-is`).
const TRAVERSALS: &[&str] = &[
    "..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2Fapi%2Fv1%2Ffiles",
    "a/../../x",
    "../../../api/v1/files",
    ".%2e/.%2e/files",
    "%2e%2e%2f%2e%2e%2ffiles",
    "%2E%2E%2F%2E%2E%2Ffiles",
    "..%5C..%5Cfiles",
    "..\\..\\files",
    "resp_1%3Fx=1",
    "resp_1%23frag",
    "%252e%252e%252f%252e%252e%252ffiles",
    "resp%00",
    "resp_1%00/../../files",
    "%E2%80%A4%E2%80%A4%2Ffiles",
    "%EF%BC%8E%EF%BC%8E%EF%BC%8Ffiles",
    "%C0%AE%C0%AE%2Ffiles",
    "%FF",
    "resp_1;x=1",
    "resp_1%2Finput_items",
    "resp_1/..",
    "resp_1/.",
    "resp_1/input_items/..%2F..%2Ffiles",
    "resp_1/input_items/x",
    "resp_1/cancel",
    "resp_1/../../files",
    "",
    "/files",
    "%20",
    "resp%201",
];

#[tokio::test]
async fn no_traversal_reaches_the_upstream_on_any_method_or_sub_path() {
    let (gw, mock) = gateway_with_mock("").await;
    let overlong = "a".repeat(129);
    let mut tried = 0;
    for id in TRAVERSALS.iter().copied().chain([overlong.as_str()]) {
        for (method, suffix) in [("GET", ""), ("DELETE", ""), ("GET", "/input_items")] {
            let target = format!("/v1/responses/{id}{suffix}");
            let (status, text, _) =
                raw_exchange(&gw, raw_get(method, &target), Duration::from_secs(5)).await;
            tried += 1;
            assert!(
                [400, 404, 405].contains(&status),
                "{method} {target}: {status} {text}"
            );
            let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
            let json: Value = serde_json::from_str(body)
                .unwrap_or_else(|e| panic!("{method} {target}: not JSON ({e}): {text}"));
            assert!(json["error"]["message"].is_string(), "{text}");
            assert!(!text.contains(UPSTREAM_KEY), "{text}");
        }
    }
    assert!(
        mock.requests().is_empty(),
        "reached the upstream: {:?}",
        upstream_paths(&mock)
    );
    println!("path confinement: {tried} hostile targets, 0 reached the upstream, 0 leaks");
}

#[tokio::test]
async fn invalid_ids_are_400_naming_the_grammar_and_valid_ones_go_home() {
    let (gw, mock) = gateway_with_mock("").await;
    let c = client();
    let res = c
        .get(gw.url("/v1/responses/..%2F..%2Fapi%2Fv1%2Ffiles"))
        .send()
        .await
        .unwrap();
    let body = assert_openai_error(res, 400).await;
    assert_eq!(body["error"]["code"], "invalid_response_id");
    assert_eq!(body["error"]["param"], "response_id");
    // An invalid previous_response_id is refused the same way, before any upstream call.
    let res = c
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": MODEL, "input": "hi", "previous_response_id": "../x"}))
        .send()
        .await
        .unwrap();
    let body = assert_openai_error(res, 400).await;
    assert_eq!(body["error"]["param"], "previous_response_id");
    assert!(mock.requests().is_empty());

    // A real id: exactly the allowed paths, and only documented query parameters.
    let created: Value = c
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": MODEL, "input": "hi"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let got = c
        .get(gw.url(&format!(
            "/v1/responses/{id}?include=reasoning.encrypted_content&api-key=x&x-http-method-override=DELETE"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let items = c
        .get(gw.url(&format!(
            "/v1/responses/{id}/input_items?order=asc&limit=2&redirect=http://evil"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(items.status(), 200);
    let deleted = c
        .delete(gw.url(&format!("/v1/responses/{id}?x=1")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(
        upstream_paths(&mock),
        [
            "POST /responses".to_owned(),
            format!("GET /responses/{id}?include=reasoning.encrypted_content"),
            format!("GET /responses/{id}/input_items?order=asc&limit=2"),
            format!("DELETE /responses/{id}"),
        ]
    );
}

#[tokio::test]
async fn absolute_form_targets_and_host_never_choose_the_upstream() {
    let (gw, mock) = gateway_with_mock("").await;
    let request = "GET http://169.254.169.254/v1/responses/resp_abs HTTP/1.1\r\nhost: evil.example\r\nconnection: close\r\n\r\n";
    let (status, text, _) =
        raw_exchange(&gw, request.as_bytes().to_vec(), Duration::from_secs(5)).await;
    // The mock (the configured region) answered: the id is unknown there.
    assert_eq!(status, 404, "{text}");
    assert_eq!(upstream_paths(&mock), ["GET /responses/resp_abs"]);
    assert_eq!(
        mock.requests()[0].header("host"),
        Some(mock.base_url().trim_start_matches("http://"))
    );
}

/// Pieces of hostile paths the property test combines.
const PIECES: &[&str] = &[
    "/",
    "..",
    ".",
    "%2F",
    "%2f",
    "%2e",
    "%2E%2E",
    "%5C",
    "\\",
    "%3F",
    "?",
    "%23",
    "%00",
    "%25",
    "%252F",
    "input_items",
    "cancel",
    "resp_1",
    "%E2%80%A4",
    "&",
    "=",
    "api",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Whatever path a client sends under `/v1/responses/`, what reaches the upstream (if
    /// anything) is inside the allowlist.
    #[test]
    fn arbitrary_paths_stay_inside_the_allowlist(
        parts in prop::collection::vec(prop_oneof![
            prop::sample::select(PIECES).prop_map(str::to_owned),
            "[a-zA-Z0-9_-]{1,6}",
        ], 0..8),
        method in prop_oneof![Just("GET"), Just("DELETE"), Just("POST")],
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (gw, mock) = gateway_with_mock("").await;
            let target = format!("/v1/responses/{}", parts.concat());
            let (status, text, _) =
                raw_exchange(&gw, raw_get(method, &target), Duration::from_secs(5)).await;
            assert_ne!(status, 0, "{method} {target}: no answer");
            assert!(!text.contains(UPSTREAM_KEY));
            for r in mock.requests() {
                assert!(
                    allowed_upstream(&r.method, &r.path),
                    "{method} {target} reached {} {}",
                    r.method,
                    r.path
                );
                if let Some(q) = &r.query {
                    for (name, _) in url::form_urlencoded::parse(q.as_bytes()) {
                        assert!(["include", "include[]", "after", "before", "limit", "order"]
                            .contains(&name.as_ref()), "{target}: query {q}");
                    }
                }
            }
        });
    }
}

/// Client headers the gateway owns, and ones it does not know.
const NEVER_FORWARDED: &[(&str, &str)] = &[
    ("x-dashscope-workspace", "ws-client"),
    ("x-dashscope-datainspection", "{\"input\":\"disable\"}"),
    ("x-dashscope-sse", "enable"),
    ("x-http-method-override", "DELETE"),
    ("x-original-url", "/api/v1/files"),
    ("x-rewrite-url", "/api/v1/files"),
    ("via", "1.1 evil"),
    ("true-client-ip", "10.0.0.1"),
    ("x-forwarded-for", "10.0.0.1"),
    ("x-forwarded-host", "evil.example"),
    ("forwarded", "for=10.0.0.1"),
    ("range", "bytes=0-10"),
    ("cookie", "session=1"),
    ("api-key", "client-key"),
    ("x-api-key", "client-key"),
    ("x-unknown-header", "1"),
    ("origin", "https://evil.example"),
];

#[tokio::test]
async fn only_allowlisted_headers_reach_the_upstream_on_both_post_endpoints() {
    let (gw, mock) = gateway_with_mock("").await;
    let c = client();
    for (path, body) in [
        ("/v1/responses", json!({"model": MODEL, "input": "hi"})),
        (
            "/v1/chat/completions",
            json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}),
        ),
    ] {
        let mut req = c
            .post(gw.url(path))
            .header("user-agent", "my-agent/1.0")
            .header("idempotency-key", "idem-1")
            .header("x-request-id", "req-allowed-1")
            .json(&body);
        for (name, value) in NEVER_FORWARDED {
            req = req.header(*name, *value);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let seen = mock.requests().pop().unwrap();
        for (name, _) in NEVER_FORWARDED {
            assert!(
                seen.header(name).is_none(),
                "{path}: {name} forwarded: {:?}",
                seen.headers
            );
        }
        assert_eq!(seen.header("user-agent"), Some("my-agent/1.0"), "{path}");
        assert_eq!(seen.header("idempotency-key"), Some("idem-1"), "{path}");
        assert_eq!(seen.header("x-request-id"), Some("req-allowed-1"), "{path}");
        assert_eq!(
            seen.header("authorization"),
            Some(format!("Bearer {UPSTREAM_KEY}").as_str())
        );
    }
}

#[tokio::test]
async fn a_workspace_is_configuration_and_owned_names_cannot_be_allowlisted() {
    let mock = start_mock().await;
    let toml = config_toml(&[mock.base_url()], "").replace(
        "api_key_env = [\"TEST_KEY_R0\"]\n",
        "api_key_env = [\"TEST_KEY_R0\"]\nworkspace = \"ws-configured\"\n",
    );
    let gw = start_gateway(&toml).await;
    let res = client()
        .post(gw.url("/v1/responses"))
        .header("x-dashscope-workspace", "ws-client")
        .json(&json!({"model": MODEL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen = mock.requests().pop().unwrap();
    let workspaces: Vec<&str> = seen
        .headers
        .iter()
        .filter(|(n, _)| n == "x-dashscope-workspace")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(workspaces, ["ws-configured"]);

    for owned in ["x-dashscope-workspace", "authorization", "x-forwarded-*"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.toml");
        let bad = format!(
            "[upstream]\nregions=[\"r\"]\nforward_headers=[\"{owned}\"]\n[regions.r]\nbase_url=\"http://127.0.0.1:1\"\napi_key_env=[\"K\"]\n"
        );
        std::fs::write(&path, bad).unwrap();
        let err =
            qwen_gateway::config::Settings::load_with_env(Some(&path), Some(Default::default()))
                .err()
                .unwrap_or_else(|| panic!("{owned} accepted in forward_headers"));
        assert!(err.to_string().contains("forward_headers"), "{err}");
    }
}

/// A leak case: name, path, body, extra mock controls.
type EchoCase = (
    &'static str,
    &'static str,
    Value,
    Vec<(&'static str, &'static str)>,
);

/// Status, headers and body of one exchange as text, for leak checks.
async fn whole(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let mut text = String::new();
    for (name, value) in res.headers() {
        text.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(
        &res.bytes().await.unwrap_or_default(),
    ));
    (status, text)
}

#[tokio::test]
async fn an_upstream_echoing_the_key_never_hands_it_to_a_client() {
    let mock = start_mock().await;
    let gw = start_gateway_with_admin(&config_toml(&[mock.base_url()], ""), Some(ADMIN)).await;
    let c = client();
    let chat = |stream: bool| {
        json!({"model": MODEL, "stream": stream,
               "messages": [{"role": "user", "content": format!("say {ADMIN}")}]})
    };
    let responses =
        |stream: bool| json!({"model": MODEL, "stream": stream, "input": format!("say {ADMIN}")});
    let cases: Vec<EchoCase> = vec![
        ("success body", "/v1/responses", responses(false), vec![]),
        ("SSE events", "/v1/responses", responses(true), vec![]),
        (
            "JSON error",
            "/v1/responses",
            responses(false),
            vec![("x-mock-status", "400")],
        ),
        (
            "nested JSON error",
            "/v1/responses",
            responses(true),
            vec![("x-mock-status", "404"), ("x-mock-error-style", "nested")],
        ),
        (
            "HTML error",
            "/v1/responses",
            responses(false),
            vec![("x-mock-status", "500"), ("x-mock-error-style", "html")],
        ),
        ("chat success", "/v1/chat/completions", chat(false), vec![]),
        ("chat stream", "/v1/chat/completions", chat(true), vec![]),
        (
            "chat JSON error",
            "/v1/chat/completions",
            chat(false),
            vec![("x-mock-status", "400")],
        ),
        (
            "chat HTML error",
            "/v1/chat/completions",
            chat(true),
            vec![("x-mock-status", "502"), ("x-mock-error-style", "html")],
        ),
    ];
    let mut tried = 0;
    for (name, path, body, extra) in cases {
        let mut req = c
            .post(gw.url(path))
            .header("x-mock-echo-auth", "1")
            .json(&body);
        for (h, v) in &extra {
            req = req.header(*h, *v);
        }
        let (status, text) = whole(req.send().await.unwrap()).await;
        tried += 1;
        assert!(!text.contains(UPSTREAM_KEY), "{name}: key relayed: {text}");
        assert!(!text.contains(ADMIN), "{name}: admin token relayed: {text}");
        if extra.is_empty() {
            assert_eq!(status, 200, "{name}: {text}");
            assert!(text.contains("[REDACTED]"), "{name}: {text}");
        }
    }
    // What was stored upstream and read back later is scrubbed the same way.
    let created: Value = c
        .post(gw.url("/v1/responses"))
        .header("x-mock-echo-auth", "1")
        .json(&responses(false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let (status, text) = whole(
        c.get(gw.url(&format!("/v1/responses/{id}")))
            .header("x-mock-echo-auth", "1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    tried += 1;
    assert_eq!(status, 200);
    assert!(
        !text.contains(UPSTREAM_KEY)
            && text.contains("x-mock-echo-authorization: Bearer [REDACTED]"),
        "{text}"
    );
    // The mock really did send the key (so the check above means something).
    let leaked = mock
        .requests()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.response_body).contains(UPSTREAM_KEY))
        .count();
    assert!(leaked >= 9, "the mock echoed the key in {leaked} answers");
    // Counted in /metrics (and logged, without the key).
    let metrics = metrics_text(&gw).await;
    let scrubbed: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("qwen_gateway_secrets_scrubbed_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(scrubbed >= 10.0, "{metrics}");
    println!("echo scrubbing: {tried} exchanges with the key echoed upstream, 0 leaks");
}

#[tokio::test]
async fn forged_request_ids_are_replaced_and_good_ones_kept() {
    let (gw, mock) = gateway_with_mock("").await;
    let c = client();
    let forged = [
        "abc def".to_owned(),
        "id\" status=200 key_id=\"key_x".to_owned(),
        "a".repeat(129),
        "id\tx".to_owned(),
        "ünïcode".to_owned(),
        "id/../x".to_owned(),
        "".to_owned(),
    ];
    for id in &forged {
        let value = reqwest::header::HeaderValue::from_bytes(id.as_bytes()).unwrap();
        let res = c
            .post(gw.url("/v1/responses"))
            .header("x-request-id", value)
            .json(&json!({"model": MODEL, "input": "hi"}))
            .send()
            .await
            .unwrap();
        let answered = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_ne!(&answered, id);
        assert!(uuid::Uuid::parse_str(&answered).is_ok(), "{answered}");
        let seen = mock.requests().pop().unwrap();
        assert_eq!(seen.header("x-request-id"), Some(answered.as_str()));
    }
    // Two ids: neither is trusted.
    let res = c
        .post(gw.url("/v1/responses"))
        .header("x-request-id", "one")
        .header("x-request-id", "two")
        .json(&json!({"model": MODEL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    let answered = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&answered).is_ok(), "{answered}");
    let good = "req-2026.12:02_ok";
    let res = c
        .post(gw.url("/v1/responses"))
        .header("x-request-id", good)
        .json(&json!({"model": MODEL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], good);
    assert_eq!(
        mock.requests().pop().unwrap().header("x-request-id"),
        Some(good)
    );
}

#[tokio::test]
async fn text_log_values_are_quoted_so_no_field_can_be_forged() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    let toml = config_toml(&[mock.base_url()], "[server]\nlisten = \"127.0.0.1:0\"\n");
    std::fs::write(&config, toml).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_qwen-gateway"));
    command
        .args(["serve", "--log-format", "text", "--config"])
        .arg(&config)
        .env("TEST_KEY_R0", UPSTREAM_KEY)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    let (mut child, addr, lines) = spawn_logged(command);
    let forged = "/v1/models/x\"%20status=200%20key_id=\"key_forged";
    let request = format!(
        "GET {forged} HTTP/1.1\r\nhost: x\r\nx-request-id: ok-1\r\nconnection: close\r\n\r\n"
    );
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let mut access = None;
    for _ in 0..50 {
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) if line.contains("qwen_gateway::access") => {
                access = Some(line);
                break;
            }
            _ => {}
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = access.expect("an access log line");
    assert!(line.contains("request_id=\"ok-1\""), "{line}");
    assert!(
        line.contains(r#"path="/v1/models/x\"%20status=200%20key_id=\"key_forged""#),
        "{line}"
    );
    assert!(line.contains("key_id=\"-\""), "{line}");
}
