//! Bounded resources at the connection level: request heads (431), the connection cap, and
//! clients that stop reading (`server.send_timeout`). Real sockets on loopback.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MODEL: &str = "qwen3-max-2026-01-23";

async fn gateway(server: &str) -> (Gateway, mock_model_studio::MockServer) {
    let mock = start_mock().await;
    let toml = format!(
        "{}[server]\n{server}\n",
        config_toml(&[mock.base_url()], "")
    );
    (start_gateway(&toml).await, mock)
}

#[tokio::test]
async fn heads_over_max_header_bytes_get_431() {
    let (gw, mock) = gateway("max_header_bytes = 65536").await;
    let one_big = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let mut many = String::from("GET /healthz HTTP/1.1\r\nhost: x\r\n");
    for i in 0..60 {
        many.push_str(&format!("x-h{i}: {}\r\n", "b".repeat(1700)));
    }
    many.push_str("\r\n");
    for (name, request) in [
        ("one 100 KB header", one_big),
        ("60 x 1.7 KB headers", many),
    ] {
        let (status, text, _) =
            raw_exchange(&gw, request.into_bytes(), Duration::from_secs(5)).await;
        assert_eq!(status, 431, "{name}: {text}");
    }
    // A head under the limit is served.
    let fine = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-ok: {}\r\nconnection: close\r\n\r\n",
        "c".repeat(30 * 1024)
    );
    let (status, _, _) = raw_exchange(&gw, fine.into_bytes(), Duration::from_secs(5)).await;
    assert_eq!(status, 200);
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_one_closes() {
    let (gw, _mock) = gateway("max_connections = 2\nheader_read_timeout = \"20s\"").await;
    // Two idle connections take both slots.
    let a = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let b = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let early = tokio::time::timeout(Duration::from_millis(700), third.read(&mut buf)).await;
    assert!(early.is_err(), "a third connection was served past the cap");
    drop(a);
    let started = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
        .await
        .expect("served once a slot freed")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    println!(
        "connection cap: third connection served {:?} after a slot freed",
        started.elapsed()
    );
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_loses_its_stream_after_send_timeout() {
    let (gw, mock) = gateway("send_timeout = \"1s\"").await;
    for path in ["/v1/responses", "/v1/chat/completions"] {
        // A tiny receive window, never read: the gateway's writes stall within a few KB.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = socket.connect(gw.addr).await.unwrap();
        let body = json!({"model": MODEL, "stream": true, "input": "hi",
                          "messages": [{"role": "user", "content": "hi"}]})
        .to_string();
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-mock-tokens: 600\r\nx-mock-delta-bytes: 8192\r\nx-mock-delay-ms: 5\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let started = Instant::now();
        let before = mock.stats().cancelled_streams;
        let cut = eventually(Duration::from_secs(10), || {
            mock.stats().cancelled_streams > before
        })
        .await;
        assert!(
            cut,
            "{path}: the upstream stream was never cancelled: {:?} wrote {}",
            mock.stats(),
            mock.requests().last().map_or(0, |r| r.response_body.len())
        );
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(900), "{path}: {took:?}");
        println!("send_timeout 1s: {path} upstream cancelled after {took:?}");
        drop(stream);
    }
}
