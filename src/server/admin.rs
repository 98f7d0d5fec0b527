//! `/admin`: team-key administration over HTTP, behind `Authorization: Bearer <admin token>`
//! (checked by [`crate::auth::require_admin`]; no token configured: 404).
//!
//! - `POST /admin/keys` `{"name", "models"?, "regions"?, "rpm"?, "tpm"?, "daily_tokens"?,
//!   "expires"?: "30d"}` → 201 with the key's fields and `"key"`: the raw key, shown once.
//! - `GET /admin/keys` → `{"object":"list","data":[...]}` (never hashes).
//! - `DELETE /admin/keys/{id_or_name}` → the revoked key.
//! - `GET /admin/usage?since=YYYY-MM-DD` → the ledger with key names.

use super::AppState;
use crate::auth::{AuthError, admin};
use crate::error::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

fn list(data: impl serde::Serialize) -> Response {
    Json(json!({ "object": "list", "data": data })).into_response()
}

fn logged(op: &'static str) -> impl Fn(AuthError) -> AuthError {
    move |err| {
        if matches!(err, AuthError::Store(_) | AuthError::Random(_)) {
            tracing::warn!(error = %err, op, "admin operation failed");
        }
        err
    }
}

pub async fn create_key(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let spec: admin::NewKey = serde_json::from_slice(&body)
        .map_err(|e| AuthError::InvalidRequest(format!("Invalid key request: {e}")))?;
    let regions: Vec<String> = state.settings.regions.keys().cloned().collect();
    let created = admin::create_key(state.auth.store(), spec, &regions)
        .await
        .map_err(logged("create_key"))?;
    let view = admin::KeyView::of(&created.record, crate::calendar::now_secs());
    let mut body = serde_json::to_value(&view).unwrap_or(Value::Null);
    if let Some(obj) = body.as_object_mut() {
        obj.insert("key".into(), Value::String(created.key.expose().to_owned()));
    }
    tracing::info!(key_id = %view.id, name = %view.name, "team key created");
    // The only answer that ever holds the raw key: no cache may keep it.
    let no_store = [(axum::http::header::CACHE_CONTROL, "no-store")];
    Ok((StatusCode::CREATED, no_store, Json(body)).into_response())
}

pub async fn list_keys(State(state): State<AppState>) -> Result<Response, ApiError> {
    let keys = admin::list_keys(state.auth.store())
        .await
        .map_err(logged("list_keys"))?;
    Ok(list(keys))
}

pub async fn revoke_key(
    State(state): State<AppState>,
    Path(id_or_name): Path<String>,
) -> Result<Response, ApiError> {
    let view = admin::revoke_key(state.auth.store(), &id_or_name)
        .await
        .map_err(logged("revoke_key"))?;
    state.auth.forget_cached();
    tracing::info!(key_id = %view.id, name = %view.name, "team key revoked");
    Ok(Json(view).into_response())
}

#[derive(Debug, Deserialize)]
pub struct UsageQuery {
    since: Option<String>,
}

pub async fn usage(
    State(state): State<AppState>,
    Query(query): Query<UsageQuery>,
) -> Result<Response, ApiError> {
    let lines = admin::usage(state.auth.store(), query.since.as_deref())
        .await
        .map_err(logged("usage"))?;
    Ok(list(lines))
}
