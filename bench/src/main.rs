//! `qwen-bench suite`: drives every scenario of bench/run.sh against the mock Model Studio
//! directly (the floor), qwen-gateway, LiteLLM and Portkey, all on loopback, and writes
//! `results.json` (every figure of every round, plus raw latency samples for the chart) and
//! `RESULTS.md` (medians over rounds, ratios against direct and LiteLLM, targets met/missed).
//!
//! Load comes from `oha` (closed loop at fixed concurrency, and open loop at a fixed rate with
//! latency correction); sequential latency and SSE timing (first and last byte) come from this
//! client, interleaving the targets request by request so drift on the machine hits all alike.

mod forward;
mod load;
mod procfs;
mod report;
mod scrub;
mod streams;
mod target;

/// First-byte, last-byte and first-text times of one target's requests (µs).
type Timings = (Vec<f64>, Vec<f64>, Vec<f64>);

use clap::Parser;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use target::{Api, Call, Target};

#[derive(Parser, Debug)]
#[command(about = "Side-by-side gateway benchmark (see bench/run.sh)")]
enum Cli {
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
    /// A bare forwarding proxy (hyper server + reqwest, no parsing): the floor of one hop.
    Forward {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// Base URL to forward to; a leading /v1 of the request path is dropped.
        #[arg(long)]
        upstream: String,
    },
}

#[derive(clap::Args, Debug, Clone)]
pub struct SuiteArgs {
    /// targets.json from run.sh.
    #[arg(long)]
    targets: String,
    /// Directory for results.json.
    #[arg(long)]
    out: String,
    /// Where to write the markdown report.
    #[arg(long)]
    report: String,
    /// The oha binary.
    #[arg(long, default_value = "oha")]
    oha: String,
    /// Short smoke run.
    #[arg(long)]
    quick: bool,
    /// Rounds (figures are medians over rounds); default 1 with --quick, else 3.
    #[arg(long)]
    rounds: Option<usize>,
    /// Command line to print in the report.
    #[arg(long, default_value = "bench/run.sh")]
    command: String,
}

/// Sizes of each scenario, per mode.
#[derive(Clone, Debug)]
pub struct Plan {
    pub quick: bool,
    pub rounds: usize,
    /// Sequential requests per target per round (non-streaming).
    pub seq_requests: usize,
    /// Sequential streams per target per round (200 events, 1 ms apart).
    pub stream_requests: usize,
    pub load_duration: Duration,
    pub moderate_rate: u32,
    pub moderate_connections: usize,
    pub concurrencies: Vec<usize>,
    pub stream_tokens: usize,
    pub stream_delay_ms: u64,
    /// Open-stream counts; the largest only for qwen-gateway in quick mode.
    pub open_streams: Vec<usize>,
    pub open_timeout: Duration,
    pub hold: Duration,
    pub slow_delay_ms: u64,
}

impl Plan {
    fn new(a: &SuiteArgs) -> Plan {
        let q = a.quick;
        Plan {
            quick: q,
            rounds: a.rounds.unwrap_or(if q { 1 } else { 3 }).max(1),
            seq_requests: if q { 200 } else { 500 },
            stream_requests: if q { 6 } else { 30 },
            load_duration: Duration::from_secs(if q { 2 } else { 5 }),
            moderate_rate: 500,
            moderate_connections: 32,
            concurrencies: vec![64, 256],
            stream_tokens: 200,
            stream_delay_ms: 1,
            open_streams: vec![1_000, 10_000],
            // qwen-gateway holds each new stream's head up to `hold_first_event` (2 s) while
            // these slow streams send their opening events 1.5 s apart; 256 at a time, 10,000
            // take ~80 s to open.
            open_timeout: Duration::from_secs(if q { 10 } else { 120 }),
            hold: Duration::from_secs(if q { 2 } else { 5 }),
            slow_delay_ms: 1_500,
        }
    }
}

