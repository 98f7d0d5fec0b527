//! The `/admin/` dashboard over HTTP on loopback: off without an admin token, security
//! headers, sign-in (wrong tokens refused and throttled, the cookie's attributes), the
//! session cookie on the JSON API with and without its CSRF token, tampered, expired and
//! signed-out sessions, and the CSV download's formula escaping.

mod common;

use common::*;
use qwen_gateway::store::{KeyRecord, UsageDelta};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

const ADMIN: &str = "admin-token-for-the-dashboard-tests-51f3";

async fn dashboard_gateway(extra: &str, admin: Option<&str>) -> Gateway {
    let toml = config_toml(&["http://127.0.0.1:9".to_owned()], extra);
    start_gateway_with_admin(&toml, admin).await
}

/// No redirects followed, connections from `ip`.
fn browser(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(IpAddr::V4(Ipv4Addr::from(ip)))
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn sign_in(c: &reqwest::Client, gw: &Gateway, token: &str) -> reqwest::Response {
    c.post(gw.url("/admin/login"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

/// Signs in; the cookie pair (`name=value`) and the whole `Set-Cookie`.
async fn session(c: &reqwest::Client, gw: &Gateway) -> (String, String) {
    let res = sign_in(c, gw, ADMIN).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/");
    let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    (set.split(';').next().unwrap().to_owned(), set)
}

/// The CSRF token in the signed-in page.
async fn csrf(c: &reqwest::Client, gw: &Gateway, cookie: &str) -> String {
    let page = c
        .get(gw.url("/admin/"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = page
        .find("name=\"csrf-token\" content=\"")
        .expect("csrf meta")
        + 27;
    page[start..start + 64].to_owned()
}

#[tokio::test]
async fn the_dashboard_is_404_without_an_admin_token() {
    let gw = dashboard_gateway("", None).await;
    let c = browser([127, 0, 0, 1]);
    for path in [
        "/admin/",
        "/admin/assets/app.js",
        "/admin/status",
        "/admin/usage.csv",
    ] {
        let res = c.get(gw.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    assert_eq!(sign_in(&c, &gw, "x").await.status(), 404);
}

#[tokio::test]
async fn pages_and_assets_carry_the_security_headers() {
    let gw = dashboard_gateway("", Some(ADMIN)).await;
    let c = browser([127, 0, 0, 1]);
    for (path, kind) in [
        ("/admin/", "text/html"),
        ("/admin/assets/app.js", "text/javascript"),
        ("/admin/assets/app.css", "text/css"),
    ] {
        let res = c.get(gw.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let h = res.headers();
        assert!(h["content-type"].to_str().unwrap().starts_with(kind));
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["cache-control"], "no-store");
    }
    let page = c.get(gw.url("/admin/")).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("action=\"/admin/login\""), "the sign-in form");
    assert!(!html.contains("<script>") && !html.contains("style="));
}

#[tokio::test]
async fn sign_in_sets_a_strict_cookie_and_wrong_tokens_are_throttled() {
    let gw = dashboard_gateway("", Some(ADMIN)).await;
    let c = browser([127, 0, 0, 3]);
    let (_, set) = session(&c, &gw).await;
    assert!(set.starts_with("qg_admin_session="));
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
    assert!(set.contains("Max-Age=43200") && set.contains("Path=/admin"));
    assert!(!set.contains("Secure"));
    assert!(!set.contains(ADMIN));
    for n in 1..=10 {
        let res = sign_in(&c, &gw, "wrong").await;
        assert_eq!(res.status(), 401, "attempt {n}");
        assert!(res.headers().get("set-cookie").is_none());
        let body = res.text().await.unwrap();
        assert!(body.contains("not the admin token") && !body.contains("wrong\""));
    }
    let res = sign_in(&c, &gw, ADMIN).await;
    assert_eq!(res.status(), 429, "throttled, right token or not");
    assert!(res.headers().contains_key("retry-after"));
    // The bearer API from that address is throttled too: one count.
    let res = c
        .get(gw.url("/admin/keys"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    // A sign-in posted by another site's page.
    let other = browser([127, 0, 0, 4]);
    let res = other
        .post(gw.url("/admin/login"))
        .header("origin", "http://evil.example")
        .form(&[("token", ADMIN)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn secure_cookies_when_configured() {
    let gw = dashboard_gateway("[admin]\nsecure_cookies = true\n", Some(ADMIN)).await;
    let (_, set) = session(&browser([127, 0, 0, 1]), &gw).await;
    assert!(set.contains("; Secure"), "{set}");
}

#[tokio::test]
async fn the_session_cookie_works_on_the_api_with_its_csrf_token() {
    let gw = dashboard_gateway("", Some(ADMIN)).await;
    let c = browser([127, 0, 0, 5]);
    let (cookie, _) = session(&c, &gw).await;
    let token = csrf(&c, &gw, &cookie).await;
    // Reading needs no CSRF token.
    let res = c
        .get(gw.url("/admin/keys"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = c
        .get(gw.url("/admin/status"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let status: serde_json::Value = res.json().await.unwrap();
    assert_eq!(status["regions"][0]["name"], "r0");
    let body = serde_json::json!({"name": "dash-key"});
    // Without (or with a wrong) CSRF token: 403, nothing created.
    for wrong in [None, Some("0".repeat(64))] {
        let mut req = c
            .post(gw.url("/admin/keys"))
            .header("cookie", &cookie)
            .json(&body);
        if let Some(wrong) = wrong {
            req = req.header("x-csrf-token", wrong);
        }
        let res = req.send().await.unwrap();
        let err = assert_openai_error(res, 403).await;
        assert_eq!(err["error"]["code"], "csrf_token_invalid");
    }
    assert!(gw.store.list_keys().await.unwrap().is_empty());
    let res = c
        .post(gw.url("/admin/keys"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created: serde_json::Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    let res = c
        .get(gw.url(&format!("/admin/keys/{id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = c
        .delete(gw.url(&format!("/admin/keys/{id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "DELETE needs the CSRF token too");
    let res = c
        .delete(gw.url(&format!("/admin/keys/{id}")))
        .header("cookie", &cookie)
        .header("x-csrf-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The bearer token works as before, with no CSRF token.
    let res = c
        .post(gw.url("/admin/keys"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"name": "cli-key"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn tampered_expired_and_signed_out_sessions_are_refused() {
    let gw = dashboard_gateway("[admin]\nsession_ttl = \"2s\"\n", Some(ADMIN)).await;
    let c = browser([127, 0, 0, 6]);
    let (cookie, set) = session(&c, &gw).await;
    assert!(set.contains("Max-Age=2"));
    let get = |cookie: String| {
        let c = c.clone();
        let url = gw.url("/admin/keys");
        async move { c.get(url).header("cookie", cookie).send().await.unwrap() }
    };
    assert_eq!(get(cookie.clone()).await.status(), 200);
    // A later expiry with the old signature.
    let (name, value) = cookie.split_once('=').unwrap();
    let parts: Vec<&str> = value.split('.').collect();
    let tampered = format!("{name}={}.{}.{}", parts[0], "99999999999", parts[2]);
    let err = assert_openai_error(get(tampered).await, 401).await;
    assert_eq!(err["error"]["code"], "invalid_admin_session");
    // The signed-in page is the sign-in form for a bad cookie.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let err = assert_openai_error(get(cookie.clone()).await, 401).await;
    assert_eq!(err["error"]["code"], "invalid_admin_session", "expired");
    // Sign-out: the cookie cleared and refused from now on.
    let (cookie, _) = session(&c, &gw).await;
    let token = csrf(&c, &gw, &cookie).await;
    let res = c
        .post(gw.url("/admin/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "sign-out needs the CSRF token");
    let res = c
        .post(gw.url("/admin/logout"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(get(cookie).await.status(), 401);
    // Refused sessions are not counted as failed token attempts.
    for _ in 0..12 {
        assert_eq!(get("qg_admin_session=x.1.y".into()).await.status(), 401);
    }
    assert_eq!(sign_in(&c, &gw, ADMIN).await.status(), 303);
}

#[tokio::test]
async fn the_csv_download_defuses_formulas() {
    let gw = dashboard_gateway("", Some(ADMIN)).await;
    let record = KeyRecord {
        id: "key_csv1".into(),
        name: "=cmd".into(),
        hash: "0".repeat(64),
        prefix: "qgw-x".into(),
        models: vec![],
        regions: vec![],
        rpm: None,
        tpm: None,
        daily_tokens: None,
        created_at: 0,
        expires_at: None,
        revoked_at: None,
    };
    gw.store.create_keys(&[record]).await.unwrap();
    for (day, model) in [("2026-03-01", "qwen-plus, \"x\""), ("2026-03-05", "late")] {
        let delta = UsageDelta {
            day: day.into(),
            key_id: "key_csv1".into(),
            model: model.into(),
            region: "r0".into(),
            requests: 2,
            input_tokens: 10,
            output_tokens: 5,
            ..Default::default()
        };
        gw.store.record_usage(&delta).await.unwrap();
    }
    let c = browser([127, 0, 0, 7]);
    let (cookie, _) = session(&c, &gw).await;
    let res = c
        .get(gw.url("/admin/usage.csv?from=2026-03-01&to=2026-03-02"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let text = res.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("day,key_id,key_name,model,region,requests"));
    assert_eq!(
        lines[1],
        "2026-03-01,key_csv1,'=cmd,\"qwen-plus, \"\"x\"\"\",r0,2,0,10,5,0,0,0,0"
    );
}
