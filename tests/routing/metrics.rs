//! The Prometheus metrics: failovers, breakers and requests by region, bounded model series.

use super::*;

/// `name{labels} value` samples of a Prometheus text exposition.
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("sample line");
            (series.to_owned(), value.parse().expect("sample value"))
        })
        .collect()
}

/// A client may send any string as `model`: names the catalog does not know and the upstream
/// refused are counted as `other`, so no client can grow the metric series without bound.
#[tokio::test]
async fn unknown_refused_models_are_one_metric_series() {
    let (gw, _r0, _r1) = two_regions("").await;
    for i in 0..5 {
        let res = client()
            .post(gw.url("/v1/responses"))
            .json(&json!({"model": format!("bogus-model-{i}"), "input": "hi"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "the mock knows no such model");
    }
    assert_eq!(ask(&gw, false).await.status(), 200);
    let text = metrics_text(&gw).await;
    assert!(!text.contains("bogus-model"), "{text}");
    let other: f64 = samples(&text)
        .iter()
        .filter(|(s, _)| {
            s.starts_with("qwen_gateway_requests_total")
                && s.contains("model=\"other\"")
                && s.contains("status=\"404\"")
        })
        .map(|(_, v)| v)
        .sum();
    assert!(other >= 5.0, "{text}");
    assert!(
        text.contains(&format!("model=\"{MODEL}\"")),
        "known models keep their name"
    );
}

#[tokio::test]
async fn metrics_show_failovers_breakers_and_requests_by_region() {
    let (gw, r0, _r1) = two_regions("").await;
    r0.set_default_header("x-mock-status", "503");
    for _ in 0..3 {
        assert!(!ask(&gw, true).await.bytes().await.unwrap().is_empty());
    }
    let res = client().get(gw.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    let all = samples(&text);
    let value = |prefix: &str, needles: &[&str]| -> f64 {
        all.iter()
            .filter(|(s, _)| s.starts_with(prefix) && needles.iter().all(|n| s.contains(n)))
            .map(|(_, v)| v)
            .sum()
    };
    assert!(
        value(
            "qwen_gateway_failovers_total",
            &["from=\"r0\"", "reason=\"5xx\""]
        ) >= 2.0,
        "{text}"
    );
    assert!(
        value("qwen_gateway_breaker_state", &["region=\"r0\""]) >= 1.0,
        "{text}"
    );
    assert!(
        value(
            "qwen_gateway_upstream_requests_total",
            &["region=\"r0\"", "status=\"503\""]
        ) >= 2.0
    );
    assert!(
        value(
            "qwen_gateway_requests_total",
            &[
                "endpoint=\"/v1/responses\"",
                "region=\"r1\"",
                "status=\"200\""
            ]
        ) >= 3.0
    );
    assert!(
        value(
            "qwen_gateway_tokens_total",
            &["kind=\"output\"", "region=\"r1\""]
        ) > 0.0
    );
    assert!(
        value(
            "qwen_gateway_time_to_first_byte_seconds_count",
            &["endpoint=\"/v1/responses\""]
        ) >= 3.0
    );
    assert!(text.contains("qwen_gateway_open_streams"));
    assert!(
        value(
            "qwen_gateway_request_duration_seconds_count",
            &["endpoint=\"/v1/responses\"", "region=\"r1\""]
        ) >= 3.0,
        "latency per region"
    );
    assert!(
        value(
            "qwen_gateway_upstream_head_seconds_count",
            &["region=\"r0\""]
        ) >= 2.0
    );
    assert!(!text.contains(UPSTREAM_KEY));
    exposition_is_well_formed(&text);
}

/// Parses the text exposition format line by line: `# HELP`/`# TYPE` comments naming a
/// documented metric with its documented type, samples `name{label="v",...} value`, and
/// histograms with increasing cumulative buckets ending in `+Inf` = `_count`.
fn exposition_is_well_formed(text: &str) {
    use qwen_gateway::telemetry::{Kind, METRICS};
    use std::collections::BTreeMap;
    let documented = |name: &str| METRICS.iter().find(|m| m.0 == name);
    let mut typed = BTreeMap::new();
    let mut buckets: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts: BTreeMap<String, f64> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            let m = documented(name).unwrap_or_else(|| panic!("undocumented metric {name}"));
            let want = match m.1 {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            assert_eq!(kind, want, "{name}");
            typed.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(documented(name).is_some() && !help.is_empty(), "{line}");
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment: {line}");
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').expect("labels end with }")),
            None => (series, ""),
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "metric name {name}"
        );
        let mut le = None;
        let mut others = Vec::new();
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once("=\"")
                .unwrap_or_else(|| panic!("label in {line}"));
            let v = v.strip_suffix('"').unwrap_or(v);
            if k == "le" {
                le = Some(v.to_owned());
            } else {
                others.push(format!("{k}={v}"));
            }
        }
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|b| typed.get(*b).map(String::as_str) == Some("histogram"))
            .unwrap_or(name);
        assert!(typed.contains_key(base), "sample before its TYPE: {line}");
        let key = format!("{base}{{{}}}", others.join(","));
        if let Some(le) = le {
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().expect("le")
            };
            buckets.entry(key).or_default().push((bound, value));
        } else if name.ends_with("_count") && base != name {
            counts.insert(key, value);
        }
    }
    assert!(!buckets.is_empty(), "histograms have buckets");
    for (series, list) in &buckets {
        assert!(
            list.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{series}"
        );
        let last = list.last().expect("a bucket");
        assert_eq!(last.0, f64::INFINITY, "{series}");
        assert_eq!(
            Some(&last.1),
            counts.get(series),
            "{series}: +Inf bucket = _count"
        );
    }
}
