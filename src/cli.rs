//! The command line: `serve`, `check`, `healthcheck` and `keys` (team keys and their usage).

use crate::auth::admin;
use crate::config::{AuthMode, LogFormat, Settings};
use crate::server::{self, AppState};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "qwen-gateway",
    version,
    about = "OpenAI-compatible gateway for Alibaba Cloud Model Studio (Qwen)"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct ConfigArg {
    /// Configuration file (TOML), layered over the built-in defaults.
    #[arg(long, short, env = "QWEN_GATEWAY_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        #[command(flatten)]
        config: ConfigArg,
        /// Log format, overriding `log.format`.
        #[arg(long, value_enum)]
        log_format: Option<LogFormatArg>,
    },
    /// Validate the configuration and print it, secrets redacted.
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Exit 0 when the gateway answers its liveness URL with 2xx, else 1: the container
    /// HEALTHCHECK, since the runtime image has no curl.
    Healthcheck {
        /// Liveness URL to probe.
        #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
    },
    /// Team keys: create, list, revoke, and usage per key (in the configured store).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key and print it (once: only its hash is stored).
    Create {
        #[command(flatten)]
        config: ConfigArg,
        /// Unique name, e.g. the person or service using the key.
        #[arg(long)]
        name: String,
        /// Allowed models, glob patterns such as `qwen3-*` (default: all).
        #[arg(long, num_args = 1..)]
        models: Vec<String>,
        /// Allowed regions (default: all).
        #[arg(long, num_args = 1..)]
        regions: Vec<String>,
        /// Requests per minute.
        #[arg(long)]
        rpm: Option<u64>,
        /// Tokens (input + output) per minute.
        #[arg(long)]
        tpm: Option<u64>,
        /// Tokens (input + output) per UTC day.
        #[arg(long)]
        daily_tokens: Option<u64>,
        /// Lifetime, e.g. `30d`, `12h` (default: never expires).
        #[arg(long, value_parser = humantime::parse_duration)]
        expires: Option<std::time::Duration>,
    },
    /// List keys (never their values or hashes).
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Revoke a key by id or name (refused everywhere within a second).
    Revoke {
        #[command(flatten)]
        config: ConfigArg,
        /// The key's id or name.
        id_or_name: String,
    },
    /// Usage per day, key, model and region.
    Usage {
        #[command(flatten)]
        config: ConfigArg,
        /// First day to include: YYYY-MM-DD, `today`, or a span back such as `7d`.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, log_format } => run_serve(config.config, log_format),
        Command::Check { config } => run_check(config.config),
        Command::Keys { command } => run_keys(command),
        Command::Healthcheck { url } => run_healthcheck(&url),
    }
}

