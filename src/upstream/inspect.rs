//! Judging an upstream answer before anything reaches the client: deliver it, try the next
//! key, or try the next region. Model Studio can report a rate limit or a server failure
//! inside an HTTP 200 (a `failed` response, or a `response.failed`/`error` event right after
//! the stream opens), so 200s are inspected too — streams only up to their first output event.

use super::{FailoverReason, Limits, UpstreamBody, UpstreamError, UpstreamResponse, retry_after};
use crate::error::ApiError;
use crate::model_studio::errors::{FailureProbe, error_from_payload};
use crate::model_studio::events::EventKind;
use crate::sse::{self, EventFramer};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use serde_json::Value;
use std::time::{Duration, Instant};

pub enum Verdict {
    Deliver(UpstreamResponse),
    /// 401: the key is bad; quarantine it and try the region's next key.
    KeyRejected(UpstreamResponse),
    /// 403: this key may not do this (Model Studio's `AccessDenied`, e.g. a model the
    /// key's account has not enabled). About the request, not the key's health: try the
    /// region's next key (it may belong to another workspace), never quarantine.
    Forbidden(UpstreamResponse),
    /// 429 (or a rate-limit failure inside a 200): try the next key, then the next region.
    RateLimited(UpstreamResponse, Option<Duration>),
    /// The region is sick (5xx, or a server failure inside a 200): try the next region.
    RegionFailed(Option<UpstreamResponse>, FailoverReason),
    /// The connection broke before anything worth delivering arrived.
    Broken(UpstreamError),
}

pub fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// What a failure payload means for routing.
enum Failure {
    RateLimited,
    Server,
    /// Anything else (moderation, invalid request): the same everywhere, so deliver it.
    Final,
}

fn failure_of(payload: &Value) -> Option<(Failure, ApiError)> {
    let error = error_from_payload(payload)?;
    let failure = match error.status {
        StatusCode::TOO_MANY_REQUESTS => Failure::RateLimited,
        s if s.is_server_error() => Failure::Server,
        _ => Failure::Final,
    };
    Some((failure, error))
}

pub async fn judge(response: UpstreamResponse, limits: Limits) -> Verdict {
    let status = response.status;
    let buffer = |mut response: UpstreamResponse| async move {
        let region = response.region.to_string();
        match response.body.read_all(&region, limits).await {
            Ok(bytes) => {
                response.body = UpstreamBody::buffered(bytes);
                Ok(response)
            }
            Err(err) => Err(err),
        }
    };
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return match buffer(response).await {
            Ok(r) if status == StatusCode::FORBIDDEN => Verdict::Forbidden(r),
            Ok(r) => Verdict::KeyRejected(r),
            Err(e) => Verdict::Broken(e),
        };
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        let after = retry_after(&response.headers);
        return match buffer(response).await {
            Ok(r) => Verdict::RateLimited(r, after),
            Err(e) => Verdict::Broken(e),
        };
    }
    if status.is_server_error() {
        return match buffer(response).await {
            Ok(r) => Verdict::RegionFailed(Some(r), FailoverReason::ServerError),
            Err(_) => Verdict::RegionFailed(None, FailoverReason::ServerError),
        };
    }
    if status.is_redirection() {
        // Never followed (it would carry the key), and never relayed: a client following it
        // would take its own credentials wherever the upstream points.
        return Verdict::Broken(UpstreamError::Redirected {
            region: response.region.to_string(),
            status: status.as_u16(),
        });
    }
    if !status.is_success() {
        return Verdict::Deliver(response);
    }
    if is_event_stream(&response.headers) {
        return hold_until_output(response, limits).await;
    }
    let json_expected = response
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.contains("json"));
    match buffer(response).await {
        Ok(r) => {
            let may_fail = r
                .body_peek()
                .map(|bytes| FailureProbe::read(bytes).map(|probe| probe.may_fail()));
            if json_expected && let Some(Err(err)) = &may_fail {
                // A 200 whose JSON is cut off or garbled is a broken answer, not one to relay.
                return Verdict::Broken(UpstreamError::Body {
                    region: r.region.to_string(),
                    detail: format!("the response body is not valid JSON ({err})"),
                });
            }
            // The whole body becomes a `Value` only when it may report a failure: building
            // one for every plain answer was the biggest cost of a pass-through (callgrind).
            let mut r = r;
            let failure = match (&may_fail, r.body_peek()) {
                (Some(Ok(true)), Some(bytes)) => serde_json::from_slice::<Value>(bytes)
                    .ok()
                    .and_then(|v| failure_of(&v)),
                _ => None,
            };
            let failure = failure.map(|(failure, error)| {
                r.failed_before_output = Some(error);
                failure
            });
            match failure {
                Some(Failure::RateLimited) => Verdict::RateLimited(r, None),
                Some(Failure::Server) => {
                    Verdict::RegionFailed(Some(r), FailoverReason::FailedResponse)
                }
                _ => Verdict::Deliver(r),
            }
        }
        Err(e) => Verdict::Broken(e),
    }
}

