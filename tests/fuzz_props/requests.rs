//! 1. `translate::chat_to_responses` on chat-shaped and arbitrary JSON: a sane plan or a 4xx.

use super::*;
use qwen_gateway::translate::{ChatLimits, chat_to_responses};
use serde_json::json;

fn arb_content() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => arb_string().prop_map(Value::from),
        2 => prop::collection::vec(
            prop_oneof![
                arb_string().prop_map(|t| json!({"type": "text", "text": t})),
                arb_string().prop_map(|u| json!({"type": "image_url", "image_url": {"url": u}})),
                arb_json(),
            ],
            0..4,
        ).prop_map(Value::Array),
        1 => arb_json(),
    ]
}

fn arb_message() -> impl Strategy<Value = Value> {
    let role = prop_oneof![
        prop::sample::select(vec![
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
            "function"
        ])
        .prop_map(Value::from),
        arb_json(),
    ];
    (
        role,
        arb_content(),
        prop::option::of(arb_json()),
        prop::option::of(arb_string()),
    )
        .prop_map(|(role, content, extra, call_id)| {
            let mut m = json!({"role": role, "content": content});
            if let Some(call_id) = call_id {
                m["tool_call_id"] = Value::from(call_id.clone());
                m["tool_calls"] = json!([{"id": call_id, "type": "function",
                    "function": {"name": "f", "arguments": "{}"}}]);
            }
            if let Some(Value::Object(extra)) = extra {
                for (k, v) in extra {
                    m[k] = v;
                }
            }
            m
        })
}

/// Mostly chat-shaped requests with random values, sometimes anything at all.
fn arb_chat_request() -> impl Strategy<Value = Value> {
    let shaped = (
        prop_oneof![Just(json!("qwen3-max")), arb_json()],
        prop::collection::vec(arb_message(), 0..5),
        prop::collection::vec((arb_key(), arb_json()), 0..6),
    )
        .prop_map(|(model, messages, extra)| {
            let mut req = json!({"model": model, "messages": messages});
            for (k, v) in extra {
                req[k] = v;
            }
            req
        });
    prop_oneof![4 => shaped, 1 => arb_json()]
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(cases(256))]

    /// 1. Any JSON: Ok with a sane plan, or a 4xx; never a panic.
    #[test]
    fn chat_to_responses_never_panics(request in arb_chat_request(), max_n in 1u32..9, max_stop in 0usize..6) {
        let limits = ChatLimits { max_n, max_stop };
        match chat_to_responses(&request, &limits) {
            Ok(plan) => {
                prop_assert!(plan.body.is_object());
                prop_assert_eq!(&plan.body["stream"], true);
                prop_assert!(plan.body["model"].is_string());
                prop_assert!(plan.n >= 1 && plan.n <= max_n);
                prop_assert!(plan.stop.len() <= max_stop);
                serde_json::to_vec(&plan.body).expect("the upstream body serializes");
            }
            Err(err) => {
                let api: qwen_gateway::error::ApiError = err.into();
                prop_assert!(api.status.is_client_error(), "{}", api);
                prop_assert!(!api.message.is_empty());
            }
        }
    }

    /// 1b. Any JSON at all (not chat-shaped).
    #[test]
    fn chat_to_responses_on_any_value(request in arb_json()) {
        if let Err(err) = chat_to_responses(&request, &ChatLimits::default()) {
            let api: qwen_gateway::error::ApiError = err.into();
            prop_assert!(api.status.is_client_error());
        }
    }
}
