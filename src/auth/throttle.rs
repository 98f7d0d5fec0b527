//! Throttling of failed `/admin` token attempts per client address, so the admin token
//! cannot be guessed at line rate.
//!
//! Fixed one-minute windows, in this process's memory (each replica counts on its own):
//! the window opens with an address's first failure; after [`MAX_FAILURES`] failures every
//! `/admin` request from that address is refused, right token or not, until the window
//! ends. At most [`MAX_TRACKED`] addresses are remembered, the oldest window dropped first,
//! so a flood of addresses cannot grow memory without bound.
//!
//! The address is the TCP peer's: behind a reverse proxy every client shares the proxy's
//! (forwarding headers are deliberately not trusted). IPv6 peers are grouped by their /64,
//! the block one host is usually given, so rotating addresses within it does not reset the
//! count.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failed attempts allowed per address and window.
pub const MAX_FAILURES: u32 = 10;

/// How long a window lasts, from the first failure in it.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Most addresses tracked at once.
pub const MAX_TRACKED: usize = 10_000;

/// Whose failures are counted together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// An IPv4 address, or an IPv6 /64 (stored with its host bits zeroed).
    Addr(IpAddr),
    /// Requests whose peer is unknown (the router used without [`crate::server::serve`]):
    /// one shared bucket.
    Unknown,
}

impl Bucket {
    /// The bucket of a peer address; IPv4-mapped IPv6 counts as the IPv4 address.
    pub fn of(peer: Option<IpAddr>) -> Bucket {
        match peer.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V6(v6)) => {
                let bits = u128::from(v6) & (u128::MAX << 64);
                Bucket::Addr(IpAddr::V6(Ipv6Addr::from(bits)))
            }
            Some(v4) => Bucket::Addr(v4),
            None => Bucket::Unknown,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

#[derive(Debug, Default)]
struct State {
    windows: HashMap<Bucket, Window>,
    /// Buckets in the order their windows started (= the order they end); an entry whose
    /// window was since replaced is skipped, and compacted away now and then.
    order: VecDeque<(Bucket, Instant)>,
}

/// What to do with an `/admin` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The token was right and the address is not throttled.
    Allowed,
    /// The token was wrong or missing: 401. `failures` in the window so far, this one
    /// included.
    Failed { failures: u32 },
    /// Too many failures: 429 until `retry_after` has passed, whatever the token.
    Throttled {
        retry_after: Duration,
        /// This request is the one that found the limit reached for the first time in
        /// the window (to log the throttle once, not once per request).
        first: bool,
    },
}

/// The per-address failure counts. One lock, held for a few map operations.
#[derive(Debug)]
pub struct AdminThrottle {
    state: Mutex<State>,
    max_failures: u32,
    window: Duration,
    max_tracked: usize,
}

impl Default for AdminThrottle {
    fn default() -> Self {
        AdminThrottle::new(MAX_FAILURES, WINDOW, MAX_TRACKED)
    }
}

impl AdminThrottle {
    pub fn new(max_failures: u32, window: Duration, max_tracked: usize) -> Self {
        AdminThrottle {
            state: Mutex::default(),
            max_failures,
            window,
            max_tracked: max_tracked.max(1),
        }
    }

    /// Judges one request from `bucket` whose token check gave `token_ok`, at `now`.
    ///
    /// The check and the count happen under one lock, so concurrent guesses cannot slip
    /// past the limit: at most `max_failures` answers per window say whether a token was
    /// right (the throttled ones say nothing about it).
    pub fn judge(&self, bucket: Bucket, token_ok: bool, now: Instant) -> Verdict {
        // A panic elsewhere cannot leave the counts inconsistent (each update is a few
        // plain writes); keep counting rather than fail open or closed for everyone.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let live = state
            .windows
            .get(&bucket)
            .copied()
            .filter(|w| now.saturating_duration_since(w.started) < self.window);
        if let Some(w) = live
            && w.failures >= self.max_failures
        {
            let retry_after = self
                .window
                .saturating_sub(now.saturating_duration_since(w.started));
            let first = w.failures == self.max_failures;
            if first && let Some(entry) = state.windows.get_mut(&bucket) {
                // Marks the throttle as announced; still over the limit.
                entry.failures = self.max_failures.saturating_add(1);
            }
            return Verdict::Throttled { retry_after, first };
        }
        if token_ok {
            return Verdict::Allowed;
        }
        let failures = match live {
            Some(w) => {
                let failures = w.failures.saturating_add(1);
                if let Some(entry) = state.windows.get_mut(&bucket) {
                    entry.failures = failures;
                }
                failures
            }
            None => {
                state.start(bucket, now, self.max_tracked);
                1
            }
        };
        Verdict::Failed { failures }
    }

