//! Where "now" comes from, so expiry can be tested by moving a clock instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time in unix milliseconds.
///
/// Milliseconds (not seconds) so that short TTLs behave as written.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The wall clock; what the gateway uses.
    #[default]
    System,
    /// A clock that only moves when told to; clones share the same time.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `start_millis` (unix milliseconds).
    pub fn manual(start_millis: i64) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(start_millis)))
    }

    /// Current unix time in milliseconds.
    pub fn now_millis(&self) -> i64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0),
            Clock::Manual(now) => now.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward; does nothing to the system clock.
    pub fn advance(&self, by: Duration) {
        if let Clock::Manual(now) = self {
            now.fetch_add(ttl_millis(by), Ordering::SeqCst);
        }
    }

    /// The unix-millisecond instant `ttl` from now, saturating instead of overflowing.
    pub(crate) fn expiry(&self, ttl: Duration) -> i64 {
        self.now_millis().saturating_add(ttl_millis(ttl))
    }
}

fn ttl_millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}
