//! async-openai's Responses API against qwen-gateway's /v1/responses pass-through.
//!
//! Model Studio writes `created_at` as a float (`1769084048.0`); async-openai's `Response` has
//! `created_at: u64` (src/types/responses/response.rs), so every answer and every `response.*`
//! event fails to parse unless the gateway's `[responses] conformance = true` rewrites those
//! floats to integers. All tests but the first run with that setting.

mod common;

use std::time::Duration;

use async_openai::error::OpenAIError;
use async_openai::traits::{EventType, RequestOptionsBuilder};
use async_openai::types::responses::{
    CreateResponseArgs, EasyInputContent, EasyInputMessage, FunctionCallOutputItemParam,
    FunctionToolArgs, InputItem, InputParam, Item, MessageType, OutputItem,
    ResponseFormatJsonSchema, ResponseStreamEvent, Role, Status, Tool,
};
use common::{Stack, MODEL};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

const CONFORMANCE: &str = "[responses]\nconformance = true\n";

fn user(text: &str) -> InputItem {
    InputItem::EasyMessage(EasyInputMessage {
        r#type: MessageType::Message,
        role: Role::User,
        content: EasyInputContent::Text(text.into()),
        phase: None,
    })
}

fn weather_tool() -> Tool {
    Tool::Function(
        FunctionToolArgs::default()
            .name("get_weather")
            .description("Current weather for a city")
            .parameters(json!({
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            }))
            .build()
            .unwrap(),
    )
}

/// Collects a whole stream, bounded: a stream that neither ends nor errors fails the test.
async fn collect<T>(
    stream: impl futures::Stream<Item = Result<T, OpenAIError>>,
) -> Vec<Result<T, OpenAIError>> {
    tokio::time::timeout(Duration::from_secs(20), stream.collect::<Vec<_>>())
        .await
        .expect("the stream ends by itself")
}

#[tokio::test]
async fn without_conformance_the_float_created_at_does_not_parse() {
    let stack = Stack::start();
    let client = stack.client();
    let request = CreateResponseArgs::default()
        .model(MODEL)
        .input("hi")
        .build()
        .unwrap();
    let err = client
        .responses()
        .create(request.clone())
        .await
        .unwrap_err();
    let OpenAIError::JSONDeserialize(e, body) = &err else {
        panic!("{err:?}")
    };
    assert!(e.to_string().contains("floating point"), "{e}");
    assert!(
        body.contains(r#""created_at":"#) && body.contains(".0,"),
        "{body}"
    );

    // Streaming: the very first event (response.created) already fails.
    let events = collect(
        client
            .responses()
            .create_stream(request)
            .await
            .expect("a 200 head"),
    )
    .await;
    let Some(Err(OpenAIError::JSONDeserialize(e, data))) = events.first() else {
        panic!("{events:?}")
    };
    assert!(e.to_string().contains("floating point"), "{e}");
    assert!(data.contains(r#""type":"response.created""#), "{data}");
}

#[tokio::test]
async fn create_plain() {
    let stack = Stack::with_config(CONFORMANCE);
    let client = stack.client();
    let request = CreateResponseArgs::default()
        .model(MODEL)
        .input("こんにちは、一文で自己紹介をしてください。")
        .build()
        .unwrap();
    let response = client.responses().create(request).await.expect("response");
    assert_eq!(response.status, Status::Completed);
    assert_eq!(response.model, MODEL);
    assert!(
        response.created_at > 1_600_000_000,
        "{}",
        response.created_at
    );
    let text = response.output_text().expect("output text");
    assert_eq!(
        text,
        "こんにちは!私は Qwen です。You said: こんにちは、一文で自己紹介をしてください。."
    );
    let usage = response.usage.expect("usage");
    assert!(usage.input_tokens > 0 && usage.output_tokens > 0);
    assert_eq!(usage.total_tokens, usage.input_tokens + usage.output_tokens);
}

#[tokio::test]
async fn stream_events_and_text() {
    let stack = Stack::with_config(CONFORMANCE);
    let client = stack.client();
    let request = CreateResponseArgs::default()
        .model(MODEL)
        .input("人工知能について")
        .build()
        .unwrap();
    let stream = client
        .responses()
        .create_stream(request)
        .await
        .expect("stream");
    let events: Vec<ResponseStreamEvent> = collect(stream)
        .await
        .into_iter()
        .map(|e| e.expect("every event parses"))
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type()).collect();
    assert_eq!(types[0], "response.created");
    assert_eq!(types[1], "response.in_progress");
    assert_eq!(*types.last().unwrap(), "response.completed");
    assert!(types.contains(&"response.output_text.done"), "{types:?}");
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            ResponseStreamEvent::ResponseOutputTextDelta(d) => Some(d.delta.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        text,
        "こんにちは!私は Qwen です。You said: 人工知能について."
    );
    let ResponseStreamEvent::ResponseCompleted(done) = events.last().unwrap() else {
        unreachable!()
    };
    assert_eq!(done.response.status, Status::Completed);
    assert_eq!(done.response.output_text().as_deref(), Some(text.as_str()));
    assert!(done.response.created_at > 1_600_000_000);
    let usage = done.response.usage.as_ref().expect("usage");
    assert!(usage.output_tokens > 0);
    assert_eq!(usage.total_tokens, usage.input_tokens + usage.output_tokens);
}

#[tokio::test]
async fn tool_call_round_trip() {
    let stack = Stack::with_config(CONFORMANCE);
    let client = stack.client();
    let mut input = vec![user("What's the weather in Tokyo?")];
    let first = client
        .responses()
        .create(
            CreateResponseArgs::default()
                .model(MODEL)
                .input(InputParam::Items(input.clone()))
                .tools(vec![weather_tool()])
                .build()
                .unwrap(),
        )
        .await
        .expect("first turn");
    let call = first
        .output
        .iter()
        .find_map(|item| match item {
            OutputItem::FunctionCall(call) => Some(call.clone()),
            _ => None,
        })
        .expect("a function_call output item");
    assert_eq!(call.name, "get_weather");
    let args: serde_json::Value = serde_json::from_str(&call.arguments).unwrap();
    assert_eq!(args, json!({"city": "Tokyo"}));

    // Stateless replay: the call item goes back as input, followed by its output.
    input.push(InputItem::from(OutputItem::FunctionCall(call.clone())));
    input.push(InputItem::Item(Item::FunctionCallOutput(
        FunctionCallOutputItemParam {
            call_id: Some(call.call_id.clone()),
            output: "sunny, 21°C".into(),
            id: None,
            status: None,
            name: None,
            namespace: None,
            caller: None,
        },
    )));
    let second = client
        .responses()
        .create(
            CreateResponseArgs::default()
                .model(MODEL)
                .input(InputParam::Items(input))
                .tools(vec![weather_tool()])
                .build()
                .unwrap(),
        )
        .await
        .expect("second turn");
    assert_eq!(second.status, Status::Completed);
    assert_eq!(
        second.output_text().as_deref(),
        Some("Tool get_weather returned: sunny, 21°C")
    );
}

#[tokio::test]
async fn streamed_function_call_arguments() {
    let stack = Stack::with_config(CONFORMANCE);
    let client = stack.client();
    let request = CreateResponseArgs::default()
        .model(MODEL)
        .input("weather?")
        .tools(vec![weather_tool()])
        .build()
        .unwrap();
    let stream = client
        .responses()
        .create_stream(request)
        .await
        .expect("stream");
    let events: Vec<ResponseStreamEvent> = collect(stream)
        .await
        .into_iter()
        .map(|e| e.expect("every event parses"))
        .collect();
    let done = events
        .iter()
        .find_map(|e| match e {
            ResponseStreamEvent::ResponseOutputItemDone(d) => match &d.item {
                OutputItem::FunctionCall(call) => Some(call.clone()),
                _ => None,
            },
            _ => None,
        })
        .expect("a function_call item done");
    assert_eq!(done.name, "get_weather");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&done.arguments).unwrap(),
        json!({"city": "Tokyo"})
    );
    assert!(matches!(
        events.last(),
        Some(ResponseStreamEvent::ResponseCompleted(_))
    ));
}

