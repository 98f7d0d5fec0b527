//! `/v1/chat/completions`: wires the pure translation to the upstream client.
//!
//! The upstream is always asked to stream, also for non-streaming clients: the answer is
//! assembled from the events, so `enable_thinking` works without streaming, idle timeouts
//! apply, and stop sequences can cut the upstream off early. `n > 1` runs parallel upstream
//! requests whose choices are merged.

use super::AppState;
use super::auth::Caller;
use super::{body, headers};
use crate::error::ApiError;
use crate::request_context::RequestMeta;
use crate::sse::{SseParser, event_json};
use crate::translate::{
    ChatContext, ChatLimits, ChatPlan, ChunkOut, ChunkTranslator, CompletionBuilder, SizeLimits,
    StreamContext, chat_to_responses, check_chat_size, normalize_upstream_error, usage_chunk,
};
use crate::upstream::{self, Endpoint, Limits, Target, UpstreamRequest, UpstreamResponse};
use crate::usage::Usage;
use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};
use http::{HeaderMap, HeaderValue, header};
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub async fn completions(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    caller: Caller,
    client_headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = body::read_limited(
        body,
        state.settings.server.max_body_bytes,
        state.settings.server.body_read_timeout,
    )
    .await?;
    let c = &state.settings.chat;
    let size = SizeLimits {
        max_messages: c.max_messages,
        max_content_parts: c.max_content_parts,
        max_tools: c.max_tools,
    };
    let mut chat: Value = body::off_runtime(bytes.len(), move || {
        check_chat_size(&bytes, size)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::invalid_request(format!("The request body is not valid JSON: {e}"))
        })
    })
    .await?;
    match chat.get("model").and_then(Value::as_str) {
        Some(model) => {
            let resolved = state.models.resolve(model).to_owned();
            let known = state.models.is_known(&resolved);
            meta.update(|i| {
                i.model = Some(resolved.clone());
                i.model_known = known;
                i.stream = chat.get("stream").and_then(Value::as_bool).unwrap_or(false);
            });
            caller.check_model(Some((model, &resolved)))?;
            chat["model"] = Value::String(resolved);
        }
        None => caller.check_model(None)?,
    }
    let limits = ChatLimits {
        max_n: state.settings.chat.max_n,
        max_stop: state.settings.chat.max_stop,
    };
    let plan = chat_to_responses(&chat, &limits)?;
    if !plan.dropped.is_empty() {
        tracing::debug!(fields = ?plan.dropped, "chat fields accepted but not sent upstream (best-effort hints)");
    }
    meta.update(|i| {
        i.model = Some(plan.model.clone());
        i.stream = plan.stream;
    });
    let upstream_body = Bytes::from(
        serde_json::to_vec(&plan.body)
            .map_err(|e| ApiError::invalid_request(format!("Invalid request: {e}")))?,
    );
    meta.update(|i| i.upstream_request_bytes = upstream_body.len());
    if let Some(key) = &caller.0 {
        let extra = u64::from(plan.n).saturating_sub(1);
        crate::auth::limits::admit_more(state.auth.store(), key, extra)
            .await
            .map_err(|q| {
                ApiError::from(crate::auth::AuthError::RateLimited {
                    kind: q.kind,
                    limit: q.limit,
                    used: q.used,
                    retry_after: q.reset,
                })
            })?;
    }
    let forward = headers::to_upstream(&client_headers, &state.forward_headers);
    let regions = caller.allowed_regions();
    let opened = futures_util::future::join_all(
        (0..plan.n).map(|_| open(&state, &forward, upstream_body.clone(), &regions, &meta)),
    )
    .await;
    let upstreams = opened.into_iter().collect::<Result<Vec<_>, _>>()?;
    let limits = state.upstream.limits();
    if plan.stream {
        let grace_over = state.grace_over.clone();
        Ok(stream_response(plan, upstreams, limits, meta, grace_over))
    } else {
        complete(plan, upstreams, limits, meta, state.grace_over.clone()).await
    }
}

