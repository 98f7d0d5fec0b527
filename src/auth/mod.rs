//! Team keys: who may call `/v1/*` (with `auth.mode = "keys"`), with which models, regions
//! and limits, and who may call `/admin`.
//!
//! - [`keys`]: generation (OS random), SHA-256 hashing, constant-time comparison, and the
//!   headers a key may arrive in (`Authorization: Bearer`, `api-key`, `x-api-key`).
//! - [`cache`]: lookups remembered ≤ `auth.key_cache_ttl` (≤ 1s): the revocation delay.
//! - [`limits`]: requests/tokens per minute, tokens per day, model patterns.
//! - [`admin`]: creating, listing and revoking keys and reading the ledger, shared by the
//!   CLI (`qwen-gateway keys ...`) and the `/admin` HTTP API.
//!
//! [`require_key`] is the middleware in front of `/v1/*`: it authenticates, applies the
//! limits, leaves the [`ClientKey`] in the request's extensions (handlers read it with
//! [`Caller`]) and adds the `x-ratelimit-*` headers. [`require_admin`] guards `/admin`,
//! with failed token attempts throttled per client address ([`throttle`]).

pub mod admin;
pub mod cache;
pub mod keys;
pub mod limits;
pub mod throttle;

use crate::config::{AuthConfig, AuthMode, Secret};
use crate::error::ApiError;
use crate::server::access_log::RequestMeta;
use crate::store::{KeyRecord, Store, StoreError};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cache::KeyCache;
use http::HeaderMap;
use http::request::Parts;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a request (or an admin operation) is refused. Converted into the client's OpenAI
/// error in one place, `impl From<AuthError> for ApiError` in [`crate::error`].
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "You didn't provide an API key. Send your gateway key as `Authorization: Bearer KEY` (or in an `api-key` or `x-api-key` header)."
    )]
    MissingKey,
    #[error(
        "Incorrect API key provided. Ask the gateway's operator for a key (`qwen-gateway keys create`)."
    )]
    UnknownKey,
    #[error("This API key was revoked at {at}. Ask the gateway's operator for a new key.")]
    RevokedKey { at: String },
    #[error("This API key expired at {at}. Ask the gateway's operator for a new key.")]
    ExpiredKey { at: String },
    #[error(
        "This API key may not use model '{model}' (allowed: {allowed}). Use one of the allowed models or ask the gateway's operator."
    )]
    ModelNotAllowed { model: String, allowed: String },
    #[error(
        "This API key may use only some models (allowed: {allowed}): the request must name one in 'model'."
    )]
    ModelRequired { allowed: String },
    #[error(
        "Rate limit reached for this API key on {}: Limit {limit}, Used {used}. Please try again in {}.",
        kind.describe(),
        limits::go_duration(*retry_after)
    )]
    RateLimited {
        kind: limits::LimitKind,
        limit: u64,
        used: u64,
        retry_after: Duration,
    },
    /// Admin API off (no token configured): it answers as if it did not exist.
    #[error(
        "Unknown path '{path}'. This gateway serves /v1/responses, /v1/chat/completions and /v1/models."
    )]
    AdminDisabled { path: String },
    #[error("Missing or incorrect admin token: send `Authorization: Bearer <admin token>`.")]
    AdminUnauthorized,
    #[error(
        "Too many failed admin-token attempts from this address; try again in {}s.",
        retry_after.as_secs()
    )]
    AdminThrottled {
        /// Whole seconds, rounded up: what `Retry-After` says.
        retry_after: Duration,
    },
    #[error("{0}")]
    InvalidRequest(String),
    /// A query parameter (`limit`, `after`, `since`) the client must fix; `param` names it.
    #[error("{message}")]
    InvalidParam {
        param: &'static str,
        message: String,
    },
    #[error("No key has the id or name '{0}'.")]
    KeyNotFound(String),
    #[error("cannot generate a key: {0}")]
    Random(#[from] keys::RandomError),
    /// The store failed (or refused a duplicate); key lookups fail closed (nobody is let in
    /// unverified). The detail is for logs and the CLI; clients get a fixed message.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What handlers know about the key a request came with (never the key or its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKey {
    pub id: String,
    pub name: String,
    /// Glob patterns of allowed models; empty: all.
    pub models: Vec<String>,
    /// Allowed regions; empty: all.
    pub regions: Vec<String>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub daily_tokens: Option<u64>,
}

