//! The real binary: its `keys` commands, and what reaches its logs and database (no raw key).

use super::*;
use qwen_gateway::auth::keys;
use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_qwen-gateway");

fn gateway_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("QWEN_GATEWAY_CONFIG")
        .env_remove("QWEN_GATEWAY_ADMIN_TOKEN")
        .env_remove("RUST_LOG")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

/// Runs a `keys ...` command with `--config`; (status, stdout, stderr).
fn keys_cmd(config: &Path, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["keys", args[0], "--config", config.to_str().unwrap()];
    all.extend_from_slice(&args[1..]);
    let out = gateway_command(&all).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_config(dir: &Path, mock: &MockServer, extra: &str) -> (PathBuf, PathBuf) {
    let db = dir.join("team.db");
    let config = dir.join("gw.toml");
    let toml = team_toml(
        &[mock.base_url()],
        &db,
        &format!("{extra}[server]\nlisten = \"127.0.0.1:0\"\n"),
    );
    std::fs::write(&config, toml).unwrap();
    (config, db)
}

/// `serve` as a child process; its address, and its stderr lines as they come.
fn spawn_serve(
    config: &Path,
) -> (
    std::process::Child,
    String,
    std::sync::mpsc::Receiver<String>,
) {
    let mut command = gateway_command(&["serve", "--config", config.to_str().unwrap()]);
    command
        .env("TEST_KEY_R0", UPSTREAM_KEY)
        .env("RUST_LOG", "debug");
    spawn_logged(command)
}

fn stop(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("gateway did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every file of the SQLite database (main file, WAL, shared memory), concatenated.
fn database_bytes(db: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    let name = db.file_name().unwrap().to_string_lossy().into_owned();
    for entry in std::fs::read_dir(db.parent().unwrap()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with(&name) {
            all.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raw_key_never_reaches_the_database_or_the_logs() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, db) = write_config(dir.path(), &mock, "");
    let (ok, stdout, stderr) = keys_cmd(&config, &["create", "--name", "ci", "--rpm", "100"]);
    assert!(ok, "{stderr}");
    let raw = stdout.trim().to_owned();
    assert!(raw.starts_with("qgw-"), "{stdout}");
    assert!(!stderr.contains(&raw), "the key is printed on stdout only");
    assert!(stderr.contains("shown only this once"), "{stderr}");
    let hash = keys::hash_key(&raw);

    let (child, addr, rx) = spawn_serve(&config);
    let c = client();
    let url = format!("http://{addr}/v1/responses");
    let plain = c
        .post(&url)
        .bearer_auth(&raw)
        .json(&json!({"model": MODEL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    let streamed = c
        .post(format!("http://{addr}/v1/chat/completions"))
        .header("x-api-key", &raw)
        .json(&json!({"model": MODEL, "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let _ = streamed.bytes().await.unwrap();
    let last = if raw.ends_with('Z') { 'Y' } else { 'Z' };
    let wrong = format!("{}{last}", &raw[..raw.len() - 1]);
    let refused = c
        .post(&url)
        .bearer_auth(&wrong)
        .json(&json!({"model": MODEL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let refused_body = refused.text().await.unwrap();
    assert!(
        !refused_body.contains(&wrong),
        "a wrong key is not echoed back"
    );
    stop(child);
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
        lines.push(line);
    }
    let logs = lines.join("\n");
    assert!(logs.contains("qwen_gateway::access"), "{logs}");
    let key_id = {
        let (_, out, _) = keys_cmd(&config, &["list", "--format", "json"]);
        let list: Value = serde_json::from_str(&out).unwrap();
        list[0]["id"].as_str().unwrap().to_owned()
    };
    assert!(logs.contains(&key_id), "the access log names the key id");
    for secret in [raw.as_str(), wrong.as_str(), hash.as_str(), &raw[4..]] {
        assert!(!logs.contains(secret), "a key or hash in the logs");
    }
    let bytes = database_bytes(&db);
    assert!(!bytes.is_empty());
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(contains(&hash), "the hash is what is stored");
    assert!(
        !contains(&raw) && !contains(&raw[4..]),
        "the raw key is in the database"
    );
    assert!(!contains(&wrong[4..]));
    eprintln!(
        "checked {} log lines and {} database bytes: no raw key",
        lines.len(),
        bytes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_cli_creates_lists_revokes_and_reports_usage_in_each_format() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _db) = write_config(dir.path(), &mock, "");
    let (ok, alice, err) = keys_cmd(
        &config,
        &[
            "create",
            "--name",
            "alice",
            "--models",
            "qwen3-*",
            "gpt-4o",
            "--regions",
            "r0",
            "--rpm",
            "60",
            "--tpm",
            "100000",
            "--daily-tokens",
            "2000000",
            "--expires",
            "30d",
        ],
    );
    assert!(ok, "{err}");
    let alice = alice.trim().to_owned();
    let (ok, bob, err) = keys_cmd(&config, &["create", "--name", "bob"]);
    assert!(ok, "{err}");
    let bob = bob.trim().to_owned();
    let (ok, _, err) = keys_cmd(&config, &["create", "--name", "bob"]);
    assert!(
        !ok && err.contains("bob") && err.contains("already exists"),
        "{err}"
    );
    let (ok, _, err) = keys_cmd(&config, &["create", "--name", "carol", "--regions", "mars"]);
    assert!(!ok && err.contains("mars"), "{err}");

    let (ok, table, _) = keys_cmd(&config, &["list"]);
    assert!(ok);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains("alice") && table.contains("qwen3-*,gpt-4o") && table.contains("active")
    );
    let (_, json_list, _) = keys_cmd(&config, &["list", "--format", "json"]);
    let list: Value = serde_json::from_str(&json_list).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["regions"], json!(["r0"]));
    assert_eq!(list[0]["daily_tokens"], 2_000_000);
    for text in [&table, &json_list] {
        assert!(!text.contains(&alice) && !text.contains(&keys::hash_key(&alice)));
    }

    // Some traffic through a gateway on the same database, then the reports.
    let toml = std::fs::read_to_string(&config).unwrap();
    let gw = start_gateway(&toml).await;
    for key in [&alice, &alice, &bob] {
        assert_eq!(ask(&gw, key).await.status(), 200);
    }
    let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        post(&gw, "/v1/chat/completions", Some(&bob), chat, &[])
            .await
            .status(),
        200
    );
    let bob_id = list[1]["id"].as_str().unwrap().to_owned();
    booked(&gw.store, &bob_id, 2).await;
    gw.stop().await;
    let expected = mock_usage(&mock);

    let (ok, table, err) = keys_cmd(&config, &["usage"]);
    assert!(ok, "{err}");
    eprintln!("keys usage:\n{table}");
    assert!(table.starts_with("DAY"), "{table}");
    assert!(table.contains("alice") && table.contains("bob") && table.contains("TOTAL"));
    let (_, json_usage, _) = keys_cmd(&config, &["usage", "--format", "json", "--since", "today"]);
    let rows: Value = serde_json::from_str(&json_usage).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let sum = |field: &str| rows.iter().map(|r| r[field].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("requests"), 4);
    assert_eq!(sum("input_tokens"), expected.input_tokens);
    assert_eq!(sum("output_tokens"), expected.output_tokens);
    let by_name = |name: &str| rows.iter().find(|r| r["key_name"] == name).unwrap();
    assert_eq!(by_name("alice")["requests"], 2);
    assert_eq!(by_name("bob")["requests"], 2);
    let (_, csv, _) = keys_cmd(&config, &["usage", "--format", "csv", "--since", "1d"]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "day,key_id,key_name,model,region,requests,errors,input_tokens,output_tokens,cached_tokens,reasoning_tokens,tool_calls,estimated"
        )
    );
    assert_eq!(lines.count(), 2);
    let (_, none, _) = keys_cmd(&config, &["usage", "--since", "2999-01-01"]);
    assert_eq!(none.trim(), "no usage recorded");
    let (ok, _, err) = keys_cmd(&config, &["usage", "--since", "someday"]);
    assert!(!ok && err.contains("someday"), "{err}");

    let (ok, out, err) = keys_cmd(&config, &["revoke", "alice"]);
    assert!(ok, "{err}");
    assert!(out.contains("revoked key 'alice'"), "{out}");
    let (ok, _, err) = keys_cmd(&config, &["revoke", "nobody"]);
    assert!(!ok && err.contains("nobody"), "{err}");
    let (_, table, _) = keys_cmd(&config, &["list"]);
    let alice_line = table.lines().find(|l| l.contains("alice")).unwrap();
    assert!(alice_line.contains("revoked"), "{table}");
    let gw = start_gateway(&toml).await;
    assert_eq!(ask(&gw, &alice).await.status(), 401);
    assert_eq!(ask(&gw, &bob).await.status(), 200);
}
