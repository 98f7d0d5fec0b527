//! A throwaway `redis-server` per test, or the server named by
//! `QWEN_GATEWAY_TEST_REDIS_URL`.
//!
//! Without `redis-server` on PATH the Redis tests are skipped loudly, unless
//! `QWEN_GATEWAY_TEST_REDIS=required` (CI) makes that a failure.

use std::io::{ErrorKind, Write as _};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server the test may use: its URL, and the process to kill when the test ends.
pub(crate) struct RedisTarget {
    pub url: String,
    server: Option<RedisServer>,
}

impl RedisTarget {
    /// A server others may use too, so tests must leave it as they found it.
    pub(crate) fn is_shared(&self) -> bool {
        self.server.is_none()
    }
}

/// Deletes every key starting with `prefix` (SCAN, not KEYS, to spare a busy server).
pub(crate) async fn delete_prefixed(url: &str, prefix: &str) {
    let client = ::redis::Client::open(url).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect for clean-up");
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(500)
            .query_async(&mut conn)
            .await
            .expect("scan");
        if !keys.is_empty() {
            let _: i64 = ::redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .expect("del");
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
}

/// A spawned `redis-server`, killed (and reaped) on drop, panicking tests included.
struct RedisServer {
    child: Child,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Redis to test against, or `None` (after a loud note) when there is none and it is
/// not required. `extra_args` go to a spawned server only (e.g. `--requirepass`).
pub(crate) async fn redis_target(extra_args: &[&str]) -> Option<RedisTarget> {
    if let Ok(url) = std::env::var("QWEN_GATEWAY_TEST_REDIS_URL")
        && !url.is_empty()
    {
        if !extra_args.is_empty() {
            let _ = writeln!(
                std::io::stderr(),
                "*** SKIPPED Redis store test: it needs its own server ({extra_args:?}) ***"
            );
            return None;
        }
        return Some(RedisTarget { url, server: None });
    }
    match spawn(extra_args).await {
        Ok(Some((server, url))) => Some(RedisTarget {
            url,
            server: Some(server),
        }),
        Ok(None) => {
            let required = std::env::var("QWEN_GATEWAY_TEST_REDIS").is_ok_and(|v| v == "required");
            assert!(
                !required,
                "QWEN_GATEWAY_TEST_REDIS=required but `redis-server` is not on PATH \
                 (install it, e.g. `apt-get install redis-server`, or set QWEN_GATEWAY_TEST_REDIS_URL)"
            );
            // Straight to stderr, past the test harness's capture: a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED Redis store test: `redis-server` is not on PATH. Install it or set \
                 QWEN_GATEWAY_TEST_REDIS_URL; set QWEN_GATEWAY_TEST_REDIS=required to fail instead. ***\n"
            );
            None
        }
        Err(why) => panic!("could not start redis-server: {why}"),
    }
}

/// Starts `redis-server` on a free loopback port. `Ok(None)` when it is not installed.
/// The port is free when picked but may be taken before Redis binds it, so a server that
/// exits at once is retried on another port.
async fn spawn(extra_args: &[&str]) -> Result<Option<(RedisServer, String)>, String> {
    for _ in 0..5 {
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let mut server = RedisServer { child };
        if wait_ready(&mut server, port).await {
            return Ok(Some((server, format!("redis://127.0.0.1:{port}"))));
        }
    }
    Err("redis-server did not answer PING on any of 5 ports".to_owned())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls with PING for up to ~5 s; `false` when the server died or never answered.
/// Any reply counts (`-NOAUTH` from a password-protected server too): it is listening.
async fn wait_ready(server: &mut RedisServer, port: u16) -> bool {
    for _ in 0..100 {
        if !matches!(server.child.try_wait(), Ok(None)) {
            return false;
        }
        if ping(port).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn ping(port: u16) -> bool {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        stream.write_all(b"PING\r\n").await.ok()?;
        let mut reply = [0u8; 64];
        let n = stream.read(&mut reply).await.ok()?;
        Some(n > 0 && matches!(reply[0], b'+' | b'-'))
    };
    tokio::time::timeout(Duration::from_secs(1), exchange)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
