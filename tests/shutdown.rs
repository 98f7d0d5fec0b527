//! Graceful shutdown: no new connections, open streams finish within `server.shutdown_grace`,
//! and streams still open when it ends close with a `gateway_shutting_down` error event.

mod common;

use common::*;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GRACE_300MS: &str = "[server]\nshutdown_grace = \"300ms\"\n";

/// A stream of ~10 s: 50 tokens, 200 ms apart.
fn slow(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request
        .header("x-mock-delay-ms", "200")
        .header("x-mock-tokens", "50")
}

/// Reads the rest of a streamed body; `Err` if the connection broke instead of ending.
async fn read_rest(mut response: reqwest::Response, mut body: Vec<u8>) -> Result<Vec<u8>, String> {
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => return Ok(body),
            Err(err) => return Err(format!("{err:?} after {}", String::from_utf8_lossy(&body))),
        }
    }
}

/// Reads a stream until its body contains `needle` `times` times (so text is flowing),
/// bounded.
async fn read_until(response: &mut reqwest::Response, needle: &str, times: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let read = async {
        while count(&body, needle) < times {
            let chunk = response.chunk().await.unwrap().expect("stream ended early");
            body.extend_from_slice(&chunk);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("no text streamed");
    body
}

fn count(body: &[u8], needle: &str) -> usize {
    String::from_utf8_lossy(body).matches(needle).count()
}

/// Polls until a fresh TCP connection to `addr` is refused.
async fn refuses_connections(addr: std::net::SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_stream_open_at_grace_end_gets_an_error_event_and_a_clean_end() {
    let (mut gw, mock) = gateway_with_mock(GRACE_300MS).await;
    let mut response = slow(client().post(gw.url("/v1/responses")))
        .json(&json!({"model": "qwen3-max-2026-01-23", "input": "hi", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let first = read_until(&mut response, "response.output_text.delta", 1).await;
    let deltas_before = count(&first, "\"response.output_text.delta\"");

    let started = Instant::now();
    gw.begin_shutdown();
    assert!(
        refuses_connections(gw.addr).await,
        "new connections still accepted"
    );
    let body = read_rest(response, first).await.expect("clean end");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
        "stream ended after {elapsed:?}"
    );

    let events = sse_json(&body);
    let deltas = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .count();
    assert!(
        deltas > deltas_before && deltas < 50,
        "{deltas_before} then {deltas} deltas: the stream should go on during the grace period, then be cut"
    );
    let last = events.last().unwrap();
    assert_eq!(last["type"], "error", "{last}");
    assert_eq!(last["code"], "gateway_shutting_down", "{last}");
    let before = &events[events.len() - 2];
    assert_eq!(
        last["sequence_number"].as_u64(),
        before["sequence_number"].as_u64().map(|s| s + 1)
    );
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.ends_with("\n\n"),
        "last event not terminated: {text:?}"
    );
    assert!(text.contains("event: error\n"), "{text}");

    let result = gw.finished(Duration::from_secs(3)).await;
    assert!(matches!(result, Some(Ok(()))), "server: {result:?}");
    // Ending the stream dropped the upstream request too.
    assert!(
        eventually(Duration::from_secs(2), || mock.stats().cancelled_streams
            == 1)
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_stream_open_at_grace_end_gets_an_error_chunk_then_done() {
    let (mut gw, _mock) = gateway_with_mock(GRACE_300MS).await;
    let mut response = slow(client().post(gw.url("/v1/chat/completions")))
        .json(&json!({
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": true
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let first = read_until(&mut response, "chat.completion.chunk", 2).await;
    let chunks_before = count(&first, "chat.completion.chunk");

    let started = Instant::now();
    gw.begin_shutdown();
    let body = read_rest(response, first).await.expect("clean end");
    assert!(started.elapsed() < Duration::from_secs(3));

    let data = sse_data(&body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    let error: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(error["error"]["code"], "gateway_shutting_down", "{error}");
    assert_eq!(error["error"]["type"], "server_error");
    let chunks = data
        .iter()
        .filter(|d| d.contains("chat.completion.chunk"))
        .count();
    assert!(
        chunks > chunks_before,
        "{chunks_before} then {chunks} chunks: the stream should go on during the grace period"
    );

    let result = gw.finished(Duration::from_secs(3)).await;
    assert!(matches!(result, Some(Ok(()))), "server: {result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_that_finish_within_the_grace_period_end_normally() {
    let (mut gw, _mock) = gateway_with_mock("[server]\nshutdown_grace = \"5s\"\n").await;
    let c = client();
    let mut responses = c
        .post(gw.url("/v1/responses"))
        .header("x-mock-delay-ms", "30")
        .header("x-mock-tokens", "20")
        .json(&json!({"model": "qwen3-max-2026-01-23", "input": "hi", "stream": true}))
        .send()
        .await
        .unwrap();
    let mut chat = c
        .post(gw.url("/v1/chat/completions"))
        .header("x-mock-delay-ms", "30")
        .header("x-mock-tokens", "20")
        .json(&json!({
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": true
        }))
        .send()
        .await
        .unwrap();
    let first_r = responses.chunk().await.unwrap().unwrap().to_vec();
    let first_c = chat.chunk().await.unwrap().unwrap().to_vec();

    let started = Instant::now();
    gw.begin_shutdown();
    assert!(refuses_connections(gw.addr).await);
    let (r_body, c_body) = tokio::join!(read_rest(responses, first_r), read_rest(chat, first_c));

    let events = sse_json(&r_body.expect("clean end"));
    assert_eq!(events.last().unwrap()["type"], "response.completed");
    assert!(events.iter().all(|e| e["type"] != "error"));
    let data = sse_data(&c_body.expect("clean end"));
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    assert!(data.iter().all(|d| !d.contains("\"error\"")), "{data:?}");
    assert!(
        data.iter()
            .any(|d| d.contains("\"finish_reason\":\"stop\""))
    );

    // The server ends as soon as they are done, not at the end of the grace period.
    let result = gw.finished(Duration::from_secs(3)).await;
    assert!(matches!(result, Some(Ok(()))), "server: {result:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_still_waiting_for_the_upstream_at_grace_end_gets_503() {
    let (mut gw, _mock) = gateway_with_mock(GRACE_300MS).await;
    let pending = tokio::spawn(
        client()
            .post(gw.url("/v1/chat/completions"))
            .header("x-mock-header-delay-ms", "2500")
            .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
            .send(),
    );
    // Let the request reach the gateway before the signal.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    gw.begin_shutdown();
    let response = pending.await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "gateway_shutting_down", "{body}");
    let result = gw.finished(Duration::from_secs(3)).await;
    assert!(matches!(result, Some(Ok(()))), "server: {result:?}");
}

/// The real binary: SIGTERM mid-stream → error event for the client, exit status 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_exits_0_on_sigterm_after_ending_open_streams() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    let extra = "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"500ms\"\n";
    std::fs::write(&path, config_toml(&[mock.base_url()], extra)).unwrap();
    let (mut child, addr) = spawn_serve(&path).await;

    let mut response = slow(client().post(format!("http://{addr}/v1/responses")))
        .json(&json!({"model": "qwen3-max-2026-01-23", "input": "hi", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().unwrap().to_vec();

    let started = Instant::now();
    signal(&child, "-TERM");
    let body = read_rest(response, first).await.expect("clean end");
    let events = sse_json(&body);
    assert_eq!(events.last().unwrap()["code"], "gateway_shutting_down");

    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("gateway did not exit within 5 s of SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_exits_0_at_once_on_sigint_when_idle() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    let extra = "[server]\nlisten = \"127.0.0.1:0\"\n";
    std::fs::write(&path, config_toml(&[mock.base_url()], extra)).unwrap();
    let (mut child, _addr) = spawn_serve(&path).await;
    let started = Instant::now();
    signal(&child, "-INT");
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("gateway did not exit on SIGINT")
        .unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    // Nothing open: no need to wait for the default 30 s grace period.
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// Sends a signal with the `kill` command (no unsafe FFI in tests).
fn signal(child: &tokio::process::Child, which: &str) {
    let pid = child.id().expect("running child").to_string();
    let status = Command::new("kill").args([which, &pid]).status().unwrap();
    assert!(status.success());
}

/// Starts `qwen-gateway serve` and returns it with the address it logged.
async fn spawn_serve(config: &std::path::Path) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_qwen-gateway"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .env_remove("QWEN_GATEWAY_CONFIG")
        .env("TEST_KEY_R0", UPSTREAM_KEY)
        .env("RUST_LOG", "info")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let find_addr = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(at) = line.find("listening on http://") {
                let rest = &line[at + "listening on http://".len()..];
                return rest.split('/').next().unwrap().to_owned();
            }
        }
        panic!("gateway exited before logging its address");
    };
    let addr = tokio::time::timeout(Duration::from_secs(10), find_addr)
        .await
        .expect("gateway did not log its address");
    // Keep draining stderr so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}
