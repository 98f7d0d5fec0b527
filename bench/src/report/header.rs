//! The report's opening: the run, the machine and versions, and what each target under test is.

use crate::suite::Suite;
use std::fmt::Write;

fn machine() -> Vec<(String, String)> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let mem = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kb| format!("{:.0} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_default();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    vec![
        ("nproc".into(), nproc.to_string()),
        ("CPU".into(), cpu),
        ("memory".into(), mem),
        (
            "kernel".into(),
            read("/proc/sys/kernel/osrelease").trim().to_owned(),
        ),
    ]
}

/// The title, how and where the run was made, and the targets under test.
pub(super) fn write(w: &mut String, s: &Suite) {
    let p = &s.plan;
    let _ = writeln!(w, "# Benchmark results\n");
    let _ = writeln!(
        w,
        "Produced by `{}` on {} ({} mode, {} round{}; every figure is the median over rounds). \
         Everything runs on loopback on one machine: load generator, gateway and the mock Model \
         Studio (`--no-split`, no artificial delay unless stated) share its cores, so absolute \
         figures are lower than on a dedicated box; compare rows within this run.\n",
        s.args.command,
        s.date,
        if p.quick { "quick" } else { "full" },
        p.rounds,
        if p.rounds == 1 { "" } else { "s" }
    );
    let _ = writeln!(w, "| machine | |\n|---|---|");
    for (k, v) in machine() {
        let _ = writeln!(w, "| {k} | {v} |");
    }
    let _ = writeln!(
        w,
        "| load average (1, 5, 15 min) | {} at start, {} at end |",
        s.load_before, s.load_after
    );
    for (k, v) in &s.setup.versions {
        let _ = writeln!(w, "| {k} | {v} |");
    }
    let _ = writeln!(w);

    let _ = writeln!(
        w,
        "Under test, each on loopback in front of the same mock:\n"
    );
    let _ = writeln!(
        w,
        "- **direct**: the client talks to the mock itself: the floor every gateway adds to.\n\
         - **qwen-gateway**: release build, default settings (access log at `info` to a file, \
         no persistent store).\n\
         - **nginx**: a reverse proxy with upstream keepalive, buffering off, no access log, one \
         process: the floor of one hop in C (`/v1/responses` only).\n\
         - **LiteLLM**: `litellm --config` proxy, one worker per core, master key, an \
         OpenAI-compatible provider with `api_base` = the mock, list prices in `model_info` \
         (unpriced models make it diagnose every $0 cost, which costs more still); chat goes \
         through its Responses bridge (`openai/responses/…`).\n\
         - **Portkey**: `@portkey-ai/gateway` `start-server.js --headless` (one Node.js \
         process), `x-portkey-provider: openai` and `x-portkey-custom-host:` the mock.\n"
    );
}
