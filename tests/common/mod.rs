//! Test harness: a gateway and mock Model Studio regions on loopback ports, in-process.
#![allow(dead_code)]

use mock_model_studio::{MockConfig, MockServer};
use qwen_gateway::config::Settings;
use qwen_gateway::server::{self, AppState};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;

/// The upstream key every test region is configured with.
pub const UPSTREAM_KEY: &str = "sk-upstream-test-0123456789";

pub struct Gateway {
    pub addr: SocketAddr,
    /// The gateway's store (same state the gateway sees), for asserting on keys and usage.
    pub store: qwen_gateway::store::Store,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Gateway {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends the shutdown signal without waiting for the server.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// The server task's result if it ends within `within`, else `None`.
    pub async fn finished(&mut self, within: Duration) -> Option<std::io::Result<()>> {
        let joined = tokio::time::timeout(within, &mut self.task).await.ok()?;
        Some(joined.unwrap_or_else(|e| Err(std::io::Error::other(e))))
    }

    /// Stops accepting and waits (bounded) for the server to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Forwarded headers in test gateways: the default list plus the mock's fault controls.
pub const FORWARD_HEADERS: &str = "forward_headers = [\"accept\", \"content-type\", \"user-agent\", \"idempotency-key\", \"openai-beta\", \"x-mock-*\"]";

/// A TOML config with one region per base URL, named `r0`, `r1`, ... in that order, each
/// with key variable `TEST_KEY_R<i>`, plus `extra` TOML appended.
pub fn config_toml(base_urls: &[String], extra: &str) -> String {
    let names: Vec<String> = (0..base_urls.len()).map(|i| format!("\"r{i}\"")).collect();
    let mut toml = format!(
        "[upstream]\nregions = [{}]\nconnect_timeout = \"1s\"\nfirst_byte_timeout = \"3s\"\nstream_idle_timeout = \"3s\"\nrequest_timeout = \"10s\"\n{FORWARD_HEADERS}\n",
        names.join(", ")
    );
    for (i, url) in base_urls.iter().enumerate() {
        toml.push_str(&format!(
            "[regions.r{i}]\nbase_url = \"{url}\"\napi_key_env = [\"TEST_KEY_R{i}\"]\n"
        ));
    }
    toml.push_str("[store]\nurl = \"memory\"\n");
    toml.push_str(extra);
    toml
}

/// Loads `toml` as the `--config` layer (with an empty environment layer) and starts the
/// gateway on an ephemeral port, with `UPSTREAM_KEY` for every region.
pub async fn start_gateway(toml: &str) -> Gateway {
    start_gateway_with_keys(toml, |_| UPSTREAM_KEY.to_string()).await
}

/// Like [`start_gateway`], with each `TEST_KEY_*` variable's value chosen by `key`.
pub async fn start_gateway_with_keys(toml: &str, key: impl Fn(&str) -> String) -> Gateway {
    start_gateway_full(toml, key, None).await
}

/// Like [`start_gateway`], with the `/admin` API on under `admin_token` (`None`: off).
pub async fn start_gateway_with_admin(toml: &str, admin_token: Option<&str>) -> Gateway {
    start_gateway_full(toml, |_| UPSTREAM_KEY.to_string(), admin_token).await
}

/// The general form of the `start_gateway*` helpers.
pub async fn start_gateway_full(
    toml: &str,
    key: impl Fn(&str) -> String,
    admin_token: Option<&str>,
) -> Gateway {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, toml).expect("write config");
    let settings = Settings::load_with_env(Some(&path), Some(HashMap::new())).expect("config");
    let regions = settings
        .resolve_regions(|var| var.starts_with("TEST_KEY_").then(|| key(var)))
        .expect("regions")
        .usable;
    let store = qwen_gateway::store::Store::connect(
        &settings.store.url,
        qwen_gateway::store::Clock::System,
    )
    .await
    .expect("store");
    qwen_gateway::telemetry::install();
    let state = AppState::new(settings, regions, store.clone())
        .expect("state")
        .with_admin_token(admin_token.map(qwen_gateway::config::Secret::new));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(server::serve(listener, state, async {
        let _ = rx.await;
    }));
    Gateway {
        addr,
        store,
        stop: Some(tx),
        task,
    }
}

pub async fn start_mock() -> MockServer {
    MockServer::start(MockConfig::default())
        .await
        .expect("mock")
}

/// A gateway in front of one default mock.
pub async fn gateway_with_mock(extra: &str) -> (Gateway, MockServer) {
    let mock = start_mock().await;
    let gw = start_gateway(&config_toml(&[mock.base_url()], extra)).await;
    (gw, mock)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// The gateway's `/metrics` page.
pub async fn metrics_text(gw: &Gateway) -> String {
    client()
        .get(gw.url("/metrics"))
        .send()
        .await
        .expect("gateway answers")
        .text()
        .await
        .expect("/metrics is text")
}

/// Polls `cond` every 10 ms for at most `within`.
pub async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Splits an SSE body into its events' `data` payloads (spec parsing, any framing).
pub fn sse_data(body: &[u8]) -> Vec<String> {
    let mut parser = qwen_gateway::sse::SseParser::new();
    let mut events = parser.push(bytes::Bytes::copy_from_slice(body));
    events.extend(parser.finish());
    events.into_iter().map(|e| e.data).collect()
}

/// The JSON of every SSE event in `body`.
pub fn sse_json(body: &[u8]) -> Vec<serde_json::Value> {
    sse_data(body)
        .iter()
        .filter(|d| d.as_str() != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("event json"))
        .collect()
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Asserts an OpenAI-shaped error (`{"error":{"message","type","param","code"}}`) with
/// `status` and a JSON content type; returns the whole body.
pub async fn assert_openai_error(res: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(res.status().as_u16(), status);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: serde_json::Value = res.json().await.expect("error body is JSON");
    let err = &body["error"];
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(err["type"].is_string(), "{body}");
    assert!(
        err.get("param").is_some() && err.get("code").is_some(),
        "{body}"
    );
    body
}

/// Spawns a prepared `serve` command with stderr piped; returns the child, the address it
/// logs (within 10 s), and its stderr lines as they come.
pub fn spawn_logged(
    mut command: std::process::Command,
) -> (
    std::process::Child,
    String,
    std::sync::mpsc::Receiver<String>,
) {
    use std::io::{BufRead, BufReader};
    let mut child = command
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn the gateway");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let addr = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("gateway did not log its address");
        if let Some(at) = line.find("listening on http://") {
            let rest = &line[at + "listening on http://".len()..];
            break rest.split('/').next().unwrap_or_default().to_owned();
        }
    };
    (child, addr, rx)
}

/// Writes `request` on a raw connection (concurrently with reading, so a server that answers
/// early is heard) and returns the status code of the answer (0: closed without one) and
/// how long until the connection closed or `wait` passed.
pub async fn raw_exchange(
    gw: &Gateway,
    request: Vec<u8>,
    wait: Duration,
) -> (u16, String, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let started = std::time::Instant::now();
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&request).await;
        // Keep the write side open: a half-close could end the exchange on its own.
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(write);
    });
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 65536];
    let deadline = started + wait;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match tokio::time::timeout(left, read.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let elapsed = started.elapsed();
    writer.abort();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, text, elapsed)
}

