//! The HTTP side of authentication: the middleware that checks team keys and the admin token
//! on `/v1/*` and `/admin/*`, and the [`Caller`] extractor handlers get the key from. What a
//! key may do, and the store behind it, is `crate::auth`'s; this module only turns it into
//! requests let through or refused.

use crate::auth::{Auth, AuthError, ClientKey, limits};
use crate::config::AuthMode;
use crate::error::ApiError;
use crate::request_context::RequestMeta;
use crate::server::dashboard::{self, session::Sessions};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{Method, StatusCode};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Extractor: the authenticated key, if any (`None` with `auth.mode = "none"`).
#[derive(Debug, Clone, Default)]
pub struct Caller(pub Option<Arc<ClientKey>>);

impl Caller {
    /// Regions this caller may use, for `UpstreamRequest::allowed_regions`.
    pub fn allowed_regions(&self) -> Option<Vec<String>> {
        self.0.as_ref().and_then(|k| k.allowed_regions())
    }

    /// See [`ClientKey::check_model`]; always `Ok` without a key. A request without a
    /// model (absent, `null`, or only a `prompt` template) is refused for a key limited to
    /// some models: the upstream would pick one, unchecked.
    pub fn check_model(&self, requested: Option<(&str, &str)>) -> Result<(), AuthError> {
        match (&self.0, requested) {
            (None, _) => Ok(()),
            (Some(key), Some((requested, resolved))) => key.check_model(requested, resolved),
            (Some(key), None) if key.models.is_empty() => Ok(()),
            (Some(key), None) => Err(AuthError::ModelRequired {
                allowed: key.models.join(", "),
            }),
        }
    }

    /// The id of the team key, which owns the responses it creates.
    pub fn key_id(&self) -> Option<&str> {
        self.0.as_ref().map(|k| k.id.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Caller(parts.extensions.get::<Arc<ClientKey>>().cloned()))
    }
}

fn refuse(reason: &'static str, err: AuthError) -> Response {
    metrics::counter!("qwen_gateway_auth_refusals_total", "reason" => reason).increment(1);
    ApiError::from(err).into_response()
}

/// What [`require_key`] checks a route group's requests against.
#[derive(Debug, Clone)]
pub struct KeyGate {
    pub auth: Arc<Auth>,
    /// The group's requests count against the key's limits (the model list, answered by the
    /// gateway itself, does not).
    pub limited: bool,
}

/// Middleware for the `/v1` route groups with `auth.mode = "keys"`: a valid key or 401,
/// limits or 429, then the handler with the [`ClientKey`] in the extensions; `x-ratelimit-*`
/// headers on the way back for limited keys. With `auth.mode = "none"` requests pass
/// untouched.
pub async fn require_key(
    State(KeyGate { auth, limited }): State<KeyGate>,
    mut req: Request,
    next: Next,
) -> Response {
    if auth.mode() != AuthMode::Keys {
        return next.run(req).await;
    }
    let key = match auth.authenticate(req.headers()).await {
        Ok(key) => key,
        Err(err) => {
            let reason = match &err {
                AuthError::MissingKey => "missing",
                AuthError::UnknownKey => "unknown",
                AuthError::RevokedKey { .. } => "revoked",
                AuthError::ExpiredKey { .. } => "expired",
                _ => "store",
            };
            if reason == "store" {
                tracing::warn!(error = %err, "cannot verify an API key");
            }
            return refuse(reason, err);
        }
    };
    if let Some(meta) = req.extensions().get::<RequestMeta>() {
        meta.update(|i| i.client = Some(key.clone()));
    }
    let snapshot = if limited {
        match limits::admit(auth.store(), &key).await {
            Ok(snapshot) => snapshot,
            Err(refusal) => {
                let q = refusal.quota;
                let mut response = refuse(
                    q.kind.label(),
                    AuthError::RateLimited {
                        kind: q.kind,
                        limit: q.limit,
                        used: q.used,
                        retry_after: q.reset,
                    },
                );
                refusal.snapshot.apply(response.headers_mut());
                return response;
            }
        }
    } else {
        limits::RateSnapshot::default()
    };
    req.extensions_mut().insert(key);
    let mut response = next.run(req).await;
    snapshot.apply(response.headers_mut());
    response
}

/// What [`require_admin`] checks `/admin` requests against: the admin token and the
/// dashboard's session cookies.
#[derive(Debug, Clone)]
pub struct AdminGate {
    pub auth: Arc<Auth>,
    pub sessions: Arc<Sessions>,
    /// The dashboard's public pages (the page, its assets, the sign-in): no session needed.
    pub public: bool,
}

/// Middleware for the `/admin` route groups: 404 when no admin token is configured; otherwise the request
/// must carry the right bearer token (else 401, and 429 from an address with too many failed
/// attempts: [`Auth::admit_admin`]; the address is the connection's, which [`super::serve`]
/// leaves in the extensions), or, without an `Authorization` header, a valid dashboard
/// session cookie (else 401) and on `POST`/`DELETE` the session's CSRF token (else 403).
/// The dashboard's public group ([`AdminGate::public`]) needs neither. Every answer gets the
/// dashboard's security headers ([`dashboard::harden`]).
pub async fn require_admin(
    State(gate): State<AdminGate>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let auth = &gate.auth;
    if !auth.admin_enabled() {
        let err = AuthError::AdminDisabled {
            path: path.to_owned(),
        };
        return ApiError::from(err).into_response();
    }
    let by_cookie = !req.headers().contains_key(http::header::AUTHORIZATION)
        && Sessions::presented(req.headers());
    let admitted = if gate.public {
        Ok(())
    } else if by_cookie {
        match gate
            .sessions
            .verify(req.headers(), crate::calendar::now_secs())
        {
            None => Err(session_refused(
                StatusCode::UNAUTHORIZED,
                "invalid_admin_session",
                "The dashboard session is invalid, expired or signed out: sign in again at /admin/.",
            )),
            Some(session) => {
                let safe = matches!(*req.method(), Method::GET | Method::HEAD);
                if safe || gate.sessions.csrf_ok(&session, req.headers()) {
                    req.extensions_mut().insert(session);
                    Ok(())
                } else {
                    Err(session_refused(
                        StatusCode::FORBIDDEN,
                        "csrf_token_invalid",
                        "Missing or wrong x-csrf-token header: a POST or DELETE signed in by cookie must carry the page's CSRF token.",
                    ))
                }
            }
        }
    } else {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        match auth.admit_admin(path, req.headers(), peer, Instant::now()) {
            Ok(()) => Ok(()),
            Err(err @ AuthError::AdminThrottled { .. }) => Err(refuse("admin_throttled", err)),
            Err(err) => Err(refuse("admin", err)),
        }
    };
    let mut response = match admitted {
        Ok(()) => next.run(req).await,
        Err(response) => response,
    };
    dashboard::harden(response.headers_mut());
    response
}

/// A refused dashboard session; not counted by the admin throttle (a cookie cannot be
/// guessed, and an expired one would otherwise lock its owner out of signing in again).
fn session_refused(status: StatusCode, code: &'static str, message: &str) -> Response {
    metrics::counter!("qwen_gateway_auth_refusals_total", "reason" => "admin_session").increment(1);
    ApiError::new(status, crate::error::ErrorType::InvalidRequest, message)
        .with_code(code)
        .into_response()
}