/// Sends the translated request; a non-2xx answer becomes the client's OpenAI error.
async fn open(
    state: &AppState,
    forward: &HeaderMap,
    body: Bytes,
    allowed_regions: &Option<Vec<String>>,
    meta: &RequestMeta,
) -> Result<UpstreamResponse, ApiError> {
    let mut headers = forward.clone();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("text/event-stream"),
    );
    let mut request = UpstreamRequest::new(Target::new(Endpoint::Create), headers, body);
    // Chat always asks the upstream for a stream, so its head comes at once.
    request.streaming = true;
    request.allowed_regions = allowed_regions.clone();
    let mut upstream = state.upstream.send(request).await?;
    meta.update(|i| i.region = Some(upstream.region.clone()));
    if let Some(error) = upstream.failed_before_output.take() {
        return Err(error);
    }
    if upstream.status.is_success() {
        return Ok(upstream);
    }
    let status = upstream.status.as_u16();
    let retry_after = upstream::retry_after(&upstream.headers);
    let body = upstream.read_body(state.upstream.limits()).await?;
    Err(normalize_upstream_error(status, &body, retry_after))
}

/// Upstream events of one choice, parsed, with the transport's failures as `Err`.
struct EventSource {
    upstream: UpstreamResponse,
    parser: SseParser,
    idle: Duration,
    meta: RequestMeta,
    /// The shutdown grace period's end (see `AppState::grace_over`).
    grace_over: CancellationToken,
    /// `upstream.max_response_bytes`: the most bytes held for one unfinished event, and for
    /// a non-streaming answer (which is assembled in memory) the most read in all.
    max_bytes: usize,
    /// Whether `max_bytes` bounds the whole answer too.
    bounded_total: bool,
    /// Bytes read since the last complete event.
    unfinished: usize,
    total: usize,
    /// The upstream reported this stream's usage (a terminal event arrived).
    terminal_seen: bool,
    /// The gateway is done with this stream on purpose (it ended, broke, or a stop
    /// sequence cut it): nothing more is read when it is dropped.
    settled: bool,
    /// Delta events seen, for a usage estimate.
    deltas: u64,
    /// Cancelled when this stream needs no more reading (`RequestMeta::register_drain`).
    drained: CancellationToken,
    /// `upstream.abandoned_stream_drain`.
    drain_for: Duration,
    /// This is the background reader of an abandoned stream: dropped unfinished, it books
    /// an estimate and never respawns.
    is_drainer: bool,
    /// Whether invalid UTF-8 from this upstream was logged already (once per stream).
    warned_utf8: bool,
    /// The upstream body ended (its connection can go back to the pool).
    at_end: bool,
}

/// After a terminal event the rest of an upstream body (usually just the chunked encoding's
/// end) is read so that its connection returns to the pool instead of being closed: with
/// real Model Studio that saves a TLS handshake to the region on the next request. Bounded,
/// so an upstream that keeps the body open after its answer costs no more than this.
const TAIL_READ_TIME: Duration = Duration::from_secs(2);
const TAIL_READ_BYTES: usize = 64 * 1024;

/// As the pass-through's relay: a stream dropped because its client left is read on (not
/// relayed) to its usage when the key's token limits count it, bounded by `upstream.abandoned_stream_drain`; one that ends
/// without the upstream's count is booked with an estimate.
impl Drop for EventSource {
    fn drop(&mut self) {
        if self.terminal_seen {
            self.drained.cancel();
            if !self.at_end {
                self.read_tail();
            }
            return;
        }
        let runtime = tokio::runtime::Handle::try_current();
        let (false, false, Ok(runtime)) = (
            self.settled || self.is_drainer || !self.meta.drain_wanted(),
            self.drain_for.is_zero(),
            runtime,
        ) else {
            self.meta.estimate_usage(self.deltas);
            self.drained.cancel();
            return;
        };
        let placeholder = UpstreamResponse {
            region: self.upstream.region.clone(),
            status: self.upstream.status,
            headers: HeaderMap::new(),
            body: upstream::UpstreamBody::buffered(Bytes::new()),
            failed_before_output: None,
        };
        let rest = EventSource {
            upstream: std::mem::replace(&mut self.upstream, placeholder),
            parser: std::mem::replace(&mut self.parser, SseParser::new(0)),
            idle: self.idle,
            meta: self.meta.clone(),
            grace_over: self.grace_over.clone(),
            max_bytes: self.max_bytes,
            bounded_total: self.bounded_total,
            unfinished: self.unfinished,
            total: self.total,
            terminal_seen: false,
            settled: false,
            deltas: self.deltas,
            drained: self.drained.clone(),
            drain_for: self.drain_for,
            is_drainer: true,
            warned_utf8: self.warned_utf8,
            at_end: false,
        };
        runtime.spawn(rest.drain());
    }
}

