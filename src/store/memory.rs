//! In-process backend: state dies with the process, which is what `store.url = "memory"` asks for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::{Clock, History, StoreError, Turn, walk_chain};

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

#[derive(Debug, Default)]
struct Maps {
    affinity: Mutex<HashMap<String, Expiring<String>>>,
    turns: Mutex<HashMap<String, Expiring<Turn>>>,
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
        region: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let entry = Expiring {
            value: region.to_owned(),
            expires_at: self.clock.expiry(ttl),
        };
        lock(&self.maps.affinity).insert(response_id.to_owned(), entry);
        Ok(())
    }

    pub(crate) fn get_affinity(&self, response_id: &str) -> Result<Option<String>, StoreError> {
        let now = self.clock.now_millis();
        Ok(lock(&self.maps.affinity)
            .get(response_id)
            .and_then(|e| e.live_at(now))
            .cloned())
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
        {
            let mut affinity = lock(&self.maps.affinity);
            let before = affinity.len();
            affinity.retain(|_, e| e.expires_at > now);
            removed += (before - affinity.len()) as u64;
        }
        {
            let mut turns = lock(&self.maps.turns);
            let before = turns.len();
            turns.retain(|_, e| e.expires_at > now);
            removed += (before - turns.len()) as u64;
        }
        Ok(removed)
    }
}
