//! The `/_mock` routes (request log, stats, gates, default controls) for clients of the binary.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::state::{RecordedRequest, Shared};

pub(super) async fn list_requests(State(shared): State<Arc<Shared>>) -> Response {
    let all: Vec<Value> = shared
        .requests()
        .iter()
        .map(RecordedRequest::to_json)
        .collect();
    axum::Json(all).into_response()
}

pub(super) async fn clear_requests(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.clear();
    StatusCode::NO_CONTENT
}

pub(super) async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.stats()).into_response()
}

pub(super) async fn release_gate(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> StatusCode {
    shared.release(&name);
    StatusCode::NO_CONTENT
}

/// Replaces the default controls with the posted object (`{}` clears them).
pub(super) async fn set_defaults(
    State(shared): State<Arc<Shared>>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"message": "expected a JSON object of header -> value"})),
        )
            .into_response();
    };
    shared.clear_defaults();
    for (name, value) in &map {
        let value = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        shared.set_default(name, &value);
    }
    get_defaults(State(shared)).await
}

pub(super) async fn get_defaults(State(shared): State<Arc<Shared>>) -> Response {
    let map: Map<String, Value> = shared
        .defaults()
        .into_iter()
        .map(|(name, value)| (name, Value::String(value)))
        .collect();
    axum::Json(map).into_response()
}
