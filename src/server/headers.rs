//! Which headers cross the gateway, in each direction.

use http::{HeaderMap, HeaderName, header};

/// Client headers that never travel upstream: credentials (the gateway injects its own key),
/// hop-by-hop headers (RFC 9110 §7.6.1), and headers the HTTP client sets itself.
/// `accept-encoding` is dropped so the upstream answers uncompressed: the gateway reads
/// response ids and usage out of the bytes it relays.
const REQUEST_DENY: &[&str] = &[
    "authorization",
    "api-key",
    "x-api-key",
    "cookie",
    "host",
    "content-length",
    "accept-encoding",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

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

/// The client's headers as they may be sent upstream (the key is added by `upstream`).
pub fn to_upstream(client: &HeaderMap) -> HeaderMap {
    filter(client, REQUEST_DENY)
}

/// The upstream's headers as they may be relayed to the client.
pub fn to_client(upstream: &HeaderMap) -> HeaderMap {
    filter(upstream, RESPONSE_DENY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn credentials_and_hop_by_hop_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer client"));
        h.insert("api-key", HeaderValue::from_static("client"));
        h.insert("x-api-key", HeaderValue::from_static("client"));
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert("x-request-id", HeaderValue::from_static("abc"));
        let out = to_upstream(&h);
        assert_eq!(out.len(), 2);
        assert!(out.contains_key("content-type") && out.contains_key("x-request-id"));
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
