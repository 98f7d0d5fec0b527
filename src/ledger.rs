//! The usage ledger's writer: one row per (UTC day, key, model, region) summing requests,
//! errors, tokens and built-in tool calls, plus the token counters behind per-key limits.
//!
//! The access log hands over each finished model request (body ended, failed, or dropped by
//! the client) and the write happens in the background: a response is never delayed by the
//! store. Writes still in flight at shutdown are waited for ([`Ledger::drain`]).

use crate::auth::{ClientKey, limits};
use crate::store::{Store, UsageDelta};
use crate::usage::Usage;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// One finished request, as the ledger needs it.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// `None`: no team key (`auth.mode = "none"`), booked under key id `""`.
    pub client: Option<Arc<ClientKey>>,
    pub model: Option<String>,
    pub region: Option<String>,
    /// What is known of the usage (nothing for a stream abandoned before its end).
    pub usage: Option<Usage>,
    /// `usage` is an estimate (booked as such in the row's `estimated` count).
    pub estimated: bool,
    pub error: bool,
}

#[derive(Debug, Default)]
struct Pending {
    count: AtomicUsize,
    idle: Notify,
}

/// Decrements the in-flight count when a write ends, however it ends.
struct InFlight(Arc<Pending>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Writes ledger rows and token counters in the background. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ledger {
    store: Store,
    keyless: bool,
    pending: Arc<Pending>,
}

impl Ledger {
    /// `keyless`: book requests without a team key under key id `""` (`auth.mode = "none"`);
    /// otherwise only requests with a key are booked.
    pub fn new(store: Store, keyless: bool) -> Self {
        Self {
            store,
            keyless,
            pending: Arc::default(),
        }
    }

    pub fn books_keyless(&self) -> bool {
        self.keyless
    }

    /// Books `entry` in the background (never waits for the store).
    pub fn record(&self, entry: Entry) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("usage not recorded: no async runtime (shutting down)");
            return;
        };
        let usage = entry.usage.unwrap_or_default();
        let delta = UsageDelta {
            day: crate::calendar::today(),
            key_id: entry
                .client
                .as_ref()
                .map(|k| k.id.clone())
                .unwrap_or_default(),
            model: entry.model.unwrap_or_default(),
            region: entry.region.unwrap_or_default(),
            requests: 1,
            errors: u64::from(entry.error),
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cached_tokens: usage.cached_tokens,
            reasoning_tokens: usage.reasoning_tokens,
            tool_calls: usage.tool_calls,
            estimated: u64::from(entry.estimated),
        };
        let store = self.store.clone();
        self.pending.count.fetch_add(1, Ordering::AcqRel);
        let in_flight = InFlight(self.pending.clone());
        runtime.spawn(async move {
            let _in_flight = in_flight;
            if let Err(err) = store.record_usage(&delta).await {
                tracing::warn!(error = %err, key_id = %delta.key_id, "usage not recorded");
                metrics::counter!("qwen_gateway_ledger_failures_total").increment(1);
            }
            if let Some(key) = entry.client.filter(|k| k.counts_tokens()) {
                limits::add_tokens(&store, &key, usage.total()).await;
            }
        });
    }

    /// Waits (at most `within`) until every write started so far has finished.
    pub async fn drain(&self, within: Duration) {
        let wait = async {
            loop {
                let idle = self.pending.idle.notified();
                if self.pending.count.load(Ordering::Acquire) == 0 {
                    return;
                }
                idle.await;
            }
        };
        if tokio::time::timeout(within, wait).await.is_err() {
            tracing::warn!(
                pending = self.pending.count.load(Ordering::Acquire),
                "usage writes still pending at shutdown"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_in_the_background_and_drains() {
        let store = Store::open("memory").await.unwrap();
        let ledger = Ledger::new(store.clone(), true);
        for error in [false, true] {
            ledger.record(Entry {
                model: Some("m".into()),
                region: Some("r0".into()),
                usage: Some(Usage {
                    input_tokens: 3,
                    output_tokens: 4,
                    tool_calls: 1,
                    ..Usage::default()
                }),
                error,
                ..Entry::default()
            });
        }
        ledger.drain(Duration::from_secs(5)).await;
        let rows = store.usage(None).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].key_id, "");
        assert_eq!(
            (rows[0].requests, rows[0].errors, rows[0].input_tokens),
            (2, 1, 6)
        );
        assert_eq!(rows[0].tool_calls, 2);
    }
}
