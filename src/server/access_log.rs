//! One structured log line per request, written when the response body is finished or
//! dropped — so streams are logged with their usage and with whether the client stayed.

use crate::usage::Usage;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

/// What handlers learn about a request, for the log line (and later metrics and the ledger).
#[derive(Debug, Default, Clone)]
pub struct RequestInfo {
    pub region: Option<Arc<str>>,
    pub model: Option<String>,
    pub stream: bool,
    pub usage: Option<Usage>,
    pub error_code: Option<String>,
}

/// Shared between the handler (and its stream) and the log line.
#[derive(Debug, Default, Clone)]
pub struct RequestMeta(Arc<Mutex<RequestInfo>>);

impl RequestMeta {
    pub fn update(&self, f: impl FnOnce(&mut RequestInfo)) {
        match self.0.lock() {
            Ok(mut info) => f(&mut info),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    pub fn snapshot(&self) -> RequestInfo {
        match self.0.lock() {
            Ok(info) => info.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Middleware: attaches a [`RequestMeta`] and wraps the response body to log at its end.
pub async fn access_log(mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let meta = RequestMeta::default();
    req.extensions_mut().insert(meta.clone());
    let line = LogLine {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        request_id: req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        endpoint: crate::telemetry::endpoint(req.uri().path()),
        status: 0,
        start,
        meta,
        streaming: false,
    };
    let response = next.run(req).await;
    let (parts, body) = response.into_parts();
    let mut line = line;
    line.status = parts.status.as_u16();
    if let Some(marker) = parts.extensions.get::<crate::error::ErrorMarker>() {
        let code = marker.0.clone();
        line.meta
            .update(|i| i.error_code = i.error_code.take().or(code));
    }
    line.streaming = line.meta.snapshot().stream;
    if line.streaming {
        metrics::gauge!("qwen_gateway_open_streams", "endpoint" => line.endpoint).increment(1.0);
    }
    let body = Body::new(LoggedBody {
        inner: body,
        line: Some(line),
        first_byte: None,
    });
    Response::from_parts(parts, body)
}

struct LogLine {
    method: String,
    path: String,
    request_id: String,
    endpoint: &'static str,
    status: u16,
    start: Instant,
    meta: RequestMeta,
    /// Counted in `qwen_gateway_open_streams` until the line is emitted.
    streaming: bool,
}

impl LogLine {
    fn emit(self, first_byte: Option<Instant>, outcome: &'static str) {
        let info = self.meta.snapshot();
        let usage = info.usage.unwrap_or_default();
        let ttfb_ms = first_byte.map(|t| t.duration_since(self.start).as_secs_f64() * 1e3);
        tracing::info!(
            target: "qwen_gateway::access",
            request_id = %self.request_id,
            method = %self.method,
            path = %self.path,
            status = self.status,
            region = info.region.as_deref().unwrap_or("-"),
            model = info.model.as_deref().unwrap_or("-"),
            stream = info.stream,
            latency_ms = self.start.elapsed().as_secs_f64() * 1e3,
            ttfb_ms = ttfb_ms.unwrap_or(-1.0),
            input_tokens = usage.input_tokens,
            output_tokens = usage.output_tokens,
            cached_tokens = usage.cached_tokens,
            reasoning_tokens = usage.reasoning_tokens,
            error_code = info.error_code.as_deref().unwrap_or("-"),
            outcome,
            "request"
        );
        self.record_metrics(&info, first_byte);
    }

    fn record_metrics(&self, info: &RequestInfo, first_byte: Option<Instant>) {
        let endpoint = self.endpoint;
        if self.streaming {
            metrics::gauge!("qwen_gateway_open_streams", "endpoint" => endpoint).decrement(1.0);
        }
        let region = info.region.as_deref().unwrap_or("none").to_owned();
        let model = info.model.clone().unwrap_or_else(|| "none".into());
        metrics::counter!(
            "qwen_gateway_requests_total",
            "endpoint" => endpoint,
            "status" => self.status.to_string(),
            "region" => region.clone(),
            "model" => model.clone(),
        )
        .increment(1);
        metrics::histogram!("qwen_gateway_request_duration_seconds", "endpoint" => endpoint)
            .record(self.start.elapsed().as_secs_f64());
        if let Some(t) = first_byte {
            metrics::histogram!("qwen_gateway_time_to_first_byte_seconds", "endpoint" => endpoint)
                .record(t.duration_since(self.start).as_secs_f64());
        }
        if let Some(usage) = &info.usage {
            for (kind, n) in [
                ("input", usage.input_tokens),
                ("output", usage.output_tokens),
                ("cached", usage.cached_tokens),
                ("reasoning", usage.reasoning_tokens),
            ] {
                if n > 0 {
                    metrics::counter!(
                        "qwen_gateway_tokens_total",
                        "kind" => kind,
                        "model" => model.clone(),
                        "region" => region.clone(),
                    )
                    .increment(n);
                }
            }
        }
    }
}

/// A body that remembers when its first byte left and logs once, at its end or its drop.
struct LoggedBody {
    inner: Body,
    line: Option<LogLine>,
    first_byte: Option<Instant>,
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) if frame.is_data() && self.first_byte.is_none() => {
                self.first_byte = Some(Instant::now());
            }
            Poll::Ready(None) => {
                if let Some(line) = self.line.take() {
                    line.emit(self.first_byte, "completed");
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(line) = self.line.take() {
                    line.emit(self.first_byte, "body_error");
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some(line) = self.line.take() {
            let outcome = if http_body::Body::is_end_stream(&self.inner) {
                "completed"
            } else {
                "client_closed"
            };
            line.emit(self.first_byte, outcome);
        }
    }
}
