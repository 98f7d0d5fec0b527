//! Sections 4–5, what the servers hold: many open streams (memory and CPU), and idle and peak RSS.

use super::{Ctx, LITELLM, mb};
use std::fmt::Write;

/// 4. Many open streams: time to open them, RSS and CPU while they are held.
pub(super) fn open_streams(w: &mut String, c: &mut Ctx) {
    let s = c.s;
    let p = &s.plan;
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
}

/// 5. Memory: idle RSS after start-up and peak RSS at the end of the run.
pub(super) fn memory(w: &mut String, c: &mut Ctx, names: &[String]) {
    let have = |n: &str| names.iter().any(|x| x == n);
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
    for n in names {
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
}
