//! Prometheus metrics: one process-wide recorder (the `metrics` facade is global), rendered
//! at `GET /metrics`. Names follow Prometheus conventions (`_total` counters, `_seconds`
//! histograms); label values are bounded (route templates, region and model names, status).
//!
//! | name | type | labels |
//! |---|---|---|
//! | `qwen_gateway_requests_total` | counter | endpoint, status, region, model |
//! | `qwen_gateway_request_duration_seconds` | histogram | endpoint |
//! | `qwen_gateway_time_to_first_byte_seconds` | histogram | endpoint |
//! | `qwen_gateway_tokens_total` | counter | kind (input, output, cached, reasoning), model, region |
//! | `qwen_gateway_open_streams` | gauge | endpoint |
//! | `qwen_gateway_upstream_requests_total` | counter | region, status |
//! | `qwen_gateway_upstream_head_seconds` | histogram | region (time to the upstream's response head) |
//! | `qwen_gateway_failovers_total` | counter | from, reason |
//! | `qwen_gateway_breaker_state` | gauge | region (0 closed, 1 half-open, 2 open) |
//! | `qwen_gateway_upstream_keys_available` | gauge | region |

use crate::upstream::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Seconds: from sub-millisecond gateway work to multi-minute generations.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder on first use. `None` if another recorder was installed first
/// (an embedding program's): then `/metrics` says so instead of panicking.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(BUCKETS).ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// How often histogram samples are folded into their buckets.
pub const UPKEEP_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds recorded histogram samples into their buckets every [`UPKEEP_PERIOD`], for as long
/// as it runs. The recorder queues every sample until upkeep runs; without this loop that only
/// happened when `/metrics` was scraped, so a gateway nobody scraped grew by a few dozen
/// bytes per request, forever (found by the soak test).
pub async fn upkeep_loop() {
    let mut tick = tokio::time::interval(UPKEEP_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Some(handle) = handle() {
            handle.run_upkeep();
        }
    }
}

/// The text exposition, with gauges read from the live router state first.
pub fn render(router: &Router) -> Option<String> {
    let handle = handle()?;
    for region in router.regions() {
        let name = region.name().to_owned();
        metrics::gauge!("qwen_gateway_breaker_state", "region" => name.clone())
            .set(region.breaker().state().as_gauge());
        let available = region
            .key_states()
            .iter()
            .filter(|k| k.state == "available")
            .count();
        metrics::gauge!("qwen_gateway_upstream_keys_available", "region" => name)
            .set(available as f64);
    }
    handle.run_upkeep();
    Some(handle.render())
}

/// A route template for a request path, so labels stay bounded whatever clients send.
pub fn endpoint(path: &str) -> &'static str {
    match path {
        "/v1/responses" => "/v1/responses",
        "/v1/chat/completions" => "/v1/chat/completions",
        "/v1/models" => "/v1/models",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        p if p.starts_with("/v1/responses/") => "/v1/responses/{id}",
        p if p.starts_with("/v1/models/") => "/v1/models/{id}",
        p if p.starts_with("/admin") => "/admin",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_bounded() {
        assert_eq!(
            endpoint("/v1/responses/resp_123/input_items"),
            "/v1/responses/{id}"
        );
        assert_eq!(endpoint("/../../etc/passwd"), "other");
    }
}
