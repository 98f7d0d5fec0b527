//! `/v1/responses`: pass-through to Model Studio's Responses API.
//!
//! The body goes upstream unchanged except for `model` when an alias applies; the answer
//! comes back unchanged (status, content type, bytes), streams event by event.

mod fields;

use super::AppState;
use super::auth::Caller;
use super::body::{self, LimitedBody};
use super::{headers, relay};
use crate::conversation::{self, TurnRecorder};
use crate::error::ApiError;
use crate::model_studio::conformance;
use crate::request_context::RequestMeta;
use crate::store::Affinity;
use crate::translate::normalize_upstream_error;
use crate::upstream::endpoint::MAX_RESPONSE_ID_LEN;
use crate::upstream::{
    Endpoint, ResponseId, Target, UpstreamError, UpstreamRequest, UpstreamResponse,
};
use crate::usage::Usage;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, MatchedPath, Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use fields::{probe, rewrite_model};
use http::{HeaderMap, Method};
use serde::Deserialize;
use serde_json::Value;

pub async fn create(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    caller: Caller,
    client_headers: HeaderMap,
    LimitedBody(bytes): LimitedBody,
) -> Result<Response, ApiError> {
    let probe = {
        let bytes = bytes.clone();
        body::off_runtime(bytes.len(), move || probe(&bytes)).await?
    };
    let mut bytes = bytes;
    meta.update(|i| {
        i.stream = probe.stream.unwrap_or(false);
        i.upstream_request_bytes = bytes.len();
    });
    let requested = probe.model.as_deref();
    if let Some(target) = super::model::resolve(&state, &caller, &meta, requested)?
        && Some(target.as_str()) != requested
    {
        bytes = body::off_runtime(bytes.len(), move || rewrite_model(bytes, &target)).await?;
    }
    let previous = match probe.previous_response_id.filter(|id| !id.is_empty()) {
        Some(raw) => Some(
            ResponseId::parse(&raw)
                .ok_or_else(|| invalid_id("previous_response_id"))?
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    let conversations = &state.conversations;
    // The turn's input, kept only when replay is on (it is conversation content).
    let input = conversations
        .keeps_turns()
        .then(|| serde_json::from_slice::<Value>(&bytes).ok())
        .flatten()
        .map(|body| conversation::request_input(body.get("input")));
    let mut request = UpstreamRequest::new(
        Target::new(Endpoint::Create),
        headers::to_upstream(&client_headers, &state.forward_headers),
        bytes,
    );
    request.allowed_regions = caller.allowed_regions();
    request.streaming = probe.stream.unwrap_or(false);
    if let Some(previous) = &previous {
        request.affinity = home_for(&state, &caller, previous, "previous_response_id")
            .await?
            .map(|home| home.region);
    }
    // One deadline for the home region's walk and a replay after it.
    request.deadline = Some(std::time::Instant::now() + state.upstream.limits().failover_deadline);
    // Kept only when a replay could follow (cloning headers is not free on the hot path).
    let for_replay =
        (request.affinity.is_some() && conversations.keeps_turns()).then(|| request.clone());
    let upstream = match (state.upstream.send(request).await, for_replay) {
        (Err(UpstreamError::HomeRegionUnavailable { region, reason }), Some(request)) => {
            let previous = previous.as_deref().unwrap_or_default();
            let mut replayed = replay_request(&state, request, previous, caller.key_id())
                .await
                .map_err(|e| {
                    ApiError::from(UpstreamError::HomeRegionUnavailable {
                        region: region.clone(),
                        reason: format!("{reason}; replay elsewhere impossible: {e}"),
                    })
                })?;
            replayed.avoid.push(region.clone());
            tracing::warn!(home = %region, %reason, "home region down: conversation replayed");
            state.upstream.send(replayed).await?
        }
        (other, _) => other?,
    };
    let owner = caller.key_id().map(str::to_owned);
    let recorder = conversations.recorder(upstream.region.clone(), owner, previous, input);
    // Boxed, as `Router::send`'s walk: a big future inlined is memcpy'd through every layer.
    Box::pin(relay_response(&state, upstream, meta, Some(recorder))).await
}

/// 400 for an id outside [`ResponseId`]'s grammar. The id is not echoed: it is hostile
/// input by definition.
fn invalid_id(param: &str) -> ApiError {
    ApiError::invalid_request(format!(
        "Invalid '{param}': a response id is 1 to {MAX_RESPONSE_ID_LEN} ASCII letters, digits, '-' or '_'."
    ))
    .with_param(param)
    .with_code("invalid_response_id")
}

/// Where `id` lives, if the caller may use it. With team keys, an id of another key, or one
/// the store does not know, is `404 not_found` as if it did not exist (nothing is sent
/// upstream), and a store failure is a 503 (failing closed). Without team keys the lookup is
/// best effort: unknown ids and store failures route by region preference.
async fn home_for(
    state: &AppState,
    caller: &Caller,
    id: &str,
    param: &str,
) -> Result<Option<Affinity>, ApiError> {
    let found = state.conversations.lookup(id).await;
    let Some(key) = caller.key_id() else {
        return Ok(found.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "affinity lookup failed; routing by preference");
            None
        }));
    };
    match found {
        Ok(Some(home)) if conversation::may_use(&home, Some(key)) => Ok(Some(home)),
        Ok(_) => {
            Err(ApiError::not_found(format!("No response found with id '{id}'.")).with_param(param))
        }
        Err(err) => {
            tracing::warn!(error = %err, "affinity lookup failed; refusing (team keys fail closed)");
            Err(ApiError::server(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "The gateway's response store is unavailable; retry shortly.",
            )
            .with_code("store_unavailable"))
        }
    }
}