/// Every figure of every round, keyed by metric then target.
#[derive(Default, Debug)]
pub struct Figures {
    pub values: BTreeMap<String, BTreeMap<String, Vec<f64>>>,
    /// Why a metric has no value for a target.
    pub na: BTreeMap<(String, String), String>,
}

impl Figures {
    fn push(&mut self, key: &str, target: &str, v: f64) {
        if v.is_finite() {
            self.values
                .entry(key.to_owned())
                .or_default()
                .entry(target.to_owned())
                .or_default()
                .push(v);
        }
    }
    fn set_na(&mut self, key: &str, target: &str, why: &str) {
        self.na
            .entry((key.to_owned(), target.to_owned()))
            .or_insert_with(|| why.to_owned());
    }
    pub fn median(&self, key: &str, target: &str) -> Option<f64> {
        median(self.values.get(key)?.get(target)?.clone())
    }
    pub fn why_na(&self, key: &str, target: &str) -> Option<&str> {
        self.na
            .get(&(key.to_owned(), target.to_owned()))
            .map(String::as_str)
    }
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[idx.min(v.len() - 1)]
}

/// Results of the open-streams scenario.
#[derive(Debug, Clone)]
pub struct StreamsRow {
    pub target: String,
    pub result: Result<streams::StreamsResult, String>,
}

pub struct Suite {
    pub plan: Plan,
    pub args: SuiteArgs,
    pub setup: target::Setup,
    pub figures: Figures,
    /// Raw per-request latencies (µs) for the chart: scenario → target → samples.
    pub samples: BTreeMap<String, BTreeMap<String, Vec<f64>>>,
    pub streams: Vec<StreamsRow>,
    pub client: reqwest::Client,
    pub started: Instant,
    pub load_before: String,
    pub load_after: String,
    pub date: String,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

impl Suite {
    fn targets(&self) -> impl Iterator<Item = &Target> {
        self.setup.targets.iter()
    }

    fn direct(&self) -> Option<&Target> {
        self.setup.targets.iter().find(|t| t.direct)
    }

    async fn mock_defaults(&self, v: Value) -> Result<(), String> {
        let res = self
            .client
            .post(format!("{}/_mock/defaults", self.setup.mock))
            .json(&v)
            .send()
            .await
            .map_err(|e| format!("mock defaults: {e}"))?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(format!("mock defaults: HTTP {}", res.status()))
        }
    }

    /// Sequential requests, target by target in turn (rotating who goes first), `n` each.
    /// Returns per-target samples (first byte, total) in µs, or why a target dropped out.
    async fn interleave(
        &self,
        calls: &[(String, Call)],
        n: usize,
        warmup: usize,
    ) -> Vec<(String, Result<Timings, String>)> {
        let mut out: Vec<(String, Result<Timings, String>)> = calls
            .iter()
            .map(|(name, _)| (name.clone(), Ok((Vec::new(), Vec::new(), Vec::new()))))
            .collect();
        for i in 0..warmup + n {
            for j in 0..calls.len() {
                let k = (i + j) % calls.len();
                if out[k].1.is_err() {
                    continue;
                }
                match target::send(&self.client, &calls[k].1).await {
                    Ok(t) => {
                        if i >= warmup {
                            let Ok((fb, total, ft)) = &mut out[k].1 else {
                                continue;
                            };
                            fb.push(t.first_byte.as_secs_f64() * 1e6);
                            total.push(t.total.as_secs_f64() * 1e6);
                            ft.push(t.first_token.as_secs_f64() * 1e6);
                        }
                    }
                    Err(e) => out[k].1 = Err(format!("request failed mid-run: {e}")),
                }
            }
        }
        out
    }

    fn sample(&mut self, scenario: &str, target: &str, v: &[f64]) {
        self.samples
            .entry(scenario.to_owned())
            .or_default()
            .entry(target.to_owned())
            .or_default()
            .extend_from_slice(v);
    }

