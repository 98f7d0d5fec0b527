//! A configured region: its base URL and its keys, spread round-robin.

use crate::config::{RegionKey, ResolvedRegion};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Per-key state visible in `/readyz` (without the key itself).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RegionKeyState {
    pub env_var: String,
}

#[derive(Debug)]
pub struct Region {
    name: Arc<str>,
    base_url: String,
    keys: Vec<RegionKey>,
    next: AtomicUsize,
}

impl Region {
    /// `None` for a region without keys: such a region cannot take traffic.
    pub fn new(resolved: ResolvedRegion) -> Option<Self> {
        (!resolved.keys.is_empty()).then(|| Self {
            name: resolved.name.into(),
            base_url: resolved.base_url,
            keys: resolved.keys,
            next: AtomicUsize::new(0),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn name_arc(&self) -> Arc<str> {
        self.name.clone()
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The next key in round-robin order, so load spreads over all of a region's keys.
    pub fn next_key(&self) -> &RegionKey {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.keys.len();
        &self.keys[i]
    }

    pub fn key_states(&self) -> Vec<RegionKeyState> {
        self.keys
            .iter()
            .map(|k| RegionKeyState {
                env_var: k.env_var.clone(),
            })
            .collect()
    }
}
