//! Upstream error answers: 5xx, 429 with and without `Retry-After`, HTML and truncated bodies.

use super::*;

#[tokio::test]
async fn upstream_5xx() {
    let rig = start_rig("").await;
    for status in ["500", "502", "503", "504"] {
        for (endpoint, stream) in BOTH {
            let headers = [("x-mock-status", status)];
            let out = rig.call(endpoint, stream, &headers).await;
            within(&out, SLACK, "5xx");
            let fault = format!("upstream {status} (Model Studio JSON body)");
            match endpoint {
                // Pass-through: the upstream's status and JSON body, unchanged.
                Responses => {
                    assert_eq!(out.status.to_string(), status);
                    assert_eq!(
                        &out.body[..],
                        &rig.mock.requests().last().unwrap().response_body[..]
                    );
                    assert!(out.json()["message"].is_string());
                    observe(
                        &fault,
                        endpoint,
                        stream,
                        &out,
                        &format!(
                            "{} relayed, body byte for byte (code {})",
                            out.status,
                            code_of(&out)
                        ),
                    );
                }
                Chat => {
                    let (want, code) = if status == "504" {
                        (504, "upstream_timeout")
                    } else {
                        (502, "upstream_error")
                    };
                    expect_error(&out, want, Some(code));
                    observe(
                        &fault,
                        endpoint,
                        stream,
                        &out,
                        &format!("{want} OpenAI error `{code}`"),
                    );
                }
            }
            rig.after(&format!("{status} {endpoint:?} {stream}")).await;
        }
    }
    rig.finish().await;
}

#[tokio::test]
async fn rate_limits_with_and_without_retry_after() {
    let rig = start_rig("").await;
    for retry_after in [Some("1"), None] {
        for (endpoint, stream) in BOTH {
            let mut headers = vec![("x-mock-status", "429")];
            if let Some(secs) = retry_after {
                headers.push(("x-mock-retry-after", secs));
            }
            let out = rig.call(endpoint, stream, &headers).await;
            within(&out, SLACK, "429");
            assert_eq!(out.status, 429);
            assert_eq!(out.retry_after.as_deref(), retry_after, "{out:?}");
            let fault = match retry_after {
                Some(_) => "upstream 429 with `Retry-After: 1`",
                None => "upstream 429 without `Retry-After`",
            };
            let seen = match endpoint {
                Responses => {
                    assert_eq!(out.json()["code"], "Throttling");
                    format!(
                        "429 relayed (Model Studio body), Retry-After {}",
                        out.retry_after.as_deref().unwrap_or("absent")
                    )
                }
                Chat => {
                    let err = expect_error(&out, 429, Some("rate_limit_exceeded"));
                    assert_eq!(err["type"], "rate_limit_error");
                    format!(
                        "429 OpenAI `rate_limit_exceeded`, Retry-After {}",
                        out.retry_after.as_deref().unwrap_or("absent")
                    )
                }
            };
            observe(fault, endpoint, stream, &out, &seen);
            // The only key rests for Retry-After (or upstream.rate_limit_cooldown, 200 ms).
            let rest = if retry_after.is_some() { 1100 } else { 300 };
            tokio::time::sleep(Duration::from_millis(rest)).await;
            rig.after(&format!("429 {endpoint:?} {stream}")).await;
        }
    }
    rig.finish().await;
}

#[tokio::test]
async fn truncated_and_non_json_error_bodies() {
    let rig = start_rig("").await;
    for (endpoint, stream) in BOTH {
        // An HTML 502 page from a load balancer.
        let out = rig
            .call(
                endpoint,
                stream,
                &[("x-mock-status", "502"), ("x-mock-error-style", "html")],
            )
            .await;
        within(&out, SLACK, "html");
        let err = expect_error(&out, 502, Some("upstream_error"));
        assert!(!err["message"].as_str().unwrap().contains("<html"), "{err}");
        observe(
            "HTML 502 page (text/html)",
            endpoint,
            stream,
            &out,
            "502 OpenAI error `upstream_error`, no HTML quoted",
        );
        rig.after(&format!("html {endpoint:?} {stream}")).await;

        // A 500 whose JSON body is cut short.
        let out = rig
            .call(
                endpoint,
                stream,
                &[("x-mock-status", "500"), ("x-mock-malformed-at", "0")],
            )
            .await;
        within(&out, SLACK, "cut error");
        let want = if endpoint == Responses { 500 } else { 502 };
        expect_error(&out, want, Some("upstream_error"));
        observe(
            "500 with a truncated JSON error body",
            endpoint,
            stream,
            &out,
            &format!("{want} OpenAI error `upstream_error`"),
        );
        rig.after(&format!("cut error {endpoint:?} {stream}")).await;
    }
    rig.finish().await;
}
