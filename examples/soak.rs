//! Soak traffic driver for `scripts/soak.sh`: mixed plain/streaming Responses and Chat
//! requests against a running gateway (in front of the mock), with faults sprinkled in
//! through the mock's `x-mock-*` headers, for a fixed time. Every answer is checked against
//! what that fault must produce; the exit status is non-zero if any was wrong.
//!
//! ```text
//! soak --gateway http://127.0.0.1:PORT --seconds 600 [--concurrency 8]
//! ```
//!
//! The gateway must run with the soak's configuration (see scripts/soak.sh): short timeouts
//! (first byte 3 s, stream idle 3 s, whole exchange 10 s), no breaker, no rate-limit cooldown.

use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MODEL: &str = "qwen3-max-2026-01-23";

#[derive(Clone, Copy, Debug)]
enum Kind {
    Normal,
    Status5xx,
    RateLimited,
    ResetBeforeHead,
    ResetMidStream,
    HangBeforeHead,
    HangMidStream,
    MalformedEvent,
    HtmlError,
    ClientHangsUp,
    Large,
}

/// The mix: mostly normal traffic, a fault in roughly one request of three.
const MIX: &[(Kind, u32)] = &[
    (Kind::Normal, 60),
    (Kind::Large, 4),
    (Kind::Status5xx, 5),
    (Kind::RateLimited, 4),
    (Kind::ResetBeforeHead, 4),
    (Kind::ResetMidStream, 5),
    (Kind::HangBeforeHead, 2),
    (Kind::HangMidStream, 2),
    (Kind::MalformedEvent, 4),
    (Kind::HtmlError, 4),
    (Kind::ClientHangsUp, 6),
];

struct Args {
    gateway: String,
    seconds: u64,
    concurrency: usize,
}

fn args() -> Args {
    let mut a = Args {
        gateway: String::new(),
        seconds: 60,
        concurrency: 8,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--gateway" => a.gateway = value,
            "--seconds" => a.seconds = value.parse().expect("--seconds N"),
            "--concurrency" => a.concurrency = value.parse().expect("--concurrency N"),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!a.gateway.is_empty(), "--gateway URL is required");
    a
}

/// A small deterministic generator (xorshift), so runs are repeatable without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick(&mut self) -> Kind {
        let total: u32 = MIX.iter().map(|(_, w)| w).sum();
        let mut roll = (self.next() % total as u64) as u32;
        for (kind, weight) in MIX {
            if roll < *weight {
                return *kind;
            }
            roll -= weight;
        }
        Kind::Normal
    }
}

#[derive(Default)]
struct Tally {
    by_outcome: BTreeMap<String, u64>,
    wrong: Vec<String>,
}

fn body(chat: bool, stream: bool) -> Value {
    if chat {
        json!({"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": "soak"}]})
    } else {
        json!({"model": MODEL, "input": "soak", "stream": stream})
    }
}

