//! Closed- and open-loop HTTP load with `oha`, while reading the server's CPU time.

use crate::procfs;
use crate::target::Call;
use serde_json::Value;
use std::time::Duration;

/// How to load a target.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub connections: usize,
    /// Open loop at this many requests/s (with oha's latency correction); `None`: closed loop.
    pub rate: Option<u32>,
    pub duration: Duration,
}

/// What one oha run measured.
#[derive(Clone, Debug, Default)]
pub struct LoadResult {
    /// Successful (2xx) answers per second.
    pub rps: f64,
    pub ok: u64,
    pub failed: u64,
    /// Requests still open when the run ended (cut off by oha, not failures).
    pub aborted: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Server CPU seconds (user + system) during the run.
    pub cpu_secs: Option<f64>,
    pub first_error: Option<String>,
}

pub async fn run(
    oha: &str,
    call: &Call,
    load: Load,
    pid: Option<u32>,
) -> Result<LoadResult, String> {
    let mut cmd = tokio::process::Command::new(oha);
    cmd.args([
        "--no-tui",
        "--output-format",
        "json",
        "--stats-success-breakdown",
    ])
    .args(["-z", &format!("{}ms", load.duration.as_millis())])
    .args(["-c", &load.connections.to_string()])
    .args(["-t", "30s", "-m", "POST"]);
    if let Some(rate) = load.rate {
        cmd.args(["-q", &rate.to_string(), "--latency-correction"]);
    }
    for (k, v) in &call.headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    cmd.arg("-d")
        .arg(String::from_utf8_lossy(&call.body).into_owned())
        .arg(&call.url)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    let before = pid.and_then(procfs::sample);
    let child = cmd.output();
    // oha stops itself at -z; this only guards against a hang.
    let out = tokio::time::timeout(load.duration + Duration::from_secs(60), child)
        .await
        .map_err(|_| "oha did not finish in time".to_owned())?
        .map_err(|e| format!("cannot run {oha}: {e}"))?;
    let after = pid.and_then(procfs::sample);
    if !out.status.success() {
        return Err(format!(
            "oha failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let v: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("oha output is not JSON ({e})"))?;
    let mut ok = 0;
    let mut failed = 0;
    let mut aborted = 0;
    if let Some(codes) = v["statusCodeDistribution"].as_object() {
        for (code, n) in codes {
            let n = n.as_u64().unwrap_or(0);
            if code.starts_with('2') {
                ok += n;
            } else {
                failed += n;
            }
        }
    }
    let mut first_error = None;
    if let Some(errors) = v["errorDistribution"].as_object() {
        for (msg, n) in errors {
            // Requests still open at the deadline are cut off by design, not failures.
            if msg.contains("aborted due to deadline") {
                aborted += n.as_u64().unwrap_or(0);
                continue;
            }
            failed += n.as_u64().unwrap_or(0);
            first_error.get_or_insert_with(|| msg.clone());
        }
    }
    if first_error.is_none() && failed > 0 {
        first_error = Some(format!("{failed} non-2xx answers"));
    }
    let total = v["summary"]["total"]
        .as_f64()
        .unwrap_or(load.duration.as_secs_f64());
    let pct = v
        .get("latencyPercentilesSuccessful")
        .filter(|p| p.is_object())
        .unwrap_or(&v["latencyPercentiles"]);
    let secs_to_us = |x: &Value| x.as_f64().unwrap_or(f64::NAN) * 1e6;
    Ok(LoadResult {
        rps: ok as f64 / total.max(1e-9),
        ok,
        failed,
        aborted,
        p50_us: secs_to_us(&pct["p50"]),
        p99_us: secs_to_us(&pct["p99"]),
        cpu_secs: procfs::cpu_between(before, after),
        first_error,
    })
}
