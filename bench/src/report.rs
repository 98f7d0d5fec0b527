//! RESULTS.md: medians over rounds, ratios against direct and LiteLLM, and the targets.

use crate::figures::median;
use crate::suite::Suite;
use std::fmt::Write;

const GW: &str = "qwen-gateway";
const LITELLM: &str = "LiteLLM";
const PORTKEY: &str = "Portkey";
/// `qwen-bench forward`: the floor of one extra hop with the gateway's HTTP stack.
const FLOOR: &str = "bare forwarder";

/// Collects "n/a" reasons as numbered notes.
struct Notes(Vec<String>);

impl Notes {
    fn mark(&mut self, who: &str, what: &str, why: &str) -> String {
        let text = format!("{who}, {what}: {why}");
        let i = match self.0.iter().position(|n| *n == text) {
            Some(i) => i,
            None => {
                self.0.push(text);
                self.0.len() - 1
            }
        };
        format!("n/a [{}]", i + 1)
    }

    /// A numbered note that is not an n/a (e.g. a capped count).
    fn note(&mut self, who: &str, what: &str, why: &str) -> String {
        self.mark(who, what, why).replacen("n/a ", "", 1)
    }
}

fn mb(kb: f64) -> f64 {
    kb * 1024.0 / 1e6
}

struct Ctx<'a> {
    s: &'a Suite,
    notes: Notes,
    direct: String,
}

impl Ctx<'_> {
    fn med(&self, key: &str, t: &str) -> Option<f64> {
        self.s.figures.median(key, t)
    }

    /// Median of per-round ratios `key[t] / key[base]` (ratio of medians if rounds differ).
    fn ratio(&self, key: &str, t: &str, base: &str) -> Option<f64> {
        let m = self.s.figures.values.get(key)?;
        let (a, b) = (m.get(t)?, m.get(base)?);
        if a.len() == b.len() {
            median(
                a.iter()
                    .zip(b)
                    .filter(|(_, y)| **y != 0.0)
                    .map(|(x, y)| x / y)
                    .collect(),
            )
        } else {
            Some(median(a.clone())? / median(b.clone())?)
        }
    }

    /// A figure, or "n/a [k]" with the recorded reason, or "—".
    fn cell(
        &mut self,
        key: &str,
        na_key: &str,
        t: &str,
        what: &str,
        fmt: impl Fn(f64) -> String,
    ) -> String {
        if let Some(v) = self.med(key, t) {
            return fmt(v);
        }
        let why = self
            .s
            .figures
            .why_na(na_key, t)
            .or_else(|| self.s.figures.why_na(key, t))
            .map(str::to_owned);
        match why {
            Some(why) => self.notes.mark(t, what, &why),
            None => "—".into(),
        }
    }

    fn ratio_cell(&self, key: &str, t: &str, base: &str) -> String {
        match self.ratio(key, t, base) {
            Some(r) if t == base => format!("{r:.2}×").replace("1.00×", "1×"),
            Some(r) if r >= 10.0 => format!("{r:.0}×"),
            Some(r) if r >= 0.1 => format!("{r:.2}×"),
            Some(r) if r >= 0.01 => format!("{r:.3}×"),
            Some(r) => format!("{r:.4}×"),
            None => "—".into(),
        }
    }
}

fn us0(v: f64) -> String {
    format!("{v:.0}")
}
fn signed(v: f64) -> String {
    format!("{v:+.0}")
}
fn ms1(v: f64) -> String {
    format!("{:.1}", v / 1000.0)
}
fn ms2(v: f64) -> String {
    format!("{:.2}", v / 1000.0)
}

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

