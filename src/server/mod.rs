//! The HTTP front: routes, middleware, and the server loop with graceful shutdown.

pub mod access_log;
mod admin;
mod auth;
mod body;
mod chat;
pub mod dashboard;
pub mod headers;
mod info;
mod model;
pub mod relay;
mod responses;
mod send_timeout;

use crate::auth::Auth;
use crate::config::{AuthMode, ResolvedRegion, Secret, Settings};
use crate::conversation::Conversations;
use crate::ledger::Ledger;
use crate::models::ModelCatalog;
use crate::store::Store;
use crate::upstream;
use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{any, get, post};
use http::HeaderName;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// Everything handlers share, cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub upstream: Arc<upstream::Router>,
    pub models: Arc<ModelCatalog>,
    pub conversations: Arc<Conversations>,
    pub auth: Arc<Auth>,
    pub ledger: Ledger,
    /// Cancelled when the shutdown grace period ends: open streams then close with a
    /// `gateway_shutting_down` error instead of being cut mid-event, and handlers still
    /// waiting for the upstream answer 503.
    pub grace_over: CancellationToken,
    /// `upstream.forward_headers`, parsed once.
    pub forward_headers: Arc<headers::ForwardHeaders>,
    /// The `/admin/` dashboard's session cookies.
    pub sessions: Arc<dashboard::session::Sessions>,
}

