//! The Responses API routes: recording, controls and auth, then `POST …/responses` answered.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::answer;
use crate::controls::{Controls, Fail};
use crate::errors::{ApiError, INTERNAL_ERROR_MESSAGE, RATE_LIMIT_MESSAGE};
use crate::events::{Ending, Meta, Rendered};
use crate::request::ResponseRequest;
use crate::state::{RecordedRequest, Shared, Stored, lock};
use crate::stream::{RecordingBody, Script};
use crate::wire::Framing;

use super::connection::DropConnection;
use super::exchange::{BodyFaults, Exchange};

/// Largest request body read.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Everything that is not `/_mock`: recorded, subject to controls and auth, then routed.
pub(super) async fn api(
    State(shared): State<Arc<Shared>>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.ok();
    let body_json = bytes
        .as_ref()
        .filter(|b| !b.is_empty())
        .and_then(|b| serde_json::from_slice::<Value>(b).ok());
    let streaming = body_json
        .as_ref()
        .is_some_and(|b| b["stream"] == Value::Bool(true));
    let record = shared.record(RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        version: format!("{:?}", parts.version),
        query: parts.uri.query().map(str::to_string),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body_json,
        status: 0,
        response_body: Vec::new(),
        finished: false,
        cancelled: false,
    });
    let mut ex = Exchange {
        shared: shared.clone(),
        record,
        faults: BodyFaults::default(),
        echo: None,
    };

    let headers = &parts.headers;
    let controls = match Controls::parse(
        |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or_else(|| shared.default_header(name))
        },
        &shared.config,
    ) {
        Ok(c) => c,
        Err(message) => return ex.error(ApiError::invalid_parameter(message)),
    };
    ex.faults.html_errors = controls.html_errors;
    if controls.echo_auth {
        ex.echo = headers
            .get(header::AUTHORIZATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    // Complete answers only: errors (even to a streaming request) and non-streaming 200s.
    ex.faults.cut = controls.malformed_at.is_some();
    if !streaming {
        ex.faults.drop_midway = controls.drop_after.is_some_and(|k| k > 0);
        ex.faults.gate = controls.gate.as_deref().map(|g| shared.gate(g));
    }
    if !controls.header_delay.is_zero() {
        tokio::time::sleep(controls.header_delay).await;
    }
    if controls.drop_after == Some(0) {
        let mut response = Response::new(Body::empty());
        response.extensions_mut().insert(DropConnection);
        return response;
    }
    if let Some(status) = controls.status.filter(|s| *s != 200) {
        let mut err = ApiError::for_status(status, controls.nested_errors);
        err.retry_after = controls.retry_after.clone();
        return ex.error(err);
    }
    if !authorized(headers, &shared.config.keys) {
        return ex.error(ApiError::invalid_api_key());
    }

    let segments: Vec<&str> = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let Some(at) = segments.iter().rposition(|s| *s == "responses") else {
        return ex.error(not_found(parts.uri.path()));
    };
    match (&parts.method, &segments[at + 1..]) {
        (&Method::POST, []) => create(&ex, &controls, bytes.as_deref()),
        (&Method::GET, [id]) => match shared.stored(id) {
            Some(stored) => ex.reply(200, &stored.response, None),
            None => ex.error(unknown_response(id)),
        },
        (&Method::DELETE, [id]) => {
            if shared.delete(id) {
                ex.reply(
                    200,
                    &json!({"id": id, "object": "response.deleted", "deleted": true}),
                    None,
                )
            } else {
                ex.error(unknown_response(id))
            }
        }
        (&Method::GET, [id, "input_items"]) => match shared.stored(id) {
            Some(stored) => {
                let mut data = stored.input;
                let ascending = parts
                    .uri
                    .query()
                    .is_some_and(|q| q.split('&').any(|kv| kv == "order=asc"));
                if !ascending {
                    data.reverse(); // OpenAI's default order is "desc"
                }
                let body = json!({
                    "object": "list",
                    "first_id": data.first().map(|i| i["id"].clone()),
                    "last_id": data.last().map(|i| i["id"].clone()),
                    "has_more": false,
                    "data": data,
                });
                ex.reply(200, &body, None)
            }
            None => ex.error(unknown_response(id)),
        },
        (_, [] | [_] | [_, "input_items"]) => ex.error(ApiError::flat(
            405,
            "MethodNotAllowed",
            format!("Method {} is not allowed here.", parts.method),
        )),
        _ => ex.error(not_found(parts.uri.path())),
    }
}

fn not_found(path: &str) -> ApiError {
    ApiError::flat(404, "NotFound", format!("No such endpoint: {path}"))
}

fn unknown_response(id: &str) -> ApiError {
    ApiError::flat(
        404,
        "NotFound",
        format!("Response with id '{id}' not found."),
    )
}

/// `Authorization: Bearer <key>`: any non-empty key when no keys are configured.
fn authorized(headers: &HeaderMap, keys: &[String]) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, key)) = value.trim().split_once(' ') else {
        return false;
    };
    let key = key.trim();
    scheme.eq_ignore_ascii_case("bearer")
        && !key.is_empty()
        && (keys.is_empty() || keys.iter().any(|k| k == key))
}

