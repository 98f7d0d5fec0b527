//! One `suite` run: its state, the readings around the rounds, and results.json and the report.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::cli::SuiteArgs;
use crate::figures::Figures;
use crate::scenarios::Plan;
use crate::target::{self, Api, Target};
use crate::{procfs, report, streams};

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
    pub(crate) fn targets(&self) -> impl Iterator<Item = &Target> {
        self.setup.targets.iter()
    }

    pub(crate) fn direct(&self) -> Option<&Target> {
        self.setup.targets.iter().find(|t| t.direct)
    }

    pub(crate) async fn mock_defaults(&self, v: Value) -> Result<(), String> {
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

/// Runs every scenario and writes results.json and the report.
pub(crate) async fn run(args: SuiteArgs) -> Result<(), String> {
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
