//! Layered configuration: built-in defaults → `config/default.toml` → `--config FILE`
//! → `QWEN_GATEWAY__SECTION__KEY` environment variables.
//!
//! Secrets never live in the file: a region names the environment variables holding its keys,
//! and [`Settings::resolve_regions`] reads them. Values are only held as [`Secret`], whose
//! `Debug` output is redacted.

pub use base_url::{BaseUrl, BaseUrlError};
pub use http2::Http2;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
pub use store_url::{StoreUrl, StoreUrlError};

/// The compiled-in lowest layer, so the binary runs with no file on disk.
const BUILT_IN: &str = include_str!("../../config/default.toml");
const ENV_PREFIX: &str = "QWEN_GATEWAY";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration file {0} does not exist")]
    Missing(PathBuf),
    #[error("configuration: {0}")]
    Invalid(String),
    #[error(
        "no usable upstream region: set at least one of these environment variables to a Model Studio API key (or NAME_FILE to a file holding it): {0}"
    )]
    NoUsableRegion(String),
    /// `X_FILE` names a file that cannot be read: a deployment mistake worth stopping for,
    /// not a region to disable quietly. The path is not secret; the contents never appear.
    #[error("{var} names the file {path}, which cannot be read: {reason}")]
    SecretFile {
        var: String,
        path: String,
        reason: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    #[serde(default)]
    pub regions: BTreeMap<String, RegionConfig>,
    pub models: ModelsConfig,
    pub chat: ChatConfig,
    #[serde(default)]
    pub responses: ResponsesConfig,
    pub auth: AuthConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    pub store: StoreConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerConfig {
    /// An `IP:port` (`0.0.0.0:8080`, `[::]:8080`), parsed when the configuration loads so a
    /// typo is a configuration error, not a failure at bind time; host names are refused.
    pub listen: std::net::SocketAddr,
    pub max_body_bytes: usize,
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// A client must send a request's whole head within this long (slow-loris guard); it
    /// also bounds how long an idle keep-alive connection stays open.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A client must send a request's whole body within this long, else 408.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Browser origins allowed to call the gateway (CORS); empty: CORS off, no
    /// `access-control-*` header is ever sent. `"*"` allows any origin.
    #[serde(default, deserialize_with = "string_or_list")]
    pub cors_allow_origins: Vec<String>,
    /// Largest request head (request line and headers); larger: 431. Also hyper's read
    /// buffer per connection, so idle or slow connections cost at most about this much.
    pub max_header_bytes: usize,
    /// Open client connections at most; beyond it, new connections wait in the listen
    /// backlog until one closes (nothing is read from them, no memory is spent on them).
    pub max_connections: usize,
    /// A client that accepts no bytes of its answer for this long is cut off and its
    /// upstream request cancelled (nginx's `send_timeout`).
    #[serde(with = "humantime_serde")]
    pub send_timeout: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpstreamConfig {
    #[serde(deserialize_with = "string_or_list")]
    pub regions: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub first_byte_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub stream_idle_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    pub max_response_bytes: usize,
    /// Bound on one request's whole walk over keys and regions (all attempts together).
    #[serde(with = "humantime_serde")]
    pub failover_deadline: Duration,
    /// How long a 200 stream's opening is held back to catch failures reported in-stream
    /// (`0s` relays at once but then cannot fail over on them).
    #[serde(with = "humantime_serde")]
    pub hold_first_event: Duration,
    /// How long a key answered with 401/403 stays out of rotation.
    #[serde(with = "humantime_serde")]
    pub key_quarantine: Duration,
    /// How long a rate-limited key rests when the upstream sent no `Retry-After`.
    #[serde(with = "humantime_serde")]
    pub rate_limit_cooldown: Duration,
    /// Consecutive failures that open a region's circuit breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker keeps a region out before one trial request.
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
    /// How long an upstream stream is read on (not relayed) after its client left, to book
    /// the usage the upstream bills anyway; `0s`: not at all (an estimate is booked).
    #[serde(with = "humantime_serde")]
    pub abandoned_stream_drain: Duration,
    /// Client request headers that may travel upstream (an allowlist of names, or name
    /// prefixes ending in `*`, any case); every other header is dropped. Names the gateway owns (credentials, framing,
    /// hop-by-hop, `x-dashscope-*`, proxy and routing overrides) are refused here: see
    /// `crate::header_policy`.
    #[serde(deserialize_with = "string_or_list")]
    pub forward_headers: Vec<String>,
    /// A PEM file of CA certificates upstream TLS trusts besides the system's and the
    /// compiled-in Mozilla roots (a private endpoint's CA, a TLS-inspecting proxy's). Read at
    /// start-up: a file that cannot be read or holds no certificate stops the gateway.
    #[serde(default)]
    pub extra_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegionConfig {
    pub base_url: BaseUrl,
    #[serde(deserialize_with = "string_or_list")]
    pub api_key_env: Vec<String>,
    /// Model Studio workspace id sent as `X-DashScope-WorkSpace` to this region; a choice
    /// of the operator, never of a client (clients' `X-DashScope-*` headers are dropped).
    #[serde(default)]
    pub workspace: Option<String>,
    /// HTTP/2 to this region: `off` (default), `alpn` or `prior_knowledge` ([`Http2`]).
    #[serde(default)]
    pub http2: Http2,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelsConfig {
    pub default: String,
    #[serde(default)]
    pub fallback: bool,
    #[serde(default, deserialize_with = "string_or_list")]
    pub available: Vec<String>,
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatConfig {
    pub max_n: u32,
    pub max_stop: usize,
    /// Most messages in one request (counted before the body is built into a tree).
    pub max_messages: usize,
    /// Most content parts over all messages of one request.
    pub max_content_parts: usize,
    /// Most tools (and legacy functions) in one request.
    pub max_tools: usize,
}

/// `/v1/responses` pass-through options.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ResponsesConfig {
    /// Rewrite Model Studio's known deviations from OpenAI's Responses schema (float
    /// `created_at`) for strict typed clients; off keeps the upstream's bytes unchanged
    /// (see `model_studio::conformance`).
    #[serde(default)]
    pub conformance: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    None,
    Keys,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// The environment variable holding the `/admin` API's bearer token; unset or empty
    /// turns the admin API off (404).
    #[serde(default = "default_admin_token_env")]
    pub admin_token_env: String,
    /// How long a looked-up team key is trusted before the store is asked again: the most a
    /// revocation takes to reach this gateway (at most 1s).
    #[serde(default = "default_key_cache_ttl", with = "humantime_serde")]
    pub key_cache_ttl: Duration,
}

/// The `/admin/` dashboard's sign-in session (the admin token itself is `auth.admin_token_env`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AdminConfig {
    /// How long a dashboard session lasts after sign-in (the cookie's `Max-Age`).
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// Marks the session cookie `Secure`: set it when the gateway is reached over HTTPS (a
    /// TLS-terminating proxy in front); the gateway itself serves plain HTTP, so it cannot
    /// tell.
    pub secure_cookies: bool,
    /// The environment variable (or `<VAR>_FILE`) holding the key that signs session
    /// cookies; unset: a random key per process, so sessions end at restart and are valid
    /// on this replica only.
    pub session_secret_env: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: false,
            session_secret_env: "QWEN_GATEWAY_ADMIN_SESSION_SECRET".to_owned(),
        }
    }
}

fn default_admin_token_env() -> String {
    "QWEN_GATEWAY_ADMIN_TOKEN".to_owned()
}

fn default_key_cache_ttl() -> Duration {
    Duration::from_secs(1)
}

#[derive(Clone, Serialize, Deserialize)]
pub struct StoreConfig {
    pub url: StoreUrl,
    /// How long response ids are remembered with their region (Model Studio keeps them 7 days).
    #[serde(with = "humantime_serde")]
    pub affinity_ttl: Duration,
    /// Keep each response's input and output items so a conversation whose home region is
    /// down can be replayed elsewhere (opt-in: it stores conversation content).
    pub conversations: bool,
    /// Most turns replayed for one conversation.
    pub max_replay_turns: usize,
}

/// By hand: `url` may hold a Redis password (`redis://:PASSWORD@host`), shown as `***`.
impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.url)
            .field("affinity_ttl", &self.affinity_ttl)
            .field("conversations", &self.conversations)
            .field("max_replay_turns", &self.max_replay_turns)
            .finish()
    }
}

