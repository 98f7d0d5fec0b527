//! Key and breaker state: a 429 rests a key, a rejected key is quarantined (a 403 not), breakers.

use super::*;
use mock_model_studio::MockConfig;
use std::time::Duration;

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
