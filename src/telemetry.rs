//! Prometheus metrics: one process-wide recorder (the `metrics` facade is global), rendered
//! at `GET /metrics`. Names follow Prometheus conventions (`_total` counters, `_seconds`
//! histograms); label values are bounded (route templates, region and model names, status).
//!
//! Every metric is listed in [`METRICS`] (and `docs/metrics.md`), with the help
//! text `/metrics` prints for it.

use crate::upstream::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Seconds: from sub-millisecond gateway work to multi-minute generations.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0,
];

/// What a metric is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric the gateway records: name, type, labels, and the `# HELP` text.
pub const METRICS: &[(&str, Kind, &str, &str)] = &[
    (
        "qwen_gateway_requests_total",
        Kind::Counter,
        "endpoint, status, region, model",
        "Requests answered, by endpoint, HTTP status (499: the client left before the head), region and model (an unknown model the upstream refused counts as 'other').",
    ),
    (
        "qwen_gateway_request_duration_seconds",
        Kind::Histogram,
        "endpoint, region",
        "Time from the request's arrival to the end of its response body.",
    ),
    (
        "qwen_gateway_time_to_first_byte_seconds",
        Kind::Histogram,
        "endpoint",
        "Time from the request's arrival to the first body byte sent to the client.",
    ),
    (
        "qwen_gateway_tokens_total",
        Kind::Counter,
        "kind, model, region",
        "Tokens billed by Model Studio, by kind (input, output, cached, reasoning).",
    ),
    (
        "qwen_gateway_open_streams",
        Kind::Gauge,
        "endpoint",
        "Streaming responses being sent right now.",
    ),
    (
        "qwen_gateway_upstream_requests_total",
        Kind::Counter,
        "region, status",
        "Requests sent to Model Studio, by region and the status it answered (or connect_error, timeout).",
    ),
    (
        "qwen_gateway_upstream_head_seconds",
        Kind::Histogram,
        "region",
        "Time until Model Studio's response head, per region.",
    ),
    (
        "qwen_gateway_failovers_total",
        Kind::Counter,
        "from, reason",
        "Requests moved to the next region, by the region left and why (5xx, timeout, connect, rate_limited, auth, failed_event, ...).",
    ),
    (
        "qwen_gateway_secrets_scrubbed_total",
        Kind::Counter,
        "region",
        "Upstream answers (heads or bodies) in which a gateway secret was found and replaced with [REDACTED] before anything was relayed.",
    ),
    (
        "qwen_gateway_breaker_state",
        Kind::Gauge,
        "region",
        "Each region's circuit breaker: 0 closed, 1 half-open, 2 open.",
    ),
    (
        "qwen_gateway_upstream_keys_available",
        Kind::Gauge,
        "region",
        "Upstream keys of a region in rotation (not quarantined or resting after a 429).",
    ),
    (
        "qwen_gateway_auth_refusals_total",
        Kind::Counter,
        "reason",
        "Requests refused by team-key auth or limits, by reason.",
    ),
    (
        "qwen_gateway_ledger_failures_total",
        Kind::Counter,
        "",
        "Usage-ledger writes the store refused (the usage of those requests is missing).",
    ),
];

/// Gives every metric its `# HELP` line.
fn describe() {
    for &(name, kind, _, help) in METRICS {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the global metrics recorder: a program serving the gateway calls this once, before
/// building the [`crate::server::AppState`] (metrics recorded before it are lost). Idempotent.
pub fn install() {
    let _ = handle();
}

/// Installs the recorder on first use. `None` if another recorder was installed first
/// (an embedding program's): then `/metrics` says so instead of panicking.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(BUCKETS).ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_follow_prometheus_conventions_and_are_documented() {
        let doc = include_str!("../docs/metrics.md");
        for &(name, kind, _, help) in METRICS {
            assert!(name.starts_with("qwen_gateway_"), "{name}");
            match kind {
                Kind::Counter => assert!(name.ends_with("_total"), "{name}"),
                Kind::Histogram => assert!(name.ends_with("_seconds"), "{name}"),
                Kind::Gauge => assert!(!name.ends_with("_total"), "{name}"),
            }
            assert!(!help.is_empty());
            assert!(
                doc.contains(&format!("| `{name}` |")),
                "docs/metrics.md lists {name}"
            );
        }
    }
}
