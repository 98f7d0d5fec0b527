//! Region routing and failover, end to end: a gateway in front of two mock regions (`r0`
//! preferred, `r1` second) on loopback, faults injected per region with the mock's default
//! controls, asserting on what the client sees and which region was asked.
//!
//! The two-region rig and request helpers are here; the tests are in modules by subject.

#[path = "../common/mod.rs"]
mod common;

mod conversations;
mod failover;
mod keys_and_breakers;
mod metrics;

use common::*;
use mock_model_studio::MockServer;
use serde_json::{Value, json};

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
