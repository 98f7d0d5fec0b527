//! Files the gateway writes are owner-only (0600) whatever the umask: the SQLite database and
//! its `-wal`/`-shm` files, created by `serve` or by `keys create`, and an existing database
//! that was readable by others is tightened at open with one warning.
//!
//! The umask is process-wide, so the real binary runs as a child under
//! `sh -c 'umask 022; exec …'` instead of changing this test process's umask (which every
//! other test in it would inherit).
#![cfg(unix)]

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_qwen-gateway");
const ADMIN: &str = "admin-token-for-the-files-at-rest-test";

/// `qwen-gateway ARGS` under umask 022 (the usual default: new files 0644).
fn under_umask_022(args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(BIN)
        .args(args)
        .env_remove("QWEN_GATEWAY_CONFIG")
        .env_remove("QWEN_GATEWAY_ADMIN_TOKEN")
        .env_remove("RUST_LOG")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

/// A config with the store in `db` and one region that is never called.
fn write_config(dir: &Path, db: &Path) -> PathBuf {
    let toml = config_toml(
        &["http://127.0.0.1:9".to_owned()],
        "[server]\nlisten = \"127.0.0.1:0\"\n",
    )
    .replace(
        "url = \"memory\"",
        &format!("url = \"sqlite://{}\"", db.display()),
    );
    let config = dir.join("gw.toml");
    std::fs::write(&config, toml).unwrap();
    config
}

/// The file's permission bits, in octal as `ls -l` people read them.
fn mode(path: &Path) -> String {
    let mode = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    format!("{:04o}", mode & 0o777)
}

fn sibling(db: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", db.display()))
}

/// `serve` under umask 022: the child, its address, and every stderr line (those before
/// the "listening" line included: the store is opened, and warns, before it).
fn serve(config: &Path) -> (Child, String, Receiver<String>) {
    use std::io::{BufRead, BufReader};
    let mut child = under_umask_022(&["serve", "--config", config.to_str().unwrap()])
        .env("TEST_KEY_R0", UPSTREAM_KEY)
        .env("QWEN_GATEWAY_ADMIN_TOKEN", ADMIN)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("gateway did not log its address");
        let at = line.find("listening on http://");
        let _ = seen_tx.send(line.clone());
        if let Some(at) = at {
            let rest = &line[at + "listening on http://".len()..];
            break rest.split('/').next().unwrap_or_default().to_owned();
        }
    };
    // The rest of the lines follow the ones already read.
    std::thread::spawn(move || {
        for line in rx {
            if seen_tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, addr, seen_rx)
}

/// Every line the child wrote, once it has exited.
fn all_lines(logs: &Receiver<String>) -> Vec<String> {
    let mut lines = Vec::new();
    while let Ok(line) = logs.recv_timeout(Duration::from_secs(2)) {
        lines.push(line);
    }
    lines
}

fn stop(mut child: Child) {
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

/// A key created through `/admin`: a write, so SQLite has its WAL and shared memory open.
async fn create_key_over_http(addr: &str, name: &str) -> String {
    let res = client()
        .post(format!("http://{addr}/admin/keys"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body: serde_json::Value = res.json().await.unwrap();
    body["key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_new_database_and_its_wal_and_shm_are_0600_under_umask_022() {
    let dir = tempfile::tempdir().unwrap();
    // The umask does apply to what the child creates: a plain file comes out 0644.
    let control = dir.path().join("control");
    let status = Command::new("sh")
        .arg("-c")
        .arg("umask 022; : > \"$0\"")
        .arg(&control)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(mode(&control), "0644");

    // `serve` creates the database.
    let db = dir.path().join("served.db");
    let config = write_config(dir.path(), &db);
    let (child, addr, _logs) = serve(&config);
    create_key_over_http(&addr, "alice").await;
    for file in [db.clone(), sibling(&db, "-wal"), sibling(&db, "-shm")] {
        assert_eq!(mode(&file), "0600", "{}", file.display());
    }
    stop(child);
    assert_eq!(mode(&db), "0600");

    // `keys create` creates it: the same, and nothing else is left in the directory
    // with a looser mode.
    let cli_dir = tempfile::tempdir().unwrap();
    let cli_db = cli_dir.path().join("cli.db");
    let cli_config = write_config(cli_dir.path(), &cli_db);
    let out = under_umask_022(&[
        "keys",
        "create",
        "--name",
        "bob",
        "--config",
        cli_config.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&cli_db), "0600");
    for entry in std::fs::read_dir(cli_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path != cli_config {
            assert_eq!(mode(&path), "0600", "{}", path.display());
        }
    }
}

#[tokio::test]
async fn an_existing_database_readable_by_others_is_tightened_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    let config = write_config(dir.path(), &db);
    let out = under_umask_022(&[
        "keys",
        "create",
        "--name",
        "carol",
        "--config",
        config.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // As an older gateway would have left it.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();

    let (child, addr, logs) = serve(&config);
    assert_eq!(mode(&db), "0600", "tightened at open");
    create_key_over_http(&addr, "dave").await;
    for file in [db.clone(), sibling(&db, "-wal"), sibling(&db, "-shm")] {
        assert_eq!(mode(&file), "0600", "{}", file.display());
    }
    stop(child);
    let lines = all_lines(&logs);
    let warnings: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("tightened to 0600"))
        .collect();
    assert_eq!(warnings.len(), 1, "{lines:#?}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    assert!(warnings[0].contains("old.db (was 0644)"), "{}", warnings[0]);
    let all = lines.join("\n");
    assert!(
        !all.contains(&raw) && !all.contains(ADMIN),
        "no secret in the logs"
    );
}
