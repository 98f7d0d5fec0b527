//! Reading a client's request body within the configured size limit.

use crate::error::ApiError;
use axum::body::Body;
use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// The whole body, or 413 past `limit` bytes, or 400 when the client broke off.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if is_length_limit(&*err) => Err(too_large(limit)),
        Err(err) => Err(ApiError::invalid_request(format!(
            "could not read the request body: {err}"
        ))),
    }
}

fn is_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<LengthLimitError>() {
            return true;
        }
        current = e.source();
    }
    false
}

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        crate::error::kind::INVALID_REQUEST,
        format!("Request body is larger than the gateway's limit of {limit} bytes (server.max_body_bytes)."),
    )
    .with_code("request_too_large")
}
