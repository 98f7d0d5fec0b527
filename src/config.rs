//! Layered configuration: built-in defaults → `config/default.toml` → `--config FILE`
//! → `QWEN_GATEWAY__SECTION__KEY` environment variables.
//!
//! Secrets never live in the file: a region names the environment variables holding its keys,
//! and [`Settings::resolve_regions`] reads them. Values are only held as [`Secret`], whose
//! `Debug` output is redacted.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The compiled-in lowest layer, so the binary runs with no file on disk.
const BUILT_IN: &str = include_str!("../config/default.toml");
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
        "no usable upstream region: set at least one of these environment variables to a Model Studio API key: {0}"
    )]
    NoUsableRegion(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    #[serde(default)]
    pub regions: BTreeMap<String, RegionConfig>,
    pub models: ModelsConfig,
    pub chat: ChatConfig,
    pub auth: AuthConfig,
    pub store: StoreConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerConfig {
    pub listen: String,
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegionConfig {
    pub base_url: String,
    #[serde(deserialize_with = "string_or_list")]
    pub api_key_env: Vec<String>,
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreConfig {
    pub url: String,
    /// How long response ids are remembered with their region (Model Studio keeps them 7 days).
    #[serde(with = "humantime_serde")]
    pub affinity_ttl: Duration,
    /// Keep each response's input and output items so a conversation whose home region is
    /// down can be replayed elsewhere (opt-in: it stores conversation content).
    pub conversations: bool,
    /// Most turns replayed for one conversation.
    pub max_replay_turns: usize,
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

/// A region that can take traffic: its URL and the keys found in the environment.
#[derive(Debug, Clone)]
pub struct ResolvedRegion {
    pub name: String,
    pub base_url: String,
    pub keys: Vec<RegionKey>,
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
        if self.upstream.regions.is_empty() {
            return Err(ConfigError::Invalid("upstream.regions is empty".into()));
        }
        for name in &self.upstream.regions {
            let region = self.regions.get(name).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "upstream.regions names '{name}' but there is no [regions.{name}] section"
                ))
            })?;
            let url = region.base_url.trim();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "regions.{name}.base_url must start with http:// or https://"
                )));
            }
        }
        if self.server.max_body_bytes == 0 {
            return Err(ConfigError::Invalid(
                "server.max_body_bytes must be > 0".into(),
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
        Ok(())
    }

    /// Reads each preferred region's key variables through `lookup`. Regions with no
    /// non-empty key are disabled with a warning; none usable is an error naming every
    /// variable looked at.
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
            let keys: Vec<RegionKey> = region
                .api_key_env
                .iter()
                .filter_map(|var| {
                    looked_at.push(var.clone());
                    let value = lookup(var)?;
                    let value = value.trim();
                    (!value.is_empty()).then(|| RegionKey {
                        env_var: var.clone(),
                        secret: Secret::new(value),
                    })
                })
                .collect();
            if keys.is_empty() {
                warnings.push(format!(
                    "region '{name}' is disabled: none of its key variables is set ({})",
                    region.api_key_env.join(", ")
                ));
                continue;
            }
            usable.push(ResolvedRegion {
                name: name.clone(),
                base_url: region.base_url.trim().trim_end_matches('/').to_owned(),
                keys,
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
        let mut out = toml::to_string_pretty(self).unwrap_or_else(|e| format!("# {e}\n"));
        out.push_str("\n# upstream keys (values never shown)\n");
        for (name, region) in &self.regions {
            for var in &region.api_key_env {
                let state = match lookup(var) {
                    Some(v) if !v.trim().is_empty() => "set",
                    _ => "unset",
                };
                out.push_str(&format!("# regions.{name}: {var} = <{state}>\n"));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn built_in_defaults_load() {
        let s = Settings::load_with_env(None, Some(HashMap::new())).unwrap();
        assert_eq!(s.server.listen, "127.0.0.1:8080");
        assert_eq!(s.server.header_read_timeout, Duration::from_secs(10));
        assert_eq!(s.server.body_read_timeout, Duration::from_secs(30));
        assert_eq!(s.upstream.regions, ["singapore", "beijing"]);
        assert_eq!(s.auth.mode, AuthMode::None);
    }

    #[test]
    fn env_overrides_with_double_underscore_and_lists() {
        let s = Settings::load_with_env(
            None,
            Some(env(&[
                ("QWEN_GATEWAY__SERVER__LISTEN", "0.0.0.0:9000"),
                ("QWEN_GATEWAY__UPSTREAM__REGIONS", "beijing,singapore"),
                ("QWEN_GATEWAY__REGIONS__BEIJING__API_KEY_ENV", "A,B"),
            ])),
        )
        .unwrap();
        assert_eq!(s.server.listen, "0.0.0.0:9000");
        assert_eq!(s.upstream.regions, ["beijing", "singapore"]);
        assert_eq!(s.regions["beijing"].api_key_env, ["A", "B"]);
    }

    #[test]
    fn file_layer_and_missing_file() {
        let dir = std::env::temp_dir().join(format!("qg-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gw.toml");
        std::fs::write(
            &path,
            "[upstream]\nregions=[\"local\"]\n[regions.local]\nbase_url=\"http://127.0.0.1:1\"\napi_key_env=[\"LOCAL_KEY\"]\n",
        )
        .unwrap();
        let s = Settings::load_with_env(Some(&path), Some(HashMap::new())).unwrap();
        assert_eq!(s.upstream.regions, ["local"]);
        assert!(matches!(
            Settings::load_with_env(Some(&dir.join("nope.toml")), None),
            Err(ConfigError::Missing(_))
        ));
    }

    #[test]
    fn unknown_region_in_order_is_rejected() {
        let err = Settings::load_with_env(
            None,
            Some(env(&[("QWEN_GATEWAY__UPSTREAM__REGIONS", "mars")])),
        )
        .unwrap_err();
        assert!(err.to_string().contains("mars"));
    }

    #[test]
    fn regions_without_keys_are_disabled_and_none_is_an_error() {
        let s = Settings::load_with_env(None, Some(HashMap::new())).unwrap();
        let r = s
            .resolve_regions(|v| (v == "DASHSCOPE_API_KEY").then(|| "sk-x".to_string()))
            .unwrap();
        assert_eq!(r.usable.len(), 1);
        assert_eq!(r.usable[0].name, "singapore");
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].contains("DASHSCOPE_API_KEY_BEIJING"));
        let err = s.resolve_regions(|_| Some("  ".into())).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("DASHSCOPE_API_KEY") && msg.contains("DASHSCOPE_API_KEY_BEIJING"));
    }

    #[test]
    fn secrets_are_redacted() {
        let key = RegionKey {
            env_var: "K".into(),
            secret: Secret::new("sk-very-secret"),
        };
        assert!(!format!("{key:?}").contains("sk-very-secret"));
        let s = Settings::load_with_env(None, Some(HashMap::new())).unwrap();
        let text = s.describe(|_| Some("sk-very-secret".into()));
        assert!(!text.contains("sk-very-secret"));
        assert!(text.contains("DASHSCOPE_API_KEY = <set>"));
    }
}
