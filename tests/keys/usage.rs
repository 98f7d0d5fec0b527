//! The usage ledger: exact on both endpoints, abandoned streams, clients gone early, no auth.

use super::*;

#[tokio::test]
async fn usage_is_exact_after_plain_and_streamed_requests_on_both_endpoints() {
    const N: usize = 3;
    let t = Team::start().await;
    let key = new_key(t.store(), "ledger", |k| k.rpm = Some(1000)).await;
    let id = key_id(t.store(), "ledger").await;
    let mut previous: Option<String> = None;
    for i in 0..N {
        // Plain, chained (cached tokens), with thinking (reasoning) and a web search (x_tools).
        let mut body = json!({"model": MODEL, "input": format!("plain {i}"), "enable_thinking": true,
            "tools": [{"type": "web_search"}]});
        if let Some(prev) = &previous {
            body["previous_response_id"] = json!(prev);
        }
        let res = post(&t.gw, "/v1/responses", Some(&key), body, &[]).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        previous = body["id"].as_str().map(str::to_owned);
        let res = post(
            &t.gw,
            "/v1/responses",
            Some(&key),
            json!({"model": "gpt-4o", "input": "stream", "stream": true, "enable_thinking": true}),
            &[],
        )
        .await;
        assert_eq!(res.status(), 200);
        let _ = res.bytes().await.unwrap();
        for stream in [false, true] {
            let body = json!({"model": MODEL, "stream": stream,
                "messages": [{"role": "user", "content": "chat"}]});
            let res = post(&t.gw, "/v1/chat/completions", Some(&key), body, &[]).await;
            assert_eq!(res.status(), 200);
            let _ = res.bytes().await.unwrap();
        }
    }
    let rows = booked(t.store(), &id, 4 * N as u64).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(
        row.model, MODEL,
        "aliases are booked under the upstream model"
    );
    assert_eq!(row.region, "r0");
    assert_eq!(row.day, qwen_gateway::calendar::today());
    assert_eq!(row.errors, 0);
    let expected = mock_usage(&t.mock);
    assert!(expected.cached_tokens > 0 && expected.reasoning_tokens > 0);
    assert_eq!(expected.tool_calls, N as u64);
    let got = Usage {
        input_tokens: row.input_tokens,
        output_tokens: row.output_tokens,
        cached_tokens: row.cached_tokens,
        reasoning_tokens: row.reasoning_tokens,
        tool_calls: row.tool_calls,
    };
    assert_eq!(got, expected);
    eprintln!("ledger after {} requests: {row:?}", 4 * N);
}

/// A client leaving does not stop the upstream generating (and billing) the answer: the
/// gateway reads on to the terminal event, without relaying, and books the real usage.
#[tokio::test]
async fn an_abandoned_stream_is_read_to_its_end_and_its_usage_booked() {
    let t = Team::start().await;
    let key = new_key(t.store(), "quitter", |k| k.tpm = Some(1_000_000)).await;
    let id = key_id(t.store(), "quitter").await;
    let slow = [("x-mock-tokens", "60"), ("x-mock-delay-ms", "20")];
    for (path, body) in [
        (
            "/v1/responses",
            json!({"model": MODEL, "input": "long", "stream": true}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": MODEL, "stream": true, "messages": [{"role": "user", "content": "long"}]}),
        ),
    ] {
        let res = post(&t.gw, path, Some(&key), body, &slow).await;
        assert_eq!(res.status(), 200);
        read_events_then_leave(res, 3).await;
    }
    assert!(
        eventually(Duration::from_secs(10), || t.mock.stats().completed_streams
            == 2)
        .await,
        "the upstream streams were not read to their end: {:?}",
        t.mock.stats()
    );
    assert_eq!(t.mock.stats().cancelled_streams, 0);
    let rows = booked(t.store(), &id, 2).await;
    assert_eq!(rows[0].model, MODEL);
    assert_eq!(rows[0].region, "r0");
    assert_eq!(rows[0].errors, 0, "the client leaving is not an error");
    // The mock's count for 60 tokens each (its usage, not a guess).
    assert!(rows[0].output_tokens >= 120, "{rows:?}");
    assert_eq!(rows[0].estimated, 0, "{rows:?}");
}

/// With `upstream.abandoned_stream_drain = "0s"` the upstream is closed at once and the
/// usage is estimated from what was relayed.
#[tokio::test]
async fn without_draining_an_abandoned_stream_is_closed_at_once_and_estimated() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = team_toml(&[mock.base_url()], &dir.path().join("gw.db"), "").replace(
        "request_timeout = \"10s\"\n",
        "request_timeout = \"10s\"\nabandoned_stream_drain = \"0s\"\n",
    );
    let gw = start_gateway_with_admin(&toml, Some(ADMIN)).await;
    let key = new_key(&gw.store, "quitter", |k| k.tpm = Some(1_000_000)).await;
    let id = key_id(&gw.store, "quitter").await;
    let slow = [("x-mock-tokens", "500"), ("x-mock-delay-ms", "20")];
    let res = post(
        &gw,
        "/v1/responses",
        Some(&key),
        json!({"model": MODEL, "input": "long", "stream": true}),
        &slow,
    )
    .await;
    read_events_then_leave(res, 8).await;
    assert!(
        eventually(Duration::from_secs(3), || mock.stats().cancelled_streams
            == 1)
        .await,
        "{:?}",
        mock.stats()
    );
    let rows = booked(&gw.store, &id, 1).await;
    assert!(rows[0].output_tokens > 0, "an estimate is booked: {rows:?}");
    assert!(rows[0].input_tokens > 0, "{rows:?}");
    assert_eq!(rows[0].estimated, 1, "and marked as one: {rows:?}");
}

/// A client that hangs up while the gateway still waits for the upstream's head (here a
/// slow non-streaming answer) is still logged and booked once: nothing is lost.
#[tokio::test]
async fn a_client_gone_before_the_head_is_still_booked() {
    let t = Team::start().await;
    let key = new_key(t.store(), "impatient", |_| {}).await;
    let id = key_id(t.store(), "impatient").await;
    for (path, body) in [
        ("/v1/responses", json!({"model": MODEL, "input": "slow"})),
        (
            "/v1/chat/completions",
            json!({"model": MODEL, "messages": [{"role": "user", "content": "slow"}]}),
        ),
    ] {
        let gave_up = client()
            .post(t.gw.url(path))
            .bearer_auth(&key)
            .header("x-mock-header-delay-ms", "1500")
            .timeout(Duration::from_millis(200))
            .json(&body)
            .send()
            .await;
        assert!(gave_up.is_err(), "the client gives up first");
    }
    let rows = booked(t.store(), &id, 2).await;
    assert_eq!(rows[0].model, MODEL);
    assert_eq!(rows[0].errors, 0, "the client leaving is not an error");
}

#[tokio::test]
async fn without_auth_usage_is_booked_under_an_empty_key_id() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = team_toml(&[mock.base_url()], &dir.path().join("gw.db"), "")
        .replace("mode = \"keys\"", "mode = \"none\"");
    let gw = start_gateway(&toml).await;
    let res = post(
        &gw,
        "/v1/responses",
        None,
        json!({"model": MODEL, "input": "hi"}),
        &[],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers().get("x-ratelimit-limit-requests"), None);
    let res = client().get(gw.url("/v1/models")).send().await.unwrap();
    assert_eq!(res.status(), 200, "no key needed");
    let rows = booked(&gw.store, "", 1).await;
    assert_eq!(rows[0].input_tokens, mock_usage(&mock).input_tokens);
}