impl ClientKey {
    fn from_record(record: &KeyRecord) -> Self {
        Self {
            id: record.id.clone(),
            name: record.name.clone(),
            models: record.models.clone(),
            regions: record.regions.clone(),
            rpm: record.rpm,
            tpm: record.tpm,
            daily_tokens: record.daily_tokens,
        }
    }

    /// The regions to hand to the upstream router (`None`: any).
    pub fn allowed_regions(&self) -> Option<Vec<String>> {
        (!self.regions.is_empty()).then(|| self.regions.clone())
    }

    /// Whether the key may use a model, asked for as `requested` and sent upstream as
    /// `resolved` (an alias's target): either name may match a pattern.
    pub fn check_model(&self, requested: &str, resolved: &str) -> Result<(), AuthError> {
        if self.models.is_empty()
            || self
                .models
                .iter()
                .any(|p| limits::glob_match(p, requested) || limits::glob_match(p, resolved))
        {
            return Ok(());
        }
        Err(AuthError::ModelNotAllowed {
            model: requested.to_owned(),
            allowed: self.models.join(", "),
        })
    }

    /// Whether token usage must be counted for this key's limits.
    pub fn counts_tokens(&self) -> bool {
        self.tpm.is_some() || self.daily_tokens.is_some()
    }
}

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

/// Authentication state shared by the middleware and the admin API.
#[derive(Debug)]
pub struct Auth {
    mode: AuthMode,
    store: Store,
    cache: KeyCache,
    admin_token: Option<Secret>,
    admin_throttle: throttle::AdminThrottle,
}

impl Auth {
    pub fn new(config: &AuthConfig, store: Store) -> Self {
        Self {
            mode: config.mode,
            store,
            cache: KeyCache::new(config.key_cache_ttl),
            admin_token: None,
            admin_throttle: throttle::AdminThrottle::default(),
        }
    }