    /// Sequential latency of `api` on every target that serves it; `prefix` names the figures.
    /// With `first_byte`, TTFB figures are recorded too. Added latency is against direct.
    async fn sequential(&mut self, api: Api, prefix: &str, n: usize, first_byte: bool) {
        let mut calls = Vec::new();
        for t in self.setup.targets.clone() {
            match t.na(api) {
                None => calls.push((t.name.clone(), t.call(api))),
                Some(why) => {
                    let keys = [format!("{prefix}.p50"), format!("{prefix}.ttfb_p50")];
                    for k in keys {
                        self.figures.set_na(&k, &t.name, &why);
                    }
                }
            }
        }
        let warmup = if api.is_stream() { 2 } else { 30 };
        let results = self.interleave(&calls, n, warmup).await;
        let direct = self.direct().map(|t| t.name.clone()).unwrap_or_default();
        let mut direct_stats = None;
        let mut stats = Vec::new();
        for (name, r) in results {
            match r {
                Ok((fb, total, ft)) => {
                    let s = [
                        percentile(&total, 0.5),
                        percentile(&total, 0.99),
                        percentile(&fb, 0.5),
                        percentile(&fb, 0.99),
                        percentile(&ft, 0.5),
                    ];
                    if name == direct {
                        direct_stats = Some(s);
                    }
                    let scen = if first_byte {
                        format!("{prefix}.ttlb")
                    } else {
                        prefix.to_owned()
                    };
                    self.sample(&scen, &name, &total);
                    if first_byte {
                        self.sample(&format!("{prefix}.ttfb"), &name, &fb);
                    }
                    stats.push((name, s));
                }
                Err(e) => {
                    self.figures.set_na(&format!("{prefix}.p50"), &name, &e);
                    self.figures
                        .set_na(&format!("{prefix}.ttfb_p50"), &name, &e);
                }
            }
        }
        for (name, s) in stats {
            self.figures.push(&format!("{prefix}.p50"), &name, s[0]);
            self.figures.push(&format!("{prefix}.p99"), &name, s[1]);
            if first_byte {
                self.figures
                    .push(&format!("{prefix}.ttfb_p50"), &name, s[2]);
                self.figures
                    .push(&format!("{prefix}.ttfb_p99"), &name, s[3]);
                self.figures
                    .push(&format!("{prefix}.ttft_p50"), &name, s[4]);
            }
            if let Some(d) = direct_stats {
                self.figures
                    .push(&format!("{prefix}.added_p50"), &name, s[0] - d[0]);
                self.figures
                    .push(&format!("{prefix}.added_p99"), &name, s[1] - d[1]);
                if first_byte {
                    self.figures
                        .push(&format!("{prefix}.added_ttfb_p50"), &name, s[2] - d[2]);
                    self.figures
                        .push(&format!("{prefix}.added_ttfb_p99"), &name, s[3] - d[3]);
                    self.figures
                        .push(&format!("{prefix}.added_ttft_p50"), &name, s[4] - d[4]);
                }
            }
        }
    }

