//! The plan of each scenario, and the runs: a round of them, oha load, many open streams.

use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::cli::SuiteArgs;
use crate::suite::{StreamsRow, Suite};
use crate::target::{Api, Target};
use crate::{load, procfs, streams};

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
    pub(crate) fn new(a: &SuiteArgs) -> Plan {
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

impl Suite {
    pub(crate) async fn round(&mut self, round: usize) -> Result<(), String> {
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

    pub(crate) async fn open_streams(&mut self) -> Result<(), String> {
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
}
