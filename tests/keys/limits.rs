//! A key's limits: its models and regions (403), its RPM and token windows (429 and the headers).

use super::*;

/// Fixed one-minute windows: start a minute-bound test well inside one.
async fn away_from_minute_boundary() {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        % 60.0;
    if secs > 50.0 {
        tokio::time::sleep(Duration::from_secs_f64(60.5 - secs)).await;
    }
}

#[tokio::test]
async fn models_outside_a_keys_patterns_are_refused_with_403_naming_the_model() {
    let t = Team::start().await;
    let key = new_key(t.store(), "qwen3-only", |k| {
        k.models = vec!["qwen3-*".into()]
    })
    .await;
    // Directly, and through the alias `gpt-4o` → qwen3-max (the resolved name matches).
    for model in [MODEL, "gpt-4o"] {
        let body = json!({"model": model, "input": "hi"});
        assert_eq!(
            post(&t.gw, "/v1/responses", Some(&key), body, &[])
                .await
                .status(),
            200
        );
    }
    let before = served(&t.mock);
    for path in ["/v1/responses", "/v1/chat/completions"] {
        let body = json!({"model": "qwen2.5-72b-instruct", "input": "hi", "messages": [{"role": "user", "content": "hi"}], "stream": true});
        let (status, error) = error_of(post(&t.gw, path, Some(&key), body, &[]).await).await;
        assert_eq!(status, 403, "{path}");
        assert_eq!(error["code"], "model_not_allowed");
        assert_eq!(error["param"], "model");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("'qwen2.5-72b-instruct'") && message.contains("qwen3-*"),
            "{message}"
        );
    }
    assert_eq!(served(&t.mock), before, "refused before going upstream");
    // A key allowed only the alias may use it.
    let alias_only = new_key(t.store(), "alias-only", |k| {
        k.models = vec!["gpt-4o".into()]
    })
    .await;
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let res = post(&t.gw, "/v1/chat/completions", Some(&alias_only), body, &[]).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_region_limited_key_is_served_only_by_its_regions_even_when_they_are_down() {
    let r0 = start_mock().await;
    let r1 = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = team_toml(
        &[r0.base_url(), r1.base_url()],
        &dir.path().join("gw.db"),
        "",
    );
    let gw = start_gateway(&toml).await;
    let anywhere = new_key(&gw.store, "anywhere", |_| {}).await;
    let only_r1 = new_key(&gw.store, "only-r1", |k| k.regions = vec!["r1".into()]).await;

    assert_eq!(ask(&gw, &anywhere).await.status(), 200);
    assert_eq!((served(&r0), served(&r1)), (1, 0), "r0 is preferred");
    r0.clear();
    let chat = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(ask(&gw, &only_r1).await.status(), 200);
    let streamed = post(
        &gw,
        "/v1/responses",
        Some(&only_r1),
        json!({"model": MODEL, "input": "hi", "stream": true}),
        &[],
    )
    .await;
    assert_eq!(streamed.status(), 200);
    let _ = streamed.bytes().await.unwrap();
    let res = post(
        &gw,
        "/v1/chat/completions",
        Some(&only_r1),
        chat.clone(),
        &[],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!((served(&r0), served(&r1)), (0, 3));

    // r1 sick: its own 503 comes back; r0 is never tried.
    r1.set_default_header("x-mock-status", "503");
    let res = ask(&gw, &only_r1).await;
    assert_eq!(res.status(), 503);
    // (Chat Completions reports an upstream 5xx as the gateway's 502.)
    let res = post(&gw, "/v1/chat/completions", Some(&only_r1), chat, &[]).await;
    assert_eq!(res.status(), 502);
    // r1's breaker is open now: a clear gateway 503 naming the region, still never r0.
    let (status, error) = error_of(ask(&gw, &only_r1).await).await;
    assert_eq!(status, 503);
    assert_eq!(error["code"], "no_upstream_available");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("r1") && !message.contains("r0"),
        "{message}"
    );
    assert_eq!(served(&r0), 0, "a key limited to r1 never reaches r0");
    // Meanwhile an unrestricted key is served by r0.
    assert_eq!(ask(&gw, &anywhere).await.status(), 200);
    assert_eq!(served(&r0), 1);

    // A key whose only region this gateway does not serve: 403, and nothing goes upstream.
    let elsewhere = new_key(&gw.store, "beijing-only", |k| {
        k.regions = vec!["beijing".into()]
    })
    .await;
    let (before0, before1) = (served(&r0), served(&r1));
    for path in ["/v1/responses", "/v1/chat/completions"] {
        let body = json!({"model": MODEL, "input": "hi",
                          "messages": [{"role": "user", "content": "hi"}]});
        let (status, error) = error_of(post(&gw, path, Some(&elsewhere), body, &[]).await).await;
        assert_eq!(status, 403, "{path}");
        assert_eq!(error["code"], "region_not_allowed", "{path}: {error}");
        assert!(
            error["message"].as_str().unwrap().contains("beijing"),
            "{error}"
        );
    }
    assert_eq!((served(&r0), served(&r1)), (before0, before1));
}

