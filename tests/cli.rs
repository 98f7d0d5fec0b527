//! The real binary: start-up failures, `check`, and the access log of a running `serve`.

mod common;

use common::*;
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_qwen-gateway");
const SECRET: &str = "sk-cli-test-secret-9f8e7d";

fn gateway_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("DASHSCOPE_API_KEY")
        .env_remove("DASHSCOPE_API_KEY_BEIJING")
        .env_remove("QWEN_GATEWAY_CONFIG")
        .env_remove("RUST_LOG")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

#[test]
fn serve_without_any_key_fails_fast_naming_the_variables() {
    let started = Instant::now();
    let out = gateway_command(&["serve"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DASHSCOPE_API_KEY"), "{stderr}");
    assert!(stderr.contains("DASHSCOPE_API_KEY_BEIJING"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn check_prints_the_effective_configuration_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, "[server]\nlisten = \"0.0.0.0:9999\"\n").unwrap();
    let out = gateway_command(&["check", "--config", path.to_str().unwrap()])
        .env("DASHSCOPE_API_KEY", SECRET)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("0.0.0.0:9999"), "{stdout}");
    assert!(stdout.contains("DASHSCOPE_API_KEY = <set>"), "{stdout}");
    assert!(
        stdout.contains("DASHSCOPE_API_KEY_BEIJING = <unset>"),
        "{stdout}"
    );
    assert!(stderr.contains("region 'beijing' is disabled"), "{stderr}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
    let bad = gateway_command(&["check", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn check_refuses_an_extra_ca_file_without_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate\n").unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(
        &path,
        format!("[upstream]\nextra_ca_file = {:?}\n", ca.to_str().unwrap()),
    )
    .unwrap();
    let out = gateway_command(&["check", "--config", path.to_str().unwrap()])
        .env("DASHSCOPE_API_KEY", SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("extra_ca_file") && stderr.contains("ca.pem"),
        "{stderr}"
    );
}

/// A Redis password in `store.url` (from the file or the environment) is a secret too.
#[test]
fn check_redacts_a_redis_password() {
    let out = gateway_command(&["check"])
        .env(
            "QWEN_GATEWAY__STORE__URL",
            "redis://gw:hunter2-not-shown@127.0.0.1:6390/0",
        )
        .env("DASHSCOPE_API_KEY", SECRET)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("redis://gw:***@127.0.0.1:6390/0"),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2") && !stderr.contains("hunter2"));
}

#[test]
fn env_layer_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, "[server]\nlisten = \"0.0.0.0:9999\"\n").unwrap();
    let out = gateway_command(&["check"])
        .env("QWEN_GATEWAY_CONFIG", &path)
        .env("QWEN_GATEWAY__SERVER__LISTEN", "127.0.0.1:7777")
        .env("DASHSCOPE_API_KEY", SECRET)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("127.0.0.1:7777"), "{stdout}");
}

/// Starts the binary against a mock and returns it with the address it logged. Proxy
/// variables point at a closed port: the gateway must never route upstream requests through
/// them (README, "Regions and failover"), so every test's 200s prove it does not.
fn spawn_serve(
    config: &std::path::Path,
    extra_args: &[&str],
) -> (
    std::process::Child,
    String,
    std::sync::mpsc::Receiver<String>,
) {
    let mut args = vec!["serve", "--config", config.to_str().unwrap()];
    args.extend_from_slice(extra_args);
    let mut command = gateway_command(&args);
    command.env("TEST_KEY_R0", SECRET).env("RUST_LOG", "info");
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        command
            .env(var, "http://127.0.0.1:9")
            .env(var.to_lowercase(), "http://127.0.0.1:9");
    }
    spawn_logged(command)
}

