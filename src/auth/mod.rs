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
//! No HTTP here: the middleware that uses this lives in `server::auth` (`require_key` in
//! front of `/v1/*`: it authenticates, applies the limits, leaves the [`ClientKey`] in the
//! request's extensions for the `Caller` extractor and adds the `x-ratelimit-*` headers;
//! `require_admin` guards `/admin`, with failed token attempts throttled per client address
//! by [`throttle`]).

pub mod admin;
pub mod cache;
pub mod keys;
pub mod limits;
pub mod throttle;

use crate::config::{AuthConfig, AuthMode, Secret};
use crate::error::{self, ApiError};
use crate::store::{KeyRecord, Store, StoreError};
use cache::KeyCache;
use http::{HeaderMap, StatusCode};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a request (or an admin operation) is refused. Converted into the client's OpenAI
/// error in one place, `impl From<AuthError> for ApiError` below.
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

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        use AuthError as A;
        let message = err.to_string();
        match err {
            A::MissingKey | A::UnknownKey | A::RevokedKey { .. } | A::ExpiredKey { .. } => {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    error::ErrorType::InvalidRequest,
                    message,
                )
                .with_code("invalid_api_key")
            }
            A::AdminUnauthorized => ApiError::new(
                StatusCode::UNAUTHORIZED,
                error::ErrorType::InvalidRequest,
                message,
            )
            .with_code("invalid_admin_token"),
            A::AdminThrottled { retry_after } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                error::ErrorType::RateLimit,
                message,
            )
            .with_code("admin_auth_throttled")
            .with_retry_after(Some(retry_after)),
            A::AdminDisabled { .. } => ApiError::not_found(message),
            A::ModelNotAllowed { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, error::ErrorType::Permission, message)
                    .with_param("model")
                    .with_code("model_not_allowed")
            }
            A::RateLimited {
                kind: limit,
                retry_after,
                ..
            } => ApiError::new(StatusCode::TOO_MANY_REQUESTS, limit.error_type(), message)
                .with_code("rate_limit_exceeded")
                .with_retry_after(Some(Duration::from_secs(
                    retry_after.as_secs_f64().ceil().max(1.0) as u64,
                ))),
            A::ModelRequired { .. } => ApiError::invalid_request(message)
                .with_param("model")
                .with_code("missing_required_parameter"),
            A::InvalidRequest(_) => ApiError::invalid_request(message),
            A::InvalidParam { param, .. } => ApiError::invalid_request(message)
                .with_param(param)
                .with_code("invalid_value"),
            A::KeyNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, error::ErrorType::NotFound, message)
                    .with_code("key_not_found")
            }
            A::Store(StoreError::Conflict { .. }) => ApiError::new(
                StatusCode::CONFLICT,
                error::ErrorType::InvalidRequest,
                message,
            )
            .with_code("key_exists"),
            A::Store(_) => ApiError::server(
                StatusCode::SERVICE_UNAVAILABLE,
                "The gateway's key store is unavailable; retry shortly.",
            )
            .with_code("store_unavailable"),
            A::Random(_) => ApiError::server(StatusCode::INTERNAL_SERVER_ERROR, message),
        }
    }
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
        let presented = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        self.check_admin_token(path, presented)
    }

    /// Whether `presented` (a bearer token, or the dashboard's sign-in form field) is the
    /// admin token.
    pub fn check_admin_token(&self, path: &str, presented: Option<&str>) -> Result<(), AuthError> {
        let Some(expected) = &self.admin_token else {
            return Err(AuthError::AdminDisabled {
                path: path.to_owned(),
            });
        };
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
        self.throttled(path, checked, peer, now)
    }

    /// [`Auth::admit_admin`] for a token sent in a form (the dashboard's sign-in): the same
    /// throttle, the same per-address count.
    pub fn admit_admin_token(
        &self,
        path: &str,
        presented: Option<&str>,
        peer: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), AuthError> {
        let checked = self.check_admin_token(path, presented);
        self.throttled(path, checked, peer, now)
    }

    fn throttled(
        &self,
        path: &str,
        checked: Result<(), AuthError>,
        peer: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), AuthError> {
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