/// Runs a `keys` subcommand against the configured store.
fn run_keys(command: KeysCommand) -> ExitCode {
    let config = match &command {
        KeysCommand::Create { config, .. }
        | KeysCommand::List { config, .. }
        | KeysCommand::Revoke { config, .. }
        | KeysCommand::Usage { config, .. } => config.config.clone(),
    };
    let settings = match load_settings(config.as_deref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let runtime = match start_runtime(tokio::runtime::Builder::new_current_thread(), "error") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(keys_command(&settings, command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn keys_command(settings: &Settings, command: KeysCommand) -> Result<(), String> {
    let url = &settings.store.url;
    if *url == crate::config::StoreUrl::Memory {
        return Err(
            "store.url is `memory`: keys would vanish when this command exits; configure `sqlite://PATH` or `redis://...`"
                .into(),
        );
    }
    let store = crate::store::Store::connect(url, crate::store::Clock::System)
        .await
        .map_err(|e| format!("cannot open the store: {e}"))?;
    match command {
        KeysCommand::Create {
            name,
            models,
            regions,
            rpm,
            tpm,
            daily_tokens,
            expires,
            ..
        } => {
            let spec = admin::NewKey {
                name,
                models,
                regions,
                rpm,
                tpm,
                daily_tokens,
                expires,
            };
            let known: Vec<String> = settings.regions.keys().cloned().collect();
            let created = admin::create_key(&store, spec, &known)
                .await
                .map_err(|e| e.to_string())?;
            let r = &created.record;
            eprintln!(
                "Created key '{}' (id {}). It is shown only this once; store it now:",
                r.name, r.id
            );
            println!("{}", created.key.expose());
            if settings.auth.mode != AuthMode::Keys {
                eprintln!(
                    "note: auth.mode is \"none\": keys are not required until it is set to \"keys\""
                );
            }
        }
        KeysCommand::List { format, .. } => {
            let keys = admin::list_keys(&store).await.map_err(|e| e.to_string())?;
            match format {
                OutputFormat::Table => print!("{}", admin::keys_table(&keys)),
                OutputFormat::Json => println!("{}", pretty(&keys)),
                OutputFormat::Csv => return Err("keys list supports --format table|json".into()),
            }
        }
        KeysCommand::Revoke { id_or_name, .. } => {
            let key = admin::revoke_key(&store, &id_or_name)
                .await
                .map_err(|e| e.to_string())?;
            println!("revoked key '{}' ({})", key.name, key.id);
        }
        KeysCommand::Usage { since, format, .. } => {
            let lines = admin::usage(&store, since.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            match format {
                OutputFormat::Table => print!("{}", admin::usage_table(&lines)),
                OutputFormat::Json => println!("{}", pretty(&lines)),
                OutputFormat::Csv => print!("{}", admin::usage_csv(&lines)),
            }
        }
    }
    Ok(())
}

/// Pretty JSON (serializing plain data cannot fail; if it did, say so in the output).
fn pretty<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("\"{e}\""))
}

/// Longest a health probe may take; Docker's own `--timeout` is the outer bound.
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(2);

fn run_healthcheck(url: &str) -> ExitCode {
    let runtime = match start_runtime(tokio::runtime::Builder::new_current_thread(), "unhealthy") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(probe(url)) {
        Ok(status) if status.is_success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("unhealthy: {url} answered {status}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("unhealthy: {url}: {err}");
            ExitCode::FAILURE
        }
    }
}

/// One GET, bounded as a whole, over plain HTTP (no proxy is ever read, so a container's
/// `HTTP_PROXY` cannot swallow a loopback probe). The error names the innermost cause.
async fn probe(url: &str) -> Result<http::StatusCode, String> {
    use hyper_util::client::legacy::Client;
    let uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    let client = Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    match tokio::time::timeout(HEALTHCHECK_TIMEOUT, client.get(uri)).await {
        Err(_) => Err(format!("no answer within {HEALTHCHECK_TIMEOUT:?}")),
        Ok(Ok(response)) => Ok(response.status()),
        Ok(Err(err)) => Err(crate::error::chain(&err)
            .last()
            .map_or_else(String::new, |cause| cause.to_string())),
    }
}

/// The configuration, or the exit code for a bad one (2, like a usage error) after saying why.
fn load_settings(path: Option<&std::path::Path>) -> Result<Settings, ExitCode> {
    Settings::load(path).map_err(|err| {
        eprintln!("error: {err}");
        ExitCode::from(2)
    })
}

/// A runtime from `builder`, or a failure exit after saying why; `prefix` is the word a
/// command's messages start with (`error`, or `unhealthy` for the health check).
fn start_runtime(
    mut builder: tokio::runtime::Builder,
    prefix: &str,
) -> Result<tokio::runtime::Runtime, ExitCode> {
    builder.enable_all().build().map_err(|err| {
        eprintln!("{prefix}: cannot start the async runtime: {err}");
        ExitCode::FAILURE
    })
}

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn run_check(path: Option<PathBuf>) -> ExitCode {
    let settings = match load_settings(path.as_deref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    print!("{}", settings.describe(env_lookup));
    if let Some(path) = &settings.upstream.extra_ca_file
        && let Err(err) = crate::upstream::read_ca_file(path)
    {
        eprintln!("error: {err}");
        return ExitCode::from(2);
    }
    match settings.resolve_regions(env_lookup) {
        Ok(resolution) => {
            for warning in &resolution.warnings {
                eprintln!("warning: {warning}");
            }
            let names: Vec<&str> = resolution.usable.iter().map(|r| r.name.as_str()).collect();
            eprintln!("configuration OK; usable regions: {}", names.join(", "));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}

/// Installs the log subscriber. Lines are written by a background thread (the returned guard
/// flushes it on drop), so a request never waits on a `write` to stderr; colours only on a
/// terminal. Both were measured hot (bench/PROFILE.md: ~20% of a pass-through request).
fn init_logging(
    settings: &Settings,
    format: Option<LogFormatArg>,
) -> tracing_appender::non_blocking::WorkerGuard {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        Some(LogFormatArg::Json) => true,
        Some(LogFormatArg::Text) => false,
        None => settings.log.format == LogFormat::Json,
    };
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.fmt_fields(crate::log_fields::PlainFields).init();
    }
    guard
}

fn run_serve(path: Option<PathBuf>, log_format: Option<LogFormatArg>) -> ExitCode {
    let settings = match load_settings(path.as_deref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let _log_guard = init_logging(&settings, log_format);
    let resolution = match settings.resolve_regions(env_lookup) {
        Ok(r) => r,
        Err(err) => {
            tracing::error!("{err}");
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    for warning in &resolution.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match start_runtime(tokio::runtime::Builder::new_multi_thread(), "error") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = runtime.block_on(async move {
        let listen = settings.server.listen;
        let store = crate::store::Store::connect(&settings.store.url, crate::store::Clock::System)
            .await
            .map_err(|e| format!("cannot open the store: {e}"))?;
        // Like region keys, the admin token may come from a mounted file (`<VAR>_FILE`).
        let admin_token = crate::config::secret_from_env(&settings.auth.admin_token_env, env_lookup)
            .map_err(|e| e.to_string())?
            .map(|(secret, _)| secret);
        warn_about_auth(&settings, &store, admin_token.as_ref()).await;
        crate::telemetry::install();
        let session_secret =
            crate::config::secret_from_env(&settings.admin.session_secret_env, env_lookup)
                .map_err(|e| e.to_string())?
                .map(|(secret, _)| secret);
        let state = AppState::new(settings, resolution.usable, store)
            .map_err(|e| e.to_string())?
            .with_admin_token(admin_token)
            .with_session_secret(session_secret)
            .map_err(|e| e.to_string())?;
        state
            .conversations
            .spawn_purger(std::time::Duration::from_secs(600));
        let shutdown = shutdown_signal()
            .map_err(|e| format!("cannot install the SIGTERM/SIGINT handlers: {e}"))?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let regions: Vec<&str> = state.upstream.regions().iter().map(|r| r.name()).collect();
        tracing::info!(%addr, regions = %regions.join(","), "qwen-gateway listening on http://{addr}/v1");
        server::serve(listener, state, shutdown)
            .await
            .map_err(|e| format!("server error: {e}"))
    });
    // Bounded: a blocking task (e.g. a stuck DNS lookup) must not delay the exit.
    runtime.shutdown_timeout(server::RUNTIME_STOP);
    match result {
        Ok(()) => {
            tracing::info!("qwen-gateway stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!("{err}");
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Start-up notes an operator of a team gateway needs: where keys live and whether any do.
async fn warn_about_auth(
    settings: &Settings,
    store: &crate::store::Store,
    admin_token: Option<&crate::config::Secret>,
) {
    let var = &settings.auth.admin_token_env;
    match admin_token.map(|t| t.expose()) {
        Some(token) if token.trim().len() >= 16 => {
            tracing::info!("admin API enabled at /admin (token from {var})")
        }
        Some(token) if !token.trim().is_empty() => {
            tracing::warn!(
                "admin API enabled with a short token ({var}): use 16+ random characters"
            )
        }
        _ => tracing::debug!("admin API disabled ({var} and {var}_FILE unset)"),
    }
    if settings.auth.mode != AuthMode::Keys {
        return;
    }
    if store.backend() == "memory" {
        tracing::warn!(
            "auth.mode is \"keys\" with store.url = \"memory\": only keys created through /admin exist, and only until restart"
        );
    }
    match store.list_keys().await {
        Ok(keys)
            if keys
                .iter()
                .all(|k| !k.is_active(crate::calendar::now_secs())) =>
        {
            tracing::warn!(
                "auth.mode is \"keys\" but there is no active key yet: create one with `qwen-gateway keys create --name NAME`"
            )
        }
        Ok(keys) => tracing::info!(keys = keys.len(), "team keys required on /v1"),
        Err(err) => tracing::warn!(error = %err, "cannot list team keys"),
    }
}

/// Installs the SIGINT/SIGTERM handlers now and returns a future that resolves on either.
/// Installing before the "listening" line matters: a signal that arrives before a lazily
/// registered handler would kill the process with the default action (no drain, exit by
/// signal), e.g. a `docker stop` right after start.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("shutdown signal received; draining");
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown signal received; draining");
    })
}