/// `POST …/responses`.
fn create(ex: &Exchange, controls: &Controls, body: Option<&[u8]>) -> Response {
    let value = match serde_json::from_slice::<Value>(body.unwrap_or_default()) {
        Ok(v) => v,
        Err(e) => {
            return ex.error(ApiError::invalid_parameter(format!(
                "The request body is not valid JSON: {e}"
            )));
        }
    };
    let req = match ResponseRequest::parse(&value) {
        Ok(r) => r,
        Err(e) => return ex.error(e),
    };
    let history = match &req.previous_response_id {
        None => None,
        Some(id) => match ex.shared.stored(id) {
            Some(stored) => Some(stored.conversation),
            None => {
                return ex.error(ApiError::nested(
                    400,
                    "invalid_parameter_error",
                    Some("previous_response_id"),
                    format!("Previous response with id '{id}' not found."),
                    "invalid_request_error",
                ));
            }
        },
    };
    if let Some(call_id) = answer::orphan_call_output(&req.input, history.as_deref().unwrap_or(&[]))
    {
        return ex.error(ApiError::invalid_parameter(format!(
            "No tool call found for function call output with call_id {call_id}."
        )));
    }
    let ending = match controls.fail {
        None => Ending::Normal,
        Some(Fail::Moderation) if !req.stream => return ex.error(ApiError::moderation()),
        Some(Fail::Moderation) => Ending::Moderated,
        Some(Fail::RateLimit) => Ending::Failed {
            code: "Throttling".into(),
            message: RATE_LIMIT_MESSAGE.into(),
        },
        Some(Fail::ServerError) => Ending::Failed {
            code: "InternalError".into(),
            message: INTERNAL_ERROR_MESSAGE.into(),
        },
    };

    let mut plan = answer::plan(&req, history.as_deref(), controls);
    if let Some(echo) = &ex.echo {
        plan.text = Some(vec![format!("echo: {echo}")]);
    }
    if let (Some(n), Some(deltas)) = (controls.delta_bytes, plan.text.as_mut()) {
        for delta in deltas.iter_mut() {
            let pad = n.saturating_sub(delta.len());
            delta.push_str(&"x".repeat(pad));
        }
    }
    let meta = Meta::new(&req.model, req.raw.clone());
    let rendered = Rendered::new(plan);
    let response = rendered.response(&meta, &ending);
    if req.store && ending == Ending::Normal {
        let mut conversation = history.unwrap_or_default();
        conversation.extend(req.input.iter().cloned());
        conversation.extend(rendered.output(false));
        ex.shared.store(
            &meta.id,
            Stored {
                response: response.clone(),
                input: req.input.clone(),
                conversation,
            },
        );
    }
    if !req.stream {
        return ex.reply(200, &response, None);
    }

    let events = rendered.events(&meta, &ending);
    let echo = ex.echo.clone();
    let framing = Framing {
        quirks: ex.shared.config.quirks,
        split: ex.shared.config.split_writes,
    };
    let gate = controls.gate.as_deref().map(|g| ex.shared.gate(g));
    let script = Script::new(&events, framing, controls, gate);
    lock(&ex.record).status = 200;
    let body = RecordingBody::new(script, ex.shared.clone(), ex.record.clone());
    let mut builder = Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache");
    if let Some(echo) = echo {
        builder = builder.header("x-mock-echo-authorization", echo);
    }
    builder
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