#[tokio::test]
async fn the_rpm_limit_refuses_with_retry_after_and_openai_headers() {
    away_from_minute_boundary().await;
    let t = Team::start().await;
    let key = new_key(t.store(), "rpm3", |k| k.rpm = Some(3)).await;
    let unlimited = new_key(t.store(), "free", |_| {}).await;
    for remaining in ["2", "1", "0"] {
        let res = ask(&t.gw, &key).await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            header(&res, "x-ratelimit-limit-requests").as_deref(),
            Some("3")
        );
        assert_eq!(
            header(&res, "x-ratelimit-remaining-requests").as_deref(),
            Some(remaining)
        );
        let reset = header(&res, "x-ratelimit-reset-requests").unwrap();
        assert!(reset.ends_with('s'), "{reset}");
        assert_eq!(header(&res, "x-ratelimit-limit-tokens"), None);
    }
    let res = ask(&t.gw, &key).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = header(&res, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        header(&res, "x-ratelimit-remaining-requests").as_deref(),
        Some("0")
    );
    assert_eq!(
        header(&res, "x-ratelimit-limit-requests").as_deref(),
        Some("3")
    );
    let (_, error) = error_of(res).await;
    assert_eq!(error["code"], "rate_limit_exceeded");
    assert_eq!(error["type"], "requests");
    assert!(
        error["message"].as_str().unwrap().contains("RPM"),
        "{error}"
    );
    // Chat is limited by the same counter; other keys are not.
    let chat = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]});
    let res = post(&t.gw, "/v1/chat/completions", Some(&key), chat, &[]).await;
    assert_eq!(res.status(), 429);
    let res = ask(&t.gw, &unlimited).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "x-ratelimit-limit-requests"), None);
    assert_eq!(served(&t.mock), 4);
}

#[tokio::test]
async fn token_limits_count_usage_and_refuse_once_the_window_is_spent() {
    away_from_minute_boundary().await;
    let t = Team::start().await;
    let tpm = new_key(t.store(), "tpm", |k| k.tpm = Some(5)).await;
    let daily = new_key(t.store(), "daily", |k| {
        k.daily_tokens = Some(5);
        k.tpm = Some(1_000_000);
    })
    .await;
    for (key, name, kind) in [(&tpm, "tpm", "TPM"), (&daily, "daily", "TPD")] {
        let res = ask(&t.gw, key).await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            header(&res, "x-ratelimit-limit-tokens").as_deref(),
            Some("5")
        );
        assert_eq!(
            header(&res, "x-ratelimit-remaining-tokens").as_deref(),
            Some("5")
        );
        let used: Value = res.json().await.unwrap();
        let total = used["usage"]["total_tokens"].as_u64().unwrap();
        assert!(total > 5, "one answer spends the window: {total}");
        // The tokens are counted when the response ends, in the background.
        let id = key_id(t.store(), name).await;
        booked(t.store(), &id, 1).await;
        let deadline = Instant::now() + Duration::from_secs(3);
        let res = loop {
            let res = ask(&t.gw, key).await;
            if res.status() != 200 || Instant::now() > deadline {
                break res;
            }
        };
        assert_eq!(res.status(), 429, "{name}");
        assert!(header(&res, "retry-after").is_some());
        assert_eq!(
            header(&res, "x-ratelimit-remaining-tokens").as_deref(),
            Some("0")
        );
        let (_, error) = error_of(res).await;
        assert_eq!(error["type"], "tokens");
        assert!(error["message"].as_str().unwrap().contains(kind), "{error}");
    }
}
