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

mod common;

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

#[tokio::test]
async fn upstream_5xx() {
    let rig = start_rig("").await;
    for status in ["500", "502", "503", "504"] {
        for (endpoint, stream) in BOTH {
            let headers = [("x-mock-status", status)];
            let out = rig.call(endpoint, stream, &headers).await;
            within(&out, SLACK, "5xx");
            let fault = format!("upstream {status} (Model Studio JSON body)");
            match endpoint {
                // Pass-through: the upstream's status and JSON body, unchanged.
                Responses => {
                    assert_eq!(out.status.to_string(), status);
                    assert_eq!(
                        &out.body[..],
                        &rig.mock.requests().last().unwrap().response_body[..]
                    );
                    assert!(out.json()["message"].is_string());
                    observe(
                        &fault,
                        endpoint,
                        stream,
                        &out,
                        &format!(
                            "{} relayed, body byte for byte (code {})",
                            out.status,
                            code_of(&out)
                        ),
                    );
                }
                Chat => {
                    let (want, code) = if status == "504" {
                        (504, "upstream_timeout")
                    } else {
                        (502, "upstream_error")
                    };
                    expect_error(&out, want, Some(code));
                    observe(
                        &fault,
                        endpoint,
                        stream,
                        &out,
                        &format!("{want} OpenAI error `{code}`"),
                    );
                }
            }
            rig.after(&format!("{status} {endpoint:?} {stream}")).await;
        }
    }
    rig.finish().await;
}

#[tokio::test]
async fn rate_limits_with_and_without_retry_after() {
    let rig = start_rig("").await;
    for retry_after in [Some("1"), None] {
        for (endpoint, stream) in BOTH {
            let mut headers = vec![("x-mock-status", "429")];
            if let Some(secs) = retry_after {
                headers.push(("x-mock-retry-after", secs));
            }
            let out = rig.call(endpoint, stream, &headers).await;
            within(&out, SLACK, "429");
            assert_eq!(out.status, 429);
            assert_eq!(out.retry_after.as_deref(), retry_after, "{out:?}");
            let fault = match retry_after {
                Some(_) => "upstream 429 with `Retry-After: 1`",
                None => "upstream 429 without `Retry-After`",
            };
            let seen = match endpoint {
                Responses => {
                    assert_eq!(out.json()["code"], "Throttling");
                    format!(
                        "429 relayed (Model Studio body), Retry-After {}",
                        out.retry_after.as_deref().unwrap_or("absent")
                    )
                }
                Chat => {
                    let err = expect_error(&out, 429, Some("rate_limit_exceeded"));
                    assert_eq!(err["type"], "rate_limit_error");
                    format!(
                        "429 OpenAI `rate_limit_exceeded`, Retry-After {}",
                        out.retry_after.as_deref().unwrap_or("absent")
                    )
                }
            };
            observe(fault, endpoint, stream, &out, &seen);
            // The only key rests for Retry-After (or upstream.rate_limit_cooldown, 200 ms).
            let rest = if retry_after.is_some() { 1100 } else { 300 };
            tokio::time::sleep(Duration::from_millis(rest)).await;
            rig.after(&format!("429 {endpoint:?} {stream}")).await;
        }
    }
    rig.finish().await;
}

#[tokio::test]
async fn connection_reset_before_headers() {
    let rig = start_rig("").await;
    for (endpoint, stream) in BOTH {
        let out = rig
            .call(endpoint, stream, &[("x-mock-drop-after", "0")])
            .await;
        within(&out, SLACK, "reset before head");
        expect_error(&out, 502, Some("upstream_unreachable"));
        observe(
            "connection reset before the response head",
            endpoint,
            stream,
            &out,
            "502 OpenAI error `upstream_unreachable`",
        );
        rig.after(&format!("reset {endpoint:?} {stream}")).await;
    }
    rig.finish().await;
}