fn stop(mut child: std::process::Child) -> std::process::ExitStatus {
    // SIGTERM through the `kill` command keeps this test free of unsafe FFI.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("gateway did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_one_line_per_request_without_secrets() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(
        &path,
        config_toml(&[mock.base_url()], "[server]\nlisten = \"127.0.0.1:0\"\n"),
    )
    .unwrap();
    let (child, addr, rx) = spawn_serve(&path, &["--log-format", "json"]);
    let c = client();
    let url = format!("http://{addr}/v1/responses");
    let plain = c
        .post(&url)
        .header("authorization", "Bearer client-key-should-not-log")
        .json(&json!({"model": "gpt-4o", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    let streamed = c
        .post(&url)
        .json(&json!({"model": "qwen3-max-2026-01-23", "input": "hi", "stream": true}))
        .send()
        .await
        .unwrap();
    let _ = streamed.bytes().await.unwrap();
    // The mock saw our secret as the upstream key, so the gateway really used it.
    assert!(
        mock.requests()
            .iter()
            .all(|r| header(&r.headers, "authorization") == Some(&format!("Bearer {SECRET}")))
    );
    let status = stop(child);
    assert!(status.success(), "exit status {status:?}");
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
        lines.push(line);
    }
    let all = lines.join("\n");
    assert!(!all.contains(SECRET), "upstream key in the logs:\n{all}");
    assert!(!all.contains("client-key-should-not-log"));
    let access: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "qwen_gateway::access")
        .collect();
    assert_eq!(access.len(), 2, "{all}");
    for line in &access {
        assert_eq!(line["status"], 200);
        assert_eq!(line["region"], "r0");
        assert_eq!(line["model"], "qwen3-max-2026-01-23");
        assert!(line["input_tokens"].as_u64().unwrap() > 0, "{line}");
        assert!(line["output_tokens"].as_u64().unwrap() > 0, "{line}");
        assert!(line["latency_ms"].as_f64().unwrap() > 0.0);
        assert!(line["ttfb_ms"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(access[0]["stream"], false);
    assert_eq!(access[1]["stream"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_format_flag_overrides_the_config_both_ways() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    for (file_format, flag, want_json) in [("text", "json", true), ("json", "text", false)] {
        let path = dir.path().join(format!("{file_format}.toml"));
        let extra =
            format!("[server]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"{file_format}\"\n");
        std::fs::write(&path, config_toml(&[mock.base_url()], &extra)).unwrap();
        let (child, _addr, rx) = spawn_serve(&path, &["--log-format", flag]);
        assert!(stop(child).success());
        let mut lines = Vec::new();
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
            lines.push(line);
        }
        let listening = lines
            .iter()
            .find(|l| l.contains("qwen-gateway listening"))
            .or(lines.first())
            .cloned()
            .unwrap_or_default();
        let parsed = serde_json::from_str::<serde_json::Value>(&listening);
        if want_json {
            let v = parsed.unwrap_or_else(|e| panic!("not JSON ({e}): {listening}"));
            assert_eq!(v["level"], "INFO", "{v}");
            assert!(v["timestamp"].is_string(), "{v}");
            // Every other line is JSON too (e.g. the shutdown lines).
            for line in &lines {
                assert!(
                    serde_json::from_str::<serde_json::Value>(line).is_ok(),
                    "{line}"
                );
            }
        } else {
            assert!(parsed.is_err(), "text format logged JSON: {listening}");
        }
    }
}

async fn healthcheck(url: &str) -> (std::process::ExitStatus, String, Duration) {
    let started = Instant::now();
    let out = tokio::process::Command::from(gateway_command(&["healthcheck", "--url", url]))
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("http_proxy", "http://127.0.0.1:9")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status, stderr, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_0_on_a_live_gateway_and_1_otherwise() {
    let (gw, _mock) = gateway_with_mock("").await;
    // A proxy in the environment is ignored: the probe talks to the gateway directly.
    let (status, stderr, _) = healthcheck(&gw.url("/healthz")).await;
    assert_eq!(status.code(), Some(0), "{stderr}");

    let (status, stderr, _) = healthcheck(&gw.url("/nope")).await;
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("404"), "{stderr}");

    // Nothing listening: refused at once.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let (status, stderr, elapsed) = healthcheck(&format!("http://{closed_addr}/healthz")).await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_gives_up_after_2_seconds_on_a_hung_server() {
    // Accepts connections and never answers.
    let (addr, holder) = hold_connections().await;
    let (status, stderr, elapsed) = healthcheck(&format!("http://{addr}/healthz")).await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    holder.abort();
}

/// `QWEN_GATEWAY__*=value` pairs set by the Dockerfile's `ENV`, so this test follows it.
fn dockerfile_env() -> Vec<(String, String)> {
    let dockerfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile"))
        .expect("Dockerfile");
    dockerfile
        .split_whitespace()
        .filter(|word| word.starts_with("QWEN_GATEWAY__"))
        .filter_map(|word| word.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn compose_config_passes_check_with_the_container_environment() {
    let image_env = dockerfile_env();
    assert!(
        image_env
            .iter()
            .any(|(k, _)| k == "QWEN_GATEWAY__SERVER__LISTEN"),
        "{image_env:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("dashscope_api_key");
    std::fs::write(&key_file, format!("{SECRET}\n")).unwrap();
    let compose_toml = concat!(env!("CARGO_MANIFEST_DIR"), "/config/compose.toml");
    let team = [
        ("QWEN_GATEWAY__STORE__URL", "redis://redis:6379"),
        ("QWEN_GATEWAY__AUTH__MODE", "keys"),
    ];
    for team_env in [&[][..], &team[..]] {
        let mut cmd = gateway_command(&["check", "--config", compose_toml]);
        cmd.envs(image_env.iter().map(|(k, v)| (k, v)))
            // As .env.example leaves it: empty, so the mounted secret file is used.
            .env("DASHSCOPE_API_KEY", "")
            .env("DASHSCOPE_API_KEY_FILE", &key_file)
            .envs(team_env.iter().copied());
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("listen = \"0.0.0.0:8080\""), "{stdout}");
        assert!(stdout.contains("format = \"json\""), "{stdout}");
        assert!(
            stdout.contains("DASHSCOPE_API_KEY = <set from file>"),
            "{stdout}"
        );
        assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
        if team_env.is_empty() {
            assert!(
                stdout.contains("url = \"sqlite:///data/qwen-gateway.db\""),
                "{stdout}"
            );
        } else {
            assert!(stdout.contains("url = \"redis://redis:6379\""), "{stdout}");
            assert!(stdout.contains("mode = \"keys\""), "{stdout}");
        }
    }
}

#[test]
fn compose_stop_grace_period_outlasts_the_shutdown_grace() {
    let compose =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"))
            .unwrap();
    let stop_grace: u64 = compose
        .lines()
        .find_map(|l| l.trim().strip_prefix("stop_grace_period:"))
        .and_then(|v| v.trim().strip_suffix('s'))
        .and_then(|v| v.parse().ok())
        .expect("stop_grace_period in seconds");
    let settings = qwen_gateway::config::Settings::load_with_env(
        Some(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/compose.toml"
        ))),
        Some(Default::default()),
    )
    .unwrap();
    // The grace period, then final error events, the ledger's last writes, the runtime's exit.
    let needed = settings.server.shutdown_grace + qwen_gateway::server::MAX_STOP_AFTER_GRACE;
    assert!(
        Duration::from_secs(stop_grace) > needed,
        "stop_grace_period {stop_grace}s <= {needed:?}"
    );
}
