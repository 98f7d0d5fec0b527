//! A configured region: its base URL, its keys (spread round-robin over the healthy ones)
//! and its circuit breaker.

use super::breaker::{Breaker, BreakerSnapshot};
use super::client::HttpClient;
use super::endpoint::Target;
use crate::config::{RegionKey, ResolvedRegion};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a key is not being used right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyHold {
    /// The upstream rejected it (401): out for `key_quarantine`.
    Quarantined,
    /// The upstream rate-limited it (429): out until its `Retry-After`.
    RateLimited,
}

#[derive(Debug)]
struct KeyHealth {
    hold: Option<(KeyHold, Instant)>,
}

/// Per-key state visible in `/readyz`: the variable's name only, never the key.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RegionKeyState {
    pub env_var: String,
    pub state: &'static str,
    pub available_in_secs: Option<f64>,
}

#[derive(Debug)]
pub struct Region {
    name: Arc<str>,
    /// `regions.NAME.base_url` as the configuration parsed it: reparsing it (IDNA and all)
    /// per request was measurable.
    base: url::Url,
    /// `X-DashScope-WorkSpace` for every request to this region.
    workspace: Option<http::HeaderValue>,
    keys: Vec<RegionKey>,
    /// The client for this region's protocol (see [`super::build_http_client`]).
    http: HttpClient,
    health: Vec<Mutex<KeyHealth>>,
    next: AtomicUsize,
    breaker: Breaker,
}

