//! The HTTP front: routes, middleware, and the server loop with graceful shutdown.

pub mod access_log;
mod body;
mod chat;
pub mod headers;
mod info;
pub mod relay;
mod responses;

use crate::config::{ResolvedRegion, Settings};
use crate::models::ModelCatalog;
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
}

impl AppState {
    pub fn new(settings: Settings, regions: Vec<ResolvedRegion>) -> Result<Self, reqwest::Error> {
        crate::telemetry::handle();
        let upstream = upstream::Router::new(&settings, regions)?;
        Ok(Self {
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
/// `server.shutdown_grace`; connections still open after that are closed.
///
/// A hand-run HTTP/1.1 accept loop rather than `axum::serve`, which sets no timer, so
/// hyper's `header_read_timeout` never fires there: a client sending half a request head, or
/// nothing at all, would hold its connection (and task) forever. (`axum::serve`'s
/// protocol-sniffing builder also waits for a first byte without any bound.)
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let grace = state.settings.server.shutdown_grace;
    let header_read_timeout = state.settings.server.header_read_timeout;
    let app = router(state);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    // Dropping `stop_tx` tells every connection to finish its request and close.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let mut connections = tokio::task::JoinSet::new();
    // Aborted when `serve` returns (the JoinSet is dropped).
    let mut background = tokio::task::JoinSet::new();
    background.spawn(crate::telemetry::upkeep_loop());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    accept_error(err).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let builder = builder.clone();
        let mut stop_rx = stop_rx.clone();
        connections.spawn(async move {
            let service =
                hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    app.clone().oneshot(request.map(axum::body::Body::new))
                });
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stop_rx.changed() => conn.as_mut().graceful_shutdown(),
            }
            let _ = conn.await;
        });
    }
    drop(listener);
    drop(stop_tx);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!(
            ?grace,
            "shutdown grace period over; closing remaining connections"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// Connection-level accept errors are the client's business; others (out of file
/// descriptors) get a pause instead of a busy loop.
async fn accept_error(err: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "accept failed; pausing for a second");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
}
