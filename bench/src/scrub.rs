//! `qwen-bench scrub`: what keeping secrets out of relayed bytes costs per event.
//!
//! Pushes a Model Studio-shaped stream (200 events: `response.created`, text deltas,
//! `response.completed`) through the gateway's own `StreamScrubber`, chunked as the mock
//! writes it, with 0, 1, 2 and 4 secrets configured, and once with a key echoed in every
//! 20th event. Prints ns per event and MB/s (medians of 5 runs).

use bytes::Bytes;
use qwen_gateway::upstream::scrub::{Scrubber, StreamScrubber};
use std::time::Instant;

fn stream(echo_every: Option<usize>, key: &str) -> Vec<Bytes> {
    let mut events = Vec::new();
    events.push(
        "id:0\nevent:response.created\ndata:{\"type\":\"response.created\",\"response\":{\"id\":\"4730f70e-6aa3-9315-b4d1-c43c8e509abc\",\"status\":\"queued\",\"output\":[]},\"sequence_number\":0}\n\n"
            .to_owned(),
    );
    for i in 1..199 {
        let text = match echo_every {
            Some(n) if i % n == 0 => format!("key {key}"),
            _ => "こんにちは".to_owned(),
        };
        events.push(format!(
            "id:{i}\nevent:response.output_text.delta\ndata:{{\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"{text}\",\"sequence_number\":{i}}}\n\n"
        ));
    }
    events.push(
        "id:199\nevent:response.completed\ndata:{\"type\":\"response.completed\",\"response\":{\"id\":\"4730f70e\",\"status\":\"completed\",\"usage\":{\"input_tokens\":10,\"output_tokens\":198}},\"sequence_number\":199}\n\n".to_owned(),
    );
    // Split each event as the mock's split_writes does: inside a line, in three pieces.
    let mut chunks = Vec::new();
    for e in events {
        let b = e.into_bytes();
        let (a, c) = (b.len() / 3, 2 * b.len() / 3);
        chunks.push(Bytes::copy_from_slice(&b[..a]));
        chunks.push(Bytes::copy_from_slice(&b[a..c]));
        chunks.push(Bytes::copy_from_slice(&b[c..]));
    }
    chunks
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(streams: usize) {
    let key = "sk-0123456789abcdef0123456789abcdef";
    let secrets = [
        key,
        "sk-fedcba9876543210fedcba9876543210",
        "admin-token-for-the-bench-7f3a9c",
        "sk-another-region-key-000000000000",
    ];
    println!("| secrets | stream | ns per event | MB/s |");
    println!("|---:|---|---:|---:|");
    for (count, echo) in [(0, None), (1, None), (2, None), (4, None), (2, Some(20))] {
        let mut scrubber = Scrubber::default();
        for (i, s) in secrets.iter().take(count).enumerate() {
            scrubber.add(format!("K{i}"), s);
        }
        let chunks = stream(echo, key);
        let bytes: usize = chunks.iter().map(Bytes::len).sum();
        let mut ns = Vec::new();
        let mut out_len = 0;
        for _ in 0..5 {
            let started = Instant::now();
            for _ in 0..streams {
                let mut st = StreamScrubber::default();
                for c in &chunks {
                    out_len += st.push(&scrubber, c.clone()).len();
                }
                out_len += st.finish().len();
            }
            ns.push(started.elapsed().as_nanos() as f64 / (streams * 200) as f64);
        }
        let per_event = median(ns);
        let mbps = (bytes as f64 / 200.0) / per_event * 1e3;
        let kind = if echo.is_some() {
            "key echoed in every 20th event"
        } else {
            "no secret in it"
        };
        println!("| {count} | {kind} | {per_event:.0} | {mbps:.0} |");
        std::hint::black_box(out_len);
    }
}