impl EventSource {
    fn new(
        upstream: UpstreamResponse,
        limits: Limits,
        meta: RequestMeta,
        grace_over: CancellationToken,
    ) -> Self {
        let drained = meta.register_drain();
        Self {
            upstream,
            parser: SseParser::new(limits.max_response_bytes),
            idle: limits.stream_idle_timeout,
            meta,
            grace_over,
            max_bytes: limits.max_response_bytes,
            bounded_total: false,
            unfinished: 0,
            total: 0,
            terminal_seen: false,
            settled: false,
            deltas: 0,
            drained,
            drain_for: limits.abandoned_stream_drain,
            is_drainer: false,
            warned_utf8: false,
            at_end: false,
        }
    }

    /// Reads the rest of the body in the background, bounded (see [`TAIL_READ_TIME`]).
    fn read_tail(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut body = std::mem::replace(
            &mut self.upstream.body,
            upstream::UpstreamBody::buffered(Bytes::new()),
        );
        // Usually the body's end arrived with the terminal event: take it now, without a
        // task (`chunk` is cancel-safe, so a pending poll here loses nothing).
        let mut read = 0usize;
        loop {
            match body.chunk().now_or_never() {
                Some(Ok(Some(chunk))) => {
                    read += chunk.len();
                    if read > TAIL_READ_BYTES {
                        return;
                    }
                }
                Some(_) => return,
                None => break,
            }
        }
        runtime.spawn(async move {
            let rest = async {
                while let Ok(Some(chunk)) = body.chunk().await {
                    read += chunk.len();
                    if read > TAIL_READ_BYTES {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(TAIL_READ_TIME, rest).await;
        });
    }

    /// Reads on to the terminal event without relaying (see `impl Drop for EventSource`).
    async fn drain(mut self) {
        let limit = self.drain_for;
        let grace_over = self.grace_over.clone();
        let work = async {
            while !self.terminal_seen {
                match self.next_batch().await {
                    Ok(batch) if !batch.is_empty() => {}
                    _ => break,
                }
            }
        };
        tokio::select! {
            _ = tokio::time::timeout(limit, work) => {}
            () = grace_over.cancelled() => {}
        }
        // The Drop that follows books an estimate if the end was not reached.
        self.settled = true;
    }

    /// For a non-streaming answer: the whole upstream stream is bounded too.
    fn bounded(mut self) -> Self {
        self.bounded_total = true;
        self
    }

    fn too_large(&self, what: &str) -> ApiError {
        ApiError::server(
            http::StatusCode::BAD_GATEWAY,
            format!(
                "The upstream sent {what} larger than {} bytes (upstream.max_response_bytes).",
                self.max_bytes
            ),
        )
        .with_code(if self.bounded_total && what == "a response" {
            "upstream_response_too_large"
        } else {
            "upstream_event_too_large"
        })
    }

    /// The next batch of events; an empty batch means the upstream ended. After an error
    /// the stream is settled: nothing more will be read from it.
    async fn next_batch(&mut self) -> Result<Vec<Value>, ApiError> {
        let batch = self.read_batch().await;
        if batch.is_err() {
            self.settled = true;
        }
        batch
    }

    async fn read_batch(&mut self) -> Result<Vec<Value>, ApiError> {
        loop {
            // Biased: once the grace period is over the stream ends, even mid-answer.
            let read = tokio::select! {
                biased;
                () = self.grace_over.cancelled() => return Err(ApiError::shutting_down()),
                read = tokio::time::timeout(self.idle, self.upstream.body.chunk()) => read,
            };
            let chunk = read
                .map_err(|_| {
                    ApiError::server(
                        http::StatusCode::GATEWAY_TIMEOUT,
                        format!(
                            "The upstream sent nothing for {:?} (upstream.stream_idle_timeout).",
                            self.idle
                        ),
                    )
                    .with_code("upstream_idle_timeout")
                })?
                .map_err(|e| {
                    ApiError::server(
                        http::StatusCode::BAD_GATEWAY,
                        format!("The upstream connection failed mid-stream: {e}"),
                    )
                    .with_code("upstream_stream_error")
                })?;
            let events = match chunk {
                Some(chunk) => {
                    self.total += chunk.len();
                    self.unfinished += chunk.len();
                    if self.bounded_total && self.total > self.max_bytes {
                        return Err(self.too_large("a response"));
                    }
                    // Parsed here, inside the client's poll: when the client leaves, this
                    // future is dropped with the upstream body, and no work goes on.
                    let events = self.parser.push(chunk);
                    self.note_invalid_utf8();
                    if self.parser.oversized_events() > 0 {
                        // The parser dropped an event over the bound (it never holds more).
                        return Err(self.too_large("an event"));
                    }
                    if !events.is_empty() {
                        self.unfinished = 0;
                    } else if self.unfinished > self.max_bytes {
                        return Err(self.too_large("an event"));
                    }
                    events
                }
                None => {
                    self.settled = true;
                    self.at_end = true;
                    let events = self.parser.finish();
                    self.note_invalid_utf8();
                    let parsed = parse_events(&events)?;
                    for event in &parsed {
                        self.note_usage(event);
                    }
                    return Ok(parsed);
                }
            };
            let parsed = parse_events(&events)?;
            for event in &parsed {
                self.note_usage(event);
            }
            if !parsed.is_empty() {
                return Ok(parsed);
            }
        }
    }

    /// Logs once per stream that the upstream sent invalid UTF-8 (decoded lossily: the
    /// answer goes on, with U+FFFD where the bad bytes were).
    fn note_invalid_utf8(&mut self) {
        if !self.warned_utf8 && self.parser.invalid_utf8_lines() > 0 {
            self.warned_utf8 = true;
            tracing::warn!(
                region = %self.upstream.region,
                "the upstream sent invalid UTF-8 in an event; decoded with replacement characters"
            );
        }
    }

    /// Adds a terminal event's usage (each of the `n` upstream streams reports its own, once)
    /// so the ledger gets the request's sum, built-in tool calls included.
    fn note_usage(&mut self, event: &Value) {
        let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
        if kind.ends_with(".delta") {
            self.deltas += 1;
        }
        if matches!(
            kind,
            "response.completed" | "response.incomplete" | "response.failed"
        ) {
            self.terminal_seen = true;
        }
        if let Some(usage) = event
            .pointer("/response/usage")
            .and_then(Usage::from_responses)
        {
            self.meta
                .update(|i| i.usage.get_or_insert_with(Usage::default).add(&usage));
        }
    }
}

/// The JSON of each event. An event whose data is not JSON ends the answer with an error:
/// what it carried is unknown, and a silently incomplete answer is worse than a clear error.
/// (Events without data are not events at all, per the SSE spec.)
fn parse_events(events: &[crate::sse::Event]) -> Result<Vec<Value>, ApiError> {
    events
        .iter()
        .filter(|e| !e.data.is_empty() && e.data != "[DONE]")
        .map(|e| {
            event_json(e).ok_or_else(|| {
                ApiError::server(
                    http::StatusCode::BAD_GATEWAY,
                    format!(
                        "The upstream sent a '{}' event whose data is not valid JSON.",
                        e.event.chars().take(64).collect::<String>()
                    ),
                )
                .with_code("upstream_malformed_event")
            })
        })
        .collect()
}

/// Non-streaming: assemble each choice from its events, then merge the choices.
async fn complete(
    plan: ChatPlan,
    upstreams: Vec<UpstreamResponse>,
    limits: Limits,
    meta: RequestMeta,
    grace_over: CancellationToken,
) -> Result<Response, ApiError> {
    let ctx = ChatContext {
        model: plan.model.clone(),
        legacy_functions: plan.legacy_functions,
    };
    let runs = upstreams.into_iter().map(|upstream| {
        let builder = CompletionBuilder::new(ctx.clone(), plan.stop.clone());
        let source = EventSource::new(upstream, limits, meta.clone(), grace_over.clone()).bounded();
        assemble(source, builder, limits.request_timeout)
    });
    let results = futures_util::future::join_all(runs).await;
    let mut completions = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    let mut merged = completions.remove(0);
    if !completions.is_empty() {
        merge_choices(&mut merged, completions);
    }
    Ok(Json(merged).into_response())
}

/// One choice's completion, bounded by the request timeout as a whole.
async fn assemble(
    mut source: EventSource,
    mut builder: CompletionBuilder,
    timeout: Duration,
) -> Result<Value, ApiError> {
    let read = async {
        loop {
            let batch = source.next_batch().await?;
            if batch.is_empty() {
                break;
            }
            if batch.iter().any(|event| builder.push(event)) {
                break;
            }
        }
        source.settled = true;
        builder.finish()
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::server(
                http::StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "The upstream did not finish within {timeout:?} (upstream.request_timeout)."
                ),
            )
            .with_code("upstream_timeout"))
        })
}

