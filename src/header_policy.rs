//! Which client header names may ever be forwarded upstream (`upstream.forward_headers` is
//! checked against this at start-up). Depends on nothing in the crate.
//!
//! The allowlist is the operator's; this is the floor under it. Refused: anything that
//! carries credentials (the gateway injects its own key), framing and hop-by-hop headers
//! (RFC 9110 §7.6.1; the HTTP client sets its own), `accept-encoding` (the gateway reads the
//! bytes it relays, so the upstream must answer uncompressed), Model Studio's control headers
//! (`x-dashscope-*`: workspace, data inspection, … are configuration, per region), headers
//! proxies and frameworks read as routing or method overrides, and client-address headers
//! (the gateway is the client upstream). `x-request-id` is the gateway's own: always sent,
//! never taken from this list.

/// Exact names never forwarded.
const NEVER: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "proxy-authenticate",
    "api-key",
    "x-api-key",
    "cookie",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "accept-encoding",
    "expect",
    "range",
    "if-range",
    "via",
    "forwarded",
    "x-real-ip",
    "true-client-ip",
    "x-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-cluster-client-ip",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-original-method",
    "x-rewrite-url",
    "x-override-url",
    "x-request-id",
];

/// Name prefixes never forwarded.
const NEVER_PREFIXES: &[&str] = &["x-dashscope-", "x-forwarded-", "proxy-", "x-envoy-"];

/// Whether an allowlist entry is acceptable: a header name, or a name prefix ending in `*`
/// (e.g. `x-mock-*`; each header it matches must still pass [`check_forwardable`]).
pub fn check_allowlist_entry(entry: &str) -> Result<(), &'static str> {
    match entry.strip_suffix('*') {
        Some("") => Err("is an empty prefix pattern"),
        Some(prefix) => {
            check_name(prefix)?;
            let lower = prefix.to_ascii_lowercase();
            if NEVER_PREFIXES.iter().any(|p| lower.starts_with(p)) {
                return Err("only matches headers the gateway never forwards");
            }
            Ok(())
        }
        None => check_forwardable(entry),
    }
}

fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("is not a header name (letters, digits, '-', '_')");
    }
    Ok(())
}

/// Whether `name` (any case) may be forwarded at all; the reason when not.
pub fn check_forwardable(name: &str) -> Result<(), &'static str> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("is not a header name (letters, digits, '-', '_')");
    }
    let lower = name.to_ascii_lowercase();
    if NEVER.contains(&lower.as_str()) || NEVER_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return Err(
            "is a header the gateway owns (credentials, framing, routing or Model Studio control) and is never forwarded",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_names_are_refused_in_any_case() {
        for name in [
            "Authorization",
            "X-DashScope-WorkSpace",
            "x-dashscope-datainspection",
            "X-HTTP-Method-Override",
            "X-Original-URL",
            "Via",
            "True-Client-IP",
            "Range",
            "Expect",
            "x-forwarded-host",
            "bad name",
            "",
        ] {
            assert!(check_forwardable(name).is_err(), "{name}");
        }
        for name in ["accept", "Content-Type", "user-agent", "idempotency-key"] {
            assert!(check_forwardable(name).is_ok(), "{name}");
        }
        assert!(check_allowlist_entry("x-mock-*").is_ok());
        assert!(check_allowlist_entry("*").is_err());
        assert!(check_allowlist_entry("x-dashscope-workspace").is_err());
    }
}
