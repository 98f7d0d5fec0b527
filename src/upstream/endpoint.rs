//! The closed set of things the gateway may ask of a region, and how their URLs are built.
//!
//! The gateway holds paid keys, so a client must never choose where they are sent: there is
//! no "path" a handler can hand over, only an [`Endpoint`]. A response id is checked against
//! a strict grammar ([`ResponseId::parse`]) on its *decoded* form before any lookup, and the
//! URL is built by pushing segments onto the region's base URL (`path_segments_mut`), which
//! percent-encodes each one: no client byte can add a segment, climb out of the base path or
//! start a query. Query parameters cross only when the endpoint documents them.

use http::Method;

/// Longest response id accepted. Model Studio's are UUIDs (36 characters); OpenAI's are
/// `resp_` + 48 hex digits.
pub const MAX_RESPONSE_ID_LEN: usize = 128;

/// Most query parameters one request may forward, and the longest value of one.
const MAX_QUERY_PARAMS: usize = 16;
const MAX_QUERY_VALUE_LEN: usize = 256;

/// A response id known to be 1..=[`MAX_RESPONSE_ID_LEN`] ASCII letters, digits, `-` or `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResponseId(String);

impl ResponseId {
    /// `None` for anything outside the grammar: `.`, `/`, `\`, `%`, `?`, `#`, NUL, spaces,
    /// any non-ASCII character, the empty string and overlong ids.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_RESPONSE_ID_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ResponseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a request does upstream. `POST …/responses/{id}/cancel` is left out: Model Studio's
/// reference documents no such endpoint (nor retrieval at all; the mock and OpenAI do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST {base}/responses`
    Create,
    /// `GET {base}/responses/{id}`
    Retrieve(ResponseId),
    /// `DELETE {base}/responses/{id}`
    Delete(ResponseId),
    /// `GET {base}/responses/{id}/input_items`
    InputItems(ResponseId),
}

impl Endpoint {
    pub fn method(&self) -> Method {
        match self {
            Endpoint::Create => Method::POST,
            Endpoint::Retrieve(_) | Endpoint::InputItems(_) => Method::GET,
            Endpoint::Delete(_) => Method::DELETE,
        }
    }

    /// The id this endpoint acts on, if any.
    pub fn response_id(&self) -> Option<&ResponseId> {
        match self {
            Endpoint::Create => None,
            Endpoint::Retrieve(id) | Endpoint::Delete(id) | Endpoint::InputItems(id) => Some(id),
        }
    }

    /// Query parameter names this endpoint documents (OpenAI's Responses API); any other
    /// is dropped.
    fn query_params(&self) -> &'static [&'static str] {
        match self {
            Endpoint::Create | Endpoint::Delete(_) => &[],
            Endpoint::Retrieve(_) => &["include", "include[]"],
            Endpoint::InputItems(_) => {
                &["after", "before", "limit", "order", "include", "include[]"]
            }
        }
    }

    /// The path segments below the region's base URL.
    fn segments(&self) -> impl Iterator<Item = &str> {
        let (id, tail) = match self {
            Endpoint::Create => (None, None),
            Endpoint::Retrieve(id) | Endpoint::Delete(id) => (Some(id.as_str()), None),
            Endpoint::InputItems(id) => (Some(id.as_str()), Some("input_items")),
        };
        std::iter::once("responses").chain(id).chain(tail)
    }
}

/// An endpoint with the query parameters that may travel with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub endpoint: Endpoint,
    query: Vec<(String, String)>,
}