/// The same request with the whole conversation as input and no `previous_response_id`,
/// free to go to any healthy region.
async fn replay_request(
    state: &AppState,
    mut request: UpstreamRequest,
    previous: &str,
    owner: Option<&str>,
) -> Result<UpstreamRequest, String> {
    let mut body: Value = serde_json::from_slice(&request.body).map_err(|e| e.to_string())?;
    let input = body.get("input").cloned().unwrap_or(Value::Null);
    let items = state
        .conversations
        .replay(previous, &input, owner)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(obj) = body.as_object_mut() {
        obj.remove("previous_response_id");
        obj.insert("input".into(), Value::Array(items));
    }
    request.body = serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| e.to_string())?;
    request.affinity = None;
    Ok(request)
}

/// `GET`/`DELETE /v1/responses/{id}` and `GET /v1/responses/{id}/input_items` (and their
/// `/admin/responses/…` twins): which endpoint is decided by the method and the route.
pub async fn by_id_route(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    caller: Caller,
    route: MatchedPath,
    id: Result<Path<String>, PathRejection>,
    request: http::request::Parts,
) -> Result<Response, ApiError> {
    let id = parse_id(id)?;
    let endpoint = match (&request.method, route.as_str().ends_with("/input_items")) {
        (_, true) => Endpoint::InputItems(id),
        (&Method::DELETE, false) => Endpoint::Delete(id),
        _ => Endpoint::Retrieve(id),
    };
    let query = request.uri.query().map(str::to_owned);
    by_id(&state, meta, &caller, endpoint, query, &request.headers).await
}

/// The decoded `{id}` path segment, checked against the id grammar (a segment that does
/// not even decode, e.g. `%FF`, is refused the same way).
fn parse_id(raw: Result<Path<String>, PathRejection>) -> Result<ResponseId, ApiError> {
    raw.ok()
        .and_then(|Path(id)| ResponseId::parse(&id))
        .ok_or_else(|| invalid_id("response_id"))
}

