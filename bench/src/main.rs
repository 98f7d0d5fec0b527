//! Side-by-side latency benchmark: the same requests sent to the mock Model Studio directly
//! and through qwen-gateway, interleaved (A, B, A, B, …) so drift on the machine hits both
//! sides alike. Prints a markdown table of medians and tails, and the gateway's added latency.

use clap::Parser;
use futures_util::StreamExt;
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
struct Args {
    /// Mock Model Studio base URL (the gateway's upstream), e.g. http://127.0.0.1:9000
    #[arg(long)]
    direct: String,
    /// Gateway base URL, e.g. http://127.0.0.1:8080/v1
    #[arg(long)]
    gateway: String,
    /// Rounds; each round measures every scenario, and figures are medians over rounds.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Requests per side, per scenario, per round.
    #[arg(long, default_value_t = 300)]
    requests: usize,
    /// Tokens (SSE delta events) in streamed answers.
    #[arg(long, default_value_t = 200)]
    stream_tokens: usize,
}

/// One way of asking: a URL, a body, and whether to time the first byte of a stream.
#[derive(Clone)]
struct Call {
    url: String,
    body: serde_json::Value,
    tokens: usize,
}

#[derive(Default, Clone)]
struct Samples {
    total: Vec<Duration>,
    first_byte: Vec<Duration>,
}

async fn run_once(
    client: &reqwest::Client,
    call: &Call,
    samples: &mut Samples,
) -> Result<(), String> {
    let start = Instant::now();
    let res = client
        .post(&call.url)
        .header("x-mock-tokens", call.tokens.to_string())
        .bearer_auth("sk-bench-client")
        .json(&call.body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("status {} from {}", res.status(), call.url));
    }
    let mut stream = res.bytes_stream();
    let mut first = None;
    while let Some(chunk) = stream.next().await {
        chunk.map_err(|e| e.to_string())?;
        first.get_or_insert_with(|| start.elapsed());
    }
    samples.total.push(start.elapsed());
    samples
        .first_byte
        .push(first.unwrap_or_else(|| start.elapsed()));
    Ok(())
}

fn percentile(values: &[Duration], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut v = values.to_vec();
    v.sort();
    let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[idx.min(v.len() - 1)]
}

fn median_f(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Scenario {
    name: &'static str,
    a_label: &'static str,
    b_label: &'static str,
    a: Call,
    b: Call,
    /// Report time to first byte instead of the whole exchange.
    first_byte: bool,
}

/// Per-round p50/p99 of both sides; the table shows medians over rounds.
#[derive(Default)]
struct Rounds {
    a_p50: Vec<f64>,
    b_p50: Vec<f64>,
    a_p99: Vec<f64>,
    b_p99: Vec<f64>,
    added_p50: Vec<f64>,
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let model = "qwen3-max-2026-01-23";
    let direct = format!("{}/responses", args.direct.trim_end_matches('/'));
    let gw = args.gateway.trim_end_matches('/');
    let plain = json!({"model": model, "input": "hello"});
    let streamed = json!({"model": model, "input": "hello", "stream": true});
    let chat = json!({"model": model, "messages": [{"role": "user", "content": "hello"}]});
    let chat_stream =
        json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hello"}]});
    let call = |url: &str, body: &serde_json::Value, tokens: usize| Call {
        url: url.to_owned(),
        body: body.clone(),
        tokens,
    };
    let gw_responses = format!("{gw}/responses");
    let gw_chat = format!("{gw}/chat/completions");
    let st = args.stream_tokens;
    let mut scenarios = vec![
        Scenario {
            name: "responses, non-streaming (16 tokens)",
            a_label: "direct",
            b_label: "gateway",
            a: call(&direct, &plain, 16),
            b: call(&gw_responses, &plain, 16),
            first_byte: false,
        },
        Scenario {
            name: "responses, streaming: time to first byte",
            a_label: "direct",
            b_label: "gateway",
            a: call(&direct, &streamed, st),
            b: call(&gw_responses, &streamed, st),
            first_byte: true,
        },
        Scenario {
            name: "responses, streaming: time to last byte",
            a_label: "direct",
            b_label: "gateway",
            a: call(&direct, &streamed, st),
            b: call(&gw_responses, &streamed, st),
            first_byte: false,
        },
    ];
    let chat_available = client
        .post(&gw_chat)
        .json(&chat)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    if chat_available {
        scenarios.push(Scenario {
            name: "chat vs responses via gateway, non-streaming",
            a_label: "gw responses",
            b_label: "gw chat",
            a: call(&gw_responses, &plain, 16),
            b: call(&gw_chat, &chat, 16),
            first_byte: false,
        });
        scenarios.push(Scenario {
            name: "chat vs responses via gateway, streaming (last byte)",
            a_label: "gw responses",
            b_label: "gw chat",
            a: call(&gw_responses, &streamed, st),
            b: call(&gw_chat, &chat_stream, st),
            first_byte: false,
        });
    }
    // Warm up connection pools and caches on every path.
    for s in &scenarios {
        let mut sink = Samples::default();
        for _ in 0..50 {
            run_once(&client, &s.a, &mut sink).await?;
            run_once(&client, &s.b, &mut sink).await?;
        }
    }
    let mut results: Vec<Rounds> = scenarios.iter().map(|_| Rounds::default()).collect();
    for round in 0..args.rounds {
        for (s, r) in scenarios.iter().zip(results.iter_mut()) {
            let (mut a, mut b) = (Samples::default(), Samples::default());
            for _ in 0..args.requests {
                run_once(&client, &s.a, &mut a).await?;
                run_once(&client, &s.b, &mut b).await?;
            }
            let pick = |x: &Samples| {
                if s.first_byte {
                    x.first_byte.clone()
                } else {
                    x.total.clone()
                }
            };
            let (av, bv) = (pick(&a), pick(&b));
            r.a_p50.push(us(percentile(&av, 0.5)));
            r.b_p50.push(us(percentile(&bv, 0.5)));
            r.a_p99.push(us(percentile(&av, 0.99)));
            r.b_p99.push(us(percentile(&bv, 0.99)));
            r.added_p50
                .push(us(percentile(&bv, 0.5)) - us(percentile(&av, 0.5)));
        }
        eprintln!("round {} of {} done", round + 1, args.rounds);
    }
    println!(
        "{} rounds × {} requests per side per scenario, sequential (concurrency 1), interleaved; figures in µs, medians over rounds.\n",
        args.rounds, args.requests
    );
    println!("| scenario | A | B | A p50 | B p50 | added p50 (B−A) | A p99 | B p99 | B/A p50 |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|");
    for (s, r) in scenarios.iter().zip(results) {
        let (a50, b50) = (median_f(r.a_p50), median_f(r.b_p50));
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} |",
            s.name,
            s.a_label,
            s.b_label,
            a50,
            b50,
            median_f(r.added_p50),
            median_f(r.a_p99),
            median_f(r.b_p99),
            if a50 > 0.0 { b50 / a50 } else { 0.0 }
        );
    }
    Ok(())
}
