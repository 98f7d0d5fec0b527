//! A short-lived memory of key lookups, so a busy client costs one store read per
//! `auth.key_cache_ttl` (≤ 1s) instead of one per request — and a revocation made through
//! any replica or the CLI is seen within that time.
//!
//! Unknown keys are remembered too (as `None`), so a client retrying a wrong key does not
//! hammer the store. Entries are keyed by the key's SHA-256, never the raw key.

use crate::store::KeyRecord;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// More entries than this and expired ones are swept; if that is not enough (a flood of
/// distinct wrong keys), everything is dropped: the cache is an optimisation only.
const MAX_ENTRIES: usize = 10_000;

struct Entry {
    fetched: Instant,
    record: Option<Arc<KeyRecord>>,
}

pub struct KeyCache {
    ttl: Duration,
    /// By key hash: kept out of `Debug`, like every hash.
    entries: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("ttl", &self.ttl)
            .field("entries", &self.lock().len())
            .finish()
    }
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        match self.entries.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// `Some(lookup)` when a fresh answer for `hash` is cached (the lookup itself may be
    /// `None`: no such key); `None` when the store must be asked.
    pub fn get(&self, hash: &str) -> Option<Option<Arc<KeyRecord>>> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.lock();
        let entry = entries.get(hash)?;
        (entry.fetched.elapsed() < self.ttl).then(|| entry.record.clone())
    }

    /// Remembers the store's answer for `hash`, as of `fetched` (the moment the store was
    /// asked, so an answer that took long to arrive is not kept longer than the TTL).
    pub fn put(&self, hash: &str, record: Option<Arc<KeyRecord>>, fetched: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, e| e.fetched.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(hash.to_owned(), Entry { fetched, record });
    }

    /// Forgets everything (a key was revoked through this gateway: effective at once here).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_zero_ttl_disables() {
        let cache = KeyCache::new(Duration::from_millis(50));
        assert!(cache.get("h").is_none());
        cache.put("h-secret-hash", None, Instant::now());
        assert!(!format!("{cache:?}").contains("h-secret-hash"));
        cache.put("h", None, Instant::now());
        assert_eq!(cache.get("h"), Some(None));
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("h").is_none());
        cache.put("h", None, Instant::now());
        cache.clear();
        assert!(cache.get("h").is_none());

        let off = KeyCache::new(Duration::ZERO);
        off.put("h", None, Instant::now());
        assert!(off.get("h").is_none());
    }

    #[test]
    fn a_flood_of_entries_stays_bounded() {
        let cache = KeyCache::new(Duration::from_secs(1));
        for i in 0..(MAX_ENTRIES + 10) {
            cache.put(&i.to_string(), None, Instant::now());
        }
        assert!(cache.lock().len() <= MAX_ENTRIES);
    }
}