    /// Turns the `/admin` API on with this bearer token (`None` or empty: off).
    pub fn with_admin_token(mut self, token: Option<Secret>) -> Self {
        self.admin_token = token.filter(|t| !t.expose().trim().is_empty());
        self
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    pub fn admin_enabled(&self) -> bool {
        self.admin_token.is_some()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Drops cached lookups: a key revoked here is refused here at once.
    pub fn forget_cached(&self) {
        self.cache.clear();
    }

    /// The key record for a presented raw key, from the cache or the store. The store is
    /// asked by hash; the stored hash is then compared in constant time.
    async fn lookup(&self, raw: &str) -> Result<Option<Arc<KeyRecord>>, AuthError> {
        let hash = keys::hash_key(raw);
        let record = match self.cache.get(&hash) {
            Some(cached) => cached,
            None => {
                let asked = Instant::now();
                let found = self.store.key_by_hash(&hash).await?.map(Arc::new);
                self.cache.put(&hash, found.clone(), asked);
                found
            }
        };
        Ok(record.filter(|r| keys::hashes_match(&r.hash, &hash)))
    }

    /// The active key these headers present, or why there is none.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<ClientKey>, AuthError> {
        let raw = keys::presented_key(headers).ok_or(AuthError::MissingKey)?;
        let record = self.lookup(raw).await?.ok_or(AuthError::UnknownKey)?;
        let now = crate::calendar::now_secs();
        if let Some(at) = record.revoked_at {
            return Err(AuthError::RevokedKey {
                at: crate::calendar::rfc3339(at),
            });
        }
        if let Some(at) = record.expires_at.filter(|&at| at <= now) {
            return Err(AuthError::ExpiredKey {
                at: crate::calendar::rfc3339(at),
            });
        }
        Ok(Arc::new(ClientKey::from_record(&record)))
    }

    /// Whether these headers carry the admin token.
    pub fn check_admin(&self, path: &str, headers: &HeaderMap) -> Result<(), AuthError> {
        let Some(expected) = &self.admin_token else {
            return Err(AuthError::AdminDisabled {
                path: path.to_owned(),
            });
        };
        let presented = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        match presented {
            Some(token) if keys::secrets_match(token, expected.expose()) => Ok(()),
            _ => Err(AuthError::AdminUnauthorized),
        }
    }

    /// [`Auth::check_admin`] behind the per-address throttle: a missing or wrong token
    /// counts as a failed attempt from `peer` (`None`: one bucket shared by every request
    /// whose peer is unknown), and an address past the limit is refused whatever it sends.
    /// Failures are logged with the address, never with what was presented.
    pub fn admit_admin(
        &self,
        path: &str,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), AuthError> {
        let checked = self.check_admin(path, headers);
        if let Err(AuthError::AdminDisabled { .. }) = checked {
            return checked;
        }
        let client = peer.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        let bucket = throttle::Bucket::of(peer);
        match self.admin_throttle.judge(bucket, checked.is_ok(), now) {
            throttle::Verdict::Allowed => Ok(()),
            throttle::Verdict::Failed { failures } => {
                tracing::warn!(
                    client = %client,
                    path,
                    failures,
                    limit = throttle::MAX_FAILURES,
                    "admin token missing or wrong"
                );
                checked
            }
            throttle::Verdict::Throttled { retry_after, first } => {
                let retry_after = Duration::from_secs(retry_after.as_secs_f64().ceil() as u64);
                let retry_after = retry_after.max(Duration::from_secs(1));
                if first {
                    tracing::warn!(
                        client = %client,
                        retry_after_secs = retry_after.as_secs(),
                        "too many failed admin-token attempts: /admin refused for this address until the window ends"
                    );
                } else {
                    tracing::debug!(client = %client, path, "admin request throttled");
                }
                Err(AuthError::AdminThrottled { retry_after })
            }
        }
    }
}

fn is_api_path(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/")
}

fn is_admin_path(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}

/// Requests served by the gateway itself (the model list) are not counted against limits.
fn is_limited_path(path: &str) -> bool {
    !(path == "/v1/models" || path.starts_with("/v1/models/"))
}

fn refuse(reason: &'static str, err: AuthError) -> Response {
    metrics::counter!("qwen_gateway_auth_refusals_total", "reason" => reason).increment(1);
    ApiError::from(err).into_response()
}

/// Middleware for `/v1/*` with `auth.mode = "keys"`: a valid key or 401, limits or 429,
/// then the handler with the [`ClientKey`] in the extensions; `x-ratelimit-*` headers on the
/// way back for limited keys. Other paths and `auth.mode = "none"` pass untouched.
pub async fn require_key(State(auth): State<Arc<Auth>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if auth.mode != AuthMode::Keys || !is_api_path(path) {
        return next.run(req).await;
    }
    let limited = is_limited_path(path);
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
        match limits::admit(&auth.store, &key).await {
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

/// Middleware for `/admin/*`: 404 when no admin token is configured, 401 without the right
/// one, 429 from an address with too many failed attempts ([`Auth::admit_admin`]). The
/// address is the connection's ([`crate::server::serve`] leaves it in the extensions).
/// Other paths pass untouched.
pub async fn require_admin(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !is_admin_path(path) {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    match auth.admit_admin(path, req.headers(), peer, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(err @ AuthError::AdminDisabled { .. }) => ApiError::from(err).into_response(),
        Err(err @ AuthError::AdminThrottled { .. }) => refuse("admin_throttled", err),
        Err(err) => refuse("admin", err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(models: &[&str]) -> ClientKey {
        ClientKey {
            id: "key_x".into(),
            name: "x".into(),
            models: models.iter().map(|m| m.to_string()).collect(),
            regions: vec![],
            rpm: None,
            tpm: None,
            daily_tokens: None,
        }
    }

    #[test]
    fn models_match_requested_or_resolved_names() {
        assert!(key(&[]).check_model("anything", "anything").is_ok());
        let k = key(&["qwen3-*"]);
        assert!(k.check_model("qwen3-max", "qwen3-max").is_ok());
        assert!(k.check_model("gpt-4o", "qwen3-max-2026-01-23").is_ok());
        let err = k.check_model("qwen2-72b", "qwen2-72b").unwrap_err();
        assert!(err.to_string().contains("'qwen2-72b'"), "{err}");
        assert!(key(&["gpt-4o"]).check_model("gpt-4o", "qwen3-max").is_ok());
    }

    #[test]
    fn paths() {
        assert!(is_api_path("/v1/responses") && !is_api_path("/v10") && !is_api_path("/healthz"));
        assert!(is_admin_path("/admin/keys") && !is_admin_path("/administrator"));
        assert!(!is_limited_path("/v1/models/gpt-4o") && is_limited_path("/v1/responses"));
    }

    #[tokio::test]
    async fn authenticates_by_hash_and_says_why_a_key_is_refused() {
        let store = Store::open("memory").await.unwrap();
        let config = AuthConfig {
            mode: AuthMode::Keys,
            admin_token_env: "X".into(),
            key_cache_ttl: Duration::ZERO,
        };
        let auth = Auth::new(&config, store.clone()).with_admin_token(Some(Secret::new("adm")));
        let created = admin::create_key(
            &store,
            admin::NewKey {
                name: "ci".into(),
                ..Default::default()
            },
            &[],
        )
        .await
        .unwrap();
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("authorization", v.parse().unwrap());
            h
        };
        let ok = auth
            .authenticate(&headers(&format!("Bearer {}", created.key.expose())))
            .await
            .unwrap();
        assert_eq!(ok.name, "ci");
        assert!(!format!("{ok:?}").contains(&created.record.hash));
        let debug = format!("{auth:?} {:?}", created.record);
        assert!(!debug.contains(&created.record.hash) && !debug.contains("adm\""));
        assert!(!debug.contains(created.key.expose()));
        assert!(matches!(
            auth.authenticate(&HeaderMap::new()).await,
            Err(AuthError::MissingKey)
        ));
        assert!(matches!(
            auth.authenticate(&headers("Bearer qgw-nope")).await,
            Err(AuthError::UnknownKey)
        ));
        store.revoke_key("ci", 1).await.unwrap();
        assert!(matches!(
            auth.authenticate(&headers(&format!("Bearer {}", created.key.expose())))
                .await,
            Err(AuthError::RevokedKey { .. })
        ));
        assert!(auth.check_admin("/admin", &headers("Bearer adm")).is_ok());
        assert!(matches!(
            auth.check_admin("/admin", &headers("Bearer adm2")),
            Err(AuthError::AdminUnauthorized)
        ));
        // Without a known peer (the router used without `serve`), failures share one
        // bucket; a known address has its own.
        let now = Instant::now();
        for _ in 0..throttle::MAX_FAILURES {
            assert!(matches!(
                auth.admit_admin("/admin/keys", &headers("Bearer nope"), None, now),
                Err(AuthError::AdminUnauthorized)
            ));
        }
        assert!(matches!(
            auth.admit_admin("/admin/keys", &headers("Bearer adm"), None, now),
            Err(AuthError::AdminThrottled { retry_after }) if retry_after == Duration::from_secs(60)
        ));
        let peer: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(
            auth.admit_admin("/admin/keys", &headers("Bearer adm"), Some(peer), now)
                .is_ok()
        );
        let off = Auth::new(&config, store).with_admin_token(Some(Secret::new(" ")));
        assert!(matches!(
            off.check_admin("/admin", &headers("Bearer adm")),
            Err(AuthError::AdminDisabled { .. })
        ));
    }
}
