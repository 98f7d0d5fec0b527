//! Peak memory and responsiveness while hostile bodies arrive: 8 concurrent ~10 MB chat bodies
//! of tiny messages, then 8 aliased ~10 MB `/v1/responses` bodies, against the real binary
//! (its RSS read from /proc), with `/healthz` timed all along. Bounds are generous (debug
//! build, shared 2-core machine); the figures go to docs/reliability.md.

mod common;

use common::*;
use std::time::{Duration, Instant};

const MODEL: &str = "qwen3-max-2026-01-23";

fn vm_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A body of `n` tiny messages (chat) or input items (responses) under 10 MiB.
fn tiny_items(chat: bool, n: usize) -> Vec<u8> {
    let one = r#"{"role":"user","content":"a"}"#;
    let items = vec![one; n].join(",");
    if chat {
        format!(r#"{{"model":"{MODEL}","messages":[{items}]}}"#).into_bytes()
    } else {
        format!(r#"{{"model":"gpt-4o","input":[{items}]}}"#).into_bytes()
    }
}

/// An upstream that reads each request whole and answers a small 400 at once, on its own OS
/// threads: what is measured is the gateway, not the mock parsing 80 MB of JSON.
fn sink() -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let answer = r#"{"code":"InvalidParameter","message":"sink","request_id":"1"}"#;
                    let reply = format!(
                        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if reader.get_mut().write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_cost_bounded_memory_and_healthz_stays_fast() {
    let upstream = sink();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    let toml = config_toml(&[upstream], "[server]\nlisten = \"127.0.0.1:0\"\n");
    std::fs::write(&config, toml).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_qwen-gateway"));
    command
        .args(["serve", "--config"])
        .arg(&config)
        .env("TEST_KEY_R0", UPSTREAM_KEY)
        .env("RUST_LOG", "warn,qwen_gateway::cli=info");
    let (mut child, addr, _lines) = spawn_logged(command);
    let pid = child.id();
    let base = format!("http://{addr}");
    let c = client();
    assert_eq!(
        c.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let rss_before = vm_kb(pid, "VmRSS:");

    let mut report = Vec::new();
    for (name, path, body) in [
        (
            "chat, 300,000 tiny messages",
            "/v1/chat/completions",
            tiny_items(true, 300_000),
        ),
        (
            "/v1/responses aliased, 300,000 tiny items",
            "/v1/responses",
            tiny_items(false, 300_000),
        ),
    ] {
        assert!(body.len() < 10 * 1024 * 1024, "{}", body.len());
        let hwm_before = vm_kb(pid, "VmHWM:");
        let started = Instant::now();
        let sends: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                let url = format!("{base}{path}");
                let body = body.clone();
                tokio::spawn(async move {
                    c.post(url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                })
            })
            .collect();
        // /healthz every 50 ms while the 8 bodies are read and parsed.
        let mut worst = Duration::ZERO;
        while sends.iter().any(|s| !s.is_finished()) && started.elapsed() < Duration::from_secs(60)
        {
            let t = Instant::now();
            let ok = c
                .get(format!("{base}/healthz"))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(ok, 200);
            worst = worst.max(t.elapsed());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut statuses = Vec::new();
        for s in sends {
            statuses.push(s.await.unwrap().unwrap());
        }
        let growth_mb = vm_kb(pid, "VmHWM:").saturating_sub(hwm_before.max(rss_before)) / 1024;
        report.push(format!(
            "{name}: 8 x {:.1} MB in {:.1} s, statuses {statuses:?}, peak RSS +{growth_mb} MB, worst /healthz {:.0} ms",
            body.len() as f64 / 1e6,
            started.elapsed().as_secs_f64(),
            worst.as_secs_f64() * 1e3
        ));
        assert!(growth_mb < 400, "{}", report.last().unwrap());
        assert!(
            worst < Duration::from_millis(250),
            "{}",
            report.last().unwrap()
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    for line in report {
        println!("{line}");
    }
}
