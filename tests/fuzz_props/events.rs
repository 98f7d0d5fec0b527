//! 2. `ChunkTranslator` and `CompletionBuilder` on arbitrary Responses event sequences.

use super::*;
use qwen_gateway::translate::{
    ChatContext, ChunkOut, ChunkTranslator, CompletionBuilder, StreamContext,
};
use serde_json::json;

// ---------------------------------------------------------------- event generators

fn arb_item() -> impl Strategy<Value = Value> {
    prop_oneof![
        (arb_item_id(), arb_string(), arb_string(), arb_string()).prop_map(
            |(id, call_id, name, args)| json!({"type": "function_call", "id": id,
                "call_id": call_id, "name": name, "arguments": args})
        ),
        (arb_item_id(), prop::collection::vec(arb_part(), 0..3)).prop_map(
            |(id, content)| json!({"type": "message", "id": id, "role": "assistant",
                "content": content})
        ),
        arb_json(),
    ]
}

fn arb_part() -> impl Strategy<Value = Value> {
    prop_oneof![
        arb_string().prop_map(|t| json!({"type": "output_text", "text": t})),
        arb_string().prop_map(|t| json!({"type": "refusal", "refusal": t})),
        arb_json(),
    ]
}

fn arb_item_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::sample::select(vec!["msg_1", "msg_2", "fc_1", "fc_2", "rs_1"]).prop_map(Value::from),
        1 => arb_json(),
    ]
}

fn arb_response() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![
            "completed",
            "incomplete",
            "failed",
            "in_progress",
            "queued",
        ]),
        prop::collection::vec(arb_item(), 0..3),
        prop_oneof![
            Just(json!({"input_tokens": 3, "output_tokens": 5, "total_tokens": 8})),
            arb_json()
        ],
        prop::option::of(arb_json()),
    )
        .prop_map(|(status, output, usage, error)| {
            let mut r = json!({"id": "resp_1", "created_at": 1_700_000_000, "model": "",
                "status": status, "output": output, "usage": usage});
            if let Some(error) = error {
                r["error"] = error;
            }
            if status == "incomplete" {
                r["incomplete_details"] = json!({"reason": "max_output_tokens"});
            }
            r
        })
}

fn arb_event() -> impl Strategy<Value = Value> {
    let kind = prop::sample::select(vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.refusal.delta",
        "response.refusal.done",
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "error",
        "response.mystery",
    ]);
    let shaped = (
        kind,
        arb_item_id(),
        0u64..3,
        arb_string(),
        arb_item(),
        arb_response(),
    )
        .prop_map(|(kind, item_id, index, text, item, response)| {
            json!({"type": kind, "item_id": item_id, "output_index": index,
                "content_index": index, "summary_index": index, "delta": text,
                "text": text, "arguments": text, "refusal": text, "item": item,
                "response": response, "code": "x", "message": text, "sequence_number": 1})
        });
    prop_oneof![6 => shaped, 1 => arb_json()]
}

fn arb_stream_context() -> impl Strategy<Value = StreamContext> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0u32..3,
        prop::collection::vec("[a-zト ]{1,3}", 0..3),
    )
        .prop_map(
            |(include_usage, emit_usage_chunk, legacy_functions, choice_index, stop)| {
                StreamContext {
                    model: "m".into(),
                    include_usage,
                    emit_usage_chunk,
                    legacy_functions,
                    choice_index,
                    id: None,
                    created: None,
                    stop,
                }
            },
        )
}

fn check_chunk(chunk: &Value, ctx: &StreamContext) -> Result<(), TestCaseError> {
    let text = serde_json::to_string(chunk).expect("serializable");
    let back: Value = serde_json::from_str(&text).expect("valid JSON");
    prop_assert_eq!(&back, chunk);
    prop_assert_eq!(&chunk["object"], "chat.completion.chunk");
    prop_assert!(chunk["id"].is_string());
    prop_assert!(chunk["created"].is_i64() || chunk["created"].is_u64());
    prop_assert!(chunk["model"].is_string());
    let choices = chunk["choices"].as_array().expect("choices array");
    for choice in choices {
        prop_assert_eq!(choice["index"].as_u64(), Some(ctx.choice_index as u64));
        prop_assert!(choice["delta"].is_object());
        prop_assert!(choice["finish_reason"].is_null() || choice["finish_reason"].is_string());
    }
    if choices.is_empty() {
        prop_assert!(
            chunk["usage"].is_object(),
            "only the usage chunk has no choices"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(cases(256))]

    /// 2. The streaming state machine on arbitrary event sequences.
    #[test]
    fn chunk_translator_never_panics_and_emits_valid_chunks(
        ctx in arb_stream_context(),
        events in prop::collection::vec(arb_event(), 0..25),
        end_with_error in any::<bool>(),
    ) {
        let mut t = ChunkTranslator::new(ctx.clone());
        let mut out = Vec::new();
        for event in &events {
            if t.is_done() {
                prop_assert!(t.on_event(event).is_empty(), "nothing after done");
                continue;
            }
            out.extend(t.on_event(event));
        }
        if end_with_error {
            let err = qwen_gateway::error::ApiError::server(http::StatusCode::BAD_GATEWAY, "x");
            out.extend(t.on_upstream_error(&err));
        } else {
            out.extend(t.on_upstream_end());
        }
        prop_assert!(t.is_done());
        let mut finishes = 0;
        let mut errors = 0;
        let mut usage_chunks = 0;
        for (i, item) in out.iter().enumerate() {
            match item {
                ChunkOut::Chunk(chunk) => {
                    let chunk = &chunk.to_value();
                    prop_assert_eq!(errors, 0, "no chunk after an error");
                    check_chunk(chunk, &ctx)?;
                    let choices = chunk["choices"].as_array().unwrap();
                    if choices.is_empty() {
                        usage_chunks += 1;
                        prop_assert_eq!(i, out.len() - 1, "the usage chunk comes last");
                    }
                    finishes += choices.iter().filter(|c| c["finish_reason"].is_string()).count();
                }
                ChunkOut::Error(error) => {
                    errors += 1;
                    prop_assert!(error["error"]["message"].is_string(), "{}", error);
                    prop_assert!(error["error"]["type"].is_string(), "{}", error);
                    serde_json::to_string(error).unwrap();
                }
            }
        }
        prop_assert!(finishes <= 1, "one finish chunk at most: {:?}", out);
        prop_assert!(errors <= 1);
        prop_assert!(finishes + errors >= 1, "every stream ends with a finish or an error");
        prop_assert!(usage_chunks <= 1);
    }

    /// 2b. The non-streaming assembly on the same sequences.
    #[test]
    fn completion_builder_never_panics(
        events in prop::collection::vec(arb_event(), 0..25),
        stop in prop::collection::vec("[a-z ]{1,3}", 0..3),
        legacy in any::<bool>(),
    ) {
        let mut b = CompletionBuilder::new(
            ChatContext { model: "m".into(), legacy_functions: legacy },
            stop,
        );
        for event in &events {
            if b.push(event) {
                break;
            }
        }
        match b.finish() {
            Ok(completion) => {
                prop_assert_eq!(&completion["object"], "chat.completion");
                prop_assert!(completion["choices"].is_array());
                serde_json::to_string(&completion).unwrap();
            }
            Err(err) => prop_assert!(!err.message.is_empty()),
        }
    }
}
