//! Sections 1–3, latency and throughput per API: `/v1/responses` plain and streaming, chat.

use super::{Ctx, LITELLM, ms1, ms2, signed, us0};
use std::fmt::Write;

/// 1. Non-streaming `/v1/responses`: sequential and moderate-load latency, closed-loop throughput.
pub(super) fn non_streaming(w: &mut String, c: &mut Ctx, names: &[String]) {
    let s = c.s;
    let p = &s.plan;
    let have = |n: &str| names.iter().any(|x| x == n);
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
    for n in names {
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
    for n in names {
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
}

/// 2. Streaming `/v1/responses`: time to first byte, first text and last byte.
pub(super) fn streaming(w: &mut String, c: &mut Ctx, names: &[String]) {
    let s = c.s;
    let p = &s.plan;
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
    for n in names {
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
}

/// 3. `/v1/chat/completions`, plain and streaming.
pub(super) fn chat(w: &mut String, c: &mut Ctx, names: &[String]) {
    let s = c.s;
    let p = &s.plan;
    let have = |n: &str| names.iter().any(|x| x == n);
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
    for n in names {
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
}
