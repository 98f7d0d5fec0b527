//! `store.url`, parsed once when the configuration loads: which backend, and its address.

use serde::{Deserialize, Serialize};

/// Where shared state lives. Parsed from `memory`, `sqlite://PATH` or `redis://…` when the
/// configuration loads, so a typo is a configuration error and later code matches on the
/// backend instead of re-reading a string.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum StoreUrl {
    /// In-process: state dies with the process.
    Memory,
    /// An SQLite database file at this path.
    Sqlite(String),
    /// A Redis server; the whole URL, which may hold a password.
    Redis(String),
}

/// Why a `store.url` was refused. Only the scheme is kept: a full URL may hold a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreUrlError {
    #[error(
        "unsupported store url scheme `{scheme}` (expected `memory`, `sqlite://PATH` or `redis://HOST`)"
    )]
    Unsupported { scheme: String },
    #[error("invalid store url: `sqlite://` needs a path, e.g. `sqlite://qwen-gateway.db`")]
    SqliteWithoutPath,
}

impl StoreUrl {
    pub fn parse(url: &str) -> Result<Self, StoreUrlError> {
        if url == "memory" {
            return Ok(Self::Memory);
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreUrlError::SqliteWithoutPath);
            }
            return Ok(Self::Sqlite(path.to_owned()));
        }
        if url.starts_with("redis://") {
            return Ok(Self::Redis(url.to_owned()));
        }
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        Err(StoreUrlError::Unsupported {
            scheme: scheme.to_owned(),
        })
    }

    /// The URL as configured (with any password: see [`super::redact_password`]).
    pub fn as_url(&self) -> String {
        match self {
            Self::Memory => "memory".to_owned(),
            Self::Sqlite(path) => format!("sqlite://{path}"),
            Self::Redis(url) => url.clone(),
        }
    }
}

impl TryFrom<String> for StoreUrl {
    type Error = StoreUrlError;

    fn try_from(url: String) -> Result<Self, Self::Error> {
        Self::parse(&url)
    }
}

impl From<StoreUrl> for String {
    fn from(url: StoreUrl) -> Self {
        url.as_url()
    }
}

/// By hand: a Redis URL's password is shown as `***`.
impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.as_url();
        f.write_str(&super::redact_password(&url, &url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_parse_and_round_trip() {
        assert_eq!(StoreUrl::parse("memory"), Ok(StoreUrl::Memory));
        assert_eq!(
            StoreUrl::parse("sqlite://data/qg.db"),
            Ok(StoreUrl::Sqlite("data/qg.db".into()))
        );
        let redis = StoreUrl::parse("redis://:pw@h:6379/0").unwrap();
        assert_eq!(redis.as_url(), "redis://:pw@h:6379/0");
        assert_eq!(format!("{redis:?}"), "redis://:***@h:6379/0");
        assert_eq!(
            StoreUrl::parse("sqlite://"),
            Err(StoreUrlError::SqliteWithoutPath)
        );
        let err = StoreUrl::parse("postgres://u:secret@h/db").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(err.to_string().contains("`postgres`"), "{err}");
    }
}
