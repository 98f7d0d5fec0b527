//! The "Targets" section: qwen-gateway's goals met or missed, and the floor of one hop beside them.

use super::{Ctx, FLOOR, GW, LITELLM, NGINX, PORTKEY, mb};
use crate::suite::Suite;
use std::fmt::Write;

/// Each of qwen-gateway's goals, what was measured and by how much it is met or missed.
pub(super) fn table(w: &mut String, c: &Ctx) {
    let s = c.s;
    let p = &s.plan;
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

/// What the machine charges for one extra hop, whoever makes it: nginx (a reverse proxy in
/// C) and the bare forwarder beside qwen-gateway, so a missed target can be read against
/// its floor.
pub(super) fn floor(w: &mut String, c: &Ctx) {
    let us = |key: &str, t: &str| c.med(key, t).map_or("—".into(), |v| format!("{v:.0} µs"));
    let kb = |t: &str| kb_per_stream(c.s, t).map_or("—".into(), |v| format!("{v:.1} KB"));
    let times = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.1}×", a / b),
        _ => "—".into(),
    };
    let _ = writeln!(
        w,
        "**The floor of one hop.** *{NGINX}*: a reverse proxy in C with upstream keepalive and \
         buffering off, the floor of one hop. *{FLOOR}* (`qwen-bench forward`: hyper's HTTP/1.1 \
         server in front of hyper's client, as in qwen-gateway, bodies streamed through unparsed, \
         nothing logged): what any Rust proxy on this stack pays here for the extra process and \
         loopback hop.\n"
    );
    let _ = writeln!(
        w,
        "| added over direct | {NGINX} | {FLOOR} | qwen-gateway | qwen-gateway ÷ {NGINX} |\n\
         |---|---:|---:|---:|---:|"
    );
    for (label, key) in [
        ("moderate load p50", "mod.added_p50"),
        ("moderate load p99", "mod.added_p99"),
        ("sequential p50", "c1.added_p50"),
        ("sequential p99", "c1.added_p99"),
        ("streaming TTFB p50", "sse.added_ttfb_p50"),
        ("streaming first text p50", "sse.added_ttft_p50"),
    ] {
        let _ = writeln!(
            w,
            "| {label} | {} | {} | {} | {} |",
            us(key, NGINX),
            us(key, FLOOR),
            us(key, GW),
            times(c.med(key, GW), c.med(key, NGINX))
        );
    }
    let _ = writeln!(
        w,
        "| RSS per open stream | {} | {} | {} | {} |\n",
        kb(NGINX),
        kb(FLOOR),
        kb(GW),
        times(kb_per_stream(c.s, GW), kb_per_stream(c.s, NGINX))
    );
}
