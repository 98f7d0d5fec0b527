//! Many concurrent slow streams held open through a server, while its memory and CPU are read.

use crate::procfs;
use crate::target::Call;
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

#[derive(Clone, Debug, Default)]
pub struct StreamsResult {
    /// Streams asked for by the plan.
    pub planned: usize,
    /// Why fewer than planned were attempted (the server's file descriptor limit).
    pub capped: Option<String>,
    /// Streams attempted.
    pub wanted: usize,
    /// Streams whose first event arrived.
    pub opened: usize,
    /// Seconds until all were open (or the open phase gave up).
    pub open_secs: f64,
    /// Largest VmRSS of the server while the streams were held, in KiB.
    pub rss_kb: u64,
    /// VmRSS before the streams were opened, in KiB.
    pub rss_before_kb: u64,
    /// Server CPU while holding the streams, in % of one core.
    pub hold_cpu_pct: Option<f64>,
    /// Server CPU seconds spent opening them.
    pub open_cpu_secs: Option<f64>,
    pub failed: usize,
    pub first_error: Option<String>,
}

/// Opens `n` streams (at most `ramp` connecting at once), holds them for `hold` once all are
/// open (or `open_timeout` passes), then drops them all.
pub async fn run(
    call: &Call,
    n: usize,
    ramp: usize,
    open_timeout: Duration,
    hold: Duration,
    pid: Option<u32>,
) -> Result<StreamsResult, String> {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(0)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let opened = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let gate = Arc::new(Semaphore::new(ramp));
    let before = pid.and_then(procfs::sample);
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..n {
        let (client, call) = (client.clone(), call.clone());
        let (opened, failed, first_error, gate) = (
            opened.clone(),
            failed.clone(),
            first_error.clone(),
            gate.clone(),
        );
        tasks.spawn(async move {
            let permit = gate.acquire_owned().await;
            let fail = |e: String| {
                failed.fetch_add(1, Ordering::SeqCst);
                first_error.lock().unwrap().get_or_insert(e);
            };
            let mut req = client.post(&call.url).body(call.body.clone());
            for (k, v) in &call.headers {
                req = req.header(k, v);
            }
            let res = match req.send().await {
                Ok(r) if r.status().is_success() => r,
                Ok(r) => return fail(format!("HTTP {}", r.status())),
                Err(e) => return fail(format!("{e:#}")),
            };
            let mut body = res.bytes_stream();
            match body.next().await {
                Some(Ok(_)) => {
                    opened.fetch_add(1, Ordering::SeqCst);
                }
                Some(Err(e)) => return fail(format!("{e:#}")),
                None => return fail("stream ended before its first event".into()),
            }
            drop(permit);
            // Hold the stream, reading as a client would, until aborted.
            while let Some(chunk) = body.next().await {
                if let Err(e) = chunk {
                    return fail(format!("mid-stream: {e:#}"));
                }
            }
            fail("stream ended while being held (use a longer stream)".into());
        });
    }
    let deadline = start + open_timeout;
    while opened.load(Ordering::SeqCst) + failed.load(Ordering::SeqCst) < n
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open_secs = start.elapsed().as_secs_f64();
    let at_open = pid.and_then(procfs::sample);
    let mut rss_kb = at_open.map_or(0, |s| s.rss_kb);
    let hold_start = Instant::now();
    while hold_start.elapsed() < hold {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(s) = pid.and_then(procfs::sample) {
            rss_kb = rss_kb.max(s.rss_kb);
        }
    }
    let held = pid.and_then(procfs::sample);
    let hold_secs = hold_start.elapsed().as_secs_f64();
    let result = StreamsResult {
        planned: n,
        capped: None,
        wanted: n,
        opened: opened.load(Ordering::SeqCst),
        open_secs,
        rss_kb,
        rss_before_kb: before.map_or(0, |s| s.rss_kb),
        hold_cpu_pct: procfs::cpu_between(at_open, held).map(|c| 100.0 * c / hold_secs),
        open_cpu_secs: procfs::cpu_between(before, at_open),
        failed: failed.load(Ordering::SeqCst),
        first_error: first_error.lock().unwrap().clone(),
    };
    tasks.abort_all();
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    Ok(result)
}