/// Appends the other completions' choices (re-indexed) and sums their usage.
fn merge_choices(first: &mut Value, others: Vec<Value>) {
    let mut usage = first.get("usage").cloned();
    for (offset, other) in others.into_iter().enumerate() {
        let index = offset + 1;
        if let Some(choices) = other.get("choices").and_then(Value::as_array) {
            for choice in choices {
                let mut choice = choice.clone();
                choice["index"] = Value::from(index);
                if let Some(list) = first.get_mut("choices").and_then(Value::as_array_mut) {
                    list.push(choice);
                }
            }
        }
        usage = match (usage, other.get("usage")) {
            (Some(a), Some(b)) => Some(sum_usage(&a, b)),
            _ => None,
        };
    }
    match usage {
        Some(u) => first["usage"] = u,
        None => {
            if let Some(obj) = first.as_object_mut() {
                obj.remove("usage");
            }
        }
    }
}

/// Adds two chat `usage` objects field by field (nested details included).
fn sum_usage(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            Value::from(x.as_u64().unwrap_or(0) + y.as_u64().unwrap_or(0))
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut out = x.clone();
            for (k, v) in y {
                let summed = match x.get(k) {
                    Some(existing) => sum_usage(existing, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), summed);
            }
            Value::Object(out)
        }
        (keep, _) => keep.clone(),
    }
}

