//! A hostile client cannot dodge a team key's limits or make the gateway spend without
//! bound: abandoned streams are booked, `n` counts `n` times, and oversized chat bodies
//! are refused before they are built.

mod common;

use common::*;
use futures_util::StreamExt;
use qwen_gateway::auth::admin;
use serde_json::{Value, json};
use std::time::Duration;

const MODEL: &str = "qwen3-max-2026-01-23";

async fn team(extra_upstream: &str) -> (Gateway, mock_model_studio::MockServer) {
    let mock = start_mock().await;
    let toml = config_toml(&[mock.base_url()], "[auth]\nmode = \"keys\"\n").replace(
        "request_timeout = \"10s\"\n",
        &format!("request_timeout = \"10s\"\n{extra_upstream}"),
    );
    (start_gateway(&toml).await, mock)
}

async fn key(gw: &Gateway, edit: impl FnOnce(&mut admin::NewKey)) -> String {
    let mut spec = admin::NewKey {
        name: "hostile".into(),
        ..Default::default()
    };
    edit(&mut spec);
    let created = admin::create_key(&gw.store, spec, &[]).await.unwrap();
    created.key.expose().to_owned()
}

/// Opens a stream, reads a few events, and walks away.
async fn abandon(gw: &Gateway, key: &str) -> u16 {
    let res = client()
        .post(gw.url("/v1/responses"))
        .bearer_auth(key)
        .header("x-mock-tokens", "40")
        .header("x-mock-delay-ms", "10")
        .json(&json!({"model": MODEL, "input": "long", "stream": true}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    if status == 200 {
        let mut stream = res.bytes_stream();
        let mut buf = Vec::new();
        while sse_data(&buf).len() < 4 {
            match tokio::time::timeout(Duration::from_secs(3), stream.next()).await {
                Ok(Some(Ok(chunk))) => buf.extend_from_slice(&chunk),
                _ => break,
            }
        }
    }
    status
}

#[tokio::test]
async fn abandoned_streams_are_booked_and_the_token_limit_refuses_the_key() {
    let (gw, mock) = team("").await;
    // The mock bills ~45 tokens for such a stream: 150 a minute allows about three.
    let k = key(&gw, |s| s.tpm = Some(150)).await;
    let mut served = 0;
    let mut refused = false;
    for _ in 0..12 {
        match abandon(&gw, &k).await {
            200 => served += 1,
            429 => {
                refused = true;
                break;
            }
            other => panic!("unexpected status {other}"),
        }
        // Booking waits for the abandoned stream's end; wait until it is in the ledger (the
        // limit judges what is booked, and a loaded machine books later).
        for _ in 0..250 {
            let rows = gw.store.usage(None).await.unwrap();
            if rows.iter().map(|r| r.requests).sum::<u64>() as usize >= served {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The token window is counted right after the row is written.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(mock.stats().completed_streams as usize >= served);
    }
    assert!(
        refused,
        "the key was never refused after {served} abandoned streams"
    );
    assert!(
        served <= 5,
        "{served} abandoned streams served under a 150 tpm limit"
    );
    let rows = gw.store.usage(None).await.unwrap();
    let tokens: u64 = rows.iter().map(|r| r.input_tokens + r.output_tokens).sum();
    assert!(tokens >= 150, "booked {tokens} tokens: {rows:?}");
}

#[tokio::test]
async fn n_choices_count_n_requests_against_rpm_and_book_every_choice() {
    let (gw, mock) = team("").await;
    let k = key(&gw, |s| s.rpm = Some(6)).await;
    let ask = |n: u32| {
        client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(&k)
            .json(&json!({"model": MODEL, "n": n, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    let first = ask(4).await.unwrap();
    assert_eq!(first.status(), 200);
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["choices"].as_array().unwrap().len(), 4);
    assert_eq!(mock.requests().len(), 4);
    // 4 of 6 used: another n = 4 goes past the limit.
    let second = ask(4).await.unwrap();
    assert_eq!(second.status(), 429);
    assert_eq!(mock.requests().len(), 4, "a refused request went upstream");
    let rows = eventually_rows(&gw, 2).await;
    let output: u64 = rows.iter().map(|r| r.output_tokens).sum();
    let one = body["usage"]["completion_tokens"].as_u64().unwrap();
    assert!(
        output >= one && one > 0,
        "booked {output}, answer says {one}"
    );
}

async fn eventually_rows(gw: &Gateway, requests: u64) -> Vec<qwen_gateway::store::UsageRow> {
    for _ in 0..250 {
        let rows = gw.store.usage(None).await.unwrap();
        if rows.iter().map(|r| r.requests).sum::<u64>() >= requests {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {requests} requests booked");
}

#[tokio::test]
async fn chat_bodies_past_the_structure_limits_are_refused_before_they_are_built() {
    let (gw, mock) =
        gateway_with_mock("[chat]\nmax_messages = 100\nmax_content_parts = 50\nmax_tools = 4\n")
            .await;
    let msg = json!({"role": "user", "content": "a"});
    let part = json!({"type": "text", "text": "a"});
    let tool = json!({"type": "function", "function": {"name": "f", "parameters": {}}});
    let cases = [
        (
            "chat.max_messages",
            json!({"model": MODEL, "messages": vec![msg.clone(); 101]}),
        ),
        (
            "chat.max_content_parts",
            json!({"model": MODEL, "messages": [{"role": "user", "content": vec![part; 51]}]}),
        ),
        (
            "chat.max_tools",
            json!({"model": MODEL, "messages": [msg.clone()], "tools": vec![tool; 5]}),
        ),
    ];
    for (limit, body) in cases {
        let res = client()
            .post(gw.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let err = assert_openai_error(res, 400).await;
        assert_eq!(err["error"]["code"], "request_too_large", "{err}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(limit),
            "{err}"
        );
    }
    assert!(mock.requests().is_empty());
    let ok = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&json!({"model": MODEL, "messages": vec![msg; 100]}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}
