//! `qwen-bench suite`: drives every scenario of bench/run.sh against the mock Model Studio
//! directly (the floor), qwen-gateway, LiteLLM and Portkey, all on loopback, and writes
//! `results.json` (every figure of every round, plus raw latency samples for the chart) and
//! `RESULTS.md` (medians over rounds, ratios against direct and LiteLLM, targets met/missed).
//!
//! Load comes from `oha` (closed loop at fixed concurrency, and open loop at a fixed rate with
//! latency correction); sequential latency and SSE timing (first and last byte) come from this
//! client, interleaving the targets request by request so drift on the machine hits all alike.

mod cli;
mod figures;
mod forward;
mod load;
mod procfs;
mod report;
mod scenarios;
mod scrub;
mod sequential;
mod streams;
mod suite;
mod target;

use clap::Parser;
use cli::Cli;
use std::time::Duration;
use target::{Api, Target};

#[tokio::main]
async fn main() {
    let result = match Cli::parse() {
        Cli::Suite(a) => suite::run(a).await,
        Cli::Forward {
            listen,
            upstream,
            h2c,
        } => forward::run(&listen, &upstream, h2c).await,
        Cli::Scrub { streams } => {
            scrub::run(streams);
            Ok(())
        }
        Cli::Streams {
            base,
            n,
            pid,
            hold_secs,
        } => {
            let t = Target {
                name: "target".into(),
                base: base.trim_end_matches('/').to_owned(),
                pid,
                headers: Vec::new(),
                chat_model: target::MODEL.into(),
                direct: false,
                unavailable: None,
                chat_na: None,
                api_na: Vec::new(),
                log: None,
            };
            let call = t.call(Api::ResponsesStream);
            let hold = Duration::from_secs(hold_secs);
            streams::run(&call, n, 256, Duration::from_secs(60), hold, pid)
                .await
                .map(|r| println!("{r:?}"))
        }
    };
    if let Err(e) = result {
        eprintln!("qwen-bench: {e}");
        std::process::exit(1);
    }
}
