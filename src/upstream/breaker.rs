//! A circuit breaker: after `threshold` consecutive failures a region is skipped for
//! `cooldown`; then exactly one trial request (half-open) decides whether it closes again.
//! This keeps a sick region from costing every request a timeout.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// For the `qwen_gateway_breaker_state` gauge.
    pub fn as_gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    /// When the half-open trial started: a trial whose request was dropped (client gone)
    /// must not keep the region shut forever, so after a cooldown another may start.
    trial_started: Option<Instant>,
    last_failure: Option<String>,
    total_failures: u64,
    total_successes: u64,
}

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<Inner>,
}

/// What `/readyz` shows of a breaker.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BreakerSnapshot {
    pub state: &'static str,
    pub consecutive_failures: u32,
    pub total_failures: u64,
    pub total_successes: u64,
    pub last_failure: Option<String>,
    /// Seconds until an open breaker lets a trial request through.
    pub retry_in_secs: Option<f64>,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                consecutive_failures: 0,
                opened_at: None,
                trial_started: None,
                last_failure: None,
                total_failures: 0,
                total_successes: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a request may go now. An open breaker past its cooldown turns half-open and
    /// admits this one request as its trial.
    pub fn try_acquire(&self) -> bool {
        let mut inner = self.lock();
        match inner.state {
            BreakerState::Closed => true,
            BreakerState::HalfOpen => {
                if self.trial_pending(&inner) {
                    false
                } else {
                    inner.trial_started = Some(Instant::now());
                    true
                }
            }
            BreakerState::Open => {
                let ready = inner
                    .opened_at
                    .is_none_or(|at| at.elapsed() >= self.cooldown);
                if ready {
                    inner.state = BreakerState::HalfOpen;
                    inner.trial_started = Some(Instant::now());
                }
                ready
            }
        }
    }

    /// Whether a request could go now, without taking the half-open trial.
    pub fn is_available(&self) -> bool {
        let inner = self.lock();
        match inner.state {
            BreakerState::Closed => true,
            BreakerState::HalfOpen => !self.trial_pending(&inner),
            BreakerState::Open => inner
                .opened_at
                .is_none_or(|at| at.elapsed() >= self.cooldown),
        }
    }

    pub fn record_success(&self) {
        let mut inner = self.lock();
        inner.total_successes += 1;
        inner.consecutive_failures = 0;
        inner.trial_started = None;
        inner.state = BreakerState::Closed;
        inner.opened_at = None;
    }

    /// Neither a success nor a failure (a slow non-streaming answer timed out): the state
    /// stays, and a half-open trial slot is freed for the next request.
    pub fn release_trial(&self) {
        self.lock().trial_started = None;
    }

    pub fn record_failure(&self, reason: &str) {
        let mut inner = self.lock();
        inner.total_failures += 1;
        inner.consecutive_failures += 1;
        inner.last_failure = Some(reason.to_owned());
        let reopen = inner.state == BreakerState::HalfOpen;
        inner.trial_started = None;
        if reopen || inner.consecutive_failures >= self.threshold {
            inner.state = BreakerState::Open;
            inner.opened_at = Some(Instant::now());
        }
    }

    fn trial_pending(&self, inner: &Inner) -> bool {
        inner
            .trial_started
            .is_some_and(|at| at.elapsed() < self.cooldown.max(Duration::from_secs(1)))
    }

    pub fn state(&self) -> BreakerState {
        self.lock().state
    }

    pub fn snapshot(&self) -> BreakerSnapshot {
        let inner = self.lock();
        let retry_in_secs = match (inner.state, inner.opened_at) {
            (BreakerState::Open, Some(at)) => {
                Some(self.cooldown.saturating_sub(at.elapsed()).as_secs_f64())
            }
            _ => None,
        };
        BreakerSnapshot {
            state: inner.state.as_str(),
            consecutive_failures: inner.consecutive_failures,
            total_failures: inner.total_failures,
            total_successes: inner.total_successes,
            last_failure: inner.last_failure.clone(),
            retry_in_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_then_half_opens_once_and_closes() {
        let b = Breaker::new(2, Duration::from_millis(30));
        assert!(b.try_acquire());
        b.record_failure("503");
        assert_eq!(b.state(), BreakerState::Closed);
        b.record_failure("503");
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.try_acquire());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.try_acquire(), "trial after cooldown");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(!b.try_acquire(), "only one trial at a time");
        b.record_success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.try_acquire());
    }

    #[test]
    fn a_failed_trial_reopens() {
        let b = Breaker::new(1, Duration::from_millis(10));
        b.record_failure("refused");
        std::thread::sleep(Duration::from_millis(15));
        assert!(b.try_acquire());
        b.record_failure("refused");
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.is_available());
        assert_eq!(b.snapshot().last_failure.as_deref(), Some("refused"));
    }
}
