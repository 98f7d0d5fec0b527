//! Region routing and failover, end to end: a gateway in front of two mock regions (`r0`
//! preferred, `r1` second) on loopback, faults injected per region with the mock's default
//! controls, asserting on what the client sees and which region was asked.

mod common;

use common::*;
use mock_model_studio::{MockConfig, MockServer};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const MODEL: &str = "qwen3-max-2026-01-23";

/// Two-or-more-region config with fast timeouts and a quick breaker, so fault tests stay short.
fn fast(urls: &[String], extra: &str) -> String {
    config_toml(urls, extra).replace(
        "first_byte_timeout = \"3s\"",
        "first_byte_timeout = \"400ms\"\nfailover_deadline = \"5s\"\nbreaker_threshold = 2\nbreaker_cooldown = \"500ms\"\nrate_limit_cooldown = \"5s\"",
    )
}

async fn two_regions(extra: &str) -> (Gateway, MockServer, MockServer) {
    let r0 = start_mock().await;
    let r1 = start_mock().await;
    let gw = start_gateway(&fast(&[r0.base_url(), r1.base_url()], extra)).await;
    (gw, r0, r1)
}

async fn ask(gw: &Gateway, stream: bool) -> reqwest::Response {
    client()
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": MODEL, "input": "hi", "stream": stream}))
        .send()
        .await
        .expect("gateway answers")
}

async fn readyz(gw: &Gateway) -> Value {
    client()
        .get(gw.url("/readyz"))
        .send()
        .await
        .expect("gateway answers")
        .json()
        .await
        .expect("/readyz is JSON")
}

fn served(mock: &MockServer) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.path == "/responses")
        .count()
}

/// A port nothing listens on: connections are refused.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn a_5xx_region_fails_over_for_plain_and_streaming_requests() {
    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-status", "503");
    let res = ask(&gw, false).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "completed");
    let res = ask(&gw, true).await;
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap();
    // The client got r1's stream byte for byte, nothing of r0's 503.
    let streamed = r1
        .requests()
        .into_iter()
        .find(|r| r.body.as_ref().is_some_and(|b| b["stream"] == true))
        .unwrap();
    assert_eq!(&bytes[..], &streamed.response_body[..]);
    assert_eq!(served(&r0), 2);
    assert_eq!(served(&r1), 2);
}

#[tokio::test]
async fn refused_connections_and_resets_before_the_head_fail_over() {
    let r1 = start_mock().await;
    let gw = start_gateway(&fast(&[closed_port_url().await, r1.base_url()], "")).await;
    assert_eq!(ask(&gw, false).await.status(), 200);
    assert_eq!(ask(&gw, true).await.status(), 200);

    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-drop-after", "0");
    let res = ask(&gw, true).await;
    assert_eq!(res.status(), 200);
    assert!(String::from_utf8_lossy(&res.bytes().await.unwrap()).contains("response.completed"));
    assert_eq!(served(&r1), 1);
}

#[tokio::test]
async fn a_region_hanging_before_its_head_is_left_after_first_byte_timeout() {
    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-header-delay-ms", "10000");
    let started = Instant::now();
    // A stream's head is due at once (a non-streaming one only with the whole answer).
    let res = ask(&gw, true).await;
    assert_eq!(res.status(), 200);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert_eq!(served(&r1), 1);
}

/// A non-streaming answer's head comes when the answer is done: waiting for it is bounded
/// by request_timeout, and neither a slow answer nor a timeout sends it to another region
/// (which would generate and bill it again) or counts against the breaker.
#[tokio::test]
async fn a_slow_non_streaming_answer_is_waited_for_sent_once_and_trips_no_breaker() {
    let r0 = start_mock().await;
    let r1 = start_mock().await;
    let toml = fast(&[r0.base_url(), r1.base_url()], "")
        .replace("request_timeout = \"10s\"", "request_timeout = \"2s\"");
    let gw = start_gateway(&toml).await;
    r0.set_default_header("x-mock-header-delay-ms", "900");
    // Three slow answers at once (the breaker threshold is 2), each past first_byte_timeout.
    let slow = futures_util::future::join_all((0..3).map(|_| ask(&gw, false))).await;
    for res in slow {
        assert_eq!(res.status(), 200);
    }
    assert_eq!(served(&r0), 3);
    assert_eq!(served(&r1), 0, "a slow answer was generated twice");
    assert_eq!(
        readyz(&gw).await["regions"][0]["breaker"]["state"],
        "closed"
    );
    // A fourth client is served by the preferred region as usual.
    r0.set_default_header("x-mock-header-delay-ms", "0");
    assert_eq!(ask(&gw, false).await.status(), 200);
    assert_eq!(served(&r0), 4);
    // Past request_timeout: a 504, still sent once, still no breaker failure.
    r0.set_default_header("x-mock-header-delay-ms", "5000");
    for _ in 0..3 {
        let res = ask(&gw, false).await;
        assert_eq!(res.status(), 504);
    }
    assert_eq!(served(&r1), 0);
    assert_eq!(
        readyz(&gw).await["regions"][0]["breaker"]["state"],
        "closed"
    );
}

