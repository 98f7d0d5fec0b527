//! Sequential scenarios: this client times requests one at a time, interleaving the targets.

use crate::figures::percentile;
use crate::suite::Suite;
use crate::target::{self, Api, Call};

/// First-byte, last-byte and first-text times of one target's requests (µs).
type Timings = (Vec<f64>, Vec<f64>, Vec<f64>);

impl Suite {
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
    pub(crate) async fn sequential(&mut self, api: Api, prefix: &str, n: usize, first_byte: bool) {
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
}
