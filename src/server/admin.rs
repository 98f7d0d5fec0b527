//! `/admin`: team-key administration over HTTP, behind `Authorization: Bearer <admin token>`
//! (checked by [`crate::auth::require_admin`]; no token configured: 404).
//!
//! - `POST /admin/keys` `{"name", "models"?, "regions"?, "rpm"?, "tpm"?, "daily_tokens"?,
//!   "expires"?: "30d"}` → 201 with the key's fields and `"key"`: the raw key, shown once.
//! - `GET /admin/keys?limit=&after=` → `{"object":"list","data":[...],"first_id","last_id",
//!   "has_more"}` (never hashes), in pages: `limit` 1 to 1000 (default 100), `after` the
//!   previous page's `last_id`.
//! - `GET /admin/keys/{id_or_name}` → one key (id tried first, then name).
//! - `DELETE /admin/keys/{id_or_name}` → the revoked key.
//! - `GET /admin/usage?since=YYYY-MM-DD&limit=&after=` → the ledger with key names, paged
//!   the same way (`after`: an opaque cursor, the previous page's `last_id`).

use super::AppState;
use crate::auth::{AuthError, admin};
use crate::error::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

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

/// The query parameters of the list endpoints, each at most once.
#[derive(Debug, Default)]
struct ListQuery {
    limit: Option<String>,
    after: Option<String>,
    since: Option<String>,
}

impl ListQuery {
    /// An empty `after` is the first page.
    fn parse(
        query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    ) -> Result<Self, AuthError> {
        let [limit, after, since] = query_params(query, ["limit", "after", "since"])?;
        Ok(ListQuery {
            limit,
            after: after.filter(|a| !a.is_empty()),
            since,
        })
    }
}

/// The values of the query parameters `names`, in that order. Unknown parameters are
/// ignored, as OpenAI's list endpoints do; a repeated one is refused rather than guessed at.
pub(super) fn query_params<const N: usize>(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    names: [&'static str; N],
) -> Result<[Option<String>; N], AuthError> {
    let Query(pairs) = query.map_err(|e| {
        AuthError::InvalidRequest(format!("Invalid query string: {}", e.body_text()))
    })?;
    let mut values: [Option<String>; N] = std::array::from_fn(|_| None);
    for (name, value) in pairs {
        let Some(at) = names.iter().position(|n| *n == name) else {
            continue;
        };
        if values[at].is_some() {
            let param = names[at];
            return Err(AuthError::InvalidParam {
                param,
                message: format!("'{param}' may be given only once."),
            });
        }
        values[at] = Some(value);
    }
    Ok(values)
}

pub async fn list_keys(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = ListQuery::parse(query)?;
    let limit = admin::page_limit(query.limit.as_deref())?;
    let page = admin::list_keys_page(state.auth.store(), query.after.as_deref(), limit)
        .await
        .map_err(logged("list_keys"))?;
    Ok(Json(page).into_response())
}

pub async fn get_key(
    State(state): State<AppState>,
    Path(id_or_name): Path<String>,
) -> Result<Response, ApiError> {
    let view = admin::get_key(state.auth.store(), &id_or_name)
        .await
        .map_err(logged("get_key"))?;
    Ok(Json(view).into_response())
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

pub async fn usage(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = ListQuery::parse(query)?;
    let limit = admin::page_limit(query.limit.as_deref())?;
    let page = admin::usage_page(
        state.auth.store(),
        query.since.as_deref(),
        query.after.as_deref(),
        limit,
    )
    .await
    .map_err(logged("usage"))?;
    Ok(Json(page).into_response())
}
