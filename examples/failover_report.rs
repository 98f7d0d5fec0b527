//! Measures what a client sees when a region fails, and how long until the gateway uses the
//! region again once it heals. Two mock regions (`r0` preferred, `r1` healthy) and the gateway
//! run in-process on loopback. Prints a markdown table.
//!
//! `cargo run --release --example failover_report`

use mock_model_studio::{MockConfig, MockServer};
use qwen_gateway::config::Settings;
use qwen_gateway::server::{self, AppState};
use qwen_gateway::store::Store;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const MODEL: &str = "qwen3-max-2026-01-23";
const COOLDOWN: Duration = Duration::from_secs(3);

struct Setup {
    gw: String,
    r0: MockServer,
    r1: MockServer,
    _dir: tempfile::TempDir,
}

async fn setup(r0: MockServer, extra_store: &str) -> Setup {
    let r1 = MockServer::start(MockConfig::default())
        .await
        .expect("mock");
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[upstream]\nregions = [\"r0\", \"r1\"]\nconnect_timeout = \"1s\"\nfirst_byte_timeout = \"1s\"\n\
         stream_idle_timeout = \"5s\"\nbreaker_threshold = 3\nbreaker_cooldown = \"{}s\"\n\
         rate_limit_cooldown = \"2s\"\n\
         forward_headers = [\"content-type\", \"accept\", \"x-mock-*\"]\n[regions.r0]\nbase_url = \"{}\"\napi_key_env = [\"K_BAD\", \"K0\"]\n\
         [regions.r1]\nbase_url = \"{}\"\napi_key_env = [\"K1\"]\n[store]\nurl = \"memory\"\n{extra_store}\n",
        COOLDOWN.as_secs(),
        r0.base_url(),
        r1.base_url()
    );
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, toml).expect("config");
    let settings = Settings::load_with_env(Some(&path), Some(HashMap::new())).expect("settings");
    let regions = settings
        .resolve_regions(|var| Some(if var == "K_BAD" { "sk-bad" } else { "sk-good" }.into()))
        .expect("regions")
        .usable;
    let store = Store::open("memory").await.expect("store");
    let state = AppState::new(settings, regions, store).expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let gw = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(server::serve(listener, state, std::future::pending()));
    Setup {
        gw,
        r0,
        r1,
        _dir: dir,
    }
}

fn count(mock: &MockServer) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.path == "/responses")
        .count()
}