#[tokio::test]
async fn a_429_fails_over_and_the_key_rests_for_its_retry_after() {
    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-status", "429");
    r0.set_default_header("x-mock-retry-after", "30");
    assert_eq!(ask(&gw, false).await.status(), 200);
    assert_eq!(ask(&gw, false).await.status(), 200);
    // The second request went straight to r1: r0's only key is resting.
    assert_eq!(served(&r0), 1);
    assert_eq!(served(&r1), 2);
    let ready: Value = readyz(&gw).await;
    assert_eq!(ready["regions"][0]["keys"][0]["state"], "rate_limited");
    assert_eq!(ready["regions"][0]["keys"][0]["env_var"], "TEST_KEY_R0");
    assert!(!ready.to_string().contains(UPSTREAM_KEY));
}

#[tokio::test]
async fn a_rate_limit_inside_a_200_stream_fails_over_before_any_byte_reaches_the_client() {
    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-fail", "rate_limit");
    let res = ask(&gw, true).await;
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap();
    assert_eq!(&bytes[..], &r1.requests()[0].response_body[..]);
    assert_eq!(served(&r0), 1);
    // Plain requests too (the failure is in the 200 body).
    r0.clear();
    assert_eq!(ask(&gw, false).await.status(), 200);
    assert_eq!(served(&r1), 2);
}

#[tokio::test]
async fn client_errors_and_moderation_never_fail_over() {
    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-status", "400");
    assert_eq!(ask(&gw, false).await.status(), 400);
    r0.clear_default_headers();
    r0.set_default_header("x-mock-fail", "moderation");
    let res = ask(&gw, false).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("DataInspectionFailed"));
    let res = ask(&gw, true).await;
    assert!(
        String::from_utf8_lossy(&res.bytes().await.unwrap()).contains("data_inspection_failed")
    );
    assert_eq!(
        served(&r1),
        0,
        "another region gives the same verdict: never asked"
    );
}

#[tokio::test]
async fn no_failover_once_bytes_reached_the_client() {
    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-tokens", "20");
    r0.set_default_header("x-mock-drop-after", "8");
    let res = ask(&gw, true).await;
    assert_eq!(res.status(), 200);
    let events = sse_json(&res.bytes().await.unwrap());
    let last = events.last().unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["code"], "upstream_stream_error");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "response.output_text.delta")
    );
    assert_eq!(served(&r1), 0);
}

