//! Which headers cross the gateway, in each direction.
//!
//! Towards the upstream an allowlist (`upstream.forward_headers`, checked against
//! [`crate::header_policy`] at start-up) plus the gateway's own `x-request-id`; towards the
//! client a denylist of framing and hop-by-hop headers (the upstream's answer is the
//! client's to read, secrets scrubbed by `upstream`).

use http::{HeaderMap, HeaderName, header};

/// Upstream headers not relayed: hop-by-hop, framing (recomputed by the server), cookies,
/// and the upstream's own request id (the client gets the gateway's, which was also sent
/// upstream).
const RESPONSE_DENY: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "set-cookie",
    "server",
    "date",
    "x-request-id",
];

fn denied(name: &HeaderName, list: &[&str]) -> bool {
    list.contains(&name.as_str())
}

/// Names listed in a `Connection` header are hop-by-hop too.
fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

fn filter(headers: &HeaderMap, deny: &[&str]) -> HeaderMap {
    let extra = connection_tokens(headers);
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if denied(name, deny) || extra.iter().any(|t| t == name.as_str()) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// `upstream.forward_headers`, parsed once: exact names and `prefix*` patterns.
#[derive(Debug, Clone, Default)]
pub struct ForwardHeaders {
    exact: Vec<HeaderName>,
    prefixes: Vec<String>,
}

impl ForwardHeaders {
    /// Entries that do not parse were refused by config validation already; skipped here.
    pub fn new(entries: &[String]) -> Self {
        let mut out = Self::default();
        for entry in entries.iter().map(|e| e.to_ascii_lowercase()) {
            match entry.strip_suffix('*') {
                Some(prefix) if !prefix.is_empty() => out.prefixes.push(prefix.to_owned()),
                Some(_) => {}
                None => out
                    .exact
                    .extend(HeaderName::from_bytes(entry.as_bytes()).ok()),
            }
        }
        out
    }

    fn allows(&self, name: &HeaderName) -> bool {
        self.exact.contains(name)
            || (self
                .prefixes
                .iter()
                .any(|p| name.as_str().starts_with(p.as_str()))
                && crate::header_policy::check_forwardable(name.as_str()).is_ok())
    }
}

/// The client's headers that may be sent upstream: those `allow` names, less any the
/// client declared hop-by-hop, plus `x-request-id` (by then the gateway's validated id).
/// The key is added by `upstream`.
pub fn to_upstream(client: &HeaderMap, allow: &ForwardHeaders) -> HeaderMap {
    let hop_by_hop = connection_tokens(client);
    let mut out = HeaderMap::new();
    for (name, value) in client {
        if allow.allows(name) && !hop_by_hop.iter().any(|t| t == name.as_str()) {
            out.append(name.clone(), value.clone());
        }
    }
    if let Some(id) = client.get(REQUEST_ID) {
        out.insert(REQUEST_ID, id.clone());
    }
    out
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The upstream's headers as they may be relayed to the client.
pub fn to_client(upstream: &HeaderMap) -> HeaderMap {
    filter(upstream, RESPONSE_DENY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn only_allowlisted_headers_and_the_request_id_go_upstream() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer client"));
        h.insert("x-dashscope-workspace", HeaderValue::from_static("ws"));
        h.insert("connection", HeaderValue::from_static("keep-alive, accept"));
        h.insert("accept", HeaderValue::from_static("text/event-stream"));
        h.insert("x-unknown", HeaderValue::from_static("1"));
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert("x-request-id", HeaderValue::from_static("abc"));
        h.insert("x-mock-status", HeaderValue::from_static("503"));
        let allow = ForwardHeaders::new(&[
            "content-type".into(),
            "Accept".into(),
            "x-mock-*".into(),
            "x-*".into(),
        ]);
        let out = to_upstream(&h, &allow);
        assert_eq!(out.len(), 4, "{out:?}");
        assert!(out.contains_key("content-type") && out.contains_key("x-request-id"));
        assert!(out.contains_key("x-mock-status") && out.contains_key("x-unknown"));
    }

    #[test]
    fn response_framing_is_not_relayed() {
        let mut h = HeaderMap::new();
        h.insert("content-length", HeaderValue::from_static("10"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert(
            "content-type",
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert("retry-after", HeaderValue::from_static("3"));
        let out = to_client(&h);
        assert_eq!(out.len(), 2);
    }
}
