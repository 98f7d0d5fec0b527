//! Small read-only endpoints: models, liveness, readiness, and the 404/405 answers.

use super::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub async fn list_models(State(state): State<AppState>) -> Response {
    Json(state.models.list()).into_response()
}

pub async fn get_model(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.models.get(&id) {
        Some(model) => Json(model).into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            crate::error::ErrorType::InvalidRequest,
            format!("The model '{id}' does not exist or is not configured on this gateway."),
        )
        .with_param("model")
        .with_code("model_not_found")
        .into_response(),
    }
}

pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// 200 when at least one region can take traffic now, with each region's breaker and keys
/// (variable names only) so an operator sees why a region is skipped.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let (ready, regions) = readiness(&state);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "ready": ready, "regions": regions }))).into_response()
}

/// Whether any region can take traffic, and each region's state as `/readyz` shows it (also
/// the dashboard's status page).
pub fn readiness(state: &AppState) -> (bool, Vec<serde_json::Value>) {
    let regions = state
        .upstream
        .regions()
        .iter()
        .map(|r| {
            json!({
                "name": r.name(),
                "available": r.is_available(),
                "breaker": r.breaker_snapshot(),
                "keys": r.key_states(),
            })
        })
        .collect();
    let ready = state.upstream.regions().iter().any(|r| r.is_available());
    (ready, regions)
}

/// Prometheus text exposition (see [`crate::telemetry`] for the metric names).
pub async fn metrics(State(state): State<AppState>) -> Response {
    match crate::telemetry::render(&state.upstream) {
        Some(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => ApiError::server(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are unavailable: another metrics recorder was installed first",
        )
        .into_response(),
    }
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "Unknown path '{}'. This gateway serves /v1/responses, /v1/chat/completions and /v1/models.",
        uri.path()
    ))
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        crate::error::ErrorType::InvalidRequest,
        format!("Method {method} is not allowed on {}.", uri.path()),
    )
    .with_code("method_not_allowed")
}
