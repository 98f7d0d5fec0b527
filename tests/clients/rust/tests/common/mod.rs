//! Starts the real binaries on loopback ports: mock Model Studio, then qwen-gateway in front of
//! it, the same stack as tests/clients/python/conftest.py. Each test owns its stack; dropping it
//! kills both children and removes the temporary directory.
//!
//! The binaries come from QWEN_GATEWAY_BIN / MOCK_MODEL_STUDIO_BIN, else the main workspace's
//! target/debug (`cargo build --bins` at the repository root).

#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_openai::config::OpenAIConfig;
use async_openai::Client;

pub const MODEL: &str = "qwen3-max-2026-01-23";
pub const UPSTREAM_KEY: &str = "sk-rust-upstream-7e2a";
/// The client's own key is deliberately not the upstream key: the gateway must replace it.
pub const CLIENT_KEY: &str = "sk-client-not-upstream";
const WAIT: Duration = Duration::from_secs(15);

pub struct Stack {
    pub base_url: String,
    pub mock_url: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Stack {
    /// The stack with the gateway configuration the Python and Node harnesses use.
    pub fn start() -> Stack {
        Stack::with_config("")
    }

    /// `extra` is appended to the gateway's TOML, e.g. "[responses]\nconformance = true\n".
    pub fn with_config(extra: &str) -> Stack {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "qg-rs-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).expect("temp dir");
        let mut stack = Stack {
            base_url: String::new(),
            mock_url: String::new(),
            dir,
            children: Vec::new(),
        };

        let mock_log = stack.dir.join("mock.log");
        let mut mock = Command::new(binary("MOCK_MODEL_STUDIO_BIN", "mock-model-studio"));
        mock.args(["--listen", "127.0.0.1:0"]);
        stack.spawn(mock, &mock_log);
        stack.mock_url = stack.wait_for(&mock_log, "listening on ");

        let config = stack.dir.join("gateway.toml");
        fs::write(
            &config,
            format!(
                r#"
[server]
listen = "127.0.0.1:0"
[upstream]
regions = ["local"]
first_byte_timeout = "5s"
stream_idle_timeout = "5s"
rate_limit_cooldown = "1ms"
# The mock's fault controls (x-mock-*) must reach it through the gateway.
forward_headers = ["accept", "content-type", "user-agent", "idempotency-key", "openai-beta", "x-mock-*"]
[regions.local]
base_url = "{}"
api_key_env = ["RS_TEST_UPSTREAM_KEY"]
[store]
url = "memory"
{extra}
"#,
                stack.mock_url
            ),
        )
        .expect("write gateway config");
        let gateway_log = stack.dir.join("gateway.log");
        let mut gateway = Command::new(binary("QWEN_GATEWAY_BIN", "qwen-gateway"));
        gateway.arg("serve").arg("--config").arg(&config);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("DASHSCOPE") {
                gateway.env_remove(&name);
            }
        }
        gateway.env("RS_TEST_UPSTREAM_KEY", UPSTREAM_KEY);
        if std::env::var_os("RUST_LOG").is_none() {
            gateway.env("RUST_LOG", "info");
        }
        stack.spawn(gateway, &gateway_log);
        // "qwen-gateway listening on http://127.0.0.1:PORT/v1 addr=…"
        stack.base_url = stack.wait_for(&gateway_log, "listening on ");
        assert!(
            stack.base_url.ends_with("/v1"),
            "unexpected gateway address {}",
            stack.base_url
        );
        stack
    }

    /// An async-openai client of the gateway (the recipe: api_base + any key).
    pub fn client(&self) -> Client<OpenAIConfig> {
        Client::with_config(
            OpenAIConfig::new()
                .with_api_base(&self.base_url)
                .with_api_key(CLIENT_KEY),
        )
    }

    pub fn gateway_log(&self) -> String {
        fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default()
    }

    fn spawn(&mut self, mut command: Command, log: &Path) {
        let out = File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        self.children.push(child);
    }

    /// Polls (bounded) the log of the last child spawned for `marker`, returning the word after it.
    fn wait_for(&mut self, log: &Path, marker: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = fs::read_to_string(log).unwrap_or_default();
            if let Some(at) = text.find(marker) {
                let rest = &text[at + marker.len()..];
                if let Some(end) = rest.find(char::is_whitespace) {
                    return rest[..end].to_owned();
                }
            }
            let child = self.children.last_mut().expect("a child");
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{} exited early ({status}):\n{text}", log.display());
            }
            if Instant::now() > deadline {
                panic!("{marker:?} never appeared in {}:\n{text}", log.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("logs kept in {}", self.dir.display());
        }
    }
}

fn binary(var: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        return PathBuf::from(path);
    }
    // tests/clients/rust -> repository root -> target/debug
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
    root.join("target/debug").join(name)
}