/// Whether an event is still part of a stream's opening (no output yet).
fn is_preamble(kind: &str) -> bool {
    matches!(
        EventKind::of(kind),
        EventKind::Created | EventKind::InProgress | EventKind::Queued
    )
}

/// What one event of a stream's opening decides: `None` to read on (a preamble event, or
/// data that is not JSON), `Some(None)` to deliver (the first output event), or the failure
/// it reports. Only an event that may report a failure is built into a `Value`.
fn opening_verdict(data: &[u8]) -> Option<Option<(Failure, ApiError)>> {
    if data.is_empty() || data == b"[DONE]" {
        return None;
    }
    if let Ok(probe) = FailureProbe::read(data)
        && !probe.may_fail()
    {
        return (!is_preamble(probe.kind())).then_some(None);
    }
    // May fail, or not readable as it is (invalid UTF-8 is read lossily).
    let event = serde_json::from_slice::<Value>(data)
        .or_else(|_| serde_json::from_str::<Value>(&String::from_utf8_lossy(data)))
        .ok()?;
    if let Some(failure) = failure_of(&event) {
        return Some(Some(failure));
    }
    let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
    (!is_preamble(kind)).then_some(None)
}

/// Reads a 200 stream until its first output event, a failure, its end, or the hold bound;
/// everything read is kept to be relayed unchanged.
async fn hold_until_output(mut response: UpstreamResponse, limits: Limits) -> Verdict {
    if limits.hold_first_event.is_zero() {
        return Verdict::Deliver(response);
    }
    let until = Instant::now() + limits.hold_first_event;
    let mut held: Vec<Bytes> = Vec::new();
    let mut held_bytes = 0usize;
    let mut framer = EventFramer::default();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let chunk = match tokio::time::timeout(left, response.body.chunk()).await {
            Err(_) => break,
            Ok(Err(err)) => {
                return Verdict::Broken(UpstreamError::Body {
                    region: response.region.to_string(),
                    detail: err.to_string(),
                });
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => chunk,
        };
        held_bytes += chunk.len();
        let complete = framer.push(chunk.clone());
        held.push(chunk);
        if framer.pending_len() > limits.max_response_bytes
            || held_bytes > limits.max_response_bytes
        {
            // Holding is bounded in bytes as well as time: the reader it is handed to fails
            // the stream on its own bound.
            break;
        }
        let mut decided = None;
        for event in complete.iter().flat_map(|bytes| sse::events(bytes)) {
            let Some(verdict) = opening_verdict(&sse::data_of(event)) else {
                continue;
            };
            if let Some((failure, error)) = verdict {
                response.failed_before_output = Some(error);
                decided = Some(Some(failure));
            } else {
                decided = Some(None);
            }
            break;
        }
        match decided {
            None => continue,
            Some(failure) => {
                let region_failed = matches!(failure, Some(Failure::Server));
                let rate_limited = matches!(failure, Some(Failure::RateLimited));
                response.body =
                    std::mem::replace(&mut response.body, UpstreamBody::buffered(Bytes::new()))
                        .with_held(held);
                return if rate_limited {
                    Verdict::RateLimited(response, None)
                } else if region_failed {
                    Verdict::RegionFailed(Some(response), FailoverReason::FailedEvent)
                } else {
                    Verdict::Deliver(response)
                };
            }
        }
    }
    response.body =
        std::mem::replace(&mut response.body, UpstreamBody::buffered(Bytes::new())).with_held(held);
    Verdict::Deliver(response)
}

impl UpstreamResponse {
    /// The body's bytes when it was fully buffered.
    fn body_peek(&self) -> Option<&Bytes> {
        self.body.peek_buffered()
    }
}