/// What one choice's stream produces.
enum ChoiceItem {
    Frame(Bytes),
    /// An error frame: the whole response ends after it.
    Error(Bytes),
    /// The choice ended: its usage, or `None` when unknown (a stop sequence cancelled it).
    Usage(Option<Value>),
}

fn frame(json: &Value) -> Bytes {
    Bytes::from(format!("data: {json}\n\n"))
}

const DONE: &[u8] = b"data: [DONE]\n\n";

/// Translates one upstream stream into chat chunks; ends when the translator is done, which
/// drops (and so cancels) the upstream request.
fn choice_stream(
    source: EventSource,
    translator: ChunkTranslator,
) -> impl Stream<Item = ChoiceItem> + Send + 'static {
    struct State {
        source: EventSource,
        translator: ChunkTranslator,
        finished: bool,
    }
    let state = State {
        source,
        translator,
        finished: false,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        if st.finished {
            return None;
        }
        let outs = match st.source.next_batch().await {
            Ok(batch) if batch.is_empty() => st.translator.on_upstream_end(),
            Ok(batch) => {
                let mut outs = Vec::new();
                for event in &batch {
                    outs.extend(st.translator.on_event(event));
                    if st.translator.is_done() {
                        break;
                    }
                }
                outs
            }
            Err(err) => st.translator.on_upstream_error(&err),
        };
        let mut items: Vec<ChoiceItem> = outs
            .into_iter()
            .map(|out| match out {
                ChunkOut::Chunk(json) => ChoiceItem::Frame(frame(&json)),
                ChunkOut::Error(json) => ChoiceItem::Error(frame(&json)),
            })
            .collect();
        if st.translator.is_done() || items.iter().any(|i| matches!(i, ChoiceItem::Error(_))) {
            st.finished = true;
            st.source.settled = true;
            items.push(ChoiceItem::Usage(st.translator.usage()));
        }
        Some((futures_util::stream::iter(items), st))
    })
    .flatten()
}

