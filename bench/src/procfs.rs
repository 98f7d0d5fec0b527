//! Memory and CPU of a server process (and its children) read from /proc.

use std::sync::OnceLock;

/// A reading of one process tree.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcSample {
    /// Resident set size now, summed over the tree, in KiB.
    pub rss_kb: u64,
    /// Peak resident set size (VmHWM), summed over the tree, in KiB.
    pub hwm_kb: u64,
    /// User + system CPU time consumed so far, summed over the tree, in seconds.
    pub cpu_secs: f64,
}

fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Fields after the `(comm)` of /proc/PID/stat: index 0 is `state` (field 3).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// `pid` and every live descendant of it.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = stat_fields(child).and_then(|f| f.get(1)?.parse::<u32>().ok()) {
                parents.push((child, ppid));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

fn status_kb(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Reads one process tree; `None` when the root process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    std::fs::metadata(format!("/proc/{pid}")).ok()?;
    let mut s = ProcSample::default();
    for p in tree(pid) {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) {
            s.rss_kb += status_kb(&status, "VmRSS:");
            s.hwm_kb += status_kb(&status, "VmHWM:");
        }
        if let Some(f) = stat_fields(p) {
            // utime and stime are fields 14 and 15 of stat; index 0 here is field 3.
            let ticks: u64 = [11, 12]
                .iter()
                .filter_map(|&i| f.get(i)?.parse::<u64>().ok())
                .sum();
            s.cpu_secs += ticks as f64 / clock_ticks();
        }
    }
    Some(s)
}

/// CPU seconds a process tree used between two readings.
pub fn cpu_between(before: Option<ProcSample>, after: Option<ProcSample>) -> Option<f64> {
    Some(after?.cpu_secs - before?.cpu_secs)
}

/// The soft limit on open files of a process (`Max open files` in /proc/PID/limits).
pub fn fd_limit(pid: u32) -> Option<usize> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
