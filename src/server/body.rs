//! Reading a client's request body within the configured size limit, and parsing it where
//! it cannot stall the runtime. Both model endpoints take their body through [`LimitedBody`],
//! so the size cap, the read timeout and their errors have one home.

use super::AppState;
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::time::Duration;

/// The request body, read whole within `server.max_body_bytes` and
/// `server.body_read_timeout` (see [`read_limited`] for the refusals).
pub struct LimitedBody(pub Bytes);

impl FromRequest<AppState> for LimitedBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let server = &state.settings.server;
        read_limited(
            req.into_body(),
            server.max_body_bytes,
            server.body_read_timeout,
        )
        .await
        .map(Self)
    }
}

/// The whole body, or 413 past `limit` bytes (at once when `Content-Length` says so), 408
/// when it takes longer than `timeout`, or 400 when the client broke off.
pub async fn read_limited(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, ApiError> {
    if http_body::Body::size_hint(&body).lower() > limit as u64 {
        return Err(too_large(limit));
    }
    let read = Limited::new(body, limit).collect();
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if is_length_limit(&*err) => Err(too_large(limit)),
        Ok(Err(err)) => Err(ApiError::invalid_request(format!(
            "could not read the request body: {err}"
        ))),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            crate::error::ErrorType::InvalidRequest,
            format!(
                "The request body did not arrive within {timeout:?} (server.body_read_timeout)."
            ),
        )
        .with_code("request_timeout")),
    }
}

fn is_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    crate::error::chain(err).any(|e| e.is::<LengthLimitError>())
}

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        crate::error::ErrorType::InvalidRequest,
        format!("Request body is larger than the gateway's limit of {limit} bytes (server.max_body_bytes)."),
    )
    .with_code("request_too_large")
}

/// Bodies larger than this are parsed on the blocking pool.
const INLINE_PARSE_BYTES: usize = 256 * 1024;

/// How many large bodies are parsed at once: half the cores (at least one), so a burst of
/// them leaves the other half to the runtime (a 2-core machine parses one at a time).
static LARGE_PARSES: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    tokio::sync::Semaphore::new((cores / 2).max(1))
});

/// Runs `work` (parsing a body of `len` bytes) where it cannot stall the runtime: inline for
/// small bodies, on the blocking pool for large ones (a few at a time), so `/healthz` and
/// small requests stay fast while 10 MB bodies are parsed.
pub async fn off_runtime<T: Send + 'static>(
    len: usize,
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    if len <= INLINE_PARSE_BYTES {
        return work();
    }
    let _permit = LARGE_PARSES.acquire().await;
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|_| {
        Err(ApiError::server(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The request could not be parsed (worker failed).",
        ))
    })
}