    /// One oha run per target that serves `api`; `prefix` names the figures.
    async fn loaded(
        &mut self,
        api: Api,
        prefix: &str,
        load: load::Load,
        round: usize,
    ) -> Vec<(String, load::LoadResult)> {
        let targets: Vec<Target> = self.targets().cloned().collect();
        let mut done = Vec::new();
        for j in 0..targets.len() {
            // Rotate who goes first each round, so slow drift does not favour anyone.
            let t = &targets[(j + round) % targets.len()];
            if let Some(why) = t.na(api) {
                self.figures.set_na(&format!("{prefix}.rps"), &t.name, &why);
                continue;
            }
            let r = load::run(&self.args.oha, &t.call(api), load, t.pid).await;
            // A server still working off requests oha gave up on would steal the next
            // target's CPU: wait until it is idle.
            self.settle(t.pid).await;
            match r {
                Ok(r) if r.ok > 0 && r.failed * 20 <= r.ok => {
                    self.figures.push(&format!("{prefix}.rps"), &t.name, r.rps);
                    self.figures
                        .push(&format!("{prefix}.p50"), &t.name, r.p50_us);
                    self.figures
                        .push(&format!("{prefix}.p99"), &t.name, r.p99_us);
                    if let Some(cpu) = r.cpu_secs {
                        self.figures.push(
                            &format!("{prefix}.cpu_per_1k"),
                            &t.name,
                            cpu * 1000.0 / r.ok as f64,
                        );
                    }
                    if r.failed > 0 {
                        eprintln!("  {}: {} failures ({:?})", t.name, r.failed, r.first_error);
                    }
                    done.push((t.name.clone(), r));
                }
                Ok(r) => {
                    let why = if r.ok == 0 && r.failed == 0 {
                        format!(
                            "no request completed within the {} s run ({} cut off at its end): \
                             far beyond saturation",
                            load.duration.as_secs(),
                            r.aborted
                        )
                    } else {
                        format!(
                            "{} of {} requests failed: {}",
                            r.failed,
                            r.ok + r.failed,
                            r.first_error.unwrap_or_default()
                        )
                    };
                    self.figures.set_na(&format!("{prefix}.rps"), &t.name, &why);
                }
                Err(e) => self.figures.set_na(&format!("{prefix}.rps"), &t.name, &e),
            }
        }
        let direct = self.direct().map(|t| t.name.clone()).unwrap_or_default();
        if let Some((_, d)) = done.iter().find(|(n, _)| *n == direct).cloned() {
            for (name, r) in &done {
                self.figures
                    .push(&format!("{prefix}.added_p50"), name, r.p50_us - d.p50_us);
                self.figures
                    .push(&format!("{prefix}.added_p99"), name, r.p99_us - d.p99_us);
            }
        }
        done
    }

    /// Saturation: the best closed-loop throughput of this round's runs, and its CPU cost.
    fn saturation(&mut self, prefix: &str, runs: &[(String, load::LoadResult)]) {
        let mut best: BTreeMap<&str, &load::LoadResult> = BTreeMap::new();
        for (name, r) in runs {
            if best.get(name.as_str()).is_none_or(|b| r.rps > b.rps) {
                best.insert(name, r);
            }
        }
        for (name, r) in best {
            self.figures.push(&format!("{prefix}.rps"), name, r.rps);
            if let Some(cpu) = r.cpu_secs {
                self.figures.push(
                    &format!("{prefix}.cpu_per_1k"),
                    name,
                    cpu * 1000.0 / r.ok as f64,
                );
            }
        }
    }

    async fn round(&mut self, round: usize) -> Result<(), String> {
        let p = self.plan.clone();
        eprintln!("round {}/{}: non-streaming /responses", round + 1, p.rounds);
        self.mock_defaults(json!({"x-mock-tokens": "16"})).await?;
        self.sequential(Api::Responses, "c1", p.seq_requests, false)
            .await;
        let mut runs = Vec::new();
        for &c in &p.concurrencies {
            let l = load::Load {
                connections: c,
                rate: None,
                duration: p.load_duration,
            };
            runs.extend(
                self.loaded(Api::Responses, &format!("c{c}"), l, round)
                    .await,
            );
        }
        self.saturation("sat", &runs);
        let moderate = load::Load {
            connections: p.moderate_connections,
            rate: Some(p.moderate_rate),
            duration: p.load_duration,
        };
        self.loaded(Api::Responses, "mod", moderate, round).await;

        eprintln!("round {}/{}: chat/completions", round + 1, p.rounds);
        self.sequential(Api::Chat, "chat", p.seq_requests / 2, false)
            .await;
        let l = load::Load {
            connections: 64,
            rate: None,
            duration: p.load_duration,
        };
        self.loaded(Api::Chat, "chatc64", l, round).await;

        eprintln!("round {}/{}: streaming", round + 1, p.rounds);
        self.mock_defaults(json!({
            "x-mock-tokens": p.stream_tokens.to_string(),
            "x-mock-delay-ms": p.stream_delay_ms.to_string(),
        }))
        .await?;
        self.sequential(Api::ResponsesStream, "sse", p.stream_requests, true)
            .await;
        self.sequential(Api::ChatStream, "chatsse", p.stream_requests, true)
            .await;
        self.mock_defaults(json!({})).await?;
        Ok(())
    }