pub fn render(s: &Suite) -> String {
    let direct = s
        .setup
        .targets
        .iter()
        .find(|t| t.direct)
        .map(|t| t.name.clone())
        .unwrap_or_default();
    let mut c = Ctx {
        s,
        notes: Notes(Vec::new()),
        direct,
    };
    let names: Vec<String> = s.setup.targets.iter().map(|t| t.name.clone()).collect();
    let have = |n: &str| names.iter().any(|x| x == n);
    let p = &s.plan;
    let mut md = String::new();
    let w = &mut md;

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
         - **LiteLLM**: `litellm --config` proxy, one worker per core, master key, an \
         OpenAI-compatible provider with `api_base` = the mock, list prices in `model_info` \
         (unpriced models make it diagnose every $0 cost, which costs more still); chat goes \
         through its Responses bridge (`openai/responses/…`).\n\
         - **Portkey**: `@portkey-ai/gateway` `start-server.js --headless` (one Node.js \
         process), `x-portkey-provider: openai` and `x-portkey-custom-host:` the mock.\n"
    );

    // Targets.
    let _ = writeln!(w, "## Targets\n");
    let _ = writeln!(
        w,
        "| goal (qwen-gateway) | measured | verdict |\n|---|---|---|"
    );
    let verdict = |ok: bool, by: String| {
        if ok {
            format!("**met** ({by})")
        } else {
            format!("**missed** ({by})")
        }
    };
    let row = |w: &mut String, goal: &str, measured: Option<(String, bool, String)>| {
        let (m, v) = match measured {
            Some((m, ok, by)) => (m, verdict(ok, by)),
            None => ("not measured".into(), "—".into()),
        };
        let _ = writeln!(w, "| {goal} | {m} | {v} |");
    };
    let lim = |v: f64, limit: f64, unit: &str| {
        let ok = v <= limit;
        let by = if ok {
            format!("{:.0} {unit} to spare", limit - v)
        } else {
            format!("over by {:.0} {unit}", v - limit)
        };
        (format!("{v:.0} {unit}"), ok, by)
    };
    row(
        w,
        &format!(
            "added p50 ≤ 50 µs, non-streaming, moderate load ({} req/s)",
            p.moderate_rate
        ),
        c.med("mod.added_p50", GW).map(|v| lim(v, 50.0, "µs")),
    );
    row(
        w,
        &format!(
            "added p99 ≤ 500 µs, non-streaming, moderate load ({} req/s)",
            p.moderate_rate
        ),
        c.med("mod.added_p99", GW).map(|v| lim(v, 500.0, "µs")),
    );
    row(
        w,
        "added p50 ≤ 50 µs, non-streaming, sequential (concurrency 1; for reference)",
        c.med("c1.added_p50", GW).map(|v| lim(v, 50.0, "µs")),
    );
    row(
        w,
        "added p99 ≤ 500 µs, non-streaming, sequential (for reference)",
        c.med("c1.added_p99", GW).map(|v| lim(v, 500.0, "µs")),
    );
    row(
        w,
        "saturated throughput ≥ 10× LiteLLM's",
        c.ratio("sat.rps", GW, LITELLM).map(|r| {
            let ok = r >= 10.0;
            let by = if ok {
                format!("{:.1}× over the goal", r / 10.0)
            } else {
                format!("{:.1}× short of the goal", 10.0 / r)
            };
            (format!("{r:.1}× LiteLLM"), ok, by)
        }),
    );
    row(
        w,
        "saturated throughput ahead of Portkey's",
        c.ratio("sat.rps", GW, PORTKEY).map(|r| {
            let ok = r > 1.0;
            let by = if ok {
                format!("ahead by {:.0} %", (r - 1.0) * 100.0)
            } else {
                format!("behind by {:.0} %", (1.0 - r) * 100.0)
            };
            (format!("{r:.2}× Portkey"), ok, by)
        }),
    );
    row(
        w,
        "streaming time to first byte added ≤ 1 ms (p50)",
        c.med("sse.added_ttfb_p50", GW)
            .map(|v| lim(v, 1000.0, "µs")),
    );
    row(
        w,
        "streaming time to first text added ≤ 1 ms (p50; the first byte waits for it, see §2)",
        c.med("sse.added_ttft_p50", GW)
            .map(|v| lim(v, 1000.0, "µs")),
    );
    let streams_10k = s
        .streams
        .iter()
        .find(|r| r.target == GW && r.result.as_ref().is_ok_and(|x| x.planned == 10_000));
    row(
        w,
        "10,000 open streams ≤ 200 MB RSS",
        streams_10k
            .and_then(|r| r.result.as_ref().ok())
            .filter(|r| r.opened > 0)
            .map(|r| {
                // Fewer open than planned (descriptor limit): scale the growth per stream.
                let grown = r.rss_kb.saturating_sub(r.rss_before_kb) as f64;
                let at_10k = r.rss_before_kb as f64 + grown * r.planned as f64 / r.opened as f64;
                let (m, ok, by) = lim(mb(at_10k), 200.0, "MB");
                let m = if r.opened == r.planned {
                    m
                } else {
                    format!(
                        "{m} extrapolated from {:.0} MB at {} open streams",
                        mb(r.rss_kb as f64),
                        r.opened
                    )
                };
                (m, ok, by)
            }),
    );
    row(
        w,
        "idle RSS ≤ 20 MB",
        c.med("idle_rss_kb", GW).map(|v| {
            let (_, ok, by) = lim(mb(v), 20.0, "MB");
            (format!("{:.1} MB", mb(v)), ok, by.replace(".0 ", " "))
        }),
    );
    let _ = writeln!(w);
    floor(w, &c);

    // 1. Non-streaming.
    let _ = writeln!(w, "## 1. Non-streaming `/v1/responses` (16-token answer)\n");
    let _ = writeln!(
        w,
        "Latency in µs. *Sequential*: concurrency 1, {} requests per target per round, targets \
         interleaved request by request (qwen-bench). *Moderate*: open loop at {} req/s over {} \
         connections for {} s (oha, latency-corrected; a server that saturates below this rate shows \
         its queue here, not its overhead). *Added* = target − direct, same round.\n",
        p.seq_requests,
        p.moderate_rate,
        p.moderate_connections,
        p.load_duration.as_secs()
    );
    let _ = writeln!(
        w,
        "| target | seq p50 | seq p99 | added p50 | added p99 | moderate p50 | moderate p99 | added p50 | added p99 | p50 × direct |"
    );
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in &names {
        let what = "non-streaming /v1/responses";
        let cells = [
            c.cell("c1.p50", "c1.p50", n, what, us0),
            c.cell("c1.p99", "c1.p50", n, what, us0),
            c.cell("c1.added_p50", "c1.p50", n, what, signed),
            c.cell("c1.added_p99", "c1.p50", n, what, signed),
            c.cell("mod.p50", "mod.rps", n, what, us0),
            c.cell("mod.p99", "mod.rps", n, what, us0),
            c.cell("mod.added_p50", "mod.rps", n, what, signed),
            c.cell("mod.added_p99", "mod.rps", n, what, signed),
            c.ratio_cell("c1.p50", n, &c.direct.clone()),
        ];
        let _ = writeln!(w, "| {n} | {} |", cells.join(" | "));
    }
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "Closed loop (oha, {} s per run): requests/s and latency (µs) at each concurrency; \
         *saturated* is the best of the two. CPU is the server process's user+system time \
         (for direct: the mock's own) per 1,000 requests at saturation.\n",
        p.load_duration.as_secs()
    );
    let mut head = String::from("| target |");
    let mut sep = String::from("|---|");
    for conc in &p.concurrencies {
        let _ = write!(head, " c={conc} req/s | c={conc} p50 | c={conc} p99 |");
        sep.push_str("---:|---:|---:|");
    }
    head.push_str(" saturated req/s | × direct | × LiteLLM | CPU s / 1k req | CPU × LiteLLM |");
    sep.push_str("---:|---:|---:|---:|---:|");
    let _ = writeln!(w, "{head}\n{sep}");
    for n in &names {
        let what = "non-streaming /v1/responses under load";
        let mut cells = Vec::new();
        for conc in &p.concurrencies {
            let k = format!("c{conc}");
            cells.push(c.cell(&format!("{k}.rps"), &format!("{k}.rps"), n, what, us0));
            cells.push(c.cell(&format!("{k}.p50"), &format!("{k}.rps"), n, what, us0));
            cells.push(c.cell(&format!("{k}.p99"), &format!("{k}.rps"), n, what, us0));
        }
        cells.push(c.cell("sat.rps", "c64.rps", n, what, us0));
        cells.push(c.ratio_cell("sat.rps", n, &c.direct.clone()));
        cells.push(if have(LITELLM) {
            c.ratio_cell("sat.rps", n, LITELLM)
        } else {
            "—".into()
        });
        cells.push(c.cell("sat.cpu_per_1k", "c64.rps", n, what, |v| format!("{v:.3}")));
        cells.push(if have(LITELLM) {
            c.ratio_cell("sat.cpu_per_1k", n, LITELLM)
        } else {
            "—".into()
        });
        let _ = writeln!(w, "| {n} | {} |", cells.join(" | "));
    }
    let _ = writeln!(w);

    // 2. Streaming.
    let _ = writeln!(
        w,
        "## 2. Streaming `/v1/responses` ({} events, {} ms apart)\n",
        p.stream_tokens, p.stream_delay_ms
    );
    let _ = writeln!(
        w,
        "Sequential, {} streams per target per round, interleaved. TTFB = first body byte \
         (the first SSE event); TTFT = first answer text (the first `output_text.delta` \
         event); TTLB = last byte. ms. qwen-gateway holds a stream's opening lifecycle events \
         until its first output event so it can still fail over on failures reported inside \
         a 200 (`upstream.hold_first_event`), which moves its first byte, not its first text.\n",
        p.stream_requests
    );
    let _ = writeln!(
        w,
        "| target | TTFB p50 | TTFB p99 | added TTFB p50 | added TTFB p99 | TTFT p50 | added TTFT p50 | TTLB p50 | TTLB p99 | added TTLB p50 | TTLB × direct |"
    );
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in &names {
        let what = "streaming /v1/responses";
        let cells = [
            c.cell("sse.ttfb_p50", "sse.p50", n, what, ms2),
            c.cell("sse.ttfb_p99", "sse.p50", n, what, ms2),
            c.cell("sse.added_ttfb_p50", "sse.p50", n, what, |v| {
                format!("{:+.2}", v / 1000.0)
            }),
            c.cell("sse.added_ttfb_p99", "sse.p50", n, what, |v| {
                format!("{:+.2}", v / 1000.0)
            }),
            c.cell("sse.ttft_p50", "sse.p50", n, what, ms2),
            c.cell("sse.added_ttft_p50", "sse.p50", n, what, |v| {
                format!("{:+.2}", v / 1000.0)
            }),
            c.cell("sse.p50", "sse.p50", n, what, ms1),
            c.cell("sse.p99", "sse.p50", n, what, ms1),
            c.cell("sse.added_p50", "sse.p50", n, what, |v| {
                format!("{:+.2}", v / 1000.0)
            }),
            c.ratio_cell("sse.p50", n, &c.direct.clone()),
        ];
        let _ = writeln!(w, "| {n} | {} |", cells.join(" | "));
    }
    let _ = writeln!(w);

    // 3. Chat completions.
    let _ = writeln!(w, "## 3. `/v1/chat/completions`, plain and streaming\n");
    let _ = writeln!(
        w,
        "qwen-gateway translates Chat Completions to a streaming Responses call upstream; \
         LiteLLM is configured to reach the mock through its Responses API bridge \
         (`openai/responses/…`), the mock having no chat endpoint. The direct row is the \
         equivalent `/responses` call (the floor). Plain: sequential µs and oha at 64 \
         connections; streaming: {} events {} ms apart, ms.\n",
        p.stream_tokens, p.stream_delay_ms
    );
    let _ = writeln!(
        w,
        "| target | plain p50 (µs) | plain p99 | added p50 | req/s c=64 | × LiteLLM | stream TTFB p50 (ms) | added TTFB p50 | stream TTLB p50 | added TTLB p50 |"
    );
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in &names {
        let what = "/v1/chat/completions";
        let label = if *n == c.direct {
            format!("{n} (`/responses`)")
        } else {
            n.clone()
        };
        let cells = [
            c.cell("chat.p50", "chat.p50", n, what, us0),
            c.cell("chat.p99", "chat.p50", n, what, us0),
            c.cell("chat.added_p50", "chat.p50", n, what, signed),
            c.cell("chatc64.rps", "chatc64.rps", n, what, us0),
            if have(LITELLM) {
                c.ratio_cell("chatc64.rps", n, LITELLM)
            } else {
                "—".into()
            },
            c.cell("chatsse.ttfb_p50", "chatsse.p50", n, what, ms2),
            c.cell("chatsse.added_ttfb_p50", "chatsse.p50", n, what, |v| {
                format!("{:+.2}", v / 1000.0)
            }),
            c.cell("chatsse.p50", "chatsse.p50", n, what, ms1),
            c.cell("chatsse.added_p50", "chatsse.p50", n, what, |v| {
                format!("{:+.2}", v / 1000.0)
            }),
        ];
        let _ = writeln!(w, "| {label} | {} |", cells.join(" | "));
    }
    let _ = writeln!(w);

    // 4. Open streams.
    let _ = writeln!(w, "## 4. Many open streams\n");
    let _ = writeln!(
        w,
        "Slow streams (one event every {} ms) opened 256 at a time, held {} s once all are \
         open, then dropped. RSS is the server's largest VmRSS while held; CPU is its share \
         of one core while held (relaying ~N events/s).\n",
        p.slow_delay_ms,
        p.hold.as_secs()
    );
    let _ = writeln!(
        w,
        "| target | streams | opened | time to open (s) | RSS before (MB) | RSS held (MB) | KB / stream | CPU held (% core) | CPU to open (s) | RSS × LiteLLM |"
    );
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &s.streams {
        match &r.result {
            Ok(x) => {
                let per = if x.opened > 0 {
                    format!(
                        "{:.1}",
                        (x.rss_kb.saturating_sub(x.rss_before_kb)) as f64 * 1.024 / x.opened as f64
                    )
                } else {
                    "—".into()
                };
                let vs = s
                    .streams
                    .iter()
                    .find(|o| {
                        o.target == LITELLM
                            && o.result.as_ref().is_ok_and(|y| y.planned == x.planned)
                    })
                    .and_then(|o| o.result.as_ref().ok())
                    // Only a like-for-like comparison: the same number of streams open.
                    .filter(|y| y.rss_kb > 0 && y.opened == x.opened)
                    .map_or("—".into(), |y| {
                        format!("{:.2}×", x.rss_kb as f64 / y.rss_kb as f64)
                    });
                let mut opened = format!("{}", x.opened);
                if let Some(why) = &x.capped {
                    opened = format!("{opened} {}", c.notes.note(&r.target, "open streams", why));
                }
                if x.failed > 0 {
                    let why = x.first_error.clone().unwrap_or_default();
                    opened = format!(
                        "{opened} ({} failed: {})",
                        x.failed,
                        why.chars().take(80).collect::<String>()
                    );
                }
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} |",
                    r.target,
                    x.planned,
                    opened,
                    x.open_secs,
                    mb(x.rss_before_kb as f64),
                    mb(x.rss_kb as f64),
                    per,
                    x.hold_cpu_pct.map_or("—".into(), |v| format!("{v:.0}")),
                    x.open_cpu_secs.map_or("—".into(), |v| format!("{v:.2}")),
                    vs
                );
            }
            Err(why) => {
                let n = c.notes.mark(&r.target, "open streams", why);
                let _ = writeln!(w, "| {} | | {n} | | | | | | | |", r.target);
            }
        }
    }
    let _ = writeln!(w);

    // 5. Memory.
    let _ = writeln!(w, "## 5. Memory\n");
    let _ = writeln!(
        w,
        "Idle RSS: right after start-up, before any request. Peak: VmHWM at the end of the run \
         (after the open-streams scenario). Process trees are summed (LiteLLM's workers). \
         For direct, the mock's own.\n"
    );
    let _ = writeln!(
        w,
        "| target | idle RSS (MB) | peak RSS (MB) | idle × LiteLLM | peak × LiteLLM |"
    );
    let _ = writeln!(w, "|---|---:|---:|---:|---:|");
    for n in &names {
        let cells = [
            c.cell("idle_rss_kb", "idle_rss_kb", n, "memory", |v| {
                format!("{:.1}", mb(v))
            }),
            c.cell("peak_rss_kb", "peak_rss_kb", n, "memory", |v| {
                format!("{:.1}", mb(v))
            }),
            if have(LITELLM) {
                c.ratio_cell("idle_rss_kb", n, LITELLM)
            } else {
                "—".into()
            },
            if have(LITELLM) {
                c.ratio_cell("peak_rss_kb", n, LITELLM)
            } else {
                "—".into()
            },
        ];
        let _ = writeln!(w, "| {n} | {} |", cells.join(" | "));
    }
    let _ = writeln!(w);

    let _ = writeln!(w, "## Notes and n/a\n");
    if c.notes.0.is_empty() {
        let _ = writeln!(w, "Every target ran every scenario.");
    }
    for (i, n) in c.notes.0.iter().enumerate() {
        let _ = writeln!(w, "{}. {}", i + 1, n.replace('|', "\\|"));
    }
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "Latency distributions (sequential runs, all rounds): `bench/latency.png`. \
         Raw figures of every round: `bench/out/results.json`."
    );
    md
}