    /// How many addresses are tracked now (for tests).
    pub fn tracked(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.windows.len()
    }
}

impl State {
    /// Opens a window with one failure for `bucket`, evicting the oldest windows past
    /// `cap` (expired ones are always the oldest).
    fn start(&mut self, bucket: Bucket, now: Instant, cap: usize) {
        self.windows.insert(
            bucket,
            Window {
                started: now,
                failures: 1,
            },
        );
        self.order.push_back((bucket, now));
        while self.windows.len() > cap {
            let Some((oldest, started)) = self.order.pop_front() else {
                break;
            };
            if self.is_current(&oldest, started) {
                self.windows.remove(&oldest);
            }
        }
        if self.order.len() > 2 * cap.max(16) {
            let windows = &self.windows;
            self.order
                .retain(|(b, at)| windows.get(b).is_some_and(|w| w.started == *at));
        }
    }

    fn is_current(&self, bucket: &Bucket, started: Instant) -> bool {
        self.windows
            .get(bucket)
            .is_some_and(|w| w.started == started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn v4(last: u8) -> Bucket {
        Bucket::of(Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))))
    }

    #[test]
    fn ten_failures_then_throttled_until_the_window_ends() {
        let t = AdminThrottle::default();
        let start = Instant::now();
        for n in 1..=10 {
            assert_eq!(
                t.judge(v4(1), false, start),
                Verdict::Failed { failures: n }
            );
        }
        let later = start + Duration::from_secs(15);
        // The 11th attempt, and the right token too, while the window lasts.
        assert_eq!(
            t.judge(v4(1), false, later),
            Verdict::Throttled {
                retry_after: Duration::from_secs(45),
                first: true
            }
        );
        assert_eq!(
            t.judge(v4(1), true, later),
            Verdict::Throttled {
                retry_after: Duration::from_secs(45),
                first: false
            }
        );
        // Another address is not affected.
        assert_eq!(t.judge(v4(2), true, later), Verdict::Allowed);
        assert_eq!(
            t.judge(v4(2), false, later),
            Verdict::Failed { failures: 1 }
        );
        // The window passes: a fresh count.
        let next = start + WINDOW;
        assert_eq!(t.judge(v4(1), true, next), Verdict::Allowed);
        assert_eq!(t.judge(v4(1), false, next), Verdict::Failed { failures: 1 });
    }

    #[test]
    fn successes_are_not_counted() {
        let t = AdminThrottle::default();
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(t.judge(v4(1), true, now), Verdict::Allowed);
        }
        assert_eq!(t.tracked(), 0);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Bucket::of(Some(a)), Bucket::of(Some(b)));
        assert_ne!(Bucket::of(Some(a)), Bucket::of(Some(c)));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(Bucket::of(Some(mapped)), v4(1));
        assert_eq!(Bucket::of(None), Bucket::Unknown);
    }

    #[test]
    fn tracks_at_most_the_cap_dropping_the_oldest() {
        let t = AdminThrottle::new(2, WINDOW, 100);
        let start = Instant::now();
        for _ in 0..2 {
            t.judge(Bucket::Unknown, false, start);
        }
        assert!(matches!(
            t.judge(Bucket::Unknown, true, start),
            Verdict::Throttled { .. }
        ));
        for i in 0..1_000u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            let now = start + Duration::from_millis(u64::from(i) + 1);
            t.judge(Bucket::of(Some(ip)), false, now);
            assert!(t.tracked() <= 100);
        }
        assert_eq!(t.tracked(), 100);
        // The oldest window (the shared bucket's) was dropped; the newest are kept.
        let now = start + Duration::from_secs(1);
        assert_eq!(t.judge(Bucket::Unknown, true, now), Verdict::Allowed);
        let newest = Bucket::of(Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 999))));
        assert_eq!(t.judge(newest, false, now), Verdict::Failed { failures: 2 });
        let state = t.state.lock().unwrap();
        assert!(state.order.len() <= 2 * 100 + 1, "order stays bounded");
    }

    #[test]
    fn concurrent_guesses_get_at_most_the_limit_of_answers() {
        let t = std::sync::Arc::new(AdminThrottle::default());
        let now = Instant::now();
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .filter(|_| matches!(t.judge(v4(7), false, now), Verdict::Failed { .. }))
                        .count()
                })
            })
            .collect();
        let answered: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(answered, MAX_FAILURES as usize);
    }
}
