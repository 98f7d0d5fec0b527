//! Conversations stay with the region that holds them (across restarts), or are replayed.

use super::*;

/// Two regions over a SQLite store in `dir`, `r0` preferred; `store_extra` goes into `[store]`.
fn with_sqlite(urls: &[String], dir: &std::path::Path, store_extra: &str) -> String {
    let db = dir.join("gw.db");
    fast(urls, "").replace(
        "url = \"memory\"",
        &format!("url = \"sqlite://{}\"\n{store_extra}", db.display()),
    )
}

async fn create(gw: &Gateway, body: Value) -> reqwest::Response {
    client()
        .post(gw.url("/v1/responses"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The id of a created response, from a plain body or a stream's `response.created`.
async fn response_id(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap();
    if let Ok(body) = serde_json::from_slice::<Value>(&bytes) {
        return body["id"].as_str().unwrap().to_owned();
    }
    let events = sse_json(&bytes);
    events[0]["response"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn follow_ups_and_lookups_go_to_the_region_that_holds_the_conversation_even_after_a_restart()
{
    let dir = tempfile::tempdir().unwrap();
    let (r0, r1) = (start_mock().await, start_mock().await);
    let toml = with_sqlite(&[r0.base_url(), r1.base_url()], dir.path(), "");
    let gw = start_gateway(&toml).await;
    // r0 is sick while the conversation starts, so it starts on r1 (one plain, one streamed).
    r0.set_default_header("x-mock-status", "503");
    let plain = response_id(create(&gw, json!({"model": MODEL, "input": "hi"})).await).await;
    let streamed =
        response_id(create(&gw, json!({"model": MODEL, "input": "hi", "stream": true})).await)
            .await;
    r0.clear_default_headers();
    r0.clear();
    for id in [&plain, &streamed] {
        let res = create(
            &gw,
            json!({"model": MODEL, "input": "and then?", "previous_response_id": id}),
        )
        .await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
    let got = client()
        .get(gw.url(&format!("/v1/responses/{plain}")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(
        served(&r0),
        0,
        "r0 is healthy and preferred, but holds nothing"
    );

    // A restarted gateway still knows (SQLite).
    gw.stop().await;
    let gw = start_gateway(&toml).await;
    let res = create(
        &gw,
        json!({"model": MODEL, "input": "still there?", "previous_response_id": plain}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(served(&r0), 0);

    // Home down and replay off: a 503 that names the region and why.
    r1.set_default_header("x-mock-status", "503");
    let res = create(
        &gw,
        json!({"model": MODEL, "input": "hello?", "previous_response_id": plain}),
    )
    .await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "home_region_unavailable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("'r1'") && message.contains("503"),
        "{message}"
    );
    assert_eq!(
        served(&r0),
        0,
        "never sent to a region that does not hold it"
    );
    // Deleting forgets the id.
    r1.clear_default_headers();
    let deleted = client()
        .delete(gw.url(&format!("/v1/responses/{streamed}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
}

#[tokio::test]
async fn replay_moves_a_conversation_with_its_function_calls_to_a_healthy_region() {
    let dir = tempfile::tempdir().unwrap();
    let (r0, r1) = (start_mock().await, start_mock().await);
    let toml = with_sqlite(
        &[r0.base_url(), r1.base_url()],
        dir.path(),
        "conversations = true",
    );
    let gw = start_gateway(&toml).await;
    let tools = json!([{"type": "function", "name": "weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let first = client()
        .post(gw.url("/v1/responses"))
        .header("x-mock-tool-calls", "1")
        .json(&json!({"model": MODEL, "input": "weather in Paris?", "tools": tools}))
        .send()
        .await
        .unwrap();
    let first: Value = first.json().await.unwrap();
    let call = first["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap()
        .clone();
    let first_id = first["id"].as_str().unwrap();
    assert_eq!(served(&r1), 0);

    // r0, the conversation's home, goes down: the turn is replayed on r1 in full.
    r0.set_default_header("x-mock-status", "503");
    let res = create(
        &gw,
        json!({"model": MODEL, "tools": tools, "previous_response_id": first_id, "stream": true,
               "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}]}),
    )
    .await;
    let second_id = response_id(res).await;
    let sent = r1.requests()[0].body.clone().unwrap();
    assert!(sent.get("previous_response_id").is_none(), "{sent}");
    let input = sent["input"].as_array().unwrap();
    let kinds: Vec<&str> = input
        .iter()
        .map(|i| i["type"].as_str().unwrap_or("message"))
        .collect();
    assert_eq!(
        kinds,
        ["message", "function_call", "function_call_output"],
        "{sent}"
    );
    assert_eq!(input[1]["call_id"], call["call_id"]);
    assert_eq!(input[0]["content"], "weather in Paris?");

    // The conversation now lives on r1 and goes on there natively, even with r0 healed.
    r0.clear_default_headers();
    let res = create(
        &gw,
        json!({"model": MODEL, "input": "thanks", "previous_response_id": second_id}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let third = &r1.requests()[1];
    assert_eq!(
        third.body.as_ref().unwrap()["previous_response_id"],
        second_id.as_str()
    );
    assert_eq!(
        served(&r0),
        2,
        "the first turn and the failed attempt: the replay avoids r0"
    );
}
