//! The admin API (its token, keys, usage reports), and keys and usage surviving a restart.

use super::*;
use qwen_gateway::auth::keys;

#[tokio::test]
async fn the_admin_api_needs_its_token_and_manages_keys_and_usage() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = team_toml(&[mock.base_url()], &dir.path().join("gw.db"), "");

    // No token configured: /admin does not exist, whatever is sent.
    let off = start_gateway_with_admin(&toml, None).await;
    for (method, path) in [
        ("GET", "/admin/keys"),
        ("POST", "/admin/keys"),
        ("DELETE", "/admin/keys/x"),
        ("GET", "/admin/usage"),
        ("PUT", "/admin/keys"),
    ] {
        let res = client()
            .request(method.parse().unwrap(), off.url(path))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{method} {path}");
    }
    off.stop().await;

    let gw = start_gateway_with_admin(&toml, Some(ADMIN)).await;
    for token in [None, Some("wrong"), Some(&ADMIN[1..])] {
        let mut req = client().get(gw.url("/admin/keys"));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let (status, error) = error_of(req.send().await.unwrap()).await;
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(error["code"], "invalid_admin_token");
    }
    // A team key is not an admin token.
    let team_key = new_key(&gw.store, "member", |_| {}).await;
    let res = client()
        .get(gw.url("/admin/keys"))
        .bearer_auth(&team_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let admin = |method: &str, path: &str| {
        client()
            .request(method.parse().unwrap(), gw.url(path))
            .bearer_auth(ADMIN)
    };
    let res = admin("POST", "/admin/keys")
        .json(
            &json!({"name": "alice", "models": ["qwen3-*"], "regions": ["r0"], "rpm": 60,
            "tpm": 100000, "daily_tokens": 1000000, "expires": "30d"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(header(&res, "cache-control").as_deref(), Some("no-store"));
    let created: Value = res.json().await.unwrap();
    let raw = created["key"].as_str().unwrap().to_owned();
    assert!(raw.starts_with("qgw-") && raw.len() >= 36);
    assert_eq!(created["name"], "alice");
    assert_eq!(created["rpm"], 60);
    assert_eq!(created["status"], "active");
    assert!(created["expires_at"].is_string());
    assert!(created.get("hash").is_none());
    // Refusals with reasons.
    for (body, status) in [
        (json!({"name": "alice"}), 409),
        (json!({"name": "bob", "regions": ["mars"]}), 400),
        (json!({"name": "bob", "rpm": 0}), 400),
        (json!({"name": "bob", "rmp": 5}), 400),
        (json!({"name": "bad name"}), 400),
    ] {
        let res = admin("POST", "/admin/keys")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{body}");
    }
    // The new key works, and its use shows in /admin/usage.
    assert_eq!(ask(&gw, &raw).await.status(), 200);
    let id = created["id"].as_str().unwrap();
    booked(&gw.store, id, 1).await;
    let usage: Value = admin("GET", "/admin/usage?since=2000-01-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = &usage["data"][0];
    assert_eq!(row["key_name"], "alice");
    assert_eq!(row["requests"], 1);
    assert!(row["input_tokens"].as_u64().unwrap() > 0);
    let future: Value = admin("GET", "/admin/usage?since=2999-01-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(future["data"], json!([]));
    let res = admin("GET", "/admin/usage?since=yesterdayish")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    let list: Value = admin("GET", "/admin/keys")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = list.to_string();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert!(!text.contains(&raw) && !text.contains(&keys::hash_key(&raw)));
    assert!(!text.contains("hash"));

    let res = admin("DELETE", "/admin/keys/alice").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let revoked: Value = res.json().await.unwrap();
    assert_eq!(revoked["status"], "revoked");
    // Revoked through this gateway: refused here at once.
    assert_eq!(ask(&gw, &raw).await.status(), 401);
    let res = admin("DELETE", "/admin/keys/nobody").send().await.unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn keys_and_usage_survive_a_restart() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = team_toml(&[mock.base_url()], &dir.path().join("gw.db"), "");
    let gw = start_gateway_with_admin(&toml, Some(ADMIN)).await;
    let created: Value = client()
        .post(gw.url("/admin/keys"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "durable"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let raw = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        assert_eq!(ask(&gw, &raw).await.status(), 200);
    }
    // Stopping waits for the ledger's writes.
    gw.stop().await;
    let gw = start_gateway(&toml).await;
    let rows = booked(&gw.store, &id, 2).await;
    assert!(rows[0].output_tokens > 0);
    assert_eq!(ask(&gw, &raw).await.status(), 200);
    booked(&gw.store, &id, 3).await;
}
