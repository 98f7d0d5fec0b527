//! Every figure of every round, by metric and target, and the median and percentile used.

use std::collections::BTreeMap;

/// Every figure of every round, keyed by metric then target.
#[derive(Default, Debug)]
pub struct Figures {
    pub values: BTreeMap<String, BTreeMap<String, Vec<f64>>>,
    /// Why a metric has no value for a target.
    pub na: BTreeMap<(String, String), String>,
}

impl Figures {
    pub(crate) fn push(&mut self, key: &str, target: &str, v: f64) {
        if v.is_finite() {
            self.values
                .entry(key.to_owned())
                .or_default()
                .entry(target.to_owned())
                .or_default()
                .push(v);
        }
    }
    pub(crate) fn set_na(&mut self, key: &str, target: &str, why: &str) {
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

pub(crate) fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[idx.min(v.len() - 1)]
}