/// Sends one request of `kind` and says what happened, or why it was wrong.
async fn one(
    client: &reqwest::Client,
    base: &str,
    kind: Kind,
    chat: bool,
    stream: bool,
) -> Result<String, String> {
    let path = if chat {
        "/v1/chat/completions"
    } else {
        "/v1/responses"
    };
    let headers: &[(&str, &str)] = match kind {
        Kind::Normal | Kind::ClientHangsUp => &[("x-mock-tokens", "20")],
        Kind::Large => &[("x-mock-tokens", "300")],
        Kind::Status5xx => &[("x-mock-status", "503")],
        Kind::RateLimited => &[("x-mock-status", "429")],
        Kind::ResetBeforeHead => &[("x-mock-drop-after", "0")],
        Kind::ResetMidStream => &[("x-mock-tokens", "20"), ("x-mock-drop-after", "8")],
        Kind::HangBeforeHead => &[("x-mock-header-delay-ms", "5000")],
        Kind::HangMidStream => &[("x-mock-gate", "never")],
        Kind::MalformedEvent => &[("x-mock-malformed-at", "5")],
        Kind::HtmlError => &[("x-mock-status", "502"), ("x-mock-error-style", "html")],
    };
    let mut req = client
        .post(format!("{base}{path}"))
        .json(&body(chat, stream));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req
        .send()
        .await
        .map_err(|e| format!("transport error: {e}"))?;
    let status = res.status().as_u16();
    let label = format!(
        "{kind:?} {} {}",
        if chat { "chat" } else { "responses" },
        if stream { "stream" } else { "plain" }
    );
    if let Kind::ClientHangsUp = kind {
        let mut s = res.bytes_stream();
        let _ = s.next().await;
        drop(s);
        return Ok(format!("{label}: hung up"));
    }
    let bytes = res
        .bytes()
        .await
        .map_err(|e| format!("{label}: body broke off: {e}"))?;
    let text = String::from_utf8_lossy(&bytes);
    let ends_ok = |t: &str| -> bool {
        if chat {
            t.trim_end().ends_with("data: [DONE]") && t.contains("\"finish_reason\":\"stop\"")
        } else {
            t.contains("\"type\":\"response.completed\"")
        }
    };
    let ends_with_error = |t: &str, code: &str| -> bool {
        if chat {
            t.trim_end().ends_with("data: [DONE]") && t.contains(&format!("\"code\":\"{code}\""))
        } else {
            t.contains("\"type\":\"error\"") && t.contains(&format!("\"code\":\"{code}\""))
        }
    };
    let json_error = |t: &str| {
        serde_json::from_str::<Value>(t)
            .ok()
            .filter(|v| v["error"]["message"].is_string())
    };
    let ok = match (kind, stream) {
        (Kind::Normal | Kind::Large, false) => {
            status == 200 && serde_json::from_slice::<Value>(&bytes).is_ok()
        }
        (Kind::Normal | Kind::Large, true) => status == 200 && ends_ok(&text),
        (Kind::Status5xx, _) => {
            (status == 503 && !chat) || (status == 502 && json_error(&text).is_some())
        }
        (Kind::RateLimited, _) => status == 429,
        (Kind::ResetBeforeHead, _) => status == 502 && json_error(&text).is_some(),
        (Kind::ResetMidStream, true) => {
            status == 200 && ends_with_error(&text, "upstream_stream_error")
        }
        (Kind::ResetMidStream, false) => status == 502 && json_error(&text).is_some(),
        // A non-streaming /v1/responses answer's head is waited for up to request_timeout
        // (10 s here, the hang is 5 s): a slow answer, not a failure. Streams (and chat,
        // which always streams upstream) expect their head within first_byte_timeout (3 s).
        (Kind::HangBeforeHead, false) if !chat => {
            status == 200 && serde_json::from_slice::<Value>(&bytes).is_ok()
        }
        (Kind::HangBeforeHead, _) => status == 504 && json_error(&text).is_some(),
        (Kind::HangMidStream, true) => {
            status == 200 && ends_with_error(&text, "upstream_idle_timeout")
        }
        (Kind::HangMidStream, false) => status == 504 && json_error(&text).is_some(),
        (Kind::MalformedEvent, true) => {
            status == 200
                && if chat {
                    ends_with_error(&text, "upstream_malformed_event")
                } else {
                    ends_ok(&text)
                }
        }
        (Kind::MalformedEvent, false) => status == 502 && json_error(&text).is_some(),
        (Kind::HtmlError, _) => status == 502 && json_error(&text).is_some(),
        (Kind::ClientHangsUp, _) => true,
    };
    if ok {
        Ok(format!("{label}: {status}"))
    } else {
        Err(format!(
            "{label}: unexpected {status}: {}",
            &text[..text.len().min(300)]
        ))
    }
}

#[tokio::main]
async fn main() {
    let args = args();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let tally = Arc::new(Mutex::new(Tally::default()));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut workers = Vec::new();
    for w in 0..args.concurrency {
        let client = client.clone();
        let base = args.gateway.trim_end_matches('/').to_owned();
        let tally = tally.clone();
        workers.push(tokio::spawn(async move {
            let mut rng =
                Rng(0x9E37_79B9_7F4A_7C15 ^ (w as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
            while Instant::now() < deadline {
                let kind = rng.pick();
                let chat = rng.next().is_multiple_of(2);
                let stream = rng.next().is_multiple_of(2);
                let result = one(&client, &base, kind, chat, stream).await;
                let mut t = tally.lock().unwrap();
                match result {
                    Ok(outcome) => {
                        let key = outcome.split(':').next().unwrap_or("").to_owned();
                        *t.by_outcome.entry(key).or_default() += 1;
                    }
                    Err(wrong) => {
                        if t.wrong.len() < 20 {
                            eprintln!("WRONG {wrong}");
                        }
                        t.wrong.push(wrong);
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await.expect("worker");
    }
    let t = tally.lock().unwrap();
    let total: u64 = t.by_outcome.values().sum::<u64>() + t.wrong.len() as u64;
    println!(
        "soak: {total} requests over {} s, {} wrong",
        args.seconds,
        t.wrong.len()
    );
    for (outcome, n) in &t.by_outcome {
        println!("  {n:>7}  {outcome}");
    }
    if !t.wrong.is_empty() {
        std::process::exit(1);
    }
}
