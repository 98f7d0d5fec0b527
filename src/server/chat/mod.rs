//! `/v1/chat/completions`: wires the pure translation to the upstream client.
//!
//! The upstream is always asked to stream, also for non-streaming clients: the answer is
//! assembled from the events, so `enable_thinking` works without streaming, idle timeouts
//! apply, and stop sequences can cut the upstream off early. `n > 1` runs parallel upstream
//! requests whose choices are merged.

mod source;

use source::{EventSource, SourceEvent};

use super::AppState;
use super::auth::Caller;
use super::body::{self, LimitedBody};
use super::headers;
use crate::error::ApiError;
use crate::request_context::RequestMeta;
use crate::translate::merge::merge_choices;
use crate::translate::{
    ChatContext, ChatLimits, ChatPlan, ChatUsage, ChunkOut, ChunkTranslator, CompletionBuilder,
    SizeLimits, StreamContext, chat_to_responses, check_chat_size, normalize_upstream_error,
    usage_chunk,
};
use crate::upstream::{self, Endpoint, Limits, Target, UpstreamRequest, UpstreamResponse};
use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, HeaderValue, header};
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub async fn completions(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    caller: Caller,
    client_headers: HeaderMap,
    LimitedBody(bytes): LimitedBody,
) -> Result<Response, ApiError> {
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
    let stream = chat.get("stream").and_then(Value::as_bool).unwrap_or(false);
    meta.update(|i| i.stream = stream);
    let requested = chat.get("model").and_then(Value::as_str);
    if let Some(resolved) = super::model::resolve(&state, &caller, &meta, requested)? {
        chat["model"] = Value::String(resolved);
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
        let source =
            EventSource::new(upstream, limits, meta.clone(), grace_over.clone()).bounded(limits);
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
            let over = batch.iter().any(|event| match event {
                SourceEvent::Text(delta) => builder.push_text_delta(delta),
                SourceEvent::Json(event) => builder.push(event),
            });
            if over {
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

/// What one choice's stream produces.
enum ChoiceItem {
    Frame(Bytes),
    /// An error frame: the whole response ends after it.
    Error(Bytes),
    /// The choice ended: its usage, or `None` when unknown (a stop sequence cancelled it).
    Usage(Option<ChatUsage>),
}

fn frame(json: &impl serde::Serialize) -> Bytes {
    // Straight into bytes: `format!` goes through `Display`, a formatter call per token.
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut out, json).is_err() {
        // Writing plain data to memory cannot fail; an empty object keeps the frame valid.
        out.truncate(6);
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
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
                    outs.extend(match event {
                        SourceEvent::Text(delta) => st.translator.on_text_delta(delta),
                        SourceEvent::Json(event) => st.translator.on_event(event),
                    });
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
                ChunkOut::Chunk(chunk) => ChoiceItem::Frame(frame(&chunk)),
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
    usage: Option<ChatUsage>,
    /// A choice ended without usage: a sum of the others would pass for the total, so no
    /// usage chunk is sent (as the non-streaming merge leaves `usage` out).
    unknown_usage: bool,
    errored: bool,
}

impl MergeTail {
    fn add(&mut self, usage: Option<ChatUsage>) {
        let Some(usage) = usage else {
            self.unknown_usage = true;
            return;
        };
        match &mut self.usage {
            Some(sum) => sum.add(&usage),
            None => self.usage = Some(usage),
        }
    }

    fn finish(&mut self) -> Bytes {
        let mut out = Vec::new();
        let usage = (self.include_usage && !self.errored && !self.unknown_usage)
            .then(|| self.usage.take())
            .flatten();
        if let Some(usage) = usage {
            let chunk = usage_chunk(&self.id, self.created, &self.model, &usage);
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
    use crate::translate::ChatUsage;

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
        let u = || ChatUsage {
            prompt_tokens: 2,
            completion_tokens: 3,
            total_tokens: 5,
            ..ChatUsage::default()
        };
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