/// Reads a streaming answer until at least `events` SSE events arrived (3 s per read at
/// most), then drops it: a client that walks away mid-stream.
pub async fn read_events_then_leave(mut res: reqwest::Response, events: usize) {
    let mut buf = Vec::new();
    while sse_data(&buf).len() < events {
        let chunk = tokio::time::timeout(Duration::from_secs(3), res.chunk())
            .await
            .expect("the stream went silent")
            .expect("the stream broke")
            .expect("the stream ended early");
        buf.extend_from_slice(&chunk);
    }
}

/// Sends `count` requests at once, cycling through the four kinds (`/v1/responses` streaming
/// and plain, chat streaming and plain), paced so that all are open upstream together, and
/// asserts each completed as its kind should.
pub async fn four_kinds_at_once(gw: &Gateway, count: usize) {
    use serde_json::json;
    const MODEL: &str = "qwen3-max-2026-01-23";
    let http = client();
    let requests = (0..count).map(|i| {
        let http = http.clone();
        let (path, body) = match i % 4 {
            0 => (
                "/v1/responses",
                json!({"model": MODEL, "input": format!("r{i}"), "stream": true}),
            ),
            1 => (
                "/v1/responses",
                json!({"model": MODEL, "input": format!("r{i}")}),
            ),
            2 => (
                "/v1/chat/completions",
                json!({"model": MODEL, "stream": true,
                "messages": [{"role": "user", "content": format!("r{i}")}]}),
            ),
            _ => (
                "/v1/chat/completions",
                json!({"model": MODEL,
                "messages": [{"role": "user", "content": format!("r{i}")}]}),
            ),
        };
        let url = gw.url(path);
        async move {
            let res = http
                .post(url)
                .header("x-mock-tokens", "10")
                .header("x-mock-delay-ms", "30")
                .json(&body)
                .send()
                .await
                .unwrap();
            (i, res.status(), res.text().await.unwrap())
        }
    });
    for (i, status, text) in futures_util::future::join_all(requests).await {
        assert_eq!(status, 200, "{i}: {text}");
        match i % 4 {
            0 => assert!(text.contains("event:response.completed"), "{i}: {text}"),
            1 => assert_eq!(
                serde_json::from_str::<serde_json::Value>(&text).unwrap()["status"],
                "completed",
                "{i}: {text}"
            ),
            2 => assert!(text.trim_end().ends_with("data: [DONE]"), "{i}: {text}"),
            _ => assert_eq!(
                serde_json::from_str::<serde_json::Value>(&text).unwrap()["choices"][0]["finish_reason"],
                "stop",
                "{i}: {text}"
            ),
        }
    }
}

/// A loopback port that accepts connections and never reads or answers (a hung server);
/// abort the task to close them.
pub async fn hold_connections() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (addr, holder)
}