impl Region {
    /// `None` for a region without keys: such a region cannot take traffic.
    pub fn new(resolved: ResolvedRegion, breaker: Breaker, http: HttpClient) -> Option<Self> {
        (!resolved.keys.is_empty()).then(|| Self {
            http,
            name: resolved.name.into(),
            base: resolved.base_url,
            workspace: resolved
                .workspace
                .as_deref()
                .and_then(|w| http::HeaderValue::from_str(w).ok()),
            health: resolved
                .keys
                .iter()
                .map(|_| Mutex::new(KeyHealth { hold: None }))
                .collect(),
            keys: resolved.keys,
            next: AtomicUsize::new(0),
            breaker,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn name_arc(&self) -> Arc<str> {
        self.name.clone()
    }

    /// The URL of `target` in this region (see [`Target::url`]); `None` when `base_url`
    /// cannot be a base (config validation refuses such a URL).
    pub fn url_for(&self, target: &Target) -> Option<url::Url> {
        target.url(&self.base)
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    pub fn workspace(&self) -> Option<&http::HeaderValue> {
        self.workspace.as_ref()
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    fn hold_of(&self, index: usize) -> Option<(KeyHold, Instant)> {
        let health = self.health[index].lock().unwrap_or_else(|p| p.into_inner());
        health.hold.filter(|(_, until)| *until > Instant::now())
    }

    /// The next key after round-robin, skipping held ones and those in `tried`.
    ///
    /// When every untried key is quarantined they are tried anyway, in order: a single
    /// spurious 401 must not take a one-key region down for the whole quarantine.
    /// Rate-limited keys are never used before their `Retry-After`.
    pub fn next_key(&self, tried: &[usize]) -> Option<(usize, &RegionKey)> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let untried = || {
            (0..self.keys.len())
                .map(move |offset| (start + offset) % self.keys.len())
                .filter(|i| !tried.contains(i))
        };
        untried()
            .find(|i| self.hold_of(*i).is_none())
            .or_else(|| {
                untried().find(|i| matches!(self.hold_of(*i), Some((KeyHold::Quarantined, _))))
            })
            .map(|i| (i, &self.keys[i]))
    }

    /// Takes a key out of rotation until `for_how_long` has passed.
    pub fn hold_key(&self, index: usize, hold: KeyHold, for_how_long: Duration) {
        if let Some(health) = self.health.get(index) {
            let mut health = health.lock().unwrap_or_else(|p| p.into_inner());
            health.hold = Some((hold, Instant::now() + for_how_long));
        }
        if let Some(key) = self.keys.get(index) {
            tracing::warn!(region = %self.name, key_env = %key.env_var, ?hold, ?for_how_long, "upstream key taken out of rotation");
        }
    }

    /// Whether any key could be used now (quarantined keys count: see [`Region::next_key`]).
    pub fn has_usable_key(&self) -> bool {
        (0..self.keys.len()).any(|i| !matches!(self.hold_of(i), Some((KeyHold::RateLimited, _))))
    }

    /// When every key is rate-limited: how long until the first comes back.
    pub fn rate_limited_for(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut soonest: Option<Duration> = None;
        for i in 0..self.keys.len() {
            match self.hold_of(i) {
                Some((KeyHold::RateLimited, until)) => {
                    let left = until.saturating_duration_since(now);
                    soonest = Some(soonest.map_or(left, |s| s.min(left)));
                }
                _ => return None,
            }
        }
        soonest
    }

    pub fn key_states(&self) -> Vec<RegionKeyState> {
        let now = Instant::now();
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let hold = self.hold_of(i);
                RegionKeyState {
                    env_var: k.env_var.clone(),
                    state: match hold {
                        None => "available",
                        Some((KeyHold::Quarantined, _)) => "quarantined",
                        Some((KeyHold::RateLimited, _)) => "rate_limited",
                    },
                    available_in_secs: hold
                        .map(|(_, until)| until.saturating_duration_since(now).as_secs_f64()),
                }
            })
            .collect()
    }

    pub fn breaker_snapshot(&self) -> BreakerSnapshot {
        self.breaker.snapshot()
    }

    /// Whether this region can take a request now (breaker and keys).
    pub fn is_available(&self) -> bool {
        self.breaker.is_available() && self.has_usable_key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn client() -> HttpClient {
        let roots = std::sync::Arc::new(rustls::RootCertStore::empty());
        super::super::build_http_client(Duration::from_secs(1), crate::config::Http2::Off, roots)
            .unwrap()
    }

    fn region(keys: usize) -> Region {
        Region::new(
            ResolvedRegion {
                name: "r".into(),
                base_url: url::Url::parse("http://x").unwrap(),
                keys: (0..keys)
                    .map(|i| RegionKey {
                        env_var: format!("K{i}"),
                        secret: Secret::new(format!("sk-{i}")),
                    })
                    .collect(),
                workspace: None,
                http2: crate::config::Http2::Off,
            },
            Breaker::new(3, Duration::from_secs(1)),
            client(),
        )
        .unwrap()
    }

    #[test]
    fn spreads_over_keys_and_skips_held_ones() {
        let r = region(3);
        let picks: Vec<usize> = (0..6).map(|_| r.next_key(&[]).unwrap().0).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        r.hold_key(1, KeyHold::Quarantined, Duration::from_secs(60));
        let picks: Vec<usize> = (0..4).map(|_| r.next_key(&[]).unwrap().0).collect();
        assert!(!picks.contains(&1));
        assert!(
            r.next_key(&[0, 2]).is_some(),
            "a quarantined key is the last resort"
        );
        assert!(r.next_key(&[0, 1, 2]).is_none());
        assert_eq!(r.key_states()[1].state, "quarantined");
        assert!(!format!("{:?}", r.key_states()).contains("sk-"));
    }

    #[test]
    fn urls_join_the_base_path() {
        use crate::upstream::{Endpoint, ResponseId};
        let r = region(1);
        let create = Target::new(Endpoint::Create);
        assert_eq!(r.url_for(&create).unwrap().as_str(), "http://x/responses");
        let mut resolved = ResolvedRegion {
            name: "r".into(),
            base_url: url::Url::parse("https://h.example/api/v1/").unwrap(),
            keys: vec![RegionKey {
                env_var: "K".into(),
                secret: Secret::new("sk"),
            }],
            workspace: None,
            http2: crate::config::Http2::Off,
        };
        let http = client();
        let r = Region::new(
            resolved.clone(),
            Breaker::new(1, Duration::from_secs(1)),
            http.clone(),
        )
        .unwrap();
        let items = Target::new(Endpoint::InputItems(ResponseId::parse("resp_1").unwrap()));
        assert_eq!(
            r.url_for(&items).unwrap().as_str(),
            "https://h.example/api/v1/responses/resp_1/input_items"
        );
        resolved.base_url = url::Url::parse("mailto:x@h.example").unwrap();
        let r = Region::new(resolved, Breaker::new(1, Duration::from_secs(1)), http).unwrap();
        assert!(r.url_for(&create).is_none());
    }

    #[test]
    fn rate_limited_keys_come_back() {
        let r = region(1);
        r.hold_key(0, KeyHold::RateLimited, Duration::from_millis(20));
        assert!(!r.has_usable_key());
        assert!(r.next_key(&[]).is_none(), "rate-limited keys rest");
        assert!(r.rate_limited_for().is_some());
        std::thread::sleep(Duration::from_millis(25));
        assert!(r.has_usable_key());
    }
}
