//! Model Studio's error bodies. They are not OpenAI-shaped, which is exactly what a gateway
//! in front of it has to cope with, so the mock reproduces both forms Model Studio uses:
//! flat `{"request_id","code","message"}` and nested `{"error":{…},"request_id"}`.

use serde_json::{Value, json};

/// An error answer: HTTP status plus body.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
}

/// A fresh request id, as Model Studio puts in every error body.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl ApiError {
    /// `{"request_id","code","message"}` — the common form.
    pub fn flat(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: json!({"request_id": request_id(), "code": code, "message": message.into()}),
            retry_after: None,
        }
    }

    /// `{"error":{"code","param","message","type"},"request_id"}` — used e.g. for an unknown
    /// `previous_response_id`.
    pub fn nested(
        status: u16,
        code: &str,
        param: Option<&str>,
        message: impl Into<String>,
        kind: &str,
    ) -> ApiError {
        ApiError {
            status,
            body: json!({
                "error": {"code": code, "param": param, "message": message.into(), "type": kind},
                "request_id": request_id(),
            }),
            retry_after: None,
        }
    }

    pub fn invalid_parameter(message: impl Into<String>) -> ApiError {
        ApiError::flat(400, "InvalidParameter", message)
    }

    pub fn invalid_api_key() -> ApiError {
        ApiError::flat(401, "InvalidApiKey", "Invalid API-key provided.")
    }

    pub fn model_not_found() -> ApiError {
        ApiError::flat(404, "ModelNotFound", "Model not exist.")
    }

    pub fn moderation() -> ApiError {
        ApiError::flat(400, "DataInspectionFailed", MODERATION_MESSAGE)
    }

    /// The body `x-mock-status: S` answers with.
    pub fn for_status(status: u16, nested: bool) -> ApiError {
        let (code, nested_code, kind, message) = match status {
            400 => (
                "InvalidParameter",
                "invalid_parameter_error",
                "invalid_request_error",
                "The request is invalid.",
            ),
            401 => (
                "InvalidApiKey",
                "invalid_api_key",
                "invalid_request_error",
                "Invalid API-key provided.",
            ),
            403 => (
                "AccessDenied",
                "access_denied",
                "invalid_request_error",
                "Access denied.",
            ),
            404 => (
                "ModelNotFound",
                "model_not_found",
                "invalid_request_error",
                "Model not exist.",
            ),
            429 => (
                "Throttling",
                "rate_limit_exceeded",
                "rate_limit_error",
                RATE_LIMIT_MESSAGE,
            ),
            500 => (
                "InternalError",
                "internal_error",
                "server_error",
                INTERNAL_ERROR_MESSAGE,
            ),
            502 | 503 => (
                "ServiceUnavailable",
                "service_unavailable",
                "server_error",
                "The service is temporarily unavailable, please try again later.",
            ),
            504 => (
                "RequestTimeOut",
                "request_timeout",
                "server_error",
                "Request timed out, please try again later.",
            ),
            s if s >= 500 => (
                "InternalError",
                "internal_error",
                "server_error",
                INTERNAL_ERROR_MESSAGE,
            ),
            _ => (
                "InvalidParameter",
                "invalid_parameter_error",
                "invalid_request_error",
                "The request is invalid.",
            ),
        };
        if nested {
            ApiError::nested(status, nested_code, None, message, kind)
        } else {
            ApiError::flat(status, code, message)
        }
    }
}

pub const RATE_LIMIT_MESSAGE: &str = "Requests rate limit exceeded, please try again later.";
pub const INTERNAL_ERROR_MESSAGE: &str =
    "An internal error has occured, please try again later or contact service support.";
pub const MODERATION_MESSAGE: &str = "Input or output data may contain inappropriate content.";
