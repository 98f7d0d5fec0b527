//! RESULTS.md: medians over rounds, ratios against direct and LiteLLM, and the targets.
//!
//! The cells, numbered notes and number formats are here; each section of the report is
//! written by a submodule, in the order `render` calls them.

mod goals;
mod header;
mod latency;
mod resources;

use crate::figures::median;
use crate::suite::Suite;
use std::fmt::Write;

const GW: &str = "qwen-gateway";
const LITELLM: &str = "LiteLLM";
const PORTKEY: &str = "Portkey";
/// `qwen-bench forward`: the floor of one extra hop with the gateway's HTTP stack.
const FLOOR: &str = "bare forwarder";
/// nginx as a reverse proxy: the floor of one hop in C.
const NGINX: &str = "nginx";

/// Collects "n/a" reasons as numbered notes.
struct Notes(Vec<String>);

impl Notes {
    fn mark(&mut self, who: &str, what: &str, why: &str) -> String {
        let text = format!("{who}, {what}: {why}");
        let i = match self.0.iter().position(|n| *n == text) {
            Some(i) => i,
            None => {
                self.0.push(text);
                self.0.len() - 1
            }
        };
        format!("n/a [{}]", i + 1)
    }

    /// A numbered note that is not an n/a (e.g. a capped count).
    fn note(&mut self, who: &str, what: &str, why: &str) -> String {
        self.mark(who, what, why).replacen("n/a ", "", 1)
    }
}

fn mb(kb: f64) -> f64 {
    kb * 1024.0 / 1e6
}

struct Ctx<'a> {
    s: &'a Suite,
    notes: Notes,
    direct: String,
}

impl Ctx<'_> {
    fn med(&self, key: &str, t: &str) -> Option<f64> {
        self.s.figures.median(key, t)
    }

    /// Median of per-round ratios `key[t] / key[base]` (ratio of medians if rounds differ).
    fn ratio(&self, key: &str, t: &str, base: &str) -> Option<f64> {
        let m = self.s.figures.values.get(key)?;
        let (a, b) = (m.get(t)?, m.get(base)?);
        if a.len() == b.len() {
            median(
                a.iter()
                    .zip(b)
                    .filter(|(_, y)| **y != 0.0)
                    .map(|(x, y)| x / y)
                    .collect(),
            )
        } else {
            Some(median(a.clone())? / median(b.clone())?)
        }
    }

    /// A figure, or "n/a [k]" with the recorded reason, or "—".
    fn cell(
        &mut self,
        key: &str,
        na_key: &str,
        t: &str,
        what: &str,
        fmt: impl Fn(f64) -> String,
    ) -> String {
        if let Some(v) = self.med(key, t) {
            return fmt(v);
        }
        let why = self
            .s
            .figures
            .why_na(na_key, t)
            .or_else(|| self.s.figures.why_na(key, t))
            .map(str::to_owned);
        match why {
            Some(why) => self.notes.mark(t, what, &why),
            None => "—".into(),
        }
    }

    fn ratio_cell(&self, key: &str, t: &str, base: &str) -> String {
        match self.ratio(key, t, base) {
            Some(r) if t == base => format!("{r:.2}×").replace("1.00×", "1×"),
            Some(r) if r >= 10.0 => format!("{r:.0}×"),
            Some(r) if r >= 0.1 => format!("{r:.2}×"),
            Some(r) if r >= 0.01 => format!("{r:.3}×"),
            Some(r) => format!("{r:.4}×"),
            None => "—".into(),
        }
    }
}

fn us0(v: f64) -> String {
    format!("{v:.0}")
}
fn signed(v: f64) -> String {
    format!("{v:+.0}")
}
fn ms1(v: f64) -> String {
    format!("{:.1}", v / 1000.0)
}
fn ms2(v: f64) -> String {
    format!("{:.2}", v / 1000.0)
}

pub fn render(s: &Suite) -> String {
    let direct = s
        .setup
        .targets
        .iter()
        .find(|t| t.direct)
        .map(|t| t.name.clone())
        .unwrap_or_default();
    let mut c = Ctx {
        s,
        notes: Notes(Vec::new()),
        direct,
    };
    let names: Vec<String> = s.setup.targets.iter().map(|t| t.name.clone()).collect();
    let mut md = String::new();
    let w = &mut md;

    header::write(w, s);
    goals::table(w, &c);
    goals::floor(w, &c);
    latency::non_streaming(w, &mut c, &names);
    latency::streaming(w, &mut c, &names);
    latency::chat(w, &mut c, &names);
    resources::open_streams(w, &mut c);
    resources::memory(w, &mut c, &names);

    let _ = writeln!(w, "## Notes and n/a\n");
    if c.notes.0.is_empty() {
        let _ = writeln!(w, "Every target ran every scenario.");
    }
    for (i, n) in c.notes.0.iter().enumerate() {
        let _ = writeln!(w, "{}. {}", i + 1, n.replace('|', "\\|"));
    }
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "Latency distributions (sequential runs, all rounds): `bench/latency.png`. \
         Raw figures of every round: `bench/out/results.json`."
    );
    md
}