#[tokio::test]
async fn connection_reset_mid_stream() {
    let rig = start_rig("").await;
    for (endpoint, stream) in BOTH {
        // Streams: 6 events, then the connection drops. Non-streaming /v1/responses: the
        // head promises the whole body, half arrives, then the connection drops.
        let out = rig
            .call(
                endpoint,
                stream,
                &[
                    ("x-mock-tokens", "20"),
                    (
                        "x-mock-drop-after",
                        if stream || endpoint == Chat { "6" } else { "1" },
                    ),
                ],
            )
            .await;
        within(&out, SLACK, "reset mid-stream");
        let fault = "connection reset mid-body / mid-stream";
        match (endpoint, stream) {
            (_, true) => {
                let before = expect_stream_error(&out, endpoint, "upstream_stream_error");
                observe(
                    fault,
                    endpoint,
                    stream,
                    &out,
                    &format!(
                        "200, {before} relayed, then an error frame `upstream_stream_error`, clean end"
                    ),
                );
            }
            (Responses, false) => {
                expect_error(&out, 502, Some("upstream_error"));
                observe(
                    fault,
                    endpoint,
                    stream,
                    &out,
                    "502 OpenAI error `upstream_error` (broke off)",
                );
            }
            (Chat, false) => {
                expect_error(&out, 502, Some("upstream_stream_error"));
                observe(
                    fault,
                    endpoint,
                    stream,
                    &out,
                    "502 OpenAI error `upstream_stream_error`",
                );
            }
        }
        rig.after(&format!("mid-stream reset {endpoint:?} {stream}"))
            .await;
    }
    rig.finish().await;
}

#[tokio::test]
async fn hang_before_headers() {
    let rig = start_rig("").await;
    for (endpoint, stream) in BOTH {
        let out = rig
            .call(endpoint, stream, &[("x-mock-header-delay-ms", HANG_MS)])
            .await;
        within(&out, FIRST_BYTE + SLACK, "hang before head");
        assert!(out.elapsed >= FIRST_BYTE);
        expect_error(&out, 504, Some("upstream_timeout"));
        observe(
            "upstream hangs before the response head (30 s)",
            endpoint,
            stream,
            &out,
            "504 OpenAI error `upstream_timeout` after first_byte_timeout (400 ms)",
        );
        rig.after(&format!("head hang {endpoint:?} {stream}")).await;
    }
    rig.finish().await;
}

#[tokio::test]
async fn hang_mid_stream() {
    let rig = start_rig("").await;
    for (endpoint, stream) in BOTH {
        // A gate nobody opens: the first event (or half of a non-streaming body) arrives,
        // then nothing.
        let out = rig
            .call(endpoint, stream, &[("x-mock-gate", "never")])
            .await;
        let fault = "upstream hangs mid-stream / mid-body (forever)";
        match (endpoint, stream) {
            (_, true) => {
                within(&out, IDLE + SLACK, "idle stream");
                let before = expect_stream_error(&out, endpoint, "upstream_idle_timeout");
                observe(
                    fault,
                    endpoint,
                    stream,
                    &out,
                    &format!(
                        "200, {before}, then an error frame `upstream_idle_timeout` after stream_idle_timeout (400 ms)"
                    ),
                );
            }
            (Responses, false) => {
                within(&out, REQUEST + SLACK, "hung body");
                assert!(out.elapsed >= REQUEST);
                expect_error(&out, 504, Some("upstream_timeout"));
                observe(
                    fault,
                    endpoint,
                    stream,
                    &out,
                    "504 OpenAI error `upstream_timeout` after request_timeout (1.5 s)",
                );
            }
            (Chat, false) => {
                within(&out, IDLE + SLACK, "idle stream");
                expect_error(&out, 504, Some("upstream_idle_timeout"));
                observe(
                    fault,
                    endpoint,
                    stream,
                    &out,
                    "504 OpenAI error `upstream_idle_timeout` after stream_idle_timeout (400 ms)",
                );
            }
        }
        rig.after(&format!("mid-stream hang {endpoint:?} {stream}"))
            .await;
    }
    rig.finish().await;
}

