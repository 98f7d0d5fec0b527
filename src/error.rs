//! The one place where failures become what an OpenAI client sees.
//!
//! Every boundary has its own error enum (`config::ConfigError`, `upstream::UpstreamError`,
//! `translate::TranslateError`, `auth::AuthError`); each converts itself into [`ApiError`]
//! next to its own definition, and only [`ApiError`] knows how to render the OpenAI error
//! shape `{"error":{"message","type","param","code"}}` with an HTTP status. This module
//! depends on nothing else in the crate.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::time::Duration;

/// OpenAI's error `type` values the gateway writes: an enum, so no other module spells
/// one as a string (a typo would be a new error type to every client's `except` clause).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    InvalidRequest,
    Authentication,
    Permission,
    NotFound,
    RateLimit,
    InsufficientQuota,
    Server,
    /// OpenAI's type for a 429 from a requests-per-minute limit.
    Requests,
    /// OpenAI's type for a 429 from a tokens-per-minute (or per-day) limit.
    Tokens,
}

/// Serialised as [`ErrorType::as_str`], the one list of the wire strings.
impl Serialize for ErrorType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl ErrorType {
    /// The wire string, as in `{"error":{"type": …}}`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::Permission => "permission_error",
            Self::NotFound => "not_found_error",
            Self::RateLimit => "rate_limit_error",
            Self::InsufficientQuota => "insufficient_quota",
            Self::Server => "server_error",
            Self::Requests => "requests",
            Self::Tokens => "tokens",
        }
    }
}

impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorType {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The `code` of every error caused by the gateway's own shutdown.
pub const SHUTTING_DOWN: &str = "gateway_shutting_down";

/// An error as an OpenAI client expects it: status, message, type, param, code,
/// plus an optional `Retry-After` hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: ErrorType,
    pub param: Option<String>,
    pub code: Option<String>,
    pub retry_after: Option<Duration>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: ErrorType,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: ErrorType, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
            retry_after: None,
        }
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }

    /// 400 `invalid_request_error`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorType::InvalidRequest, message)
    }

    /// 400 for a parameter the gateway cannot honour (OpenAI's `unsupported_parameter`).
    pub fn unsupported_parameter(param: &str, why: &str) -> Self {
        Self::invalid_request(format!("Unsupported parameter: '{param}' {why}"))
            .with_param(param)
            .with_code("unsupported_parameter")
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorType::InvalidRequest, message).with_code("not_found")
    }

    pub fn server(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, ErrorType::Server, message)
    }

    /// 503 `gateway_shutting_down`: the shutdown grace period ended before this request
    /// did. Retrying reaches another replica (or this one after its restart).
    pub fn shutting_down() -> Self {
        Self::server(
            StatusCode::SERVICE_UNAVAILABLE,
            "The gateway is shutting down and its grace period (server.shutdown_grace) ended before this request finished; retry it.",
        )
        .with_code(SHUTTING_DOWN)
    }

    /// The `{"error":{...}}` JSON value, for bodies and for in-stream error frames.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.envelope()).unwrap_or_default()
    }

    fn envelope(&self) -> Envelope<'_> {
        Envelope {
            error: Body {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code.as_deref(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.kind,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.envelope()).unwrap_or_default();
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        if let Some(after) = self.retry_after {
            let secs = after.as_secs().max(1);
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
            .extensions_mut()
            .insert(ErrorMarker(self.code.clone()));
        response
    }
}

/// Left on error responses so the access log can name the error code.
#[derive(Clone, Debug)]
pub struct ErrorMarker(pub Option<String>);

/// An error and its causes, outermost first (`std::error::Error::sources` is not stable).
pub fn chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |e| e.source())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openai_shape() {
        let err = ApiError::unsupported_parameter("logprobs", "is not supported");
        let json = err.to_json();
        assert_eq!(json["error"]["type"], "invalid_request_error");
        assert_eq!(json["error"]["param"], "logprobs");
        assert_eq!(json["error"]["code"], "unsupported_parameter");
        let plain = ApiError::invalid_request("bad").to_json();
        assert!(plain["error"]["param"].is_null());
        assert!(plain["error"]["code"].is_null());
    }

    #[test]
    fn error_types_serialise_as_openai_s_strings() {
        use ErrorType as T;
        for (t, wire) in [
            (T::InvalidRequest, "invalid_request_error"),
            (T::Authentication, "authentication_error"),
            (T::Permission, "permission_error"),
            (T::NotFound, "not_found_error"),
            (T::RateLimit, "rate_limit_error"),
            (T::InsufficientQuota, "insufficient_quota"),
            (T::Server, "server_error"),
            (T::Requests, "requests"),
            (T::Tokens, "tokens"),
        ] {
            assert_eq!(serde_json::to_value(t).unwrap(), wire);
        }
    }
}