/// One request: status, what the body says in a few words, latency.
async fn ask(c: &reqwest::Client, gw: &str, body: Value) -> (u16, String, Duration) {
    let started = Instant::now();
    let Ok(res) = c
        .post(format!("{gw}/v1/responses"))
        .json(&body)
        .send()
        .await
    else {
        return (0, "transport error".into(), started.elapsed());
    };
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    let took = started.elapsed();
    let summary = if text.contains("event: error") || text.contains("\"type\":\"error\"") {
        "stream ended by an error event".to_owned()
    } else if status == 200 {
        "complete answer".to_owned()
    } else {
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        let code = v["error"]["code"]
            .as_str()
            .or(v["code"].as_str())
            .unwrap_or("?");
        format!("error `{code}`")
    };
    (status, summary, took)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Time from healing until a request is served by r0 again (polling every 50 ms, ≤ 20 s).
async fn time_to_recover(c: &reqwest::Client, s: &Setup) -> String {
    let healed = Instant::now();
    while healed.elapsed() < Duration::from_secs(20) {
        let before = count(&s.r0);
        let (status, _, _) = ask(c, &s.gw, json!({"model": MODEL, "input": "hi"})).await;
        if status == 200
            && count(&s.r0) > before
            && s.r0.requests().last().is_some_and(|r| r.status == 200)
        {
            return ms(healed.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    "> 20 s".into()
}

struct Row {
    fault: &'static str,
    first: (u16, String, Duration),
    steady: Duration,
    recover: String,
}

async fn scenario(
    fault: &'static str,
    r0: MockServer,
    inject: impl Fn(&MockServer),
    heal: impl Fn(&MockServer),
    body: Value,
) -> Row {
    let s = setup(r0, "").await;
    let c = reqwest::Client::new();
    // Warm both regions' pools so the figures are about the fault, not the first connect.
    ask(&c, &s.gw, json!({"model": MODEL, "input": "warm"})).await;
    inject(&s.r0);
    let first = ask(&c, &s.gw, body.clone()).await;
    let mut steady = Vec::new();
    for _ in 0..15 {
        steady.push(ask(&c, &s.gw, body.clone()).await.2);
    }
    heal(&s.r0);
    let recover = time_to_recover(&c, &s).await;
    let _ = count(&s.r1);
    Row {
        fault,
        first,
        steady: median(steady),
        recover,
    }
}

fn header(name: &'static str, value: &'static str) -> impl Fn(&MockServer) {
    move |m: &MockServer| m.set_default_header(name, value)
}

#[tokio::main]
async fn main() {
    let plain = json!({"model": MODEL, "input": "hi"});
    let streamed = json!({"model": MODEL, "input": "hi", "stream": true});
    let fresh = || async {
        MockServer::start(MockConfig::default())
            .await
            .expect("mock")
    };
    let heal = |m: &MockServer| m.clear_default_headers();
    let mut rows = vec![
        scenario(
            "r0 answers 503",
            fresh().await,
            header("x-mock-status", "503"),
            heal,
            plain.clone(),
        )
        .await,
        scenario(
            "r0 hangs before its head (> first_byte_timeout 1 s)",
            fresh().await,
            header("x-mock-header-delay-ms", "60000"),
            heal,
            plain.clone(),
        )
        .await,
        scenario(
            "r0 resets the connection before the head",
            fresh().await,
            header("x-mock-drop-after", "0"),
            heal,
            streamed.clone(),
        )
        .await,
        scenario(
            "r0 answers 429, Retry-After: 2",
            fresh().await,
            |m: &MockServer| {
                m.set_default_header("x-mock-status", "429");
                m.set_default_header("x-mock-retry-after", "2");
            },
            heal,
            plain.clone(),
        )
        .await,
        scenario(
            "r0 reports a rate limit inside a 200 stream",
            fresh().await,
            header("x-mock-fail", "rate_limit"),
            heal,
            streamed.clone(),
        )
        .await,
        scenario(
            "r0 breaks a stream after output began",
            fresh().await,
            |m: &MockServer| {
                m.set_default_header("x-mock-tokens", "20");
                m.set_default_header("x-mock-drop-after", "8");
            },
            heal,
            streamed.clone(),
        )
        .await,
    ];
    // One of r0's two keys is rejected (401): the mock accepts only the good one.
    let keyed = MockServer::start(MockConfig {
        keys: vec!["sk-good".into()],
        ..MockConfig::default()
    })
    .await
    .expect("mock");
    rows.push(
        scenario(
            "r0's first key answers 401",
            keyed,
            |_| {},
            |_| {},
            plain.clone(),
        )
        .await,
    );

    // Refused connections: r0 is shut down, then restarted on the same port.
    let r0 = fresh().await;
    let addr = r0.addr();
    let s = setup(r0, "").await;
    let c = reqwest::Client::new();
    ask(&c, &s.gw, plain.clone()).await;
    let Setup { gw, r0, r1, _dir } = s;
    r0.shutdown().await;
    let first = ask(&c, &gw, plain.clone()).await;
    let mut steady = Vec::new();
    for _ in 0..15 {
        steady.push(ask(&c, &gw, plain.clone()).await.2);
    }
    let listener = tokio::net::TcpListener::bind(addr).await.expect("rebind");
    let r0 = MockServer::start_on(listener, MockConfig::default())
        .await
        .expect("mock");
    let s = Setup { gw, r0, r1, _dir };
    let recover = time_to_recover(&c, &s).await;
    rows.push(Row {
        fault: "r0 refuses connections (process down)",
        first,
        steady: median(steady),
        recover,
    });

    println!(
        "Breaker: 3 consecutive failures open it for {} s, then one trial. first_byte_timeout 1 s.\n",
        COOLDOWN.as_secs()
    );
    println!(
        "| fault | first request: client saw | first request latency | median latency while the fault lasts | r0 back in use after healing |"
    );
    println!("|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} {} | {} | {} | {} |",
            r.fault,
            r.first.0,
            r.first.1,
            ms(r.first.2),
            ms(r.steady),
            r.recover
        );
    }

    // Conversations whose home region dies.
    for (label, extra) in [
        ("replay off", ""),
        (
            "replay on (`store.conversations = true`)",
            "conversations = true",
        ),
    ] {
        let s = setup(fresh().await, extra).await;
        let c = reqwest::Client::new();
        let created: Value = c
            .post(format!("{}/v1/responses", s.gw))
            .json(&plain)
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("json");
        let id = created["id"].as_str().unwrap_or_default().to_owned();
        s.r0.set_default_header("x-mock-status", "503");
        let follow = json!({"model": MODEL, "input": "and then?", "previous_response_id": id});
        let (status, summary, took) = ask(&c, &s.gw, follow).await;
        println!(
            "\nHome region r0 down, follow-up with previous_response_id, {label}: {status} {summary} in {}",
            ms(took)
        );
    }
}
