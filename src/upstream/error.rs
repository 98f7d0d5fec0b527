//! Why the gateway could not get an answer from any region, and how a client sees that.

use crate::error::{ApiError, ErrorType};
use http::StatusCode;
use std::time::Duration;

/// Why the gateway could not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream region '{region}' is unreachable: {detail}")]
    Unreachable { region: String, detail: String },
    #[error("upstream region '{region}' did not answer within {after:?}")]
    Timeout { region: String, after: Duration },
    #[error("upstream region '{region}' broke off the response: {detail}")]
    Body { region: String, detail: String },
    #[error(
        "upstream region '{region}' answered with a redirect (HTTP {status}); the gateway does not follow or relay redirects"
    )]
    Redirected { region: String, status: u16 },
    #[error("upstream region '{region}' sent a response larger than {limit} bytes")]
    TooLarge { region: String, limit: usize },
    #[error(
        "the gateway's upstream credentials were rejected by region '{region}'; an operator must check the configured keys"
    )]
    AuthRejected { region: String },
    #[error(
        "this conversation lives in region '{region}', which is unavailable ({reason}); retry later"
    )]
    HomeRegionUnavailable { region: String, reason: String },
    #[error("every upstream key is rate-limited; retry after {}s", retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    #[error("no upstream region is available{detail}")]
    NoRegion { detail: String },
    #[error("this API key may not use any available region (allowed: {allowed})")]
    RegionNotAllowed { allowed: String },
}

impl UpstreamError {
    /// Whether another region might answer where this one failed.
    pub fn is_region_failure(&self) -> bool {
        matches!(
            self,
            UpstreamError::Unreachable { .. }
                | UpstreamError::Timeout { .. }
                | UpstreamError::Body { .. }
                | UpstreamError::HomeRegionUnavailable { .. }
        )
    }
}

impl From<UpstreamError> for ApiError {
    fn from(err: UpstreamError) -> Self {
        use UpstreamError as U;
        let message = err.to_string();
        match err {
            U::Timeout { .. } => {
                ApiError::server(StatusCode::GATEWAY_TIMEOUT, message).with_code("upstream_timeout")
            }
            U::NoRegion { .. } => ApiError::server(StatusCode::SERVICE_UNAVAILABLE, message)
                .with_code("no_upstream_available"),
            U::RateLimited { retry_after } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorType::RateLimit, message)
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
                ApiError::new(StatusCode::FORBIDDEN, ErrorType::Permission, message)
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