/// Why [`AppState::new`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot build the upstream HTTP client: {0}")]
    Http(#[from] upstream::ClientError),
    #[error("cannot make the dashboard's session key: {0}")]
    Random(#[from] crate::auth::keys::RandomError),
}

impl AppState {
    pub fn new(
        settings: Settings,
        regions: Vec<ResolvedRegion>,
        store: Store,
    ) -> Result<Self, StateError> {
        let upstream = upstream::Router::new(&settings, regions)?;
        let sessions = dashboard::session::Sessions::new(&settings.admin, None)?;
        let s = &settings.store;
        let auth = Auth::new(&settings.auth, store.clone());
        let ledger = Ledger::new(store.clone(), settings.auth.mode == AuthMode::None);
        let conversations =
            Conversations::new(store, s.affinity_ttl, s.conversations, s.max_replay_turns);
        Ok(Self {
            forward_headers: Arc::new(headers::ForwardHeaders::new(
                &settings.upstream.forward_headers,
            )),
            auth: Arc::new(auth),
            ledger,
            conversations: Arc::new(conversations),
            models: Arc::new(ModelCatalog::new(settings.models.clone())),
            upstream: Arc::new(upstream),
            settings: Arc::new(settings),
            grace_over: CancellationToken::new(),
            sessions: Arc::new(sessions),
        })
    }

    /// Signs dashboard sessions with this key (`admin.session_secret_env`) instead of a
    /// random one, so replicas sharing it accept each other's sessions. `None`: unchanged.
    pub fn with_session_secret(mut self, secret: Option<Secret>) -> Result<Self, StateError> {
        if let Some(secret) = secret {
            self.upstream
                .also_scrub("admin session secret", secret.expose());
            self.sessions = Arc::new(dashboard::session::Sessions::new(
                &self.settings.admin,
                Some(&secret),
            )?);
        }
        Ok(self)
    }

    /// Turns the `/admin` API on with this bearer token (`None` or empty: it answers 404).
    pub fn with_admin_token(mut self, token: Option<Secret>) -> Self {
        if let Some(token) = token.as_ref().filter(|t| !t.expose().trim().is_empty()) {
            self.upstream.also_scrub("admin token", token.expose());
        }
        let store = self.conversations.store().clone();
        self.auth = Arc::new(Auth::new(&self.settings.auth, store).with_admin_token(token));
        self
    }
}

const RESPONSES: &str = "/v1/responses";
const CHAT: &str = "/v1/chat/completions";
/// The routes whose `POST`s reach a model: the ones the usage ledger books.
const MODEL_ROUTES: &[&str] = &[RESPONSES, CHAT];

/// The gateway's routes with their middleware: the one place that knows them.
///
/// Routes come in groups, each with its own gate: the model calls (a key, counted against
/// its limits), the model list (a key, not counted), the admin API and dashboard (the
/// admin token or a session), the dashboard's public pages (no session) and the probes.
/// Every path under `/v1` and `/admin` belongs to a group (a catch-all route answers 404
/// behind the group's gate, so a caller without credentials learns nothing about which
/// paths exist). The groups are merged with their full paths rather than `Router::nest`ed,
/// because axum 0.8's `nest("/admin", …)` does not route `/admin/` (the dashboard's page)
/// or `/v1/` into the nested router.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let grace = from_fn_with_state(state.grace_over.clone(), answer_until_grace_over);
    // Each group's gate and grace go on as one `layer` call: every `Router::layer` boxes
    // the routes' services once more, which a request then pays for (callgrind: ~5 k
    // instructions per request for the two boxes of separate calls).
    let key = |limited| {
        ServiceBuilder::new()
            .layer(from_fn_with_state(
                auth::KeyGate {
                    auth: state.auth.clone(),
                    limited,
                },
                auth::require_key,
            ))
            .layer(grace.clone())
    };
    let admin = |public| {
        ServiceBuilder::new()
            .layer(from_fn_with_state(
                auth::AdminGate {
                    auth: state.auth.clone(),
                    sessions: state.sessions.clone(),
                    public,
                },
                auth::require_admin,
            ))
            .layer(grace.clone())
    };
    let model_calls = Router::new()
        .route(RESPONSES, post(responses::create))
        // Exactly the id endpoints the gateway serves: any other path under
        // /v1/responses/ (an extra segment, a traversal) is the catch-all 404.
        .route(
            "/v1/responses/{id}",
            get(responses::by_id_route).delete(responses::by_id_route),
        )
        .route(
            "/v1/responses/{id}/input_items",
            get(responses::by_id_route),
        )
        .route(CHAT, post(chat::completions))
        .route("/v1", any(info::not_found))
        .route("/v1/", any(info::not_found))
        .route("/v1/{*rest}", any(info::not_found))
        .method_not_allowed_fallback(info::method_not_allowed)
        .layer(key(true));
    // Answered by the gateway itself: not counted against a key's limits.
    let model_list = Router::new()
        .route("/v1/models", get(info::list_models))
        .route("/v1/models/{*id}", get(info::get_model))
        .method_not_allowed_fallback(info::method_not_allowed)
        .layer(key(false));
    let admin_api = Router::new()
        .route("/admin/keys", get(admin::list_keys).post(admin::create_key))
        .route(
            "/admin/keys/{id_or_name}",
            get(admin::get_key).delete(admin::revoke_key),
        )
        .route("/admin/usage", get(admin::usage))
        .route("/admin/logout", post(dashboard::logout))
        .route("/admin/usage.csv", get(dashboard::usage_csv))
        .route("/admin/status", get(dashboard::status))
        // The admin sees every tenant's responses (no owner check: no team key here).
        .route(
            "/admin/responses/{id}",
            get(responses::by_id_route).delete(responses::by_id_route),
        )
        .route(
            "/admin/responses/{id}/input_items",
            get(responses::by_id_route),
        )
        .route("/admin/{*rest}", any(info::not_found))
        .method_not_allowed_fallback(info::method_not_allowed)
        .layer(admin(false));
    // The dashboard's page, its assets and the sign-in: no session needed.
    let admin_public = Router::new()
        .route("/admin", get(dashboard::to_index))
        .route("/admin/", get(dashboard::index))
        .route("/admin/assets/{file}", get(dashboard::asset))
        .route("/admin/login", post(dashboard::login))
        .method_not_allowed_fallback(info::method_not_allowed)
        .layer(admin(true));
    let probes = Router::new()
        .route("/healthz", get(info::healthz))
        .route("/readyz", get(info::readyz))
        .route("/metrics", get(info::metrics))
        .fallback(info::not_found)
        .method_not_allowed_fallback(info::method_not_allowed)
        .layer(grace);
    let api = probes
        .merge(model_calls)
        .merge(model_list)
        .merge(admin_api)
        .merge(admin_public)
        .with_state(state.clone());
    let cors = cors(&state.settings.server.cors_allow_origins);
    // Around every group: refusals are logged too.
    let app = api.layer(
        ServiceBuilder::new()
            .layer(from_fn_with_state(
                state.settings.server.max_header_bytes,
                refuse_large_heads,
            ))
            .layer(axum::middleware::map_request(drop_invalid_request_id))
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(from_fn_with_state(
                access_log::LogRoutes {
                    ledger: state.ledger.clone(),
                    model_routes: MODEL_ROUTES,
                },
                access_log::access_log,
            )),
    );
    // Outermost: a browser's preflight carries no credentials, so it must be answered
    // before auth sees it.
    match cors {
        Some(cors) => app.layer(cors),
        None => app,
    }
}

