//! Tenant isolation in team mode: a response belongs to the key that created it. Another
//! key can neither read, delete, list the items of nor continue it (404, as if it did not
//! exist, and nothing goes upstream); the admin API still reaches every tenant's responses.
//! And a key limited to some models cannot dodge the limit by naming no model.

mod common;

use common::*;
use mock_model_studio::MockServer;
use qwen_gateway::auth::admin;
use qwen_gateway::store::{Affinity, Store};
use serde_json::{Value, json};
use std::time::Duration;

const MODEL: &str = "qwen3-max-2026-01-23";
const ADMIN: &str = "admin-token-for-the-tenant-tests-9c3b";

struct Team {
    gw: Gateway,
    mock: MockServer,
    _dir: tempfile::TempDir,
}

impl Team {
    /// One mock region; team keys on; the admin API on; a SQLite store.
    async fn start() -> Team {
        let mock = start_mock().await;
        let dir = tempfile::tempdir().unwrap();
        let store = format!("url = \"sqlite://{}\"", dir.path().join("gw.db").display());
        let toml = config_toml(&[mock.base_url()], "[auth]\nmode = \"keys\"\n")
            .replace("url = \"memory\"", &store);
        let gw = start_gateway_with_admin(&toml, Some(ADMIN)).await;
        Team {
            gw,
            mock,
            _dir: dir,
        }
    }

