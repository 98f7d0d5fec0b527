//! Malformed SSE, giant events (under and over the limit) and very large answers.

use super::*;

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