/// 431 for a request head larger than `server.max_header_bytes` (request line and header
/// lines as sent). hyper's read buffer has the same bound but may take in one read more than
/// it: this is the exact check.
async fn refuse_large_heads(
    axum::extract::State(max): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let line = request.method().as_str().len()
        + request
            .uri()
            .path_and_query()
            .map_or(1, |p| p.as_str().len())
        + 12;
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if line + headers > max {
        return crate::error::ApiError::new(
            http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            crate::error::ErrorType::InvalidRequest,
            format!("The request head is larger than {max} bytes (server.max_header_bytes)."),
        )
        .with_code("request_header_too_large")
        .into_response();
    }
    next.run(request).await
}

/// A client's `x-request-id` is kept only when it is one value of 1 to 128 ASCII letters,
/// digits, `.`, `_`, `:` or `-`; otherwise it is removed, and `SetRequestIdLayer` gives the
/// request a fresh UUID. The id goes into logs, upstream headers and answers: it must not
/// carry anything else.
async fn drop_invalid_request_id(mut request: axum::extract::Request) -> axum::extract::Request {
    let headers = request.headers_mut();
    let mut values = headers.get_all("x-request-id").iter();
    let valid = match (values.next(), values.next()) {
        (Some(value), None) => is_valid_request_id(value.as_bytes()),
        (None, _) => true,
        (Some(_), Some(_)) => false,
    };
    if !valid {
        headers.remove("x-request-id");
    }
    request
}

/// The request-id grammar (see `drop_invalid_request_id`).
pub fn is_valid_request_id(id: &[u8]) -> bool {
    (1..=128).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// CORS for `server.cors_allow_origins` (`None` when empty: CORS stays off). Credentials
/// (cookies) are never allowed; the `Authorization` header is, since that is how browser
/// clients send a gateway key. Rate-limit and request-id headers are readable by scripts.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| http::HeaderValue::from_str(o).ok()),
        )
    };
    let expose = [
        "x-request-id",
        "retry-after",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
    ]
    .map(HeaderName::from_static);
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([http::Method::GET, http::Method::POST, http::Method::DELETE])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(expose)
            .max_age(Duration::from_secs(600)),
    )
}

/// Races a handler against the end of the shutdown grace period, so a request still
/// waiting for the upstream (which may take minutes) cannot hold the process open; it gets
/// an OpenAI-shaped 503 instead. Inside the access log, so the 503 is logged.
async fn answer_until_grace_over(
    axum::extract::State(grace_over): axum::extract::State<CancellationToken>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    tokio::select! {
        response = next.run(request) => response,
        () = grace_over.cancelled() => crate::error::ApiError::shutting_down().into_response(),
    }
}

/// After the grace period, how long ended streams get to deliver their final error event
/// before the remaining connections are dropped: a client that stopped reading must not
/// hold the exit.
pub const FLUSH_AFTER_GRACE: Duration = Duration::from_secs(2);

