//! `mock-model-studio`: the mock as a process, for SDK tests and benchmarks.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use mock_model_studio::{MockConfig, MockServer};

/// A faithful mock of Alibaba Cloud Model Studio's Responses API.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Comma-separated API keys to accept; by default any non-empty Bearer token.
    #[arg(long, value_delimiter = ',')]
    keys: Vec<String>,
    /// Textbook SSE framing instead of Model Studio's quirks.
    #[arg(long)]
    no_quirks: bool,
    /// Write every SSE event in one piece.
    #[arg(long)]
    no_split: bool,
    /// Pause between SSE events, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Answer length in tokens (default: the canned answer).
    #[arg(long)]
    tokens: Option<usize>,
    /// Keep only the latest N requests in the `/_mock/requests` log (0: all).
    #[arg(long, default_value_t = 10_000)]
    max_recorded: usize,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let config = MockConfig {
        keys: args.keys.into_iter().filter(|k| !k.is_empty()).collect(),
        quirks: !args.no_quirks,
        split_writes: !args.no_split,
        delay: Duration::from_millis(args.delay_ms),
        tokens: args.tokens,
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let server = MockServer::start_on(listener, config).await?;
    server.set_record_limit(args.max_recorded);
    {
        // The one line a harness waits for to learn the port.
        let mut out = std::io::stdout().lock();
        writeln!(out, "mock-model-studio listening on {}", server.base_url())?;
        out.flush()?;
    }
    shutdown_signal().await;
    server.shutdown().await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