#[derive(Debug, Deserialize, PartialEq)]
struct Trip {
    city: String,
    days: u32,
}

#[tokio::test]
async fn structured_output_json_schema_parses() {
    let stack = Stack::with_config(CONFORMANCE);
    let client = stack.client();
    let request = CreateResponseArgs::default()
        .model(MODEL)
        .input("Plan a trip")
        .text(ResponseFormatJsonSchema {
            name: "Trip".into(),
            description: None,
            schema: json!({
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city", "days"],
                "additionalProperties": false,
            }),
            strict: Some(true),
        })
        .build()
        .unwrap();
    let response = client.responses().create(request).await.expect("response");
    let text = response.output_text().expect("output text");
    let trip: Trip = serde_json::from_str(&text).expect("the text is an instance of the schema");
    assert_eq!(
        trip,
        Trip {
            city: "Tokyo".into(),
            days: 1
        }
    );
}

#[tokio::test]
async fn a_broken_stream_ends_with_an_error_event() {
    let stack = Stack::with_config(CONFORMANCE);
    let client = stack.client();
    let request = CreateResponseArgs::default()
        .model(MODEL)
        .input("hi")
        .build()
        .unwrap();
    let stream = client
        .responses()
        .header("x-mock-drop-after", "6")
        .unwrap()
        .header("x-mock-tokens", "30")
        .unwrap()
        .create_stream(request)
        .await
        .expect("the head is a 200");
    let items = collect(stream).await;
    // async-openai parses the gateway's `error` event into a typed item
    // (ResponseStreamEvent::ResponseError), not into an Err: the caller must match on it.
    let events: Vec<ResponseStreamEvent> = items
        .into_iter()
        .map(|e| e.expect("every event parses"))
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type()).collect();
    assert!(types.contains(&"response.output_text.delta"), "{types:?}");
    assert!(!types.contains(&"response.completed"), "{types:?}");
    let Some(ResponseStreamEvent::ResponseError(error)) = events.last() else {
        panic!("{types:?}")
    };
    assert_eq!(error.code.as_deref(), Some("upstream_stream_error"));
    assert!(error.message.contains("upstream"), "{}", error.message);
    assert_eq!(error.sequence_number, events.len() as u64 - 1);
}

#[tokio::test]
async fn errors_before_the_stream_are_api_errors() {
    let stack = Stack::with_config(CONFORMANCE);
    let client = stack.client();
    let request = CreateResponseArgs::default()
        .model(MODEL)
        .input("hi")
        .previous_response_id("does-not-exist")
        .build()
        .unwrap();
    let err = client.responses().create(request).await.unwrap_err();
    let OpenAIError::ApiError(api) = err else {
        panic!("{err:?}")
    };
    assert_eq!(api.status_code.as_u16(), 400);
}
