//! In-process backend: state dies with the process, which is what `store.url = "memory"` asks for.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use std::ops::Bound;

use super::records::{KeyField, UsageFrom};
use super::{
    Affinity, Clock, History, KeyRecord, Page, StoreError, Turn, UsageCursor, UsageDelta, UsageRow,
    walk_chain,
};

/// A value and the unix-millisecond instant it stops being visible.
#[derive(Debug)]
struct Expiring<T> {
    value: T,
    expires_at: i64,
}

impl<T> Expiring<T> {
    fn live_at(&self, now: i64) -> Option<&T> {
        (self.expires_at > now).then_some(&self.value)
    }
}

/// Most response ids remembered (about 15 MB): a busy gateway on `memory` would otherwise
/// hold every id it saw for `store.affinity_ttl` (7 days).
pub const MAX_AFFINITY: usize = 100_000;

/// Most conversation turns kept for replay (they hold whole inputs and outputs).
pub const MAX_TURNS: usize = 10_000;

/// Expiring records, at most `cap` of them: past that the oldest inserted are dropped first,
/// as a cache would. (The same TTL applies to every record of a map, so insertion order is
/// expiry order.)
#[derive(Debug)]
struct Bounded<T> {
    map: HashMap<String, Expiring<T>>,
    /// Keys in insertion order with the expiry they were inserted with; entries whose record
    /// was since replaced or removed are skipped, and compacted away now and then.
    order: VecDeque<(String, i64)>,
    cap: usize,
}

impl<T> Bounded<T> {
    fn new(cap: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    fn is_current(map: &HashMap<String, Expiring<T>>, key: &str, at: i64) -> bool {
        map.get(key).is_some_and(|e| e.expires_at == at)
    }

    fn insert(&mut self, key: String, entry: Expiring<T>) {
        self.order.push_back((key.clone(), entry.expires_at));
        self.map.insert(key, entry);
        while self.map.len() > self.cap {
            let Some((oldest, at)) = self.order.pop_front() else {
                break;
            };
            if Self::is_current(&self.map, &oldest, at) {
                self.map.remove(&oldest);
            }
        }
        if self.order.len() > 2 * self.cap.max(16) {
            let map = &self.map;
            self.order.retain(|(k, at)| Self::is_current(map, k, *at));
        }
    }

    fn get(&self, key: &str) -> Option<&Expiring<T>> {
        self.map.get(key)
    }

    fn remove(&mut self, key: &str) -> Option<Expiring<T>> {
        self.map.remove(key)
    }

    /// Drops records expired at `now`; how many.
    fn purge(&mut self, now: i64) -> usize {
        let before = self.map.len();
        self.map.retain(|_, e| e.expires_at > now);
        let map = &self.map;
        self.order.retain(|(k, at)| Self::is_current(map, k, *at));
        before - self.map.len()
    }
}

#[derive(Debug)]
struct Maps {
    affinity: Mutex<Bounded<Affinity>>,
    turns: Mutex<Bounded<Turn>>,
    keys: Mutex<Keys>,
    counters: Mutex<HashMap<String, Expiring<u64>>>,
    /// Ordered by (day, key id, model, region): listing comes out sorted.
    usage: Mutex<BTreeMap<UsageKey, UsageRow>>,
}

impl Default for Maps {
    fn default() -> Self {
        Maps {
            affinity: Mutex::new(Bounded::new(MAX_AFFINITY)),
            turns: Mutex::new(Bounded::new(MAX_TURNS)),
            keys: Mutex::default(),
            counters: Mutex::default(),
            usage: Mutex::default(),
        }
    }
}

type UsageKey = (String, String, String, String);

/// Team keys by id, with an index per unique field and one in listing order, so no
/// operation scans (a gateway may hold 100,000 keys). Keys are never deleted, so the
/// indexes only grow with `create_key`, which writes all of them under one lock.
#[derive(Default)]
struct Keys {
    by_id: HashMap<String, KeyRecord>,
    /// Name → id.
    by_name: HashMap<String, String>,
    /// Hash → id.
    by_hash: HashMap<String, String>,
    /// (created_at, name) → id: the listing order (names are unique, so keys are too).
    order: BTreeMap<(i64, String), String>,
}

/// Counts only: `by_hash` is keyed by key hashes, which stay out of `Debug` output (and so
/// out of logs) like [`KeyRecord`]'s own.
impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("count", &self.by_id.len())
            .finish_non_exhaustive()
    }
}

impl Keys {
    fn named(&self, name: &str) -> Option<&KeyRecord> {
        self.by_name.get(name).and_then(|id| self.by_id.get(id))
    }
}

/// Maps behind `std::sync::Mutex`: every operation is short and never awaits while locked.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    maps: Arc<Maps>,
    clock: Clock,
}

