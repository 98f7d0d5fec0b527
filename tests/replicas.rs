//! Two gateway replicas sharing one Redis: what one learns or decides, the other honours —
//! revocations (within a second), response-id affinity, and rate limits. Each replica is the
//! real `qwen-gateway serve` binary, its own process, so nothing but Redis is shared.
//!
//! A throwaway `redis-server` is started on a free loopback port (or the server named by
//! `QWEN_GATEWAY_TEST_REDIS_URL` is used). Without `redis-server` on PATH the test is skipped
//! loudly, unless `QWEN_GATEWAY_TEST_REDIS=required` (CI) makes that a failure.

mod common;

use common::*;
use mock_model_studio::MockServer;
use serde_json::{Value, json};
use std::io::{ErrorKind, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MODEL: &str = "qwen3-max-2026-01-23";
const ADMIN: &str = "replica-admin-token-7c1d0e9b";
const BIN: &str = env!("CARGO_BIN_EXE_qwen-gateway");

/// One replica: `qwen-gateway serve --config FILE` as a child process, killed on drop.
struct Replica {
    child: Child,
    addr: String,
    /// Kept so the thread reading the child's stderr keeps draining it.
    _logs: std::sync::mpsc::Receiver<String>,
}

impl Replica {
    fn start(config: &Path) -> Replica {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--config"])
            .arg(config)
            .env_remove("QWEN_GATEWAY_CONFIG")
            .env_remove("RUST_LOG")
            .env("TEST_KEY_R0", UPSTREAM_KEY)
            .env("TEST_KEY_R1", UPSTREAM_KEY)
            .env("QWEN_GATEWAY_ADMIN_TOKEN", ADMIN)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        let (child, addr, logs) = spawn_logged(command);
        Replica {
            child,
            addr,
            _logs: logs,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Straight to stderr, past the test harness's capture: these lines are the test's report.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A spawned `redis-server`, killed and reaped on drop (failing tests included).
struct RedisServer(Child);

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn answers_ping(port: u16) -> bool {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(b"PING\r\n").await.ok()?;
        let mut reply = [0u8; 16];
        let n = s.read(&mut reply).await.ok()?;
        Some(n > 0 && reply[0] == b'+')
    };
    tokio::time::timeout(Duration::from_secs(1), exchange)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// The Redis URL to use and the server to keep alive, or `None` (after a loud note) when
/// there is none and none is required.
async fn redis() -> Option<(String, Option<RedisServer>)> {
    if let Ok(url) = std::env::var("QWEN_GATEWAY_TEST_REDIS_URL")
        && !url.is_empty()
    {
        return Some((url, None));
    }
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut server = match child {
            Ok(child) => RedisServer(child),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let required =
                    std::env::var("QWEN_GATEWAY_TEST_REDIS").is_ok_and(|v| v == "required");
                assert!(
                    !required,
                    "QWEN_GATEWAY_TEST_REDIS=required but `redis-server` is not on PATH \
                     (apt-get install redis-server, or set QWEN_GATEWAY_TEST_REDIS_URL)"
                );
                say(
                    "\n*** SKIPPED replica test: `redis-server` is not on PATH. Install it or set \
                     QWEN_GATEWAY_TEST_REDIS_URL; QWEN_GATEWAY_TEST_REDIS=required fails instead. ***\n",
                );
                return None;
            }
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        for _ in 0..100 {
            if !matches!(server.0.try_wait(), Ok(None)) {
                break;
            }
            if answers_ping(port).await {
                return Some((format!("redis://127.0.0.1:{port}"), Some(server)));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("redis-server did not answer PING on any of 5 ports");
}

async fn post(gw: &Replica, key: &str, body: Value) -> reqwest::Response {
    client()
        .post(gw.url("/v1/responses"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("replica answers")
}

async fn ask(gw: &Replica, key: &str) -> reqwest::Response {
    post(gw, key, json!({"model": MODEL, "input": "hi"})).await
}

fn served(mock: &MockServer) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.path == "/responses")
        .count()
}

async fn create_key(gw: &Replica, body: Value) -> String {
    let res = client()
        .post(gw.url("/admin/keys"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    created["key"].as_str().unwrap().to_owned()
}

/// Fixed one-minute windows: start the rate-limit check well inside one.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_revocations_affinity_and_rate_limits() {
    let Some((url, _server)) = redis().await else {
        return;
    };
    let r0 = start_mock().await;
    let r1 = start_mock().await;
    let toml = config_toml(
        &[r0.base_url(), r1.base_url()],
        "[auth]\nmode = \"keys\"\n[server]\nlisten = \"127.0.0.1:0\"\n",
    )
    .replace("url = \"memory\"", &format!("url = \"{url}\""));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("replica.toml");
    std::fs::write(&config, toml).unwrap();
    let a = Replica::start(&config);
    let b = Replica::start(&config);
    say(&format!(
        "replicas: A (pid {}) on {}, B (pid {}) on {}, store {url}, regions r0 (preferred) and r1",
        a.child.id(),
        a.addr,
        b.child.id(),
        b.addr
    ));

    // 1. A key revoked through A's admin API is refused by B within a second.
    let key = create_key(&a, json!({"name": "revoked-on-a"})).await;
    assert_eq!(ask(&b, &key).await.status(), 200, "B knows A's new key");
    let revoked = Instant::now();
    let res = client()
        .delete(a.url("/admin/keys/revoked-on-a"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let committed = revoked.elapsed();
    assert_eq!(ask(&a, &key).await.status(), 401, "A refuses at once");
    let mut last_accepted = Duration::ZERO;
    let refused = loop {
        let sent = Instant::now();
        if ask(&b, &key).await.status() == 401 {
            break sent.duration_since(revoked);
        }
        last_accepted = sent.duration_since(revoked);
        assert!(
            revoked.elapsed() < Duration::from_secs(2),
            "B still accepts"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // Nothing accepted later than a second after the revocation was written (the DELETE's
    // answer), and refused soon after that.
    assert!(
        last_accepted <= committed + Duration::from_secs(1)
            && refused <= committed + Duration::from_millis(1100),
        "last accepted {last_accepted:?}, first refused {refused:?}"
    );
    say(&format!(
        "ok revocation: revoked via A's /admin; A refused at once; B last accepted the key {} ms \
         after the revocation was sent, refused it from {} ms",
        last_accepted.as_millis(),
        refused.as_millis()
    ));

    // 2. A response id learnt by A routes B's follow-up to the region that holds it.
    let key = create_key(&a, json!({"name": "conversation"})).await;
    r0.set_default_header("x-mock-status", "503");
    let res = ask(&a, &key).await;
    assert_eq!(res.status(), 200, "A fails over to r1");
    let first: Value = res.json().await.unwrap();
    let id = first["id"].as_str().unwrap().to_owned();
    assert_eq!(served(&r1), 1);
    r0.clear_default_headers();
    r0.clear();
    let res = post(
        &b,
        &key,
        json!({"model": MODEL, "input": "and then?", "previous_response_id": id}),
    )
    .await;
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    assert_eq!(served(&r0), 0, "the healed, preferred r0 was not asked");
    let follow_up = r1.requests().last().cloned().unwrap();
    assert_eq!(follow_up.body.unwrap()["previous_response_id"], json!(id));
    say(&format!(
        "ok affinity: {id} created on r1 via A (r0 503), r0 healed, follow-up via B went to r1"
    ));

    // 3. Rate limits are counted once for both replicas.
    away_from_minute_boundary().await;
    let key = create_key(&b, json!({"name": "rpm3", "rpm": 3})).await;
    let mut seen = Vec::new();
    for (i, replica) in [&a, &b, &a, &b, &a].into_iter().enumerate() {
        let res = ask(replica, &key).await;
        let remaining = res
            .headers()
            .get("x-ratelimit-remaining-requests")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned();
        seen.push(format!(
            "{}:{}(remaining {remaining})",
            if i % 2 == 0 { "A" } else { "B" },
            res.status().as_u16()
        ));
        let expected = if i < 3 { 200 } else { 429 };
        assert_eq!(res.status(), expected, "request {} ({seen:?})", i + 1);
    }
    say(&format!(
        "ok shared rate limit (rpm 3): {}",
        seen.join(", ")
    ));
    drop((a, b));
}

/// Signs in to a replica's dashboard: the session cookie pair and the page's CSRF token.
async fn dashboard_session(gw: &Replica) -> (String, String) {
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let res = c
        .post(gw.url("/admin/login"))
        .form(&[("token", ADMIN)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "signed in");
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = c
        .get(gw.url("/admin/"))
        .header("cookie", &cookie)
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
    (cookie, page[start..start + 64].to_owned())
}

/// The dashboard shows the same data on both replicas: a key created through A's page
/// (cookie and CSRF token) is listed by B's, works through B, and the usage B booked is in
/// the CSV of both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_same_data_on_both_replicas() {
    let Some((url, _server)) = redis().await else {
        return;
    };
    let mock = start_mock().await;
    let toml = config_toml(
        &[mock.base_url()],
        "[auth]\nmode = \"keys\"\n[server]\nlisten = \"127.0.0.1:0\"\n",
    )
    .replace("url = \"memory\"", &format!("url = \"{url}\""));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dashboard.toml");
    std::fs::write(&config, toml).unwrap();
    let a = Replica::start(&config);
    let b = Replica::start(&config);
    let (cookie_a, csrf_a) = dashboard_session(&a).await;
    let (cookie_b, _) = dashboard_session(&b).await;
    let name = format!("dash-shared-{}", std::process::id());

    let res = client()
        .post(a.url("/admin/keys"))
        .header("cookie", &cookie_a)
        .header("x-csrf-token", &csrf_a)
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "created through A's page");
    let key = res.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let listed: Value = client()
        .get(b.url(&format!("/admin/keys/{name}")))
        .header("cookie", &cookie_b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["name"], name, "B's page sees A's key: {listed}");
    assert_eq!(ask(&b, &key).await.status(), 200, "the key works through B");

    // Usage is booked after the answer: wait (bounded) until both CSVs show the row.
    let csv_of = |gw: &Replica, cookie: &str| {
        let (url, cookie) = (gw.url("/admin/usage.csv"), cookie.to_owned());
        async move {
            client()
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let row = loop {
        let csv = csv_of(&b, &cookie_b).await;
        if let Some(row) = csv.lines().find(|l| l.contains(&name)) {
            break row.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "B's CSV never showed the key: {csv}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(row.contains(MODEL), "{row}");
    let csv_a = csv_of(&a, &cookie_a).await;
    assert!(
        csv_a.lines().any(|l| l == row),
        "A's CSV has B's row {row:?}: {csv_a}"
    );
    say(&format!(
        "ok dashboard: key created on A, used on B, same CSV row on both: {row}"
    ));
}