/// Streaming: chunks as each upstream event arrives, merged over `n` choices, then `[DONE]`.
fn stream_response(
    plan: ChatPlan,
    upstreams: Vec<UpstreamResponse>,
    limits: Limits,
    meta: RequestMeta,
    grace_over: CancellationToken,
) -> Response {
    let n = upstreams.len();
    let shared_id = (n > 1).then(|| format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()));
    let created = (n > 1).then(unix_now);
    let choices: Vec<_> = upstreams
        .into_iter()
        .enumerate()
        .map(|(index, upstream)| {
            let translator = ChunkTranslator::new(StreamContext {
                model: plan.model.clone(),
                include_usage: plan.include_usage,
                emit_usage_chunk: n == 1,
                legacy_functions: plan.legacy_functions,
                choice_index: index as u32,
                id: shared_id.clone(),
                created,
                stop: plan.stop.clone(),
            });
            let source = EventSource::new(upstream, limits, meta.clone(), grace_over.clone());
            choice_stream(source, translator).boxed()
        })
        .collect();
    let merged = futures_util::stream::select_all(choices);
    let tail = MergeTail {
        include_usage: plan.include_usage && n > 1,
        id: shared_id.unwrap_or_default(),
        created: created.unwrap_or(0),
        model: plan.model,
        usage: None,
        unknown_usage: false,
        errored: false,
    };
    let body = futures_util::stream::unfold(
        (merged, tail, false),
        |(mut merged, mut tail, done)| async move {
            if done {
                return None;
            }
            loop {
                match merged.next().await {
                    Some(ChoiceItem::Frame(bytes)) => {
                        return Some((
                            Ok::<_, std::convert::Infallible>(bytes),
                            (merged, tail, false),
                        ));
                    }
                    Some(ChoiceItem::Error(bytes)) => {
                        tail.errored = true;
                        let mut out = bytes.to_vec();
                        out.extend_from_slice(DONE);
                        return Some((Ok(Bytes::from(out)), (merged, tail, true)));
                    }
                    Some(ChoiceItem::Usage(usage)) => tail.add(usage),
                    None => return Some((Ok(tail.finish()), (merged, tail, true))),
                }
            }
        },
    );
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The end of a merged `n > 1` stream: one summed usage chunk, then `[DONE]`.
struct MergeTail {
    include_usage: bool,
    id: String,
    created: i64,
    model: String,
    usage: Option<Value>,
    /// A choice ended without usage: a sum of the others would pass for the total, so no
    /// usage chunk is sent (as the non-streaming merge leaves `usage` out).
    unknown_usage: bool,
    errored: bool,
}

impl MergeTail {
    fn add(&mut self, usage: Option<Value>) {
        let Some(usage) = usage else {
            self.unknown_usage = true;
            return;
        };
        self.usage = Some(match self.usage.take() {
            Some(sum) => sum_usage(&sum, &usage),
            None => usage,
        });
    }

    fn finish(&mut self) -> Bytes {
        let mut out = Vec::new();
        let usage = (self.include_usage && !self.errored && !self.unknown_usage)
            .then(|| self.usage.take())
            .flatten();
        if let Some(usage) = usage {
            let chunk = usage_chunk(&self.id, self.created, &self.model, usage);
            out.extend_from_slice(&frame(&chunk));
        }
        out.extend_from_slice(DONE);
        Bytes::from(out)
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::MergeTail;
    use serde_json::json;

    fn tail() -> MergeTail {
        MergeTail {
            include_usage: true,
            id: "chatcmpl-x".into(),
            created: 1,
            model: "m".into(),
            usage: None,
            unknown_usage: false,
            errored: false,
        }
    }

    #[test]
    fn merged_usage_is_the_sum_or_nothing() {
        let u = || json!({"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5});
        let mut all = tail();
        all.add(Some(u()));
        all.add(Some(u()));
        let text = String::from_utf8(all.finish().to_vec()).unwrap();
        assert!(text.contains(r#""total_tokens":10"#), "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"));
        // One choice cut by a stop sequence: its usage is unknown, so no partial sum.
        let mut part = tail();
        part.add(Some(u()));
        part.add(None);
        let text = String::from_utf8(part.finish().to_vec()).unwrap();
        assert_eq!(text, "data: [DONE]\n\n");
    }
}