impl Target {
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            query: Vec::new(),
        }
    }

    /// `endpoint` with the allowlisted parameters of a client's raw query string (decoded,
    /// to be encoded again when the URL is built); the names of dropped ones come back too,
    /// for a debug log. Overlong values and parameters past the count bound are dropped.
    pub fn with_client_query(endpoint: Endpoint, raw: Option<&str>) -> (Self, Vec<String>) {
        let allowed = endpoint.query_params();
        let mut target = Self::new(endpoint);
        let mut dropped = Vec::new();
        for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            if allowed.contains(&name.as_ref())
                && value.len() <= MAX_QUERY_VALUE_LEN
                && target.query.len() < MAX_QUERY_PARAMS
            {
                target.query.push((name.into_owned(), value.into_owned()));
            } else if dropped.len() < MAX_QUERY_PARAMS {
                dropped.push(name.chars().take(64).collect());
            }
        }
        (target, dropped)
    }

    pub fn method(&self) -> Method {
        self.endpoint.method()
    }

    /// `base` + this endpoint's segments + its query. `None` when `base` cannot take path
    /// segments (not a hierarchical URL; config validation refuses such a `base_url`).
    pub fn url(&self, base: &url::Url) -> Option<url::Url> {
        let mut url = base.clone();
        url.set_query(None);
        url.set_fragment(None);
        {
            let mut segments = url.path_segments_mut().ok()?;
            segments.pop_if_empty();
            segments.extend(self.endpoint.segments());
        }
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&self.query);
        }
        Some(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> url::Url {
        url::Url::parse("https://h.example/api/v2/apps/protocols/compatible-mode/v1").unwrap()
    }

    #[test]
    fn ids_outside_the_grammar_are_refused() {
        for bad in [
            "",
            "..",
            "a/b",
            "a\\b",
            "a%2Fb",
            "a?b",
            "a#b",
            "a b",
            "a\0b",
            "a.b",
            "\u{2024}\u{2024}",
            "ｒｅｓｐ",
            &"a".repeat(MAX_RESPONSE_ID_LEN + 1),
        ] {
            assert!(ResponseId::parse(bad).is_none(), "{bad:?}");
        }
        for good in [
            "resp_1",
            "4730f70e-6aa3-9315-b4d1-c43c8e509abc",
            &"a".repeat(MAX_RESPONSE_ID_LEN),
        ] {
            assert!(ResponseId::parse(good).is_some(), "{good:?}");
        }
    }

    #[test]
    fn urls_are_the_base_plus_the_endpoint() {
        let id = ResponseId::parse("resp_1").unwrap();
        let cases = [
            (Endpoint::Create, "/responses"),
            (Endpoint::Retrieve(id.clone()), "/responses/resp_1"),
            (Endpoint::Delete(id.clone()), "/responses/resp_1"),
            (Endpoint::InputItems(id), "/responses/resp_1/input_items"),
        ];
        for (endpoint, tail) in cases {
            let url = Target::new(endpoint).url(&base()).unwrap();
            assert_eq!(
                url.as_str(),
                format!("https://h.example/api/v2/apps/protocols/compatible-mode/v1{tail}")
            );
        }
        let slash = url::Url::parse("https://h.example/v1/").unwrap();
        assert_eq!(
            Target::new(Endpoint::Create).url(&slash).unwrap().as_str(),
            "https://h.example/v1/responses"
        );
        let not_a_base = url::Url::parse("mailto:x@example.com").unwrap();
        assert!(Target::new(Endpoint::Create).url(&not_a_base).is_none());
    }

    #[test]
    fn only_documented_query_parameters_cross() {
        let id = ResponseId::parse("r").unwrap();
        let (target, dropped) = Target::with_client_query(
            Endpoint::InputItems(id.clone()),
            Some("limit=2&order=asc&api-key=x&after=a%26b%2F..&x=%2F"),
        );
        assert_eq!(dropped, ["api-key", "x"]);
        let url = target.url(&base()).unwrap();
        assert_eq!(url.query(), Some("limit=2&order=asc&after=a%26b%2F.."));
        assert!(url.path().ends_with("/responses/r/input_items"));
        let (target, dropped) = Target::with_client_query(Endpoint::Delete(id), Some("include=x"));
        assert_eq!(dropped, ["include"]);
        assert_eq!(target.url(&base()).unwrap().query(), None);
    }
}
