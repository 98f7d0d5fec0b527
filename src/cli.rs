//! The command line: `serve`, `check`, `healthcheck` (and later `keys`).

use crate::config::{LogFormat, Settings};
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
        Command::Healthcheck { url } => run_healthcheck(&url),
    }
}

/// Longest a health probe may take; Docker's own `--timeout` is the outer bound.
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(2);

fn run_healthcheck(url: &str) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("unhealthy: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
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

/// One GET, bounded as a whole. No proxy: a container's `HTTP_PROXY` must not swallow a
/// loopback probe.
async fn probe(url: &str) -> Result<reqwest::StatusCode, reqwest::Error> {
    let client = reqwest::Client::builder()
        .timeout(HEALTHCHECK_TIMEOUT)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    Ok(client.get(url).send().await?.status())
}

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn run_check(path: Option<PathBuf>) -> ExitCode {
    let settings = match Settings::load(path.as_deref()) {
        Ok(s) => s,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    print!("{}", settings.describe(env_lookup));
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

fn init_logging(settings: &Settings, format: Option<LogFormatArg>) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        Some(LogFormatArg::Json) => true,
        Some(LogFormatArg::Text) => false,
        None => settings.log.format == LogFormat::Json,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

fn run_serve(path: Option<PathBuf>, log_format: Option<LogFormatArg>) -> ExitCode {
    let settings = match Settings::load(path.as_deref()) {
        Ok(s) => s,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    init_logging(&settings, log_format);
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let listen = settings.server.listen.clone();
        let state = AppState::new(settings, resolution.usable)
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let shutdown = shutdown_signal()
            .map_err(|e| format!("cannot install the SIGTERM/SIGINT handlers: {e}"))?;
        let listener = tokio::net::TcpListener::bind(&listen)
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
    runtime.shutdown_timeout(Duration::from_secs(1));
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
