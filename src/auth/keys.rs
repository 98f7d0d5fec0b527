//! Team key material: generation from the OS random source, SHA-256 hashing, constant-time
//! comparison, and reading the key a client presented.
//!
//! A raw key exists in exactly two places: the one answer that creates it, and the client's
//! requests. The store keeps its SHA-256 only; nothing here implements `Display`, and the
//! `Debug` of [`RawKey`] is redacted.

use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every gateway key starts with, so leaked keys are recognisable (secret scanners).
pub const KEY_PREFIX: &str = "qgw-";
/// Characters of randomness after the prefix: 32 base62 characters ≈ 190 bits.
const RANDOM_CHARS: usize = 32;
/// How much of a key is kept (and shown) to recognise it: `qgw-` and 8 random characters.
const DISPLAY_PREFIX_CHARS: usize = KEY_PREFIX.len() + 8;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The OS random source failed (no entropy is worse than no key).
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(getrandom::Error);

/// A raw key as created: printed once, then only its hash is kept.
#[derive(Clone, PartialEq, Eq)]
pub struct RawKey(String);

impl RawKey {
    /// The key itself, to hand to its owner once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Lowercase hex SHA-256, what the store keeps.
    pub fn hash(&self) -> String {
        hash_key(&self.0)
    }

    /// `qgw-` and the first random characters: enough to recognise a key in a list, far too
    /// little to guess it.
    pub fn display_prefix(&self) -> String {
        self.0.chars().take(DISPLAY_PREFIX_CHARS).collect()
    }
}

impl std::fmt::Debug for RawKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawKey(<redacted>)")
    }
}

/// `N` bytes from the OS random source (session ids and signing keys).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(RandomError)?;
    Ok(buf)
}

/// `n` characters drawn uniformly from base62 (rejection sampling: bytes ≥ 248 are redrawn,
/// so no character is likelier than another).
fn random_base62(n: usize) -> Result<String, RandomError> {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        getrandom::fill(&mut buf).map_err(RandomError)?;
        for &b in &buf {
            if out.len() == n {
                break;
            }
            if b < 248 {
                out.push(char::from(BASE62[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

/// A new key `qgw-` + 32 base62 characters from the OS random source.
pub fn generate() -> Result<RawKey, RandomError> {
    Ok(RawKey(format!(
        "{KEY_PREFIX}{}",
        random_base62(RANDOM_CHARS)?
    )))
}

/// A new key id, `key_` + 16 base62 characters (not secret; unique enough by chance, and
/// the store refuses a clash).
pub fn new_id() -> Result<String, RandomError> {
    Ok(format!("key_{}", random_base62(16)?))
}

/// Lowercase hex SHA-256 of a presented or created key.
pub fn hash_key(raw: &str) -> String {
    let digest = Sha256::digest(raw.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(b & 0x0f)]));
    }
    hex
}

/// Whether two hashes are equal, in time independent of where they differ.
pub fn hashes_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Whether a presented secret equals the expected one, in constant time whatever their
/// lengths (both are hashed first).
pub fn secrets_match(presented: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(presented.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    bool::from(a.as_slice().ct_eq(b.as_slice()))
}

/// The key a client presented: `Authorization: Bearer KEY`, else `api-key: KEY` (Azure
/// style), else `x-api-key: KEY`. `None` when none of them holds a non-empty value.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
        });
    let plain = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    [bearer, plain("api-key"), plain("x-api-key")]
        .into_iter()
        .flatten()
        .find(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn keys_are_prefixed_random_and_hash_to_hex() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert!(a.expose().starts_with("qgw-"));
        assert_eq!(a.expose().len(), 4 + 32);
        assert!(a.expose()[4..].bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(a.display_prefix().len(), 12);
        assert!(a.expose().starts_with(&a.display_prefix()));
        let h = a.hash();
        assert_eq!(h.len(), 64);
        assert!(hashes_match(&h, &hash_key(a.expose())));
        assert!(!hashes_match(&h, &b.hash()));
        assert!(!format!("{a:?}").contains(a.expose()));
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(new_id().unwrap().starts_with("key_"));
    }

    #[test]
    fn secrets_compare_by_value() {
        assert!(secrets_match("tok", "tok"));
        assert!(!secrets_match("tok", "tok2"));
        assert!(!secrets_match("", "tok"));
    }

    #[test]
    fn reads_each_header_form() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("x-api-key", HeaderValue::from_static("k3"));
        assert_eq!(presented_key(&h), Some("k3"));
        h.insert("api-key", HeaderValue::from_static("k2"));
        assert_eq!(presented_key(&h), Some("k2"));
        h.insert("authorization", HeaderValue::from_static("bearer  k1 "));
        assert_eq!(presented_key(&h), Some("k1"));
        h.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert_eq!(presented_key(&h), Some("k2"));
        let mut empty = HeaderMap::new();
        empty.insert("authorization", HeaderValue::from_static("Bearer "));
        assert_eq!(presented_key(&empty), None);
    }
}
