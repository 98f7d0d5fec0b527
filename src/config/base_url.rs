//! `regions.NAME.base_url`, parsed and checked once when the configuration loads.

use serde::{Deserialize, Serialize};

/// A region's API root. Requests are built by pushing path segments onto it, so it must be a
/// plain `http(s)` URL: credentials, a query or a fragment would ride along with every
/// request. A trailing `/` is dropped before parsing, so `…/v1` and `…/v1/` are one root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BaseUrl(url::Url);

/// Why a `base_url` was refused; the URL itself is left out (it may carry user info).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseUrlError {
    #[error("base_url must start with http:// or https://")]
    Scheme,
    #[error("base_url is not a valid URL: {0}")]
    Invalid(url::ParseError),
    #[error("base_url must be a plain http(s) URL without user info, query or fragment")]
    NotPlain,
}

impl BaseUrl {
    pub fn parse(text: &str) -> Result<Self, BaseUrlError> {
        let text = text.trim();
        if !(text.starts_with("http://") || text.starts_with("https://")) {
            return Err(BaseUrlError::Scheme);
        }
        let url = url::Url::parse(text.trim_end_matches('/')).map_err(BaseUrlError::Invalid)?;
        if url.cannot_be_a_base()
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(BaseUrlError::NotPlain);
        }
        Ok(Self(url))
    }

    pub fn url(&self) -> &url::Url {
        &self.0
    }
}

impl TryFrom<String> for BaseUrl {
    type Error = BaseUrlError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<BaseUrl> for String {
    fn from(url: BaseUrl) -> String {
        url.0.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_roots_parse_once_without_their_trailing_slash() {
        let url = BaseUrl::parse(" https://h.example/api/v1/ ").unwrap();
        assert_eq!(url.url().as_str(), "https://h.example/api/v1");
        assert_eq!(
            BaseUrl::parse("http://127.0.0.1:9").unwrap().url().port(),
            Some(9)
        );
    }

    #[test]
    fn anything_that_would_ride_along_is_refused() {
        assert_eq!(BaseUrl::parse("ftp://h.example"), Err(BaseUrlError::Scheme));
        assert_eq!(BaseUrl::parse("h.example/v1"), Err(BaseUrlError::Scheme));
        assert!(matches!(
            BaseUrl::parse("http://"),
            Err(BaseUrlError::Invalid(_))
        ));
        for url in [
            "https://user:hunter2@h.example/v1",
            "https://user@h.example/v1",
            "https://h.example/v1?x=1",
            "https://h.example/v1#frag",
        ] {
            let err = BaseUrl::parse(url).unwrap_err();
            assert_eq!(err, BaseUrlError::NotPlain, "{url}");
            assert!(!err.to_string().contains("hunter2"));
        }
    }
}
