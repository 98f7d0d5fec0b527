//! Dashboard sessions: a signed cookie instead of server-side session storage, so any number
//! of sessions costs nothing and a Redis or SQLite store is never involved.
//!
//! The cookie is `<id>.<expires>.<mac>`: a random 128-bit id, the Unix second it expires,
//! and HMAC-SHA256 over both under a key that is random per process (or configured with
//! `admin.session_secret_env`, so replicas share it). The CSRF token the page sends in
//! `x-csrf-token` is a second MAC over the id, so it is bound to that session and needs no
//! storage either. Sign-out puts the id in a per-process revocation set until the cookie
//! would have expired anyway (another replica does not learn of it: the cookie is cleared
//! in the browser, and it expires after `admin.session_ttl`).

use crate::auth::keys::{RandomError, random_bytes};
use crate::config::{AdminConfig, Secret};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "qg_admin_session";

/// The header that carries the CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Revoked ids kept at most; past it, the ones expiring soonest go first (they are the
/// least useful to keep). Sign-outs are admin actions: this is never reached in practice.
const MAX_REVOKED: usize = 100_000;

/// A verified session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// 32 lowercase hex characters.
    pub id: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Issues and verifies session cookies.
pub struct Sessions {
    key: Vec<u8>,
    ttl_secs: i64,
    secure: bool,
    revoked: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("key", &"<redacted>")
            .field("ttl_secs", &self.ttl_secs)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Sessions {
    /// Signing with `secret` when given (its bytes are the HMAC key), else with 32 random
    /// bytes.
    pub fn new(config: &AdminConfig, secret: Option<&Secret>) -> Result<Self, RandomError> {
        let key = match secret.filter(|s| !s.expose().is_empty()) {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => random_bytes::<32>()?.to_vec(),
        };
        Ok(Self {
            key,
            ttl_secs: i64::try_from(config.session_ttl.as_secs())
                .unwrap_or(i64::MAX)
                .max(1),
            secure: config.secure_cookies,
            revoked: Mutex::default(),
        })
    }

    fn mac(&self, purpose: &str, text: &str) -> String {
        // HMAC takes a key of any length.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => return String::new(),
        };
        mac.update(purpose.as_bytes());
        mac.update(b"\n");
        mac.update(text.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// A fresh session from `now` (Unix seconds) and its `Set-Cookie` value.
    pub fn issue(&self, now: i64) -> Result<(Session, String), RandomError> {
        let id = hex(&random_bytes::<16>()?);
        let expires_at = now.saturating_add(self.ttl_secs);
        let payload = format!("{id}.{expires_at}");
        let value = format!("{payload}.{}", self.mac("session", &payload));
        let cookie = format!(
            "{COOKIE}={value}; Path=/admin; Max-Age={}; HttpOnly; SameSite=Strict{}",
            self.ttl_secs,
            if self.secure { "; Secure" } else { "" }
        );
        Ok((Session { id, expires_at }, cookie))
    }

    /// The `Set-Cookie` value that removes the cookie.
    pub fn clear_cookie(&self) -> String {
        format!(
            "{COOKIE}=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Strict{}",
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// Whether the request carries a session cookie at all (valid or not).
    pub fn presented(headers: &HeaderMap) -> bool {
        cookie_values(headers).next().is_some()
    }

    /// The session of these headers' cookie, if one is valid at `now`: well formed, signed
    /// by this key, not expired, not signed out. Several cookies of this name: any valid one.
    pub fn verify(&self, headers: &HeaderMap, now: i64) -> Option<Session> {
        cookie_values(headers).find_map(|value| self.verify_value(value, now))
    }

    fn verify_value(&self, value: &str, now: i64) -> Option<Session> {
        let mut parts = value.split('.');
        let (id, expires, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !is_hex(id, 32) || !is_hex(mac, 64) {
            return None;
        }
        if expires.is_empty() || !expires.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let expected = self.mac("session", &format!("{id}.{expires}"));
        if !bool::from(expected.as_bytes().ct_eq(mac.as_bytes())) {
            return None;
        }
        let expires_at: i64 = expires.parse().ok()?;
        if expires_at <= now || self.is_revoked(id) {
            return None;
        }
        Some(Session {
            id: id.to_owned(),
            expires_at,
        })
    }

    /// The CSRF token of a session, for the page to send back in [`CSRF_HEADER`].
    pub fn csrf_token(&self, session: &Session) -> String {
        self.mac("csrf", &session.id)
    }

    /// Whether these headers carry the session's CSRF token (compared in constant time).
    pub fn csrf_ok(&self, session: &Session, headers: &HeaderMap) -> bool {
        let expected = self.csrf_token(session);
        let mut values = headers.get_all(CSRF_HEADER).iter();
        match (values.next(), values.next()) {
            (Some(value), None) => bool::from(expected.as_bytes().ct_eq(value.as_bytes())),
            _ => false,
        }
    }

    /// Ends a session on this process: its cookie is refused from now on.
    pub fn revoke(&self, session: &Session, now: i64) {
        let mut revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
        revoked.retain(|_, expires_at| *expires_at > now);
        if revoked.len() >= MAX_REVOKED
            && let Some(soonest) = revoked
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(id, _)| id.clone())
        {
            revoked.remove(&soonest);
        }
        revoked.insert(session.id.clone(), session.expires_at);
    }

    fn is_revoked(&self, id: &str) -> bool {
        let revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
        revoked.contains_key(id)
    }
}

/// The values of every [`COOKIE`] in the `Cookie` headers.
fn cookie_values(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(secure: bool) -> Sessions {
        let config = AdminConfig {
            secure_cookies: secure,
            ..AdminConfig::default()
        };
        Sessions::new(&config, None).unwrap()
    }

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            format!("other=1; {COOKIE}={value}").parse().unwrap(),
        );
        headers
    }

    fn value_of(set_cookie: &str) -> &str {
        let first = set_cookie.split(';').next().unwrap();
        first.split_once('=').unwrap().1
    }

    #[test]
    fn issued_cookies_verify_until_they_expire_or_are_revoked() {
        let s = sessions(false);
        let (session, cookie) = s.issue(1_000).unwrap();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(cookie.contains("Max-Age=43200") && !cookie.contains("Secure"));
        let headers = with_cookie(value_of(&cookie));
        assert_eq!(s.verify(&headers, 1_001), Some(session.clone()));
        assert_eq!(s.verify(&headers, 1_000 + 43_200), None, "expired");
        s.revoke(&session, 1_002);
        assert_eq!(s.verify(&headers, 1_003), None, "signed out");
        assert!(sessions(true).issue(0).unwrap().1.ends_with("; Secure"));
    }

    #[test]
    fn tampered_or_foreign_cookies_are_refused() {
        let s = sessions(false);
        let (_, cookie) = s.issue(1_000).unwrap();
        let value = value_of(&cookie).to_owned();
        let (payload, mac) = value.rsplit_once('.').unwrap();
        let (id, _) = payload.split_once('.').unwrap();
        let longer = format!("{id}.99999999999.{mac}");
        for bad in [
            longer.as_str(),
            &value[1..],
            &format!("{value}.x"),
            "",
            "...",
            &format!("{payload}.{}", "0".repeat(64)),
        ] {
            assert_eq!(s.verify(&with_cookie(bad), 1_001), None, "{bad}");
        }
        // Another process (another random key) does not accept it.
        assert_eq!(sessions(false).verify(&with_cookie(&value), 1_001), None);
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_session() {
        let s = sessions(false);
        let (a, _) = s.issue(0).unwrap();
        let (b, _) = s.issue(0).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(CSRF_HEADER, s.csrf_token(&a).parse().unwrap());
        assert!(s.csrf_ok(&a, &headers));
        assert!(!s.csrf_ok(&b, &headers));
        assert!(!s.csrf_ok(&a, &HeaderMap::new()));
    }

    #[test]
    fn debug_hides_the_key() {
        let config = AdminConfig::default();
        let s = Sessions::new(&config, Some(&Secret::new("very-secret-key"))).unwrap();
        assert!(!format!("{s:?}").contains("very-secret-key"));
    }
}
