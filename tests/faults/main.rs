//! Fault suite: every way an upstream can fail, on both endpoints, plain and streaming.
//!
//! Each case asserts what the client sees (an OpenAI-shaped error, or a stream that ends
//! cleanly with an error event), that it arrives within the configured bounds, that the
//! gateway keeps serving, and that nothing leaks: the mock's in-flight requests and open
//! streams, and the gateway's `qwen_gateway_open_streams` gauge, return to zero; once the
//! gateway is stopped the mock sees no open connection at all.
//!
//! The tests run one at a time (a process-wide lock), so the gauge — global to the process
//! — can be checked for exactly zero. Each case prints an `OBSERVED |` row; run with
//! `--nocapture` to collect the table in `docs/reliability.md`.
//!
//! The rig (one gateway in front of one mock) and the checks on what a client saw are here;
//! the cases are in modules by kind of fault.

#[path = "../common/mod.rs"]
mod common;

mod answers;
mod connections;
mod error_statuses;

use common::*;
use mock_model_studio::MockServer;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const MODEL: &str = "qwen3-max-2026-01-23";
/// `upstream.first_byte_timeout` and `upstream.stream_idle_timeout` in this suite.
const FIRST_BYTE: Duration = Duration::from_millis(400);
const IDLE: Duration = Duration::from_millis(400);
/// `upstream.request_timeout` (a whole non-streaming exchange).
const REQUEST: Duration = Duration::from_millis(1500);
/// Scheduling slack on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(1600);
/// How long a hanging mock hangs: far past every bound, so only the gateway can end it.
const HANG_MS: &str = "30000";
/// Bound for leaks to clear.
const SETTLE: Duration = Duration::from_secs(3);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Responses,
    Chat,
}

use Endpoint::{Chat, Responses};

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Responses => "/v1/responses",
            Chat => "/v1/chat/completions",
        }
    }

    fn body(self, stream: bool) -> Value {
        match self {
            Responses => json!({"model": MODEL, "input": "hi", "stream": stream}),
            Chat => json!({"model": MODEL, "stream": stream,
                           "messages": [{"role": "user", "content": "hi"}]}),
        }
    }
}

const BOTH: [(Endpoint, bool); 4] = [
    (Responses, false),
    (Responses, true),
    (Chat, false),
    (Chat, true),
];

fn mode(stream: bool) -> &'static str {
    if stream { "stream" } else { "plain" }
}

/// One gateway in front of one mock, with this suite's short timeouts.
struct Rig {
    gw: Gateway,
    mock: MockServer,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

/// `upstream_extra`: more `[upstream]` keys, one per line.
async fn start_rig(upstream_extra: &str) -> Rig {
    let serial = SERIAL.lock().await;
    let mock = start_mock().await;
    let defaults: String = [
        format!("request_timeout = \"{}ms\"", REQUEST.as_millis()),
        "hold_first_event = \"100ms\"".into(),
        "failover_deadline = \"5s\"".into(),
        "breaker_threshold = 1000".into(),
        "rate_limit_cooldown = \"200ms\"".into(),
    ]
    .into_iter()
    .filter(|line| !upstream_extra.contains(line.split(' ').next().unwrap()))
    .map(|line| line + "\n")
    .collect();
    let toml = config_toml(&[mock.base_url()], "")
        .replace(
            "first_byte_timeout = \"3s\"",
            &format!("first_byte_timeout = \"{}ms\"", FIRST_BYTE.as_millis()),
        )
        .replace(
            "stream_idle_timeout = \"3s\"",
            &format!("stream_idle_timeout = \"{}ms\"", IDLE.as_millis()),
        )
        .replace(
            "request_timeout = \"10s\"\n",
            &format!("{defaults}{upstream_extra}\n"),
        );
    let gw = start_gateway(&toml).await;
    Rig {
        gw,
        mock,
        _serial: serial,
    }
}

/// What a client saw.
struct Outcome {
    status: u16,
    content_type: String,
    retry_after: Option<String>,
    body: Vec<u8>,
    /// The body broke off (a transport error instead of a clean end).
    body_error: Option<String>,
    elapsed: Duration,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = &self.body[..self.body.len().min(400)];
        f.debug_struct("Outcome")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("retry_after", &self.retry_after)
            .field("body_len", &self.body.len())
            .field("body", &String::from_utf8_lossy(shown))
            .field("body_error", &self.body_error)
            .field("elapsed", &self.elapsed)
            .finish()
    }
}

impl Outcome {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(500)])
            )
        })
    }

    fn is_stream(&self) -> bool {
        self.content_type.starts_with("text/event-stream")
    }

    fn data(&self) -> Vec<String> {
        sse_data(&self.body)
    }
}