/// KB of RSS per held stream in `target`'s largest open-streams run.
fn kb_per_stream(s: &Suite, target: &str) -> Option<f64> {
    s.streams
        .iter()
        .filter(|r| r.target == target)
        .filter_map(|r| r.result.as_ref().ok())
        .filter(|x| x.opened > 0)
        .max_by_key(|x| x.opened)
        .map(|x| x.rss_kb.saturating_sub(x.rss_before_kb) as f64 * 1.024 / x.opened as f64)
}

/// What the machine charges for one extra hop, whoever makes it: the bare forwarder's
/// figures beside qwen-gateway's, so a missed target can be read against its floor.
fn floor(w: &mut String, c: &Ctx) {
    let us = |key: &str, t: &str| c.med(key, t).map_or("—".into(), |v| format!("{v:.0} µs"));
    let kb = |t: &str| kb_per_stream(c.s, t).map_or("—".into(), |v| format!("{v:.1} KB"));
    let _ = writeln!(
        w,
        "**The floor of one hop.** *{FLOOR}* (`qwen-bench forward`: hyper's HTTP/1.1 server in \
         front of reqwest, as in qwen-gateway, bodies streamed through unparsed, nothing logged) \
         is what any Rust proxy on this stack pays here for the extra process and loopback hop.\n"
    );
    let _ = writeln!(
        w,
        "| added over direct | {FLOOR} | qwen-gateway |\n|---|---:|---:|"
    );
    for (label, key) in [
        ("moderate load p50", "mod.added_p50"),
        ("moderate load p99", "mod.added_p99"),
        ("sequential p50", "c1.added_p50"),
        ("sequential p99", "c1.added_p99"),
        ("streaming TTFB p50", "sse.added_ttfb_p50"),
        ("streaming first text p50", "sse.added_ttft_p50"),
    ] {
        let _ = writeln!(w, "| {label} | {} | {} |", us(key, FLOOR), us(key, GW));
    }
    let _ = writeln!(w, "| RSS per open stream | {} | {} |\n", kb(FLOOR), kb(GW));
}
