//! The HTTP front: routes, middleware, and the server loop with graceful shutdown.

pub mod access_log;
mod body;
mod chat;
pub mod headers;
mod info;
pub mod relay;
mod responses;

use crate::config::{ResolvedRegion, Settings};
use crate::conversation::Conversations;
use crate::models::ModelCatalog;
use crate::store::Store;
use crate::upstream;
use axum::Router;
use axum::routing::{get, post};
use http::HeaderName;
use std::sync::Arc;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// Everything handlers share, cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub upstream: Arc<upstream::Router>,
    pub models: Arc<ModelCatalog>,
    pub conversations: Arc<Conversations>,
}

impl AppState {
    pub fn new(
        settings: Settings,
        regions: Vec<ResolvedRegion>,
        store: Store,
    ) -> Result<Self, reqwest::Error> {
        crate::telemetry::handle();
        let upstream = upstream::Router::new(&settings, regions)?;
        let s = &settings.store;
        let conversations =
            Conversations::new(store, s.affinity_ttl, s.conversations, s.max_replay_turns);
        Ok(Self {
            conversations: Arc::new(conversations),
            models: Arc::new(ModelCatalog::new(settings.models.clone())),
            upstream: Arc::new(upstream),
            settings: Arc::new(settings),
        })
    }
}

/// The gateway's routes with their middleware.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let api = Router::new()
        .route("/v1/responses", post(responses::create))
        .route(
            "/v1/responses/{*rest}",
            get(responses::by_id).delete(responses::by_id),
        )
        .route("/v1/chat/completions", post(chat::completions))
        .route("/v1/models", get(info::list_models))
        .route("/v1/models/{*id}", get(info::get_model))
        .route("/healthz", get(info::healthz))
        .route("/readyz", get(info::readyz))
        .route("/metrics", get(info::metrics))
        .fallback(info::not_found)
        .method_not_allowed_fallback(info::method_not_allowed)
        .with_state(state);
    api.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(axum::middleware::from_fn(access_log::access_log)),
    )
}

/// Serves until `shutdown` resolves, then lets open requests finish within
/// `server.shutdown_grace`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = state.settings.server.shutdown_grace;
    let app = router(state);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut stop_rx = stop_rx;
    tokio::select! {
        result = server => result,
        _ = async {
            let _ = stop_rx.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(?grace, "shutdown grace period over; closing remaining connections");
            Ok(())
        }
    }
}