    async fn open_streams(&mut self) -> Result<(), String> {
        let p = self.plan.clone();
        self.mock_defaults(json!({
            // 100 events 1.5 s apart: 150 s, longer than opening and holding take. (The mock
            // prepares a whole answer up front; longer answers make it the bottleneck.)
            "x-mock-tokens": "100",
            "x-mock-delay-ms": p.slow_delay_ms.to_string(),
        }))
        .await?;
        let targets: Vec<Target> = self.targets().filter(|t| !t.direct).cloned().collect();
        let largest = p.open_streams.iter().copied().max().unwrap_or(0);
        for t in &targets {
            for &n in &p.open_streams {
                let result = if let Some(why) = t.na(Api::ResponsesStream) {
                    Err(why)
                } else if p.quick && n == largest && t.name != "qwen-gateway" {
                    Err("skipped in --quick (full run only)".to_owned())
                } else {
                    // A proxy holds two sockets per stream (client and upstream); stay under
                    // its descriptor limit, which run.sh may not be allowed to raise.
                    let limit = t.pid.and_then(procfs::fd_limit).unwrap_or(usize::MAX);
                    let fit = limit.saturating_sub(300) / 2 / 100 * 100;
                    let m = n.min(fit);
                    eprintln!("open streams: {} × {m}", t.name);
                    let mut r = streams::run(
                        &t.call(Api::ResponsesStream),
                        m,
                        256,
                        p.open_timeout,
                        p.hold,
                        t.pid,
                    )
                    .await;
                    if let Ok(r) = &mut r {
                        r.planned = n;
                        if m < n {
                            r.capped = Some(format!(
                                "{m} of {n}: the process may open {limit} files (hard limit, \
                                 not raisable without CAP_SYS_RESOURCE) and needs two per stream"
                            ));
                        }
                    }
                    if let Ok(r) = &r {
                        eprintln!(
                            "  opened {}/{} in {:.1}s, {:.1} MB RSS, {} failed {:?}",
                            r.opened,
                            n,
                            r.open_secs,
                            r.rss_kb as f64 * 1024.0 / 1e6,
                            r.failed,
                            r.first_error
                        );
                    }
                    // Let the server wind the dropped streams down before the next run.
                    self.settle(t.pid).await;
                    r
                };
                self.streams.push(StreamsRow {
                    target: t.name.clone(),
                    result,
                });
            }
        }
        self.mock_defaults(json!({})).await
    }

    /// Waits (at most 15 s) until a process uses under 5 % CPU.
    async fn settle(&self, pid: Option<u32>) {
        let Some(pid) = pid else { return };
        for _ in 0..30 {
            let a = procfs::sample(pid);
            tokio::time::sleep(Duration::from_millis(500)).await;
            let b = procfs::sample(pid);
            match procfs::cpu_between(a, b) {
                Some(c) if c / 0.5 > 0.05 => continue,
                _ => return,
            }
        }
    }

