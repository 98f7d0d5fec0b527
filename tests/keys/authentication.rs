//! Who gets in: missing, wrong, expired and revoked keys get a 401; each header form a key may use.

use super::*;
use qwen_gateway::auth::keys;
use qwen_gateway::store::KeyRecord;

#[tokio::test]
async fn missing_unknown_revoked_and_expired_keys_get_401_and_open_paths_stay_open() {
    let t = Team::start().await;
    let good = new_key(t.store(), "good", |_| {}).await;
    let old = keys::generate().unwrap();
    let now = qwen_gateway::calendar::now_secs();
    t.store()
        .create_key(&KeyRecord {
            id: "key_expired".into(),
            name: "old".into(),
            hash: old.hash(),
            prefix: old.display_prefix(),
            models: vec![],
            regions: vec![],
            rpm: None,
            tpm: None,
            daily_tokens: None,
            created_at: now - 100,
            expires_at: Some(now - 10),
            revoked_at: None,
        })
        .await
        .unwrap();
    // The good key with its last character changed (to one it is not: a key ending in `x`
    // once made this "wrong" key the good one, 1 run in 62).
    let last = if good.ends_with('x') { 'y' } else { 'x' };
    let wrong = format!("{}{last}", &good[..good.len() - 1]);
    for (key, says) in [
        (None, "didn't provide an API key"),
        (Some(wrong.as_str()), "Incorrect API key"),
        (Some(old.expose()), "expired"),
    ] {
        for path in ["/v1/responses", "/v1/chat/completions"] {
            let body = json!({"model": MODEL, "input": "hi", "messages": [{"role": "user", "content": "hi"}]});
            let (status, error) = error_of(post(&t.gw, path, key, body, &[]).await).await;
            assert_eq!(status, 401, "{path} {key:?}");
            assert_eq!(error["code"], "invalid_api_key");
            assert_eq!(error["type"], "invalid_request_error");
            assert!(error["message"].as_str().unwrap().contains(says), "{error}");
        }
        let mut req = client().get(t.gw.url("/v1/models"));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        assert_eq!(req.send().await.unwrap().status(), 401);
    }
    assert_eq!(served(&t.mock), 0, "refused requests never go upstream");
    for path in ["/healthz", "/readyz", "/metrics"] {
        let res = client().get(t.gw.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path} needs no key");
    }

    // Revoked where the CLI or another replica would: refused here within a second.
    assert_eq!(ask(&t.gw, &good).await.status(), 200);
    let revoked = Instant::now();
    t.store()
        .revoke_key("good", qwen_gateway::calendar::now_secs())
        .await
        .unwrap();
    let committed = revoked.elapsed();
    let mut last_accepted = Duration::ZERO;
    let refused = loop {
        let sent = Instant::now();
        let res = ask(&t.gw, &good).await;
        if res.status() == 401 {
            let (_, error) = error_of(res).await;
            assert!(error["message"].as_str().unwrap().contains("revoked"));
            break sent.duration_since(revoked);
        }
        last_accepted = sent.duration_since(revoked);
        assert!(revoked.elapsed() < Duration::from_millis(1500));
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // The cache keeps a lookup at most `auth.key_cache_ttl` = 1s: nothing is accepted later
    // than a second after the revocation was written.
    eprintln!("revoked key last accepted after {last_accepted:?}, refused from {refused:?}");
    assert!(
        last_accepted <= committed + Duration::from_secs(1),
        "{last_accepted:?}"
    );
    assert!(
        refused <= committed + Duration::from_millis(1100),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_key_is_accepted_in_each_header_form_and_never_sent_upstream() {
    let t = Team::start().await;
    let key = new_key(t.store(), "forms", |_| {}).await;
    for (name, value) in [
        ("authorization", format!("Bearer {key}")),
        ("authorization", format!("bearer {key}")),
        ("api-key", key.clone()),
        ("x-api-key", key.clone()),
    ] {
        let res = client()
            .post(t.gw.url("/v1/responses"))
            .header(name, value)
            .json(&json!({"model": MODEL, "input": "hi"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{name}");
    }
    let chat = client()
        .post(t.gw.url("/v1/chat/completions"))
        .header("x-api-key", &key)
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 200);
    for r in t.mock.requests() {
        for (name, value) in &r.headers {
            assert!(
                !value.contains(&key),
                "the gateway key went upstream in {name}"
            );
        }
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {UPSTREAM_KEY}").as_str())
        );
    }
}