/// Sends an id's request to the region that created the id (see [`home_for`]).
async fn by_id(
    state: &AppState,
    meta: RequestMeta,
    caller: &Caller,
    endpoint: Endpoint,
    query: Option<String>,
    client_headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let id = endpoint
        .response_id()
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default();
    let home = home_for(state, caller, &id, "response_id").await?;
    let deleting = matches!(endpoint, Endpoint::Delete(_));
    let (target, dropped) = Target::with_client_query(endpoint, query.as_deref());
    if !dropped.is_empty() {
        tracing::debug!(params = ?dropped, "query parameters this endpoint does not document were dropped");
    }
    let mut request = UpstreamRequest::new(
        target,
        headers::to_upstream(client_headers, &state.forward_headers),
        Bytes::new(),
    );
    request.allowed_regions = caller.allowed_regions();
    request.affinity = home.map(|home| home.region);
    let upstream = state.upstream.send(request).await?;
    if deleting && upstream.status.is_success() {
        state.conversations.forget(&id);
    }
    Box::pin(relay_response(state, upstream, meta, None)).await
}

/// Status, relayable headers and body exactly as the upstream sent them; a created
/// response's id (and turn) is recorded on the way through.
async fn relay_response(
    state: &AppState,
    upstream: UpstreamResponse,
    meta: RequestMeta,
    recorder: Option<TurnRecorder>,
) -> Result<Response, ApiError> {
    meta.update(|i| i.region = Some(upstream.region.clone()));
    let status = upstream.status;
    let response_headers = headers::to_client(&upstream.headers);
    let limits = state.upstream.limits();
    let conformance_on = state.settings.responses.conformance;
    let body = if upstream.is_event_stream() {
        meta.update(|i| i.stream = true);
        let recorder = recorder.filter(|_| status.is_success());
        let settings = relay::RelaySettings {
            idle_timeout: limits.stream_idle_timeout,
            max_event_bytes: limits.max_response_bytes,
            drain_for: limits.abandoned_stream_drain,
            conformance: conformance_on,
        };
        Body::from_stream(relay::relay_stream(
            upstream.body,
            settings,
            meta,
            recorder,
            state.grace_over.clone(),
        ))
    } else {
        let retry_after = crate::upstream::retry_after(&upstream.headers);
        let bytes = upstream.read_body(limits).await?;
        if status.is_success() {
            observe_body(&bytes, &meta, recorder).await;
        } else if status.as_u16() >= 400 && !is_json(&bytes) {
            // An HTML page from a load balancer, an empty or cut-off body: an SDK cannot read
            // it, so it becomes an OpenAI-shaped error with the upstream's status.
            let mut err = normalize_upstream_error(status.as_u16(), &bytes, retry_after);
            err.status = status;
            return Err(err);
        }
        let rewritten = conformance_on
            .then(|| conformance::integer_timestamps(&bytes))
            .flatten();
        match rewritten {
            Some(rewritten) => Body::from(rewritten),
            None => Body::from(bytes),
        }
    };
    let mut response = (status, body).into_response();
    response.headers_mut().extend(response_headers);
    Ok(response)
}

/// The fields of a plain response the gateway reads; the rest is skipped without building
/// values (a whole `Value` per response was 13% of a pass-through, bench/PROFILE.md).
#[derive(Deserialize)]
struct BodyProbe {
    id: Option<String>,
    usage: Option<Value>,
}

/// Reads usage and the response id (and, with replay on, the whole turn) from a body.
async fn observe_body(bytes: &[u8], meta: &RequestMeta, recorder: Option<TurnRecorder>) {
    let record_usage = |usage: Option<&Value>| {
        if let Some(usage) = usage.and_then(Usage::from_responses) {
            meta.update(|i| i.usage = Some(usage));
        }
    };
    match recorder {
        Some(mut recorder) if recorder.keeps_turn() => {
            if let Ok(response) = serde_json::from_slice::<Value>(bytes) {
                record_usage(response.get("usage"));
                recorder.finish(&response).await;
            }
        }
        recorder => {
            let Ok(probe) = serde_json::from_slice::<BodyProbe>(bytes) else {
                return;
            };
            record_usage(probe.usage.as_ref());
            if let (Some(mut recorder), Some(id)) = (recorder, probe.id) {
                recorder.finish_id(&id).await;
            }
        }
    }
}

fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}
