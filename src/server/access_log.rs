//! One structured log line per request, written when the response body is finished or
//! dropped — so streams are logged with their usage and with whether the client stayed.
//! The same point books model requests into the usage ledger.

use crate::ledger::{self, Ledger};
use crate::request_context::{RequestInfo, RequestMeta, clipped};
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use metrics::SharedString;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What the access log must know of the routes: which ones reach a model (and so go into
/// the ledger). Given by [`super::router`], which alone knows the routes.
#[derive(Debug, Clone)]
pub struct LogRoutes {
    pub ledger: Ledger,
    /// Route templates (as `MatchedPath` names them) whose `POST`s reach a model.
    pub model_routes: &'static [&'static str],
}

/// The `endpoint` metrics label of a request no route matched.
const UNMATCHED: &str = "other";

/// Middleware: attaches a [`RequestMeta`] and wraps the response body to log (and, for
/// model requests, book usage) at its end. Runs after routing, so the request's route
/// template (`MatchedPath`) is its `endpoint` label: bounded whatever paths clients send.
pub async fn access_log(State(routes): State<LogRoutes>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let meta = RequestMeta::default();
    req.extensions_mut().insert(meta.clone());
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    // Shared, not owned: the label is cloned into several metrics per request, and a
    // shared string's clone is a reference count, not an allocation.
    let endpoint = matched.map_or(SharedString::const_str(UNMATCHED), |m| {
        SharedString::from(std::sync::Arc::<str>::from(m))
    });
    let books = req.method() == http::Method::POST
        && matched.is_some_and(|m| routes.model_routes.contains(&m));
    let ledger = books.then_some(routes.ledger);
    let line = LogLine {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        request_id: req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        endpoint,
        status: 0,
        start,
        meta,
        streaming: false,
        ledger,
    };
    let mut pending = BeforeHead(Some(line));
    let response = next.run(req).await;
    let (parts, body) = response.into_parts();
    let Some(mut line) = pending.0.take() else {
        return Response::from_parts(parts, body);
    };
    line.status = parts.status.as_u16();
    if let Some(marker) = parts.extensions.get::<crate::error::ErrorMarker>() {
        let code = marker.0.clone();
        line.meta
            .update(|i| i.error_code = i.error_code.take().or(code));
    }
    line.streaming = line.meta.snapshot().stream;
    if line.streaming {
        metrics::gauge!("qwen_gateway_open_streams", "endpoint" => line.endpoint.clone())
            .increment(1.0);
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
    endpoint: SharedString,
    status: u16,
    start: Instant,
    meta: RequestMeta,
    /// Counted in `qwen_gateway_open_streams` until the line is emitted.
    streaming: bool,
    /// Where a model request's usage is booked.
    ledger: Option<Ledger>,
}

/// How a request's exchange ended, as the access log's `outcome` field says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The whole response was sent.
    Completed,
    /// The response body failed while being sent.
    BodyError,
    /// The client left before the end (before the head or mid-stream).
    ClientClosed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::BodyError => "body_error",
            Outcome::ClientClosed => "client_closed",
        }
    }
}

impl LogLine {
    fn emit(self, first_byte: Option<Instant>, outcome: Outcome) {
        let mut info = self.meta.snapshot();
        let usage = info.usage.unwrap_or_default();
        let ttfb_ms = first_byte.map(|t| t.duration_since(self.start).as_secs_f64() * 1e3);
        tracing::info!(
            target: "qwen_gateway::access",
            // Client-derived text as `&str`: the text format quotes and escapes those, so
            // no value can forge another field (JSON escapes anyway).
            request_id = self.request_id.as_str(),
            method = self.method.as_str(),
            path = self.path.as_str(),
            status = self.status,
            region = info.region.as_deref().unwrap_or("-"),
            model = info
                .model
                .as_deref()
                .map_or("-", clipped),
            stream = info.stream,
            latency_ms = self.start.elapsed().as_secs_f64() * 1e3,
            ttfb_ms = ttfb_ms.unwrap_or(-1.0),
            input_tokens = usage.input_tokens,
            output_tokens = usage.output_tokens,
            cached_tokens = usage.cached_tokens,
            reasoning_tokens = usage.reasoning_tokens,
            usage_estimated = info.usage_estimated,
            error_code = info.error_code.as_deref().unwrap_or("-"),
            key_id = info.client.as_deref().map_or("-", |k| k.id.as_str()),
            outcome = outcome.as_str(),
            "request"
        );
        self.record_metrics(&info, first_byte);
        info.model = info.model.as_deref().map(|m| clipped(m).to_owned());
        self.book(info, outcome);
    }

