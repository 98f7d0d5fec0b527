//! Model Studio's error payloads → the error a client gets, for the pass-through and the chat
//! translation alike (docs/chat-completions.md, "Errors").
//!
//! Model Studio reports errors in two shapes (`{"request_id","code","message"}` and
//! `{"error":{...},"request_id"}`), sometimes inside a 200 (a `failed` response, an
//! `error` event). All of them funnel into one classification so a client sees the same
//! error whichever way it arrived.

use super::events::EventKind;
use crate::error::{ApiError, ErrorType};
use http::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// Longest upstream text (message or non-JSON body) passed to the client.
const MAX_MESSAGE: usize = 200;

/// What the upstream said, whatever its shape.
#[derive(Debug, Default)]
struct Upstream {
    status: Option<u16>,
    code: Option<String>,
    kind: Option<String>,
    message: Option<String>,
    param: Option<String>,
    request_id: Option<String>,
}

/// An upstream HTTP error (status, raw body, Retry-After) → the `ApiError` a chat client
/// gets. Non-JSON bodies (an HTML 502 page) yield a generic message; short plain text is
/// quoted, never long or HTML bodies.
pub fn normalize_upstream_error(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> ApiError {
    let mut upstream = match serde_json::from_slice::<Value>(body) {
        Ok(json) if json.is_object() => parse(&json),
        _ => Upstream {
            message: plain_text(body),
            ..Upstream::default()
        },
    };
    upstream.status = Some(status);
    classify(upstream, retry_after)
}

/// A `failed` response, an `error` event, or any payload with a top-level `error` →
/// `ApiError`. `None` when the payload is not an error.
pub fn error_from_payload(payload: &Value) -> Option<ApiError> {
    let failed_response = |response: &Value| response["status"] == "failed";
    let source = match EventKind::of_event(payload) {
        EventKind::Error => payload,
        EventKind::Failed => &payload["response"],
        _ if has_error(payload) => payload,
        _ if failed_response(payload) => payload,
        _ if failed_response(&payload["response"]) => &payload["response"],
        _ => return None,
    };
    let mut upstream = parse(source);
    if upstream.message.is_none() && upstream.code.is_none() {
        upstream.message = Some("Model Studio reported that the response failed.".into());
    }
    Some(classify(upstream, None))
}

/// The top-level fields that tell whether a payload (a 200 body, a stream event) may report
/// a failure, read without building values for the rest: the same shapes as
/// [`error_from_payload`], so only a payload this says may fail needs a whole `Value`.
/// Deserializing into it also validates the JSON.
#[derive(serde::Deserialize)]
pub struct FailureProbe<'a> {
    #[serde(rename = "type", default)]
    kind: Option<Value>,
    #[serde(default)]
    status: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(borrow, default)]
    response: Option<&'a serde_json::value::RawValue>,
}

