//! Upstream SSE parsing under hostile framing, end to end (gateway + mock): one giant event
//! written in small pieces, a client leaving in the middle of it, and invalid UTF-8 inside
//! an event. `OBSERVED` lines carry the figures in docs/reliability.md.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const MODEL: &str = "qwen3-max-2026-01-23";
const MIB: usize = 1 << 20;
/// The mock writes the giant event in pieces of this size (each flushed on its own).
const PIECE: &str = "16384";

/// A gateway with room for giant events: the default 64 MiB `max_response_bytes`, and
/// timeouts long enough to measure a slow parser instead of failing on it.
async fn rig() -> (Gateway, mock_model_studio::MockServer) {
    let mock = start_mock().await;
    let toml = config_toml(&[mock.base_url()], "").replace(
        "request_timeout = \"10s\"\n",
        "request_timeout = \"120s\"\nmax_response_bytes = 67108864\n",
    );
    (start_gateway(&toml).await, mock)
}

fn giant(pad: usize) -> Vec<(&'static str, String)> {
    vec![
        ("x-mock-malformed-at", "4".into()),
        ("x-mock-malformed-kind", "giant".into()),
        ("x-mock-pad-bytes", pad.to_string()),
        ("x-mock-chunk-bytes", PIECE.into()),
    ]
}

fn chat_request(
    gw: &Gateway,
    stream: bool,
    headers: &[(&'static str, String)],
) -> reqwest::RequestBuilder {
    let mut body = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]});
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    let mut req = client().post(gw.url("/v1/chat/completions")).json(&body);
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    req
}

/// A chat answer's text and usage, plain or streamed; panics on an error chunk.
async fn answer(res: reqwest::Response, stream: bool) -> (String, Value) {
    assert_eq!(res.status(), 200);
    if !stream {
        let body: Value = res.json().await.unwrap();
        let text = body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        return (text, body["usage"].clone());
    }
    let body = res.bytes().await.unwrap();
    let chunks: Vec<Value> = sse_json(&body);
    assert!(
        chunks.iter().all(|c| c.get("error").is_none()),
        "no error chunk: {}",
        String::from_utf8_lossy(&body)
    );
    let text = chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect();
    let usage = chunks
        .iter()
        .rev()
        .find(|c| c["usage"].is_object())
        .map(|c| c["usage"].clone())
        .unwrap_or(Value::Null);
    (text, usage)
}

/// (a) One 8 MiB and one 16 MiB event, in 16 KiB pieces: the parser's work is linear in
/// the bytes, so the answer takes about as long as moving them.
#[tokio::test]
async fn one_giant_event_in_small_pieces_is_parsed_quickly() {
    let (gw, _mock) = rig().await;
    for size in [8 * MIB, 16 * MIB] {
        for stream in [false, true] {
            let started = Instant::now();
            let res = chat_request(&gw, stream, &giant(size))
                .send()
                .await
                .unwrap();
            let (text, usage) = answer(res, stream).await;
            let took = started.elapsed();
            println!(
                "OBSERVED chat {} one {} MiB event in {PIECE}-byte pieces: {took:?}",
                if stream { "stream" } else { "plain" },
                size / MIB
            );
            assert!(!text.is_empty());
            assert!(usage["total_tokens"].as_u64().unwrap() > 0, "{usage}");
            // Generous for a debug build on 2 busy cores: about 1.5 s here. The quadratic
            // parser took 13–41 s in a release build, minutes in a debug one.
            assert!(took < Duration::from_secs(10), "{took:?}");
        }
    }
}

/// (b) A client that leaves while a giant event is still arriving: the upstream request is
/// closed within a second (parsing happens inside the client's body stream, so no task
/// keeps reading for nobody).
#[tokio::test]
async fn a_client_leaving_mid_event_closes_the_upstream_request() {
    let (gw, mock) = rig().await;
    let mut headers = giant(16 * MIB);
    // About 2 ms between the 1024 pieces: the event takes seconds to arrive.
    headers.push(("x-mock-chunk-delay-ms", "2".into()));
    for (n, stream) in [(1, true), (2, false)] {
        let request = chat_request(&gw, stream, &headers);
        if stream {
            let res = request.send().await.unwrap();
            assert_eq!(res.status(), 200);
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(res);
        } else {
            // Still waiting for the head when it gives up.
            let sent = tokio::time::timeout(Duration::from_millis(300), request.send()).await;
            assert!(sent.is_err(), "the answer cannot be ready yet");
        }
        let left = Instant::now();
        let closed = eventually(Duration::from_secs(1), || {
            mock.stats().cancelled_streams == n
        })
        .await;
        println!(
            "OBSERVED chat {} client left mid-event: upstream closed after {:?}",
            if stream { "stream" } else { "plain" },
            left.elapsed()
        );
        assert!(closed, "{:?}", mock.stats());
        let record = mock.requests().pop().unwrap();
        assert!(record.cancelled && !record.finished);
        assert!(record.response_body.len() < 16 * MIB, "left mid-event");
    }
}

/// Usage booked in the gateway's ledger (written asynchronously) for `requests` requests.
async fn booked_tokens(gw: &Gateway, requests: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rows = gw.store.usage(None).await.unwrap();
        let seen: u64 = rows.iter().map(|r| r.requests).sum();
        if seen >= requests || Instant::now() > deadline {
            assert_eq!(seen, requests, "{rows:?}");
            return rows.iter().map(|r| r.input_tokens + r.output_tokens).sum();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (c) Invalid UTF-8 inside one event (the first text delta): chat decodes that line
/// lossily and completes with its usage; `/v1/responses` relays the bytes unchanged.
#[tokio::test]
async fn invalid_utf8_inside_an_event_does_not_end_the_answer() {
    let (gw, mock) = rig().await;
    let headers = vec![
        ("x-mock-malformed-at", "4".to_string()),
        ("x-mock-malformed-kind", "utf8".to_string()),
    ];
    let mut tokens = 0;
    for (n, stream) in [(1, false), (2, true)] {
        let res = chat_request(&gw, stream, &headers).send().await.unwrap();
        let (text, usage) = answer(res, stream).await;
        println!(
            "OBSERVED chat {} invalid UTF-8 in a delta: {text:?}, usage {usage}",
            if stream { "stream" } else { "plain" }
        );
        assert!(text.contains("You said: hi."), "{text}");
        if stream {
            assert!(text.starts_with("\u{fffd}\u{fffd}"), "{text}");
        }
        let total = usage["total_tokens"].as_u64().unwrap();
        assert!(total > 0, "{usage}");
        tokens += total;
        assert_eq!(booked_tokens(&gw, n).await, tokens, "the ledger has it");
    }

    let mut req = client()
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": MODEL, "input": "hi", "stream": true}));
    for (k, v) in &headers {
        req = req.header(*k, v.as_str());
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    let relayed = res.bytes().await.unwrap();
    let record = mock.requests().pop().unwrap();
    assert!(record.finished);
    assert!(std::str::from_utf8(&record.response_body).is_err());
    assert!(
        relayed[..] == record.response_body[..],
        "relayed byte for byte; got the tail {:?}",
        String::from_utf8_lossy(&relayed[relayed.len().saturating_sub(300)..])
    );
    assert!(booked_tokens(&gw, 3).await > tokens, "usage booked");
}