/// Event 4 is the first text delta.
#[tokio::test]
async fn malformed_sse() {
    let rig = start_rig("").await;
    for (endpoint, stream) in BOTH {
        // Broken JSON in one event.
        let out = rig
            .call(endpoint, stream, &[("x-mock-malformed-at", "4")])
            .await;
        within(&out, SLACK, "broken JSON");
        let fault = "SSE event with broken JSON (first text delta)";
        match (endpoint, stream) {
            (Responses, false) => {
                // Not a stream: the whole JSON body is cut short instead.
                expect_error(&out, 502, Some("upstream_error"));
                observe(
                    "200 with a truncated JSON body",
                    endpoint,
                    stream,
                    &out,
                    "502 OpenAI error `upstream_error` (not valid JSON)",
                );
            }
            (Responses, true) => {
                // Pass-through: relayed byte for byte; the stream still completes.
                assert_eq!(out.status, 200);
                assert_eq!(
                    &out.body[..],
                    &rig.mock.requests().last().unwrap().response_body[..]
                );
                assert!(out.data().last().unwrap().contains("response.completed"));
                observe(
                    fault,
                    endpoint,
                    stream,
                    &out,
                    "relayed byte for byte (pass-through), stream completes",
                );
            }
            (Chat, true) => {
                let before = expect_stream_error(&out, Chat, "upstream_malformed_event");
                observe(
                    fault,
                    endpoint,
                    stream,
                    &out,
                    &format!(
                        "200, {before}, then error chunk `upstream_malformed_event`, `[DONE]`"
                    ),
                );
            }
            (Chat, false) => {
                expect_error(&out, 502, Some("upstream_malformed_event"));
                observe(
                    fault,
                    endpoint,
                    stream,
                    &out,
                    "502 OpenAI error `upstream_malformed_event`",
                );
            }
        }
        rig.after(&format!("broken json {endpoint:?} {stream}"))
            .await;
        if !stream && endpoint == Responses {
            continue;
        }

        // An event with no `data:` line: per the SSE spec there is no event at all.
        let out = rig
            .call(
                endpoint,
                stream,
                &[
                    ("x-mock-malformed-at", "4"),
                    ("x-mock-malformed-kind", "no-data"),
                ],
            )
            .await;
        expect_ok(&out, endpoint, stream);
        observe(
            "SSE event without a `data:` line (first text delta)",
            endpoint,
            stream,
            &out,
            "200, event skipped per the SSE spec, answer completes (chat streams miss that delta's text)",
        );
        rig.after(&format!("no data {endpoint:?} {stream}")).await;

        // An event of an unknown type.
        let out = rig
            .call(
                endpoint,
                stream,
                &[
                    ("x-mock-malformed-at", "4"),
                    ("x-mock-malformed-kind", "unknown"),
                ],
            )
            .await;
        expect_ok(&out, endpoint, stream);
        if endpoint == Responses {
            assert!(
                out.data()
                    .iter()
                    .any(|d| d.contains("response.mock_unknown"))
            );
        }
        if (endpoint, stream) == (Chat, true) {
            let text: String = out.data()[..out.data().len() - 1]
                .iter()
                .filter_map(|d| {
                    serde_json::from_str::<Value>(d).ok()?["choices"][0]["delta"]["content"]
                        .as_str()
                        .map(str::to_owned)
                })
                .collect();
            assert!(text.contains("You said: hi."), "nothing lost: {text}");
        }
        observe(
            "SSE event of an unknown type",
            endpoint,
            stream,
            &out,
            match endpoint {
                Responses => "200, relayed unchanged, stream completes",
                Chat => "200, skipped, full answer",
            },
        );
        rig.after(&format!("unknown {endpoint:?} {stream}")).await;

        // A giant (1 MiB) event, under the limits.
        let out = rig
            .call(
                endpoint,
                stream,
                &[
                    ("x-mock-malformed-at", "4"),
                    ("x-mock-malformed-kind", "giant"),
                ],
            )
            .await;
        within(&out, SLACK * 2, "giant event");
        expect_ok(&out, endpoint, stream);
        if endpoint == Responses {
            assert_eq!(
                &out.body[..],
                &rig.mock.requests().last().unwrap().response_body[..]
            );
        }
        observe(
            "one giant SSE event (1 MiB)",
            endpoint,
            stream,
            &out,
            match endpoint {
                Responses => "200, relayed byte for byte, stream completes",
                Chat => "200, full answer",
            },
        );
        rig.after(&format!("giant {endpoint:?} {stream}")).await;
    }
    rig.finish().await;
}

#[tokio::test]
async fn giant_event_over_the_limit() {
    let rig = start_rig("max_response_bytes = 262144").await;
    for (endpoint, stream) in BOTH {
        if (endpoint, stream) == (Responses, false) {
            continue; // no events: covered by very_large_responses
        }
        let out = rig
            .call(
                endpoint,
                stream,
                &[
                    ("x-mock-malformed-at", "4"),
                    ("x-mock-malformed-kind", "giant"),
                ],
            )
            .await;
        within(&out, SLACK * 2, "giant event");
        let fault = "one SSE event (1 MiB) over `max_response_bytes` (256 KiB)";
        if stream {
            let before = expect_stream_error(&out, endpoint, "upstream_event_too_large");
            observe(
                fault,
                endpoint,
                stream,
                &out,
                &format!("200, {before}, then an error frame `upstream_event_too_large`"),
            );
        } else {
            expect_error(&out, 502, None);
            observe(
                fault,
                endpoint,
                stream,
                &out,
                &format!("502 OpenAI error `{}`", code_of(&out)),
            );
        }
        rig.after(&format!("giant over limit {endpoint:?} {stream}"))
            .await;
    }
    rig.finish().await;
}

