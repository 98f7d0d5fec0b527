//! What the mock answers: response shape, `previous_response_id`, tools, reasoning, incomplete.

use super::*;

#[tokio::test]
async fn non_streaming_response_has_the_documented_shape() {
    let mock = start().await;
    let resp = post(
        &mock,
        json!({"model": "qwen3-max-2026-01-23", "input": "こんにちは"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let raw = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&raw).unwrap();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "created_at",
            "model",
            "object",
            "status",
            "output",
            "usage"
        ]
    );
    assert_eq!(body["id"].as_str().unwrap().len(), 36);
    assert!(raw.contains(r#""created_at":"#) && body["created_at"].is_f64());
    assert_eq!(body["model"], "qwen3-max-2026-01-23");
    assert_eq!(body["status"], "completed");
    let msg = &body["output"][0];
    assert!(msg["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(msg["type"], "message");
    assert_eq!(msg["role"], "assistant");
    assert_eq!(
        msg["content"][0],
        json!({"type": "output_text", "text": "こんにちは!私は Qwen です。You said: こんにちは.", "annotations": []})
    );
    let usage = &body["usage"];
    let total = usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap();
    assert_eq!(usage["total_tokens"], total);
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 0);

    let recorded = mock.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].path, "/compatible-mode/v1/responses");
    assert_eq!(recorded[0].status, 200);
    assert_eq!(recorded[0].response_body, raw.as_bytes());
    assert!(recorded[0].finished && !recorded[0].cancelled);
    assert_eq!(recorded[0].body.as_ref().unwrap()["input"], "こんにちは");
    assert_eq!(recorded[0].header("authorization"), Some("Bearer sk-test"));
}

#[tokio::test]
async fn previous_response_id_remembers_the_conversation() {
    let mock = start().await;
    let first: Value = post(
        &mock,
        json!({"model": "qwen", "input": "私の名前は田中です。"}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = first["id"].as_str().unwrap();
    let second: Value = post(
        &mock,
        json!({"model": "qwen", "input": "私の名前を覚えていますか?", "previous_response_id": id}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        second["output"][0]["content"][0]["text"],
        "こんにちは!私は Qwen です。You said: 私の名前を覚えていますか?. Earlier you said: 私の名前は田中です。."
    );
    assert!(
        second["usage"]["input_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(second["usage"]["input_tokens"].as_u64() > first["usage"]["input_tokens"].as_u64());

    let base = format!(
        "{}/api/v2/apps/protocols/compatible-mode/v1/responses",
        mock.base_url()
    );
    let got: Value = client()
        .get(format!("{base}/{id}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, first);
    let items: Value = client()
        .get(format!("{base}/{id}/input_items"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(items["object"], "list");
    assert_eq!(
        items["data"][0]["content"][0]["text"],
        "私の名前は田中です。"
    );
    assert_eq!(items["first_id"], items["data"][0]["id"]);
    assert_eq!(items["has_more"], false);
    let deleted: Value = client()
        .delete(format!("{base}/{id}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        deleted,
        json!({"id": id, "object": "response.deleted", "deleted": true})
    );
    let gone = client()
        .get(format!("{base}/{id}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);

    let resp = post(
        &mock,
        json!({"model": "qwen", "input": "x", "previous_response_id": "nope"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "invalid_parameter_error");
    assert_eq!(err["error"]["param"], "previous_response_id");
    assert_eq!(
        err["error"]["message"],
        "Previous response with id 'nope' not found."
    );
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert!(err["request_id"].is_string());
}

fn weather_tools() -> Value {
    json!([{"type": "function", "name": "get_weather", "description": "", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}])
}

#[tokio::test]
async fn function_calls_and_their_results() {
    let mock = start().await;
    let body: Value = post(
        &mock,
        json!({"model": "qwen", "input": "weather?", "tools": weather_tools()}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let call = &body["output"][0];
    assert_eq!(body["output"].as_array().unwrap().len(), 1);
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["status"], "completed");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["arguments"], r#"{"city":"Tokyo","days":1}"#);
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    assert!(call["call_id"].as_str().unwrap().starts_with("call_"));

    // Answer via previous_response_id: the call is found in the history.
    let reply: Value = post(
        &mock,
        json!({"model": "qwen", "tools": weather_tools(), "previous_response_id": body["id"],
               "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "晴れ"}]}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        reply["output"][0]["content"][0]["text"],
        "Tool get_weather returned: 晴れ"
    );

    // Orphan outputs are refused.
    let resp = post(
        &mock,
        json!({"model": "qwen", "input": [{"type": "function_call_output", "call_id": "zz", "output": "x"}]}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);

    // Streaming, two parallel calls.
    let events = stream_events(
        &mock,
        json!({"model": "qwen", "input": "weather?", "tools": weather_tools(), "stream": true}),
        &[("x-mock-tool-calls", "2")],
    )
    .await;
    let k = kinds(&events);
    assert_eq!(
        k[2..8],
        [
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.output_item.added",
        ]
    );
    assert_eq!(events[2]["item"]["arguments"], "");
    let joined = format!(
        "{}{}",
        events[3]["delta"].as_str().unwrap(),
        events[4]["delta"].as_str().unwrap()
    );
    assert_eq!(joined, events[5]["arguments"].as_str().unwrap());
    let done = &events.last().unwrap()["response"];
    assert_eq!(done["output"].as_array().unwrap().len(), 2);
    assert_ne!(done["output"][0]["call_id"], done["output"][1]["call_id"]);
    assert_eq!(events[7]["output_index"], 1);
}

#[tokio::test]
async fn thinking_and_web_search() {
    let mock = start().await;
    let body = json!({"model": "qwen", "input": "Qwen?", "enable_thinking": true,
                      "tools": [{"type": "web_search"}]});
    let resp: Value = post(&mock, body.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let out = resp["output"].as_array().unwrap();
    assert_eq!(out[0]["type"], "reasoning");
    assert_eq!(
        out[0]["summary"][0],
        json!({"type": "summary_text", "text": "Thinking about: Qwen?"})
    );
    assert_eq!(out[1]["type"], "web_search_call");
    assert_eq!(out[1]["action"]["query"], "Qwen?");
    assert_eq!(
        out[1]["action"]["sources"][0]["url"],
        "https://example.com/qwen"
    );
    assert_eq!(
        out[2]["content"][0]["annotations"][0]["type"],
        "url_citation"
    );
    assert_eq!(
        resp["usage"]["x_tools"],
        json!({"web_search": {"count": 1}})
    );
    let reasoning_tokens = resp["usage"]["output_tokens_details"]["reasoning_tokens"]
        .as_u64()
        .unwrap();
    assert_eq!(reasoning_tokens, 6); // "Thinking about: Qwen?" in 4-char deltas

    let mut streamed = body;
    streamed["stream"] = json!(true);
    let events = stream_events(&mock, streamed, &[]).await;
    let k = kinds(&events);
    assert_eq!(k[2], "response.output_item.added");
    assert_eq!(events[2]["item"]["type"], "reasoning");
    let summary: String = events
        .iter()
        .filter(|e| e["type"] == "response.reasoning_summary_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(summary, "Thinking about: Qwen?");
    assert!(k.contains(&"response.reasoning_summary_text.done".to_string()));
    assert!(k.contains(&"response.web_search_call.completed".to_string()));
    let done = &events.last().unwrap()["response"];
    assert_eq!(done["usage"]["x_tools"]["web_search"]["count"], 1);
    assert_eq!(done["output"][2]["type"], "message");
}

#[tokio::test]
async fn max_output_tokens_and_content_filter_end_incomplete() {
    let mock = start().await;
    let resp: Value = post(
        &mock,
        json!({"model": "qwen", "input": "x", "max_output_tokens": 16}),
    )
    .header("x-mock-tokens", "50")
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(resp["status"], "incomplete");
    assert_eq!(resp["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(resp["usage"]["output_tokens"], 16);

    let events = stream_events(
        &mock,
        json!({"model": "qwen", "input": "x", "stream": true}),
        &[("x-mock-incomplete", "content_filter")],
    )
    .await;
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "content_filter"
    );

    let small = post(
        &mock,
        json!({"model": "qwen", "input": "x", "max_output_tokens": 5}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(small.status(), 400, "Model Studio's minimum is 16");
}