    /// Books a model request: with its key, or without one when auth is off. Requests
    /// refused before a key was known (401) are nobody's usage.
    fn book(&self, info: RequestInfo, outcome: Outcome) {
        let Some(ledger) = &self.ledger else { return };
        if info.client.is_none() && !ledger.books_keyless() {
            return;
        }
        // A client leaving (before the head or mid-stream) is not an error of the request.
        let error = (self.status >= 400 && self.status != CLIENT_CLOSED_REQUEST)
            || info.error_code.is_some()
            || outcome == Outcome::BodyError;
        ledger.record(ledger::Entry {
            client: info.client,
            model: info.model,
            region: info.region.map(|r| r.to_string()),
            usage: info.usage,
            estimated: info.usage_estimated,
            error,
        });
    }

    fn record_metrics(&self, info: &RequestInfo, first_byte: Option<Instant>) {
        let endpoint = &self.endpoint;
        if self.streaming {
            metrics::gauge!("qwen_gateway_open_streams", "endpoint" => endpoint.clone())
                .decrement(1.0);
        }
        let region = info.region.as_deref().unwrap_or("none").to_owned();
        let model = info
            .model_label(self.status)
            .unwrap_or_else(|| "none".into());
        metrics::counter!(
            "qwen_gateway_requests_total",
            "endpoint" => endpoint.clone(),
            "status" => self.status.to_string(),
            "region" => region.clone(),
            "model" => model.clone(),
        )
        .increment(1);
        metrics::histogram!("qwen_gateway_request_duration_seconds", "endpoint" => endpoint.clone(), "region" => region.clone())
            .record(self.start.elapsed().as_secs_f64());
        if let Some(t) = first_byte {
            metrics::histogram!("qwen_gateway_time_to_first_byte_seconds", "endpoint" => endpoint.clone())
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

/// nginx's "client closed request": what the log, metrics and ledger record for a request
/// whose client left before the response head was ready (no client ever sees it).
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

/// Holds a request's line while the handler runs. A client that hangs up before the head
/// drops the handler's future, and with it this guard: the request is still logged and
/// booked (not as an error: the client left), never lost.
struct BeforeHead(Option<LogLine>);

impl Drop for BeforeHead {
    fn drop(&mut self) {
        if let Some(mut line) = self.0.take() {
            line.status = CLIENT_CLOSED_REQUEST;
            line.emit_after_drains(None, Outcome::ClientClosed);
        }
    }
}

/// The longest a client-gone line waits for its upstream streams to be read to their
/// usage (each stream's own bound, `upstream.abandoned_stream_drain`, is shorter).
const MAX_DRAIN_WAIT: Duration = Duration::from_secs(600);

impl LogLine {
    /// Emits now, or once the upstream streams still being read for their usage are done.
    fn emit_after_drains(self, first_byte: Option<Instant>, outcome: Outcome) {
        let pending: Vec<CancellationToken> = self
            .meta
            .snapshot()
            .drains
            .into_iter()
            .filter(|t| !t.is_cancelled())
            .collect();
        let runtime = tokio::runtime::Handle::try_current();
        match (pending.is_empty(), runtime) {
            (false, Ok(runtime)) => {
                runtime.spawn(async move {
                    let all = futures_util::future::join_all(
                        pending.iter().map(CancellationToken::cancelled),
                    );
                    let _ = tokio::time::timeout(MAX_DRAIN_WAIT, all).await;
                    self.emit(first_byte, outcome);
                });
            }
            _ => self.emit(first_byte, outcome),
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
                    line.emit(self.first_byte, Outcome::Completed);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(line) = self.line.take() {
                    line.emit(self.first_byte, Outcome::BodyError);
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
            if http_body::Body::is_end_stream(&self.inner) {
                line.emit(self.first_byte, Outcome::Completed);
            } else {
                // Dropped first, so a stream the client left registers its drain.
                drop(std::mem::replace(&mut self.inner, Body::empty()));
                line.emit_after_drains(self.first_byte, Outcome::ClientClosed);
            }
        }
    }
}
