//! Model Studio errors → client errors, in every shape they arrive in.

use super::errors::{FailureProbe, error_from_payload, normalize_upstream_error};
use serde_json::json;
use std::time::Duration;

fn norm(status: u16, body: serde_json::Value) -> crate::error::ApiError {
    normalize_upstream_error(status, body.to_string().as_bytes(), None)
}

#[test]
fn invalid_parameter_in_both_model_studio_shapes() {
    let e = norm(
        400,
        json!({"request_id": "rid-1", "code": "InvalidParameter", "message": "Range of top_p should be (0.0, 1.0]"}),
    );
    assert_eq!(
        (e.status.as_u16(), e.kind.as_str()),
        (400, "invalid_request_error")
    );
    assert!(e.message.contains("Range of top_p") && e.message.contains("rid-1"));
    let e = norm(
        400,
        json!({"error": {"code": "invalid_parameter_error", "param": "temperature",
        "message": "temperature out of range", "type": "invalid_request_error"}, "request_id": "rid-2"}),
    );
    assert_eq!(
        (e.status.as_u16(), e.kind.as_str()),
        (400, "invalid_request_error")
    );
    assert_eq!(e.param.as_deref(), Some("temperature"));
}

#[test]
fn data_inspection_is_a_content_filter_400() {
    for body in [
        json!({"code": "DataInspectionFailed", "message": "Input data may contain inappropriate content."}),
        json!({"error": {"code": "data_inspection_failed", "message": "Output data may contain inappropriate content.", "type": "data_inspection_failed"}}),
    ] {
        let e = norm(400, body);
        assert_eq!(
            (e.status.as_u16(), e.kind.as_str()),
            (400, "invalid_request_error")
        );
        assert_eq!(e.code.as_deref(), Some("content_filter"));
    }
}

#[test]
fn rejected_upstream_key_is_the_gateway_s_fault_and_leaks_nothing() {
    let e = norm(
        401,
        json!({"code": "InvalidApiKey", "message": "Invalid API-key provided: sk-abc123secret"}),
    );
    assert_eq!((e.status.as_u16(), e.kind.as_str()), (502, "server_error"));
    assert_eq!(e.code.as_deref(), Some("upstream_auth_failed"));
    assert!(!e.message.contains("sk-"));
    assert!(e.message.contains("credentials"));
    let e = norm(401, json!({}));
    assert_eq!(e.code.as_deref(), Some("upstream_auth_failed"));
}

#[test]
fn access_denied_is_403() {
    let e = norm(
        403,
        json!({"code": "AccessDenied", "message": "Model access denied."}),
    );
    assert_eq!(
        (e.status.as_u16(), e.kind.as_str()),
        (403, "permission_error")
    );
}

#[test]
fn model_not_found_is_404() {
    for (status, body) in [
        (
            400,
            json!({"code": "InvalidParameter", "message": "Model not exist."}),
        ),
        (
            404,
            json!({"code": "ModelNotFound", "message": "The model does not exist"}),
        ),
        (404, json!({})),
    ] {
        let e = norm(status, body);
        assert_eq!(
            (e.status.as_u16(), e.kind.as_str()),
            (404, "invalid_request_error")
        );
        assert_eq!(e.code.as_deref(), Some("model_not_found"));
    }
}

#[test]
fn arrearage_is_insufficient_quota() {
    let e = norm(
        400,
        json!({"code": "Arrearage", "message": "Access denied, please make sure your account is in good standing."}),
    );
    assert_eq!(
        (e.status.as_u16(), e.kind.as_str()),
        (429, "insufficient_quota")
    );
}

#[test]
fn throttling_is_a_rate_limit_with_retry_after() {
    let after = Some(Duration::from_secs(7));
    let body = json!({"code": "Throttling.RateQuota", "message": "Requests rate limit exceeded, please try again later."});
    let e = normalize_upstream_error(429, body.to_string().as_bytes(), after);
    assert_eq!(
        (e.status.as_u16(), e.kind.as_str()),
        (429, "rate_limit_error")
    );
    assert_eq!(e.retry_after, after);
    // OpenAI-shaped body.
    let e = norm(
        429,
        json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}),
    );
    assert_eq!(e.kind, "rate_limit_error");
}

