//! The one place where failures become what an OpenAI client sees.
//!
//! Every boundary has its own error enum (`config::ConfigError`, `upstream::UpstreamError`,
//! `translate::TranslateError`); each converts into [`ApiError`], and only [`ApiError`] knows
//! how to render the OpenAI error shape
//! `{"error":{"message","type","param","code"}}` with an HTTP status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::time::Duration;

/// OpenAI's error `type` values the gateway uses.
pub mod kind {
    pub const INVALID_REQUEST: &str = "invalid_request_error";
    pub const AUTHENTICATION: &str = "authentication_error";
    pub const PERMISSION: &str = "permission_error";
    pub const NOT_FOUND: &str = "not_found_error";
    pub const RATE_LIMIT: &str = "rate_limit_error";
    pub const INSUFFICIENT_QUOTA: &str = "insufficient_quota";
    pub const SERVER: &str = "server_error";
}

/// The `code` of every error caused by the gateway's own shutdown.
pub const SHUTTING_DOWN: &str = "gateway_shutting_down";

/// An error as an OpenAI client expects it: status, message, type, param, code,
/// plus an optional `Retry-After` hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: String,
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
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind: kind.to_owned(),
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
        Self::new(StatusCode::BAD_REQUEST, kind::INVALID_REQUEST, message)
    }

    /// 400 for a parameter the gateway cannot honour (OpenAI's `unsupported_parameter`).
    pub fn unsupported_parameter(param: &str, why: &str) -> Self {
        Self::invalid_request(format!("Unsupported parameter: '{param}' {why}"))
            .with_param(param)
            .with_code("unsupported_parameter")
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, kind::INVALID_REQUEST, message).with_code("not_found")
    }

    pub fn server(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, kind::SERVER, message)
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
                kind: &self.kind,
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

impl From<crate::upstream::UpstreamError> for ApiError {
    fn from(err: crate::upstream::UpstreamError) -> Self {
        use crate::upstream::UpstreamError as U;
        let message = err.to_string();
        match err {
            U::Timeout { .. } => {
                ApiError::server(StatusCode::GATEWAY_TIMEOUT, message).with_code("upstream_timeout")
            }
            U::NoRegion { .. } => ApiError::server(StatusCode::SERVICE_UNAVAILABLE, message)
                .with_code("no_upstream_available"),
            U::RateLimited { retry_after } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", message)
                    .with_code("rate_limit_exceeded")
                    .with_retry_after(Some(Duration::from_secs(
                        retry_after.as_secs_f64().ceil().max(1.0) as u64,
                    )))
            }
            U::HomeRegionUnavailable { .. } => {
                ApiError::server(StatusCode::SERVICE_UNAVAILABLE, message)
                    .with_code("home_region_unavailable")
            }
            U::AuthRejected { .. } => {
                ApiError::server(StatusCode::BAD_GATEWAY, message).with_code("upstream_auth_failed")
            }
            U::RegionNotAllowed { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "permission_error", message)
                    .with_code("region_not_allowed")
            }
            U::Unreachable { .. } => {
                ApiError::server(StatusCode::BAD_GATEWAY, message).with_code("upstream_unreachable")
            }
            U::Body { .. } | U::TooLarge { .. } | U::Redirected { .. } => {
                ApiError::server(StatusCode::BAD_GATEWAY, message).with_code("upstream_error")
            }
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(err: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError as A;
        use crate::store::StoreError;
        let message = err.to_string();
        match err {
            A::MissingKey | A::UnknownKey | A::RevokedKey { .. } | A::ExpiredKey { .. } => {
                ApiError::new(StatusCode::UNAUTHORIZED, kind::INVALID_REQUEST, message)
                    .with_code("invalid_api_key")
            }
            A::AdminUnauthorized => {
                ApiError::new(StatusCode::UNAUTHORIZED, kind::INVALID_REQUEST, message)
                    .with_code("invalid_admin_token")
            }
            A::AdminThrottled { retry_after } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, kind::RATE_LIMIT, message)
                    .with_code("admin_auth_throttled")
                    .with_retry_after(Some(retry_after))
            }
            A::AdminDisabled { .. } => ApiError::not_found(message),
            A::ModelNotAllowed { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, kind::PERMISSION, message)
                    .with_param("model")
                    .with_code("model_not_allowed")
            }
            A::RateLimited {
                kind: limit,
                retry_after,
                ..
            } => ApiError::new(StatusCode::TOO_MANY_REQUESTS, limit.error_type(), message)
                .with_code("rate_limit_exceeded")
                .with_retry_after(Some(Duration::from_secs(
                    retry_after.as_secs_f64().ceil().max(1.0) as u64,
                ))),
            A::ModelRequired { .. } => ApiError::invalid_request(message)
                .with_param("model")
                .with_code("missing_required_parameter"),
            A::InvalidRequest(_) => ApiError::invalid_request(message),
            A::InvalidParam { param, .. } => ApiError::invalid_request(message)
                .with_param(param)
                .with_code("invalid_value"),
            A::KeyNotFound(_) => ApiError::new(StatusCode::NOT_FOUND, kind::NOT_FOUND, message)
                .with_code("key_not_found"),
            A::Store(StoreError::Conflict { .. }) => {
                ApiError::new(StatusCode::CONFLICT, kind::INVALID_REQUEST, message)
                    .with_code("key_exists")
            }
            A::Store(_) => ApiError::server(
                StatusCode::SERVICE_UNAVAILABLE,
                "The gateway's key store is unavailable; retry shortly.",
            )
            .with_code("store_unavailable"),
            A::Random(_) => ApiError::server(StatusCode::INTERNAL_SERVER_ERROR, message),
        }
    }
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
}