/// A panic elsewhere while locked leaves the maps usable (each write is a single insert),
/// so a poisoned lock is taken over instead of failing every later request.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryStore {
    pub fn new(clock: Clock) -> MemoryStore {
        MemoryStore {
            maps: Arc::default(),
            clock,
        }
    }

    pub(crate) fn put_affinity(
        &self,
        response_id: &str,
        affinity: &Affinity,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let entry = Expiring {
            value: affinity.clone(),
            expires_at: self.clock.expiry(ttl),
        };
        lock(&self.maps.affinity).insert(response_id.to_owned(), entry);
        Ok(())
    }

    pub(crate) fn get_affinity(&self, response_id: &str) -> Result<Option<Affinity>, StoreError> {
        let now = self.clock.now_millis();
        Ok(lock(&self.maps.affinity)
            .get(response_id)
            .and_then(|e| e.live_at(now))
            .cloned())
    }

    pub(crate) fn delete_affinity(&self, response_id: &str) -> Result<bool, StoreError> {
        let now = self.clock.now_millis();
        let removed = lock(&self.maps.affinity).remove(response_id);
        Ok(removed.is_some_and(|e| e.live_at(now).is_some()))
    }

    pub(crate) fn put_turn(&self, turn: &Turn, ttl: Duration) -> Result<(), StoreError> {
        let entry = Expiring {
            value: turn.clone(),
            expires_at: self.clock.expiry(ttl),
        };
        lock(&self.maps.turns).insert(turn.response_id.clone(), entry);
        Ok(())
    }

    pub(crate) fn get_turn(&self, response_id: &str) -> Result<Option<Turn>, StoreError> {
        let now = self.clock.now_millis();
        Ok(lock(&self.maps.turns)
            .get(response_id)
            .and_then(|e| e.live_at(now))
            .cloned())
    }

    pub(crate) fn history(
        &self,
        response_id: &str,
        max_turns: usize,
    ) -> Result<History, StoreError> {
        let now = self.clock.now_millis();
        // One lock for the whole walk: a consistent snapshot of the chain.
        let turns = lock(&self.maps.turns);
        walk_chain(response_id, max_turns, |id| {
            Ok(turns.get(id).and_then(|e| e.live_at(now)).cloned())
        })
    }

    pub(crate) fn purge_expired(&self) -> Result<u64, StoreError> {
        let now = self.clock.now_millis();
        let mut removed = 0u64;
        removed += lock(&self.maps.affinity).purge(now) as u64;
        removed += lock(&self.maps.turns).purge(now) as u64;
        {
            let mut counters = lock(&self.maps.counters);
            let before = counters.len();
            counters.retain(|_, e| e.expires_at > now);
            removed += (before - counters.len()) as u64;
        }
        Ok(removed)
    }

    pub(crate) fn create_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        self.create_keys(std::slice::from_ref(key))
    }

    /// All or nothing: every key is checked (against the store and the batch) before any
    /// is written, under one lock.
    pub(crate) fn create_keys(&self, batch: &[KeyRecord]) -> Result<(), StoreError> {
        let mut keys = lock(&self.maps.keys);
        let mut ids = HashSet::new();
        let mut names = HashSet::new();
        let mut hashes = HashSet::new();
        for key in batch {
            let clash = if keys.by_id.contains_key(&key.id) || !ids.insert(&key.id) {
                Some(KeyField::Id)
            } else if keys.by_name.contains_key(&key.name) || !names.insert(&key.name) {
                Some(KeyField::Name)
            } else if keys.by_hash.contains_key(&key.hash) || !hashes.insert(&key.hash) {
                Some(KeyField::Hash)
            } else {
                None
            };
            if let Some(field) = clash {
                return Err(field.conflict(key));
            }
        }
        for key in batch {
            keys.by_name.insert(key.name.clone(), key.id.clone());
            keys.by_hash.insert(key.hash.clone(), key.id.clone());
            keys.order
                .insert((key.created_at, key.name.clone()), key.id.clone());
            keys.by_id.insert(key.id.clone(), key.clone());
        }
        Ok(())
    }

    pub(crate) fn key_by_hash(&self, hash: &str) -> Result<Option<KeyRecord>, StoreError> {
        let keys = lock(&self.maps.keys);
        Ok(keys
            .by_hash
            .get(hash)
            .and_then(|id| keys.by_id.get(id))
            .cloned())
    }

    pub(crate) fn key_by_id(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        Ok(lock(&self.maps.keys).by_id.get(id).cloned())
    }

    pub(crate) fn key_by_name(&self, name: &str) -> Result<Option<KeyRecord>, StoreError> {
        Ok(lock(&self.maps.keys).named(name).cloned())
    }

    pub(crate) fn key_names(&self, ids: &[String]) -> Result<HashMap<String, String>, StoreError> {
        let keys = lock(&self.maps.keys);
        Ok(ids
            .iter()
            .filter_map(|id| keys.by_id.get(id))
            .map(|k| (k.id.clone(), k.name.clone()))
            .collect())
    }

    pub(crate) fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let keys = lock(&self.maps.keys);
        Ok(keys
            .order
            .values()
            .filter_map(|id| keys.by_id.get(id))
            .cloned()
            .collect())
    }

    pub(crate) fn list_keys_page(
        &self,
        after: Option<&KeyRecord>,
        limit: usize,
    ) -> Result<Page<KeyRecord>, StoreError> {
        let keys = lock(&self.maps.keys);
        let from = match after {
            Some(k) => Bound::Excluded((k.created_at, k.name.clone())),
            None => Bound::Unbounded,
        };
        let items = keys
            .order
            .range((from, Bound::Unbounded))
            .filter_map(|(_, id)| keys.by_id.get(id))
            .take(limit.saturating_add(1))
            .cloned()
            .collect();
        Ok(Page::of(items, limit))
    }

    pub(crate) fn revoke_key(&self, id_or_name: &str, at: i64) -> Result<bool, StoreError> {
        let mut keys = lock(&self.maps.keys);
        // By id first, so a key named like another key's id cannot shadow it.
        let id = match keys.by_id.get(id_or_name) {
            Some(k) => k.id.clone(),
            None => match keys.by_name.get(id_or_name) {
                Some(id) => id.clone(),
                None => return Ok(false),
            },
        };
        match keys.by_id.get_mut(&id) {
            Some(key) => {
                key.revoked_at.get_or_insert(at);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    pub(crate) fn incr_counter(
        &self,
        name: &str,
        by: u64,
        ttl: Duration,
    ) -> Result<u64, StoreError> {
        let now = self.clock.now_millis();
        let mut counters = lock(&self.maps.counters);
        let entry = counters.entry(name.to_owned()).or_insert(Expiring {
            value: 0,
            expires_at: now,
        });
        if entry.live_at(now).is_none() {
            *entry = Expiring {
                value: 0,
                expires_at: self.clock.expiry(ttl),
            };
        }
        entry.value = entry.value.saturating_add(by);
        Ok(entry.value)
    }

    pub(crate) fn get_counter(&self, name: &str) -> Result<u64, StoreError> {
        let now = self.clock.now_millis();
        Ok(lock(&self.maps.counters)
            .get(name)
            .and_then(|e| e.live_at(now))
            .copied()
            .unwrap_or(0))
    }

    pub(crate) fn record_usage(&self, delta: &UsageDelta) -> Result<(), StoreError> {
        let key = (
            delta.day.clone(),
            delta.key_id.clone(),
            delta.model.clone(),
            delta.region.clone(),
        );
        lock(&self.maps.usage)
            .entry(key)
            .or_insert_with(|| {
                UsageRow::from_parts(
                    delta.day.clone(),
                    delta.key_id.clone(),
                    delta.model.clone(),
                    delta.region.clone(),
                    [0; 8],
                )
            })
            .add(delta);
        Ok(())
    }

    pub(crate) fn usage_page(
        &self,
        since_day: Option<&str>,
        after: Option<&UsageCursor>,
        limit: usize,
    ) -> Result<Page<UsageRow>, StoreError> {
        let key = |day: &str, key_id: &str, model: &str, region: &str| -> UsageKey {
            (
                day.to_owned(),
                key_id.to_owned(),
                model.to_owned(),
                region.to_owned(),
            )
        };
        let from = match UsageFrom::new(since_day, after) {
            UsageFrom::Start => Bound::Unbounded,
            // The smallest key of that day.
            UsageFrom::Day(day) => Bound::Included(key(day, "", "", "")),
            UsageFrom::After(c) => Bound::Excluded(key(&c.day, &c.key_id, &c.model, &c.region)),
        };
        let items = lock(&self.maps.usage)
            .range((from, Bound::Unbounded))
            .take(limit.saturating_add(1))
            .map(|(_, row)| row.clone())
            .collect();
        Ok(Page::of(items, limit))
    }

    pub(crate) fn usage(&self, since_day: Option<&str>) -> Result<Vec<UsageRow>, StoreError> {
        Ok(lock(&self.maps.usage)
            .values()
            .filter(|row| since_day.is_none_or(|since| row.day.as_str() >= since))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::{Bounded, Expiring};

    fn at(expires_at: i64) -> Expiring<u32> {
        Expiring {
            value: 0,
            expires_at,
        }
    }

    #[test]
    fn bounded_keeps_the_newest_cap_records() {
        let mut b = Bounded::new(3);
        for i in 0..10 {
            b.insert(format!("k{i}"), at(100 + i));
        }
        assert_eq!(b.map.len(), 3);
        assert!(b.get("k9").is_some() && b.get("k7").is_some() && b.get("k6").is_none());
        // A record inserted again is as new as its last insertion.
        b.insert("k7".into(), at(200));
        b.insert("k10".into(), at(201));
        assert!(b.get("k7").is_some(), "re-inserted k7 outlives k8");
        assert!(b.get("k8").is_none());
        assert!(b.order.len() <= 2 * 16 + 1, "order stays bounded");
        b.remove("k7");
        assert_eq!(b.purge(200), 1, "k9 expired at 109");
        assert_eq!(b.map.len(), 1);
        assert!(b.order.iter().all(|(k, _)| b.map.contains_key(k)));
    }
}