    /// A new key: (raw key, key id).
    async fn key(&self, name: &str, models: &[&str]) -> (String, String) {
        key_in(&self.gw.store, name, models).await
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        bearer: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = client()
            .request(method, self.gw.url(path))
            .bearer_auth(bearer);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    fn upstream_requests(&self) -> usize {
        self.mock.requests().len()
    }
}

async fn key_in(store: &Store, name: &str, models: &[&str]) -> (String, String) {
    let spec = admin::NewKey {
        name: name.into(),
        models: models.iter().map(|m| m.to_string()).collect(),
        ..Default::default()
    };
    let created = admin::create_key(store, spec, &[]).await.unwrap();
    (created.key.expose().to_owned(), created.record.id)
}

fn assert_not_found(what: &str, (status, body): &(u16, Value)) {
    assert_eq!(*status, 404, "{what}: {body}");
    assert_eq!(body["error"]["code"], "not_found", "{what}: {body}");
}

#[tokio::test]
async fn another_keys_responses_do_not_exist_for_it_but_do_for_the_owner_and_the_admin() {
    let t = Team::start().await;
    let (a, a_id) = t.key("tenant-a", &[]).await;
    let (b, _) = t.key("tenant-b", &[]).await;
    let (status, created) = t
        .send(
            "POST",
            "/v1/responses",
            &a,
            Some(json!({"model": MODEL, "input": "secret plans"})),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    // A streamed response is owned from its `response.created` event on.
    let streamed = client()
        .post(t.gw.url("/v1/responses"))
        .bearer_auth(&a)
        .json(&json!({"model": MODEL, "input": "more plans", "stream": true}))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let stream_id = sse_json(&streamed)
        .iter()
        .find_map(|e| e["response"]["id"].as_str().map(str::to_owned))
        .unwrap();
    let home = t.gw.store.get_affinity(&id).await.unwrap().unwrap();
    assert_eq!(home.owner.as_deref(), Some(a_id.as_str()));

    let before = t.upstream_requests();
    for target in [&id, &stream_id] {
        assert_not_found(
            "B reads",
            &t.send("GET", &format!("/v1/responses/{target}"), &b, None)
                .await,
        );
        assert_not_found(
            "B lists items",
            &t.send(
                "GET",
                &format!("/v1/responses/{target}/input_items"),
                &b,
                None,
            )
            .await,
        );
        assert_not_found(
            "B deletes",
            &t.send("DELETE", &format!("/v1/responses/{target}"), &b, None)
                .await,
        );
        let continued = t
            .send(
                "POST",
                "/v1/responses",
                &b,
                Some(json!({"model": MODEL, "input": "and?", "previous_response_id": target})),
            )
            .await;
        assert_not_found("B continues", &continued);
        assert_eq!(continued.1["error"]["param"], "previous_response_id");
    }
    // An id nobody created through this gateway is nobody's.
    assert_not_found(
        "unknown id",
        &t.send("GET", "/v1/responses/resp_never_seen", &a, None)
            .await,
    );
    assert_eq!(
        t.upstream_requests(),
        before,
        "a refused request went upstream"
    );

    // The owner still can.
    assert_eq!(
        t.send("GET", &format!("/v1/responses/{id}"), &a, None)
            .await
            .0,
        200
    );
    assert_eq!(
        t.send("GET", &format!("/v1/responses/{id}/input_items"), &a, None)
            .await
            .0,
        200
    );
    let (status, next) = t
        .send(
            "POST",
            "/v1/responses",
            &a,
            Some(json!({"model": MODEL, "input": "and?", "previous_response_id": id})),
        )
        .await;
    assert_eq!(status, 200, "{next}");
    // The admin sees every tenant's responses.
    let (status, seen) = t
        .send("GET", &format!("/admin/responses/{stream_id}"), ADMIN, None)
        .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["id"], stream_id.as_str());
    assert_eq!(
        t.send(
            "GET",
            &format!("/admin/responses/{id}/input_items"),
            ADMIN,
            None
        )
        .await
        .0,
        200
    );
    // A team key is not an admin token.
    assert_eq!(
        t.send("GET", &format!("/admin/responses/{id}"), &a, None)
            .await
            .0,
        401
    );
    assert_eq!(
        t.send("DELETE", &format!("/v1/responses/{id}"), &a, None)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn ids_without_an_owner_are_no_team_keys() {
    let t = Team::start().await;
    let (a, _) = t.key("tenant-a", &[]).await;
    // As stored before owners were recorded, or while auth.mode was "none".
    t.gw.store
        .put_affinity(
            "resp_legacy",
            &Affinity::new("r0", None),
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let before = t.upstream_requests();
    assert_not_found(
        "legacy id",
        &t.send("GET", "/v1/responses/resp_legacy", &a, None).await,
    );
    assert_eq!(t.upstream_requests(), before);
    // The admin still reaches it (the mock has no such response: its own 404 comes back).
    let (status, body) = t
        .send("GET", "/admin/responses/resp_legacy", ADMIN, None)
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(t.upstream_requests(), before + 1);
}

#[tokio::test]
async fn a_model_restricted_key_must_name_a_model() {
    let t = Team::start().await;
    let (limited, _) = t.key("limited", &["qwen3-*"]).await;
    let (open, _) = t.key("open", &[]).await;
    let before = t.upstream_requests();
    for (path, body) in [
        ("/v1/responses", json!({"input": "hi"})),
        ("/v1/responses", json!({"model": null, "input": "hi"})),
        (
            "/v1/responses",
            json!({"prompt": {"id": "pmpt_123", "version": "1"}}),
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": null, "messages": [{"role": "user", "content": "hi"}]}),
        ),
    ] {
        let (status, err) = t.send("POST", path, &limited, Some(body.clone())).await;
        assert_eq!(status, 400, "{path} {body}: {err}");
        assert_eq!(err["error"]["param"], "model", "{err}");
        assert_eq!(err["error"]["code"], "missing_required_parameter", "{err}");
    }
    assert_eq!(
        t.upstream_requests(),
        before,
        "a model-less request was forwarded"
    );
    // A key without model limits is not refused by the gateway (the upstream judges).
    let (status, _) = t
        .send("POST", "/v1/responses", &open, Some(json!({"input": "hi"})))
        .await;
    assert_ne!(status, 401);
    assert_eq!(t.upstream_requests(), before + 1);
}

/// Every path under `/v1` and `/admin` sits behind its group's gate: without credentials a
/// client learns nothing about which paths exist (401, not 404); only the dashboard's public
/// pages answer without a session; a lookalike prefix is no part of either group. Metrics
/// label each request with the route it matched, and an unmatched one as `other`.
#[tokio::test]
async fn every_path_under_v1_and_admin_is_behind_its_groups_gate() {
    let t = Team::start().await;
    let (key, _) = t.key("gate-probe", &[]).await;
    let code = |(status, body): (u16, Value)| (status, body["error"]["code"].clone());
    for path in [
        "/v1",
        "/v1/",
        "/v1/nope",
        "/v1/responses/x/y/z",
        "/v1/models",
    ] {
        let (status, body) = t.send("GET", path, "", None).await;
        assert_eq!(status, 401, "{path} without a key: {body}");
    }
    for path in ["/v1/nope", "/v1/", "/v1/responses/x/y/z"] {
        let (status, code) = code(t.send("GET", path, &key, None).await);
        assert_eq!(
            (status, code.as_str()),
            (404, Some("not_found")),
            "{path} with a key"
        );
    }
    for path in ["/v10", "/administrator", "/v1x/responses", "/nope"] {
        let (status, code) = code(t.send("GET", path, &key, None).await);
        assert_eq!((status, code.as_str()), (404, Some("not_found")), "{path}");
    }
    // The admin API: 401 without the token, whatever the path.
    for (method, path) in [
        ("GET", "/admin/keys"),
        ("GET", "/admin/nope"),
        ("POST", "/admin/logout"),
        ("GET", "/admin/responses/resp_1"),
    ] {
        let (status, body) = t.send(method, path, "", None).await;
        assert_eq!(
            status, 401,
            "{method} {path} without the admin token: {body}"
        );
    }
    // A team key is no admin token.
    let (status, _) = t.send("GET", "/admin/keys", &key, None).await;
    assert_eq!(status, 401);
    let (status, code) = code(t.send("GET", "/admin/nope", ADMIN, None).await);
    assert_eq!((status, code.as_str()), (404, Some("not_found")));
    // The dashboard's page needs no session.
    let page = client().get(t.gw.url("/admin/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<html"));
    let metrics = metrics_text(&t.gw).await;
    for label in [
        "endpoint=\"/v1/{*rest}\"",
        "endpoint=\"/admin/{*rest}\"",
        "endpoint=\"/admin/keys\"",
        "endpoint=\"other\"",
    ] {
        assert!(metrics.contains(label), "{label} in\n{metrics}");
    }
    assert!(!metrics.contains("/v1/nope") && !metrics.contains("administrator"));
    assert_eq!(t.upstream_requests(), 0);
}