impl<'a> FailureProbe<'a> {
    /// Reads `json`; `Err` when it is not a JSON object.
    pub fn read(json: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// The payload's `type` (empty when absent or not a string).
    pub fn kind(&self) -> &str {
        self.kind.as_ref().and_then(Value::as_str).unwrap_or("")
    }

    /// Whether [`error_from_payload`] may find a failure in this payload.
    pub fn may_fail(&self) -> bool {
        #[derive(serde::Deserialize)]
        struct Status {
            #[serde(default)]
            status: Option<Value>,
        }
        let failed =
            |status: &Option<Value>| status.as_ref().and_then(Value::as_str) == Some("failed");
        matches!(
            EventKind::of(self.kind()),
            EventKind::Error | EventKind::Failed
        ) || matches!(self.error, Some(Value::Object(_) | Value::String(_)))
            || failed(&self.status)
            || self.response.is_some_and(|raw| {
                // A `response` that is not an object cannot hold a failed status.
                serde_json::from_str::<Status>(raw.get()).is_ok_and(|r| failed(&r.status))
            })
    }
}

fn has_error(payload: &Value) -> bool {
    matches!(&payload["error"], Value::Object(_) | Value::String(_))
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads any of the known shapes: nested `error` object (OpenAI / Model Studio), an
/// `error` string, or the top-level `code` / `message` of Model Studio and error events.
fn parse(json: &Value) -> Upstream {
    let error = &json["error"];
    let source = if error.is_object() { error } else { json };
    Upstream {
        status: None,
        code: text(&source["code"]),
        kind: text(&source["type"]).filter(|t| t != "error"),
        message: text(&source["message"]).or_else(|| text(error)),
        param: text(&source["param"]),
        request_id: text(&json["request_id"]).or_else(|| text(&source["request_id"])),
    }
}

/// A short, non-HTML body is worth quoting; anything else is not.
fn plain_text(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    let quotable = !text.is_empty()
        && text.chars().count() <= MAX_MESSAGE
        && !text.starts_with('<')
        && !text.to_ascii_lowercase().contains("<html");
    quotable.then(|| text.to_owned())
}

fn clip(message: &str) -> String {
    if message.chars().count() <= MAX_MESSAGE * 5 {
        return message.to_owned();
    }
    let cut: String = message.chars().take(MAX_MESSAGE * 5).collect();
    format!("{cut}…")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Auth,
    ContentFilter,
    Quota,
    RateLimit,
    ModelNotFound,
    Permission,
    Timeout,
    Invalid,
    Server,
}

fn class_of(u: &Upstream) -> Class {
    let code = u.code.as_deref().unwrap_or_default();
    let code_lc = code.to_ascii_lowercase();
    let kind = u.kind.as_deref().unwrap_or_default().to_ascii_lowercase();
    let message = u
        .message
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let has = |needle: &str| code_lc.contains(needle) || kind.contains(needle);
    let status = u.status.unwrap_or(0);
    if has("invalidapikey") || has("invalid_api_key") || status == 401 {
        Class::Auth
    } else if has("datainspection") || has("data_inspection") {
        Class::ContentFilter
    } else if has("arrearage") || has("insufficient_quota") {
        Class::Quota
    } else if has("throttling")
        || has("rate_limit")
        || has("ratelimit")
        || status == 429
        || message.contains("rate limit")
        || message.contains("too many requests")
    {
        Class::RateLimit
    } else if has("modelnotfound")
        || has("model_not_found")
        || message.contains("model not exist")
        || message.contains("model not found")
        || message.contains("model does not exist")
        || status == 404
    {
        Class::ModelNotFound
    } else if has("accessdenied") || has("permission") || status == 403 {
        Class::Permission
    } else if has("timeout") || status == 504 || status == 408 {
        Class::Timeout
    } else if (400..500).contains(&status)
        || has("invalid")
        || has("context_length")
        || kind == ErrorType::InvalidRequest.as_str()
    {
        Class::Invalid
    } else {
        Class::Server
    }
}

fn classify(u: Upstream, retry_after: Option<Duration>) -> ApiError {
    let class = class_of(&u);
    let suffix = u
        .request_id
        .as_deref()
        .map(|id| format!(" (Model Studio request_id: {id})"))
        .unwrap_or_default();
    let said = |fallback: &str| {
        format!(
            "{}{suffix}",
            u.message
                .as_deref()
                .map_or_else(|| fallback.to_owned(), clip)
        )
    };
    match class {
        // The upstream message is not repeated: it may quote part of the key.
        Class::Auth => ApiError::server(
            StatusCode::BAD_GATEWAY,
            format!(
                "Model Studio rejected the gateway's upstream credentials. This is a gateway \
                 configuration problem, not a problem with your request.{suffix}"
            ),
        )
        .with_code("upstream_auth_failed"),
        Class::ContentFilter => ApiError::invalid_request(said(
            "The input or output was flagged by Model Studio's content inspection.",
        ))
        .with_code("content_filter"),
        Class::Quota => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorType::InsufficientQuota,
            said("The Model Studio account behind this gateway is out of quota or overdue."),
        )
        .with_code("insufficient_quota"),
        Class::RateLimit => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorType::RateLimit,
            said("Model Studio rate limit reached; retry later."),
        )
        .with_code("rate_limit_exceeded")
        .with_retry_after(retry_after),
        Class::ModelNotFound => ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorType::InvalidRequest,
            said("The model does not exist or is not available in Model Studio."),
        )
        .with_code("model_not_found")
        .with_param("model"),
        Class::Permission => with_upstream_code(
            ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorType::Permission,
                said("Model Studio denied access (the model may not be enabled for this account)."),
            ),
            &u,
        ),
        Class::Timeout => {
            ApiError::server(StatusCode::GATEWAY_TIMEOUT, said("Model Studio timed out."))
                .with_code("upstream_timeout")
                .with_retry_after(retry_after)
        }
        Class::Invalid => {
            let status = u
                .status
                .filter(|s| (400..500).contains(s))
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::BAD_REQUEST);
            let mut err = ApiError::new(
                status,
                ErrorType::InvalidRequest,
                said("Model Studio rejected the request."),
            );
            err.param = u.param.clone();
            with_upstream_code(err, &u)
        }
        Class::Server => {
            let fallback = match u.status {
                Some(status) => format!("Model Studio returned HTTP {status}."),
                None => "Model Studio failed to produce a response.".to_owned(),
            };
            ApiError::server(StatusCode::BAD_GATEWAY, said(&fallback))
                .with_code("upstream_error")
                .with_retry_after(retry_after)
        }
    }
}

fn with_upstream_code(err: ApiError, u: &Upstream) -> ApiError {
    match &u.code {
        Some(code) => err.with_code(code.clone()),
        None => err,
    }
}