/// The password in `scheme://user:password@host/...`, if any.
pub fn url_password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    (!password.is_empty()).then_some(password)
}

/// `text` with the password of `url` (if it has one) replaced by `***`.
pub fn redact_password(text: &str, url: &str) -> String {
    match url_password(url) {
        Some(password) => text.replace(password, "***"),
        None => text.to_owned(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogConfig {
    pub format: LogFormat,
    pub filter: String,
}

/// A secret string: never printed, never `Debug`-formatted in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One upstream key with the variable it came from (the only name logs may show).
#[derive(Debug, Clone)]
pub struct RegionKey {
    pub env_var: String,
    pub secret: Secret,
}

/// Where a secret was found, for `check` (never the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// The variable itself.
    Env,
    /// The file named by `<variable>_FILE` (Docker/Kubernetes secrets).
    File,
}

/// Reads the secret named by the variable `var`: its value if set and non-empty, else the
/// trimmed contents of the file named by `<var>_FILE` (how Docker and Kubernetes mount
/// secrets, so keys need not sit in the environment). `Ok(None)` when neither holds a key.
/// Reusable for any secret named by a variable, not only region keys.
pub fn secret_from_env(
    var: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<(Secret, SecretSource)>, ConfigError> {
    if let Some(value) = lookup(var) {
        let value = value.trim();
        if !value.is_empty() {
            return Ok(Some((Secret::new(value), SecretSource::Env)));
        }
    }
    let file_var = format!("{var}_FILE");
    let Some(path) = lookup(&file_var).filter(|p| !p.trim().is_empty()) else {
        return Ok(None);
    };
    let contents = std::fs::read_to_string(path.trim()).map_err(|e| ConfigError::SecretFile {
        var: file_var,
        path: path.trim().to_owned(),
        reason: e.to_string(),
    })?;
    let value = contents.trim();
    Ok((!value.is_empty()).then(|| (Secret::new(value), SecretSource::File)))
}

/// A region that can take traffic: its URL and the keys found in the environment.
#[derive(Debug, Clone)]
pub struct ResolvedRegion {
    pub name: String,
    /// `regions.NAME.base_url` as the configuration parsed it ([`BaseUrl`]): requests push
    /// path segments onto it, never re-parse it.
    pub base_url: url::Url,
    pub keys: Vec<RegionKey>,
    /// `regions.NAME.workspace`.
    pub workspace: Option<String>,
    /// `regions.NAME.http2`.
    pub http2: Http2,
}

/// The outcome of reading region keys from the environment.
#[derive(Debug)]
pub struct RegionResolution {
    pub usable: Vec<ResolvedRegion>,
    /// One human-readable warning per disabled region.
    pub warnings: Vec<String>,
}

impl Settings {
    /// Loads all layers. `file` is `--config` (or `QWEN_GATEWAY_CONFIG`); it must exist when given.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(file, None)
    }

    /// As [`Settings::load`], with the environment layer taken from `env` instead of the
    /// process (for tests that must not touch global state).
    pub fn load_with_env(
        file: Option<&Path>,
        env: Option<std::collections::HashMap<String, String>>,
    ) -> Result<Self, ConfigError> {
        use config::{Environment, File, FileFormat};
        let mut builder = config::Config::builder()
            .add_source(File::from_str(BUILT_IN, FileFormat::Toml))
            .add_source(File::new("config/default.toml", FileFormat::Toml).required(false));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::Missing(path.to_path_buf()));
            }
            builder = builder.add_source(File::from(path).format(FileFormat::Toml));
        }
        let environment = Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(env);
        let settings: Settings = builder.add_source(environment).build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.admin.session_ttl < Duration::from_secs(1) {
            return Err(ConfigError::Invalid(
                "admin.session_ttl must be at least 1s".into(),
            ));
        }
        if self.upstream.regions.is_empty() {
            return Err(ConfigError::Invalid("upstream.regions is empty".into()));
        }
        for name in &self.upstream.regions {
            let region = self.regions.get(name).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "upstream.regions names '{name}' but there is no [regions.{name}] section"
                ))
            })?;
            if let Some(workspace) = &region.workspace
                && http::HeaderValue::from_str(workspace).is_err()
            {
                return Err(ConfigError::Invalid(format!(
                    "regions.{name}.workspace is not a valid header value"
                )));
            }
            if let Some(why) = region.http2.refusal(region.base_url.url().scheme()) {
                return Err(ConfigError::Invalid(format!("regions.{name}.http2: {why}")));
            }
        }
        for name in &self.upstream.forward_headers {
            if let Err(why) = crate::header_policy::check_allowlist_entry(name) {
                return Err(ConfigError::Invalid(format!(
                    "upstream.forward_headers: {name:?} {why}"
                )));
            }
        }
        if self.server.max_body_bytes == 0 {
            return Err(ConfigError::Invalid(
                "server.max_body_bytes must be > 0".into(),
            ));
        }
        for origin in &self.server.cors_allow_origins {
            let valid = origin == "*"
                || ((origin.starts_with("http://") || origin.starts_with("https://"))
                    && http::HeaderValue::from_str(origin).is_ok()
                    && !origin
                        .trim_start_matches("https://")
                        .trim_start_matches("http://")
                        .contains('/'));
            if !valid {
                return Err(ConfigError::Invalid(format!(
                    "server.cors_allow_origins: {origin:?} is not \"*\" or an origin such as \"https://app.example.com\" (scheme and host, no path)"
                )));
            }
        }
        if self.server.max_header_bytes < 8192 {
            return Err(ConfigError::Invalid(
                "server.max_header_bytes must be at least 8192 (hyper's smallest read buffer)"
                    .into(),
            ));
        }
        if self.server.max_connections == 0 || self.server.send_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "server.max_connections and server.send_timeout must be > 0".into(),
            ));
        }
        if self.server.header_read_timeout.is_zero() || self.server.body_read_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "server.header_read_timeout and server.body_read_timeout must be > 0".into(),
            ));
        }
        if self.chat.max_n == 0 {
            return Err(ConfigError::Invalid("chat.max_n must be >= 1".into()));
        }
        if self.auth.key_cache_ttl > Duration::from_secs(1) {
            return Err(ConfigError::Invalid(
                "auth.key_cache_ttl must be at most 1s (it bounds how long a revoked key keeps working)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Reads each preferred region's key variables through `lookup` (a variable `X` that is
    /// unset or empty falls back to the file named by `X_FILE`). Regions with no non-empty
    /// key are disabled with a warning; none usable is an error naming every variable looked
    /// at; an unreadable `X_FILE` is an error.
    pub fn resolve_regions(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<RegionResolution, ConfigError> {
        let mut usable = Vec::new();
        let mut warnings = Vec::new();
        let mut looked_at = Vec::new();
        for name in &self.upstream.regions {
            let Some(region) = self.regions.get(name) else {
                continue;
            };
            let mut keys = Vec::new();
            for var in &region.api_key_env {
                looked_at.push(var.clone());
                if let Some((secret, _)) = secret_from_env(var, &lookup)? {
                    keys.push(RegionKey {
                        env_var: var.clone(),
                        secret,
                    });
                }
            }
            if keys.is_empty() {
                warnings.push(format!(
                    "region '{name}' is disabled: none of its key variables (or their _FILE variants) is set ({})",
                    region.api_key_env.join(", ")
                ));
                continue;
            }
            usable.push(ResolvedRegion {
                name: name.clone(),
                base_url: region.base_url.url().clone(),
                keys,
                workspace: region.workspace.clone().filter(|w| !w.trim().is_empty()),
                http2: region.http2,
            });
        }
        if usable.is_empty() {
            looked_at.dedup();
            return Err(ConfigError::NoUsableRegion(looked_at.join(", ")));
        }
        Ok(RegionResolution { usable, warnings })
    }

    /// The effective configuration as TOML, plus which key variables are set. Never values.
    pub fn describe(&self, lookup: impl Fn(&str) -> Option<String>) -> String {
        let out = toml::to_string_pretty(self).unwrap_or_else(|e| format!("# {e}\n"));
        let mut out = redact_password(&out, &self.store.url.as_url());
        out.push_str("\n# upstream keys (values never shown)\n");
        for (name, region) in &self.regions {
            for var in &region.api_key_env {
                let state = match secret_from_env(var, &lookup) {
                    Ok(Some((_, SecretSource::Env))) => "set",
                    Ok(Some((_, SecretSource::File))) => "set from file",
                    Ok(None) => "unset",
                    Err(_) => "unreadable file",
                };
                out.push_str(&format!("# regions.{name}: {var} = <{state}>\n"));
            }
        }
        let var = &self.auth.admin_token_env;
        let state = match lookup(var) {
            Some(v) if !v.trim().is_empty() => "set: /admin enabled",
            _ => "unset: /admin disabled",
        };
        out.push_str(&format!("# auth: {var} = <{state}>\n"));
        out
    }
}

/// Accepts a TOML list or a comma-separated string (what an environment variable can hold).
fn string_or_list<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(de)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        OneOrMany::Many(v) => v,
    })
}

mod base_url;
mod http2;
mod store_url;
#[cfg(test)]
mod tests;