impl Rig {
    async fn call(&self, endpoint: Endpoint, stream: bool, headers: &[(&str, &str)]) -> Outcome {
        let mut req = client()
            .post(self.gw.url(endpoint.path()))
            .json(&endpoint.body(stream));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let started = Instant::now();
        let res = req.send().await.expect("the gateway answers");
        let status = res.status().as_u16();
        let header = |name: &str| {
            res.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let content_type = header("content-type").unwrap_or_default();
        let retry_after = header("retry-after");
        let (body, body_error) = match res.bytes().await {
            Ok(b) => (b.to_vec(), None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        Outcome {
            status,
            content_type,
            retry_after,
            body,
            body_error,
            elapsed: started.elapsed(),
        }
    }

    /// A normal request per endpoint and mode succeeds: the gateway keeps serving.
    async fn assert_serving(&self) {
        for (endpoint, stream) in BOTH {
            let out = self.call(endpoint, stream, &[]).await;
            expect_ok(&out, endpoint, stream);
        }
    }

    /// Nothing in flight at the mock, no stream counted open at the gateway.
    async fn assert_settled(&self, what: &str) {
        let mock = &self.mock;
        let settled = eventually(SETTLE, || {
            let s = mock.stats();
            s.in_flight_requests == 0 && s.open_streams == 0
        })
        .await;
        assert!(
            settled,
            "{what}: upstream requests left in flight: {:?}",
            mock.stats()
        );
        let deadline = Instant::now() + SETTLE;
        loop {
            let open = open_streams_gauge(&self.gw).await;
            if open.iter().all(|(_, v)| *v == 0.0) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: qwen_gateway_open_streams did not return to 0: {open:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// After a case: still serving, nothing left open.
    async fn after(&self, what: &str) {
        self.assert_settled(what).await;
        self.assert_serving().await;
        self.assert_settled(&format!("{what} (then normal traffic)"))
            .await;
    }

    /// Stops the gateway; the mock must then see no connection at all (a leaked task
    /// holding an upstream response would keep one open).
    async fn finish(self) {
        let Rig { gw, mock, _serial } = self;
        gw.stop().await;
        let closed = eventually(SETTLE, || mock.stats().open_connections == 0).await;
        assert!(
            closed,
            "upstream connections left open after the gateway stopped: {:?}",
            mock.stats()
        );
    }
}

/// `qwen_gateway_open_streams` per endpoint label.
async fn open_streams_gauge(gw: &Gateway) -> Vec<(String, f64)> {
    let text = metrics_text(gw).await;
    text.lines()
        .filter(|l| l.starts_with("qwen_gateway_open_streams{"))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn observe(fault: &str, endpoint: Endpoint, stream: bool, out: &Outcome, seen: &str) {
    println!(
        "OBSERVED | {fault} | {} {} | {seen} | {} ms |",
        endpoint.path(),
        mode(stream),
        out.elapsed.as_millis()
    );
}

fn within(out: &Outcome, bound: Duration, what: &str) {
    assert!(
        out.elapsed <= bound,
        "{what}: took {:?}, bound {bound:?}",
        out.elapsed
    );
}

/// A complete, successful answer.
fn expect_ok(out: &Outcome, endpoint: Endpoint, stream: bool) {
    assert_eq!(out.status, 200, "{endpoint:?} {stream}: {out:?}");
    assert!(out.body_error.is_none(), "{out:?}");
    match (endpoint, stream) {
        (Responses, false) => assert_eq!(out.json()["status"], "completed"),
        (Responses, true) => {
            let last = sse_json(&out.body).pop().unwrap();
            assert_eq!(last["type"], "response.completed");
        }
        (Chat, false) => assert_eq!(out.json()["choices"][0]["finish_reason"], "stop"),
        (Chat, true) => {
            let data = out.data();
            assert_eq!(data.last().unwrap(), "[DONE]");
            let chunks: Vec<Value> = data[..data.len() - 1]
                .iter()
                .map(|d| serde_json::from_str(d).unwrap())
                .collect();
            assert!(
                chunks
                    .iter()
                    .any(|c| c["choices"][0]["finish_reason"] == "stop")
            );
        }
    }
}

/// An OpenAI-shaped error body with `status` (and `code`, when given). Returns the error.
fn expect_error(out: &Outcome, status: u16, code: Option<&str>) -> Value {
    assert_eq!(out.status, status, "{out:?}");
    assert!(out.content_type.starts_with("application/json"), "{out:?}");
    let body = out.json();
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
    if let Some(code) = code {
        assert_eq!(err["code"], code, "{body}");
    }
    assert!(!body.to_string().contains(UPSTREAM_KEY));
    err.clone()
}

/// A 200 stream that ends cleanly with an error event carrying `code`, and no finish.
/// Returns how many events (or chunks) came before the error, for the report.
fn expect_stream_error(out: &Outcome, endpoint: Endpoint, code: &str) -> String {
    assert_eq!(out.status, 200, "{out:?}");
    assert!(out.is_stream(), "{out:?}");
    assert!(
        out.body_error.is_none(),
        "the stream must end cleanly: {out:?}"
    );
    let data = out.data();
    match endpoint {
        Responses => {
            let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
            assert_eq!(last["type"], "error", "{last}");
            assert_eq!(last["code"], code, "{last}");
            assert!(last["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert!(
                !data.iter().any(|d| d.contains("\"response.completed\"")),
                "no completion after a failure"
            );
            format!("{} events", data.len() - 1)
        }
        Chat => {
            assert_eq!(data.last().unwrap(), "[DONE]");
            let error: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
            assert_eq!(error["error"]["code"], code, "{error}");
            assert!(error["error"]["message"].is_string());
            for chunk in &data[..data.len() - 2] {
                let chunk: Value = serde_json::from_str(chunk).unwrap();
                assert!(
                    chunk["choices"][0]["finish_reason"].is_null(),
                    "no finish chunk before an error: {chunk}"
                );
            }
            format!("{} chunks", data.len() - 2)
        }
    }
}

fn code_of(out: &Outcome) -> String {
    let body = out.json();
    body["error"]["code"]
        .as_str()
        .or(body["code"].as_str())
        .unwrap_or("-")
        .to_owned()
}
