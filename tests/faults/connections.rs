//! Broken and hung connections: resets and hangs before the response head and mid-stream.

use super::*;

#[tokio::test]
async fn connection_reset_before_headers() {
    let rig = start_rig("").await;
    for (endpoint, stream) in BOTH {
        let out = rig
            .call(endpoint, stream, &[("x-mock-drop-after", "0")])
            .await;
        within(&out, SLACK, "reset before head");
        expect_error(&out, 502, Some("upstream_unreachable"));
        observe(
            "connection reset before the response head",
            endpoint,
            stream,
            &out,
            "502 OpenAI error `upstream_unreachable`",
        );
        rig.after(&format!("reset {endpoint:?} {stream}")).await;
    }
    rig.finish().await;
}

#[tokio::test]
async fn connection_reset_mid_stream() {
    let rig = start_rig("").await;
    for (endpoint, stream) in BOTH {
        // Streams: 6 events, then the connection drops. Non-streaming /v1/responses: the
        // head promises the whole body, half arrives, then the connection drops.
        let out = rig
            .call(
                endpoint,
                stream,
                &[
                    ("x-mock-tokens", "20"),
                    (
                        "x-mock-drop-after",
                        if stream || endpoint == Chat { "6" } else { "1" },
                    ),
                ],
            )
            .await;
        within(&out, SLACK, "reset mid-stream");
        let fault = "connection reset mid-body / mid-stream";
        match (endpoint, stream) {
            (_, true) => {
                let before = expect_stream_error(&out, endpoint, "upstream_stream_error");
                observe(
                    fault,
                    endpoint,
                    stream,
                    &out,
                    &format!(
                        "200, {before} relayed, then an error frame `upstream_stream_error`, clean end"
                    ),
                );
            }
            (Responses, false) => {
                expect_error(&out, 502, Some("upstream_error"));
                observe(
                    fault,
                    endpoint,
                    stream,
                    &out,
                    "502 OpenAI error `upstream_error` (broke off)",
                );
            }
            (Chat, false) => {
                expect_error(&out, 502, Some("upstream_stream_error"));
                observe(
                    fault,
                    endpoint,
                    stream,
                    &out,
                    "502 OpenAI error `upstream_stream_error`",
                );
            }
        }
        rig.after(&format!("mid-stream reset {endpoint:?} {stream}"))
            .await;
    }
    rig.finish().await;
}

#[tokio::test]
async fn hang_before_headers() {
    let rig = start_rig("").await;
    for (endpoint, stream) in BOTH {
        let out = rig
            .call(endpoint, stream, &[("x-mock-header-delay-ms", HANG_MS)])
            .await;
        within(&out, FIRST_BYTE + SLACK, "hang before head");
        assert!(out.elapsed >= FIRST_BYTE);
        expect_error(&out, 504, Some("upstream_timeout"));
        observe(
            "upstream hangs before the response head (30 s)",
            endpoint,
            stream,
            &out,
            "504 OpenAI error `upstream_timeout` after first_byte_timeout (400 ms)",
        );
        rig.after(&format!("head hang {endpoint:?} {stream}")).await;
    }
    rig.finish().await;
}

#[tokio::test]
async fn hang_mid_stream() {
    let rig = start_rig("").await;
    for (endpoint, stream) in BOTH {
        // A gate nobody opens: the first event (or half of a non-streaming body) arrives,
        // then nothing.
        let out = rig
            .call(endpoint, stream, &[("x-mock-gate", "never")])
            .await;
        let fault = "upstream hangs mid-stream / mid-body (forever)";
        match (endpoint, stream) {
            (_, true) => {
                within(&out, IDLE + SLACK, "idle stream");
                let before = expect_stream_error(&out, endpoint, "upstream_idle_timeout");
                observe(
                    fault,
                    endpoint,
                    stream,
                    &out,
                    &format!(
                        "200, {before}, then an error frame `upstream_idle_timeout` after stream_idle_timeout (400 ms)"
                    ),
                );
            }
            (Responses, false) => {
                within(&out, REQUEST + SLACK, "hung body");
                assert!(out.elapsed >= REQUEST);
                expect_error(&out, 504, Some("upstream_timeout"));
                observe(
                    fault,
                    endpoint,
                    stream,
                    &out,
                    "504 OpenAI error `upstream_timeout` after request_timeout (1.5 s)",
                );
            }
            (Chat, false) => {
                within(&out, IDLE + SLACK, "idle stream");
                expect_error(&out, 504, Some("upstream_idle_timeout"));
                observe(
                    fault,
                    endpoint,
                    stream,
                    &out,
                    "504 OpenAI error `upstream_idle_timeout` after stream_idle_timeout (400 ms)",
                );
            }
        }
        rig.after(&format!("mid-stream hang {endpoint:?} {stream}"))
            .await;
    }
    rig.finish().await;
}
