//! `GET /admin/status`: what `/readyz` says of each region, plus the failover and upstream
//! counters of `/metrics` (totals since the process started; the page turns two readings
//! into recent rates). Read from the same sources, so the three never disagree.

use super::super::AppState;
use super::super::info::readiness;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;

/// One counter series: its labels and value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

pub async fn status(State(state): State<AppState>) -> Response {
    let (ready, regions) = readiness(&state);
    let text = crate::telemetry::render(&state.upstream).unwrap_or_default();
    Json(serde_json::json!({
        "ready": ready,
        "regions": regions,
        "failovers": series(&text, "qwen_gateway_failovers_total"),
        "upstream_requests": series(&text, "qwen_gateway_upstream_requests_total"),
        "now": crate::calendar::now_secs(),
    }))
    .into_response()
}

/// The series of counter `name` in a Prometheus text exposition. Label values are the
/// gateway's own (region names, reasons, statuses): no escapes beyond `\"` and `\\` appear.
pub fn series(text: &str, name: &str) -> Vec<Series> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(rest) => {
                    let (labels, value) = rest.rsplit_once('}')?;
                    (parse_labels(labels)?, value)
                }
                None if rest.starts_with(' ') => (BTreeMap::new(), rest),
                None => return None,
            };
            let value: f64 = value.split_whitespace().next()?.parse().ok()?;
            Some(Series { labels, value })
        })
        .collect()
}

fn parse_labels(text: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => value.push(chars.next()?.1),
                (_, c) => value.push(c),
            }
        };
        labels.insert(name.trim().to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',').trim();
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_counter_series() {
        let text = "# TYPE qwen_gateway_failovers_total counter\n\
            qwen_gateway_failovers_total{from=\"r0\",reason=\"5xx\"} 3\n\
            qwen_gateway_failovers_total_other 9\n\
            qwen_gateway_upstream_requests_total{region=\"a\\\"b\",status=\"200\"} 12\n";
        let failovers = series(text, "qwen_gateway_failovers_total");
        assert_eq!(failovers.len(), 1);
        assert_eq!(failovers[0].labels["from"], "r0");
        assert_eq!(failovers[0].labels["reason"], "5xx");
        assert_eq!(failovers[0].value, 3.0);
        let upstream = series(text, "qwen_gateway_upstream_requests_total");
        assert_eq!(upstream[0].labels["region"], "a\"b");
        assert_eq!(upstream[0].value, 12.0);
    }
}
