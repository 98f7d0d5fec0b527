//! The command line: the subcommands and the `suite` options, as clap parses them.

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Side-by-side gateway benchmark (see bench/run.sh)")]
pub(crate) enum Cli {
    /// Runs all scenarios against the targets listed in a targets.json written by run.sh.
    Suite(SuiteArgs),
    /// Holds N slow streams open through one server (the open-streams scenario alone).
    Streams {
        /// Base URL below which /responses lives, e.g. http://127.0.0.1:8080/v1
        #[arg(long)]
        base: String,
        #[arg(long, default_value_t = 1000)]
        n: usize,
        /// Server process to read.
        #[arg(long)]
        pid: Option<u32>,
        #[arg(long, default_value_t = 5)]
        hold_secs: u64,
    },
    /// The cost of keeping secrets out of relayed bytes (`upstream::scrub`), per event.
    Scrub {
        /// Streams of 200 events to push through the scrubber.
        #[arg(long, default_value_t = 2000)]
        streams: usize,
    },
    /// A bare forwarding proxy (hyper server + hyper client, no parsing): the floor of one hop.
    Forward {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// Base URL to forward to; a leading /v1 of the request path is dropped.
        #[arg(long)]
        upstream: String,
        /// Speak HTTP/2 with prior knowledge (h2c) upstream, as qwen-gateway's
        /// `http2 = "prior_knowledge"` does.
        #[arg(long)]
        h2c: bool,
    },
}

#[derive(clap::Args, Debug, Clone)]
pub struct SuiteArgs {
    /// targets.json from run.sh.
    #[arg(long)]
    pub(crate) targets: String,
    /// Directory for results.json.
    #[arg(long)]
    pub(crate) out: String,
    /// Where to write the markdown report.
    #[arg(long)]
    pub(crate) report: String,
    /// The oha binary.
    #[arg(long, default_value = "oha")]
    pub(crate) oha: String,
    /// Short smoke run.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Rounds (figures are medians over rounds); default 1 with --quick, else 3.
    #[arg(long)]
    pub(crate) rounds: Option<usize>,
    /// Command line to print in the report.
    #[arg(long, default_value = "bench/run.sh")]
    pub(crate) command: String,
}