#[test]
fn server_errors_and_timeouts() {
    let e = norm(
        500,
        json!({"code": "InternalError", "message": "An internal error has occured"}),
    );
    assert_eq!((e.status.as_u16(), e.kind.as_str()), (502, "server_error"));
    let e = norm(
        503,
        json!({"code": "ServiceUnavailable", "message": "busy"}),
    );
    assert_eq!(e.status.as_u16(), 502);
    let e = normalize_upstream_error(504, b"upstream request timeout", None);
    assert_eq!((e.status.as_u16(), e.kind.as_str()), (504, "server_error"));
    assert!(e.message.contains("upstream request timeout"));
}

#[test]
fn html_bodies_are_never_echoed() {
    let html = format!(
        "<html><head><title>502 Bad Gateway</title></head><body>{}</body></html>",
        "x".repeat(500)
    );
    let e = normalize_upstream_error(502, html.as_bytes(), None);
    assert_eq!((e.status.as_u16(), e.kind.as_str()), (502, "server_error"));
    assert!(!e.message.contains('<'));
    assert!(e.message.len() < 200);
    let e = normalize_upstream_error(502, "y".repeat(1000).as_bytes(), None);
    assert!(e.message.len() < 200);
}

#[test]
fn failed_payloads_become_errors() {
    let rate = json!({"type": "response.failed", "response": {"id": "r", "status": "failed",
        "error": {"code": "Throttling", "message": "Requests rate limit exceeded"}}});
    let e = error_from_payload(&rate).unwrap();
    assert_eq!(
        (e.status.as_u16(), e.kind.as_str()),
        (429, "rate_limit_error")
    );

    let response =
        json!({"id": "r", "status": "failed", "error": {"code": "InternalError", "message": "x"}});
    assert_eq!(error_from_payload(&response).unwrap().status.as_u16(), 502);

    let event = json!({"type": "error", "code": "invalid_parameter_error", "message": "bad", "param": "input"});
    let e = error_from_payload(&event).unwrap();
    assert_eq!(
        (e.status.as_u16(), e.param.as_deref()),
        (400, Some("input"))
    );

    let top = json!({"error": {"code": "data_inspection_failed", "message": "flagged"}});
    assert_eq!(
        error_from_payload(&top).unwrap().code.as_deref(),
        Some("content_filter")
    );
    assert_eq!(
        error_from_payload(&json!({"error": "boom"}))
            .unwrap()
            .message,
        "boom"
    );

    let failed_without_error =
        json!({"type": "response.failed", "response": {"status": "failed", "error": null}});
    assert_eq!(
        error_from_payload(&failed_without_error).unwrap().kind,
        "server_error"
    );
}

#[test]
fn normal_payloads_are_not_errors() {
    let ok =
        json!({"type": "response.completed", "response": {"status": "completed", "error": null}});
    assert!(error_from_payload(&ok).is_none());
    assert!(
        error_from_payload(&json!({"type": "response.output_text.delta", "delta": "x"})).is_none()
    );
    assert!(
        error_from_payload(&json!({"id": "r", "status": "completed", "error": null})).is_none()
    );
}

/// The probe sees a possible failure in every payload `error_from_payload` reads one from,
/// and in none of the everyday events (so those are never built into a `Value`).
#[test]
fn failure_probe_agrees_with_the_classification() {
    let payloads = [
        json!({"type": "error", "code": "Throttling", "message": "slow down"}),
        json!({"type": "response.failed", "response": {"status": "failed", "error": {"code": "InternalError"}}}),
        json!({"error": {"code": "x", "message": "y"}}),
        json!({"error": "plain"}),
        json!({"status": "failed", "id": "resp_1"}),
        json!({"type": "response.in_progress", "response": {"status": "failed"}}),
        json!({"type": "response.created", "response": {"id": "r", "status": "in_progress", "error": null}}),
        json!({"type": "response.output_text.delta", "delta": "failed", "error": null}),
        json!({"id": "resp_1", "status": "completed", "output": [], "response": "not an object"}),
        json!({"type": 7, "status": {"nested": "failed"}}),
    ];
    for payload in payloads {
        let bytes = serde_json::to_vec(&payload).unwrap();
        let probe = FailureProbe::read(&bytes).unwrap();
        assert_eq!(
            probe.may_fail(),
            error_from_payload(&payload).is_some(),
            "{payload}"
        );
    }
    assert!(FailureProbe::read(b"{\"type\":").is_err());
}