/// How long usage-ledger writes still in flight are waited for once connections are done.
pub const LEDGER_DRAIN: Duration = Duration::from_secs(5);

/// How long the runtime waits for blocking tasks at exit (a stuck DNS lookup must not hold it).
pub const RUNTIME_STOP: Duration = Duration::from_secs(1);

/// The most a stop can take past `server.shutdown_grace`: a container's stop timeout must
/// be longer than the grace period plus this, or usage still being written is lost to SIGKILL.
pub const MAX_STOP_AFTER_GRACE: Duration = Duration::from_secs(
    FLUSH_AFTER_GRACE.as_secs() + LEDGER_DRAIN.as_secs() + RUNTIME_STOP.as_secs(),
);

/// Serves until `shutdown` resolves, then stops accepting connections and lets open
/// requests finish within `server.shutdown_grace`. When the grace period ends, open streams
/// are closed with a `gateway_shutting_down` error event (see [`AppState::grace_over`]) and
/// get [`FLUSH_AFTER_GRACE`] to deliver it; then this returns `Ok` whatever is left open.
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
    let send_timeout = state.settings.server.send_timeout;
    let max_connections = state.settings.server.max_connections;
    // One permit per open connection: at the cap the loop stops accepting, and new
    // connections wait in the kernel's backlog (costing nothing here) until one closes.
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let ledger = state.ledger.clone();
    let grace_over = state.grace_over.clone();
    let state_max_header_bytes = state.settings.server.max_header_bytes;
    let app = router(state);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        // Bounds the head (a larger one gets 431) and each connection's read buffer.
        .max_buf_size(state_max_header_bytes);
    // Dropping `stop_tx` tells every connection to finish its request and close.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let mut connections = tokio::task::JoinSet::new();
    // Aborted when `serve` returns (the JoinSet is dropped).
    let mut background = tokio::task::JoinSet::new();
    background.spawn(crate::telemetry::upkeep_loop());
    let mut shutdown = std::pin::pin!(shutdown);
    // Warned once per time the cap is reached.
    let mut warned = false;
    loop {
        let full = slots.available_permits() == 0;
        if full && !warned {
            tracing::warn!(
                max_connections,
                "server.max_connections reached; new connections wait until one closes"
            );
        }
        warned = full;
        let next = async {
            let permit = slots.clone().acquire_owned().await;
            (permit, listener.accept().await)
        };
        let (stream, peer, permit) = tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            (permit, accepted) = next => match (permit, accepted) {
                (Ok(permit), Ok((stream, peer))) => (stream, peer, permit),
                (_, Err(err)) => {
                    accept_error(err).await;
                    continue;
                }
                (Err(_), _) => break, // the semaphore is never closed
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let builder = builder.clone();
        let mut stop_rx = stop_rx.clone();
        connections.spawn(async move {
            let _permit = permit;
            // The peer address, for what is decided per client (the admin throttle), as
            // `axum::serve` would leave it.
            let service = hyper::service::service_fn(
                move |mut request: http::Request<hyper::body::Incoming>| {
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    app.clone().oneshot(request.map(axum::body::Body::new))
                },
            );
            let conn = builder
                .serve_connection(
                    TokioIo::new(send_timeout::SendTimeout::new(stream, send_timeout)),
                    service,
                )
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
    tracing::info!(
        ?grace,
        "shutting down: no new connections; open requests have the grace period to finish"
    );
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!(
            ?grace,
            "shutdown grace period over; ending open streams with a gateway_shutting_down error"
        );
        grace_over.cancel();
        let flushed = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(FLUSH_AFTER_GRACE, flushed)
            .await
            .is_err()
        {
            tracing::warn!(
                after = ?FLUSH_AFTER_GRACE,
                "connections still open after their final events; dropping them"
            );
            connections.shutdown().await;
        }
    }
    // Usage of the last requests is still being written: let it land.
    ledger.drain(LEDGER_DRAIN).await;
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