    fn results_json(&self) -> Value {
        let mut values = serde_json::Map::new();
        for (k, m) in &self.figures.values {
            values.insert(k.clone(), json!(m));
        }
        let na: Vec<Value> = self
            .figures
            .na
            .iter()
            .map(|((k, t), why)| json!({"metric": k, "target": t, "why": why}))
            .collect();
        let streams: Vec<Value> = self
            .streams
            .iter()
            .map(|s| match &s.result {
                Ok(r) => json!({"target": s.target, "planned": r.planned, "capped": r.capped, "wanted": r.wanted, "opened": r.opened,
                    "open_secs": r.open_secs, "rss_kb": r.rss_kb, "rss_before_kb": r.rss_before_kb,
                    "hold_cpu_pct": r.hold_cpu_pct, "open_cpu_secs": r.open_cpu_secs,
                    "failed": r.failed, "first_error": r.first_error}),
                Err(e) => json!({"target": s.target, "na": e}),
            })
            .collect();
        json!({
            "date": self.date,
            "quick": self.plan.quick,
            "rounds": self.plan.rounds,
            "targets": self.setup.targets.iter().map(|t| &t.name).collect::<Vec<_>>(),
            "figures": values,
            "na": na,
            "streams": streams,
            "samples_us": self.samples,
        })
    }
}

async fn suite(args: SuiteArgs) -> Result<(), String> {
    let setup = target::load(&args.targets)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let mut s = Suite {
        plan: Plan::new(&args),
        args: args.clone(),
        setup,
        figures: Figures::default(),
        samples: BTreeMap::new(),
        streams: Vec::new(),
        client,
        started: Instant::now(),
        load_before: loadavg(),
        load_after: String::new(),
        date,
    };

    // 5. Idle RSS: before any request reaches a server.
    for t in s.setup.targets.clone() {
        match (t.unavailable.as_ref(), t.pid.and_then(procfs::sample)) {
            (Some(why), _) => s.figures.set_na("idle_rss_kb", &t.name, why),
            (None, Some(p)) => s.figures.push("idle_rss_kb", &t.name, p.rss_kb as f64),
            (None, None) => s
                .figures
                .set_na("idle_rss_kb", &t.name, "process not found"),
        }
    }

    // Which surfaces each target really serves.
    s.mock_defaults(json!({"x-mock-tokens": "16"})).await?;
    for i in 0..s.setup.targets.len() {
        let t = s.setup.targets[i].clone();
        if t.unavailable.is_some() {
            continue;
        }
        for api in [
            Api::Responses,
            Api::ResponsesStream,
            Api::Chat,
            Api::ChatStream,
        ] {
            if t.na(api).is_some() {
                continue;
            }
            if let Err(e) = target::probe(&s.client, &t, api).await {
                eprintln!("probe: {} {:?}: {e}", t.name, api);
                let what = match api {
                    Api::Responses => "/v1/responses",
                    Api::ResponsesStream => "streaming /v1/responses",
                    Api::Chat => "/v1/chat/completions",
                    Api::ChatStream => "streaming /v1/chat/completions",
                };
                let why = format!("{what} failed: {e}");
                s.setup.targets[i].api_na.push((api, why));
            }
        }
    }

    for r in 0..s.plan.rounds {
        s.round(r).await?;
    }
    // 4. Many open streams, last: they leave the most behind.
    s.open_streams().await?;

    for t in s.setup.targets.clone() {
        if let Some(p) = t.pid.and_then(procfs::sample) {
            s.figures.push("peak_rss_kb", &t.name, p.hwm_kb as f64);
        } else if let Some(why) = &t.unavailable {
            s.figures.set_na("peak_rss_kb", &t.name, why);
        }
    }
    s.load_after = loadavg();

    std::fs::create_dir_all(&s.args.out).map_err(|e| e.to_string())?;
    let path = format!("{}/results.json", s.args.out);
    std::fs::write(&path, serde_json::to_vec_pretty(&s.results_json()).unwrap())
        .map_err(|e| format!("{path}: {e}"))?;
    let md = report::render(&s);
    std::fs::write(&s.args.report, &md).map_err(|e| format!("{}: {e}", s.args.report))?;
    println!("{md}");
    eprintln!(
        "wrote {} and {path} in {:.0} s",
        s.args.report,
        s.started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() {
    let result = match Cli::parse() {
        Cli::Suite(a) => suite(a).await,
        Cli::Forward { listen, upstream } => forward::run(&listen, &upstream).await,
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
                version: String::new(),
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