#[tokio::test]
async fn a_bad_key_is_quarantined_and_the_next_key_answers() {
    let r0 = MockServer::start(MockConfig {
        keys: vec!["sk-good".into()],
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let toml = fast(&[r0.base_url()], "").replace(
        "api_key_env = [\"TEST_KEY_R0\"]",
        "api_key_env = [\"TEST_KEY_BAD\", \"TEST_KEY_GOOD\"]",
    );
    let gw = start_gateway_with_keys(&toml, |var| {
        if var.ends_with("BAD") {
            "sk-bad"
        } else {
            "sk-good"
        }
        .to_owned()
    })
    .await;
    for _ in 0..4 {
        assert_eq!(ask(&gw, false).await.status(), 200);
    }
    let bad_uses = r0
        .requests()
        .iter()
        .filter(|r| r.header("authorization") == Some("Bearer sk-bad"))
        .count();
    assert!(
        bad_uses <= 1,
        "a rejected key leaves rotation: used {bad_uses} times"
    );
    let ready = client().get(gw.url("/readyz")).send().await.unwrap();
    let ready: Value = ready.json().await.unwrap();
    let keys = ready["regions"][0]["keys"].as_array().unwrap().clone();
    assert!(
        keys.iter()
            .any(|k| k["env_var"] == "TEST_KEY_BAD" && k["state"] == "quarantined")
    );
    assert!(!ready.to_string().contains("sk-bad"));
}

/// A 403 (`AccessDenied`: e.g. a model the account has not enabled) is about the request:
/// the region's other key is asked, nothing is quarantined, no region fails over, and the
/// client gets the 403 (relayed on /v1/responses, `permission_error` on chat).
#[tokio::test]
async fn a_403_is_the_answer_and_quarantines_no_key() {
    let r0 = start_mock().await;
    let r1 = start_mock().await;
    r0.set_default_header("x-mock-status", "403");
    let toml = fast(&[r0.base_url(), r1.base_url()], "").replace(
        "api_key_env = [\"TEST_KEY_R0\"]",
        "api_key_env = [\"TEST_KEY_A\", \"TEST_KEY_B\"]",
    );
    let gw = start_gateway_with_keys(&toml, |var| format!("sk-{var}")).await;
    for stream in [false, true] {
        let res = ask(&gw, stream).await;
        assert_eq!(res.status(), 403, "stream {stream}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body["code"], "AccessDenied",
            "relayed as Model Studio sent it: {body}"
        );
    }
    for stream in [false, true] {
        let res = client()
            .post(gw.url("/v1/chat/completions"))
            .json(&json!({"model": MODEL, "stream": stream,
                          "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "chat stream {stream}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["type"], "permission_error", "{body}");
    }
    // Both keys were asked each time (the second may belong to another workspace).
    let keys: std::collections::BTreeSet<String> = r0
        .requests()
        .iter()
        .filter_map(|r| r.header("authorization").map(str::to_owned))
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(served(&r0), 8, "4 requests × 2 keys");
    assert_eq!(served(&r1), 0, "a 4xx never fails over");
    let ready: Value = readyz(&gw).await;
    let states: Vec<&Value> = ready["regions"][0]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["state"])
        .collect();
    assert!(states.iter().all(|s| *s == "available"), "{ready}");
    assert_eq!(ready["regions"][0]["breaker"]["state"], "closed", "{ready}");
}

#[tokio::test]
async fn the_breaker_opens_skips_the_region_then_a_trial_closes_it() {
    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-status", "503");
    for _ in 0..2 {
        assert_eq!(ask(&gw, false).await.status(), 200);
    }
    let ready: Value = readyz(&gw).await;
    assert_eq!(ready["regions"][0]["breaker"]["state"], "open");
    assert_eq!(ready["ready"], true, "r1 still serves");
    // Open: r0 is not even asked.
    assert_eq!(ask(&gw, false).await.status(), 200);
    assert_eq!(served(&r0), 2);
    // Healed; after the cooldown one trial goes to r0 and closes the breaker.
    r0.clear_default_headers();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(ask(&gw, false).await.status(), 200);
    assert_eq!(served(&r0), 3);
    let ready: Value = readyz(&gw).await;
    assert_eq!(ready["regions"][0]["breaker"]["state"], "closed");
    assert_eq!(served(&r1), 3);
}

#[tokio::test]
async fn every_region_down_gives_a_clear_error_within_the_bounds() {
    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-header-delay-ms", "10000");
    r1.set_default_header("x-mock-header-delay-ms", "10000");
    let started = Instant::now();
    let res = ask(&gw, true).await;
    assert_eq!(res.status(), 504);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_timeout");
    assert!(started.elapsed() < Duration::from_secs(3));

    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-status", "503");
    r1.set_default_header("x-mock-status", "502");
    // /v1/responses relays the last region's own answer...
    assert_eq!(ask(&gw, false).await.status(), 502);
    // ...and chat turns it into an OpenAI error.
    let res = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    let body: Value = res.json().await.unwrap();
    assert!(body["error"]["message"].is_string());
    // Both breakers open now: the gateway says so without asking anyone.
    for _ in 0..2 {
        ask(&gw, false).await;
    }
    let res = ask(&gw, false).await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_upstream_available");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("circuit open")
    );
}

#[tokio::test]
async fn chat_completions_fail_over_too() {
    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-status", "500");
    let res = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert_eq!(served(&r1), 1);
}

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

/// A 503 whose body never finishes must not hold the request until `request_timeout`: the
/// error body gets `first_byte_timeout` (400 ms here), then the next region answers.
#[tokio::test]
async fn an_error_body_that_stalls_fails_over_within_first_byte_timeout() {
    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-status", "503");
    r0.set_default_header("x-mock-gate", "never-released");
    for stream in [false, true] {
        let started = Instant::now();
        let res = ask(&gw, stream).await;
        assert_eq!(res.status(), 200, "stream {stream}");
        assert!(!res.bytes().await.unwrap().is_empty());
        let took = started.elapsed();
        if !stream {
            assert!(took >= Duration::from_millis(350), "{took:?}");
        }
        assert!(took < Duration::from_secs(3), "stream {stream}: {took:?}");
    }
    assert_eq!(served(&r1), 2);
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

/// Two regions over a SQLite store in `dir`, `r0` preferred; `store_extra` goes into `[store]`.
fn with_sqlite(urls: &[String], dir: &std::path::Path, store_extra: &str) -> String {
    let db = dir.join("gw.db");
    fast(urls, "").replace(
        "url = \"memory\"",
        &format!("url = \"sqlite://{}\"\n{store_extra}", db.display()),
    )
}

async fn create(gw: &Gateway, body: Value) -> reqwest::Response {
    client()
        .post(gw.url("/v1/responses"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The id of a created response, from a plain body or a stream's `response.created`.
async fn response_id(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap();
    if let Ok(body) = serde_json::from_slice::<Value>(&bytes) {
        return body["id"].as_str().unwrap().to_owned();
    }
    let events = sse_json(&bytes);
    events[0]["response"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn follow_ups_and_lookups_go_to_the_region_that_holds_the_conversation_even_after_a_restart()
{
    let dir = tempfile::tempdir().unwrap();
    let (r0, r1) = (start_mock().await, start_mock().await);
    let toml = with_sqlite(&[r0.base_url(), r1.base_url()], dir.path(), "");
    let gw = start_gateway(&toml).await;
    // r0 is sick while the conversation starts, so it starts on r1 (one plain, one streamed).
    r0.set_default_header("x-mock-status", "503");
    let plain = response_id(create(&gw, json!({"model": MODEL, "input": "hi"})).await).await;
    let streamed =
        response_id(create(&gw, json!({"model": MODEL, "input": "hi", "stream": true})).await)
            .await;
    r0.clear_default_headers();
    r0.clear();
    for id in [&plain, &streamed] {
        let res = create(
            &gw,
            json!({"model": MODEL, "input": "and then?", "previous_response_id": id}),
        )
        .await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
    let got = client()
        .get(gw.url(&format!("/v1/responses/{plain}")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(
        served(&r0),
        0,
        "r0 is healthy and preferred, but holds nothing"
    );

    // A restarted gateway still knows (SQLite).
    gw.stop().await;
    let gw = start_gateway(&toml).await;
    let res = create(
        &gw,
        json!({"model": MODEL, "input": "still there?", "previous_response_id": plain}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(served(&r0), 0);

    // Home down and replay off: a 503 that names the region and why.
    r1.set_default_header("x-mock-status", "503");
    let res = create(
        &gw,
        json!({"model": MODEL, "input": "hello?", "previous_response_id": plain}),
    )
    .await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "home_region_unavailable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("'r1'") && message.contains("503"),
        "{message}"
    );
    assert_eq!(
        served(&r0),
        0,
        "never sent to a region that does not hold it"
    );
    // Deleting forgets the id.
    r1.clear_default_headers();
    let deleted = client()
        .delete(gw.url(&format!("/v1/responses/{streamed}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
}

#[tokio::test]
async fn replay_moves_a_conversation_with_its_function_calls_to_a_healthy_region() {
    let dir = tempfile::tempdir().unwrap();
    let (r0, r1) = (start_mock().await, start_mock().await);
    let toml = with_sqlite(
        &[r0.base_url(), r1.base_url()],
        dir.path(),
        "conversations = true",
    );
    let gw = start_gateway(&toml).await;
    let tools = json!([{"type": "function", "name": "weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let first = client()
        .post(gw.url("/v1/responses"))
        .header("x-mock-tool-calls", "1")
        .json(&json!({"model": MODEL, "input": "weather in Paris?", "tools": tools}))
        .send()
        .await
        .unwrap();
    let first: Value = first.json().await.unwrap();
    let call = first["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap()
        .clone();
    let first_id = first["id"].as_str().unwrap();
    assert_eq!(served(&r1), 0);

    // r0, the conversation's home, goes down: the turn is replayed on r1 in full.
    r0.set_default_header("x-mock-status", "503");
    let res = create(
        &gw,
        json!({"model": MODEL, "tools": tools, "previous_response_id": first_id, "stream": true,
               "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}]}),
    )
    .await;
    let second_id = response_id(res).await;
    let sent = r1.requests()[0].body.clone().unwrap();
    assert!(sent.get("previous_response_id").is_none(), "{sent}");
    let input = sent["input"].as_array().unwrap();
    let kinds: Vec<&str> = input
        .iter()
        .map(|i| i["type"].as_str().unwrap_or("message"))
        .collect();
    assert_eq!(
        kinds,
        ["message", "function_call", "function_call_output"],
        "{sent}"
    );
    assert_eq!(input[1]["call_id"], call["call_id"]);
    assert_eq!(input[0]["content"], "weather in Paris?");

    // The conversation now lives on r1 and goes on there natively, even with r0 healed.
    r0.clear_default_headers();
    let res = create(
        &gw,
        json!({"model": MODEL, "input": "thanks", "previous_response_id": second_id}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let third = &r1.requests()[1];
    assert_eq!(
        third.body.as_ref().unwrap()["previous_response_id"],
        second_id.as_str()
    );
    assert_eq!(
        served(&r0),
        2,
        "the first turn and the failed attempt: the replay avoids r0"
    );
}