#[tokio::test]
async fn truncated_and_non_json_error_bodies() {
    let rig = start_rig("").await;
    for (endpoint, stream) in BOTH {
        // An HTML 502 page from a load balancer.
        let out = rig
            .call(
                endpoint,
                stream,
                &[("x-mock-status", "502"), ("x-mock-error-style", "html")],
            )
            .await;
        within(&out, SLACK, "html");
        let err = expect_error(&out, 502, Some("upstream_error"));
        assert!(!err["message"].as_str().unwrap().contains("<html"), "{err}");
        observe(
            "HTML 502 page (text/html)",
            endpoint,
            stream,
            &out,
            "502 OpenAI error `upstream_error`, no HTML quoted",
        );
        rig.after(&format!("html {endpoint:?} {stream}")).await;

        // A 500 whose JSON body is cut short.
        let out = rig
            .call(
                endpoint,
                stream,
                &[("x-mock-status", "500"), ("x-mock-malformed-at", "0")],
            )
            .await;
        within(&out, SLACK, "cut error");
        let want = if endpoint == Responses { 500 } else { 502 };
        expect_error(&out, want, Some("upstream_error"));
        observe(
            "500 with a truncated JSON error body",
            endpoint,
            stream,
            &out,
            &format!("{want} OpenAI error `upstream_error`"),
        );
        rig.after(&format!("cut error {endpoint:?} {stream}")).await;
    }
    rig.finish().await;
}

#[tokio::test]
async fn very_large_responses() {
    // Big answers take a while through debug builds on a loaded machine.
    let rig = start_rig("request_timeout = \"60s\"").await;
    for (endpoint, stream) in BOTH {
        let tokens = if (endpoint, stream) == (Responses, true) {
            "10000"
        } else {
            "3000"
        };
        let out = rig
            .call(endpoint, stream, &[("x-mock-tokens", tokens)])
            .await;
        expect_ok(&out, endpoint, stream);
        if endpoint == Responses {
            assert_eq!(
                &out.body[..],
                &rig.mock.requests().last().unwrap().response_body[..]
            );
        }
        if (endpoint, stream) == (Responses, true) {
            let deltas = sse_json(&out.body)
                .iter()
                .filter(|e| e["type"] == "response.output_text.delta")
                .count();
            assert_eq!(deltas, 10000);
        }
        observe(
            &format!(
                "very large answer ({tokens} tokens, {} KiB to the client)",
                out.body.len() / 1024
            ),
            endpoint,
            stream,
            &out,
            "200, complete answer",
        );
        rig.after(&format!("large {endpoint:?} {stream}")).await;
    }
    rig.finish().await;

    // An answer over upstream.max_response_bytes: a clear error, never a truncated body.
    // The cap bounds what the gateway buffers: a non-streaming body, or one SSE event (the
    // terminal event repeats the whole answer, so it is over the cap too).
    let rig = start_rig("max_response_bytes = 16384\nrequest_timeout = \"60s\"").await;
    for (endpoint, stream) in BOTH {
        let out = rig
            .call(endpoint, stream, &[("x-mock-tokens", "3000")])
            .await;
        let fault = "answer over `max_response_bytes` (16 KiB; 3000 tokens)";
        if stream {
            let before = expect_stream_error(&out, endpoint, "upstream_event_too_large");
            observe(
                fault,
                endpoint,
                stream,
                &out,
                &format!(
                    "200, {before} streamed, then an error frame `upstream_event_too_large` (the terminal event repeats the answer)"
                ),
            );
        } else {
            let code = if endpoint == Responses {
                "upstream_error"
            } else {
                "upstream_response_too_large"
            };
            let err = expect_error(&out, 502, Some(code));
            assert!(err["message"].as_str().unwrap().contains("16384"), "{err}");
            observe(
                fault,
                endpoint,
                stream,
                &out,
                &format!("502 OpenAI error `{code}` naming the limit"),
            );
        }
        rig.after(&format!("over max {endpoint:?} {stream}")).await;
    }
    rig.finish().await;
}
