//! Per-key limits: requests per minute, tokens per minute and per UTC day (fixed windows over
//! store counters, so replicas sharing a store share the limits), and model patterns.
//!
//! Requests are counted when they arrive (`rpm:{key}:{minute}`); tokens when a response's
//! usage is known (`tpm:{key}:{minute}`, `tpd:{key}:{day}`, added by the ledger). A token
//! limit refuses requests once its window's count has reached it: the request that crosses
//! the line is served (its size is unknown beforehand), the next one is not.
//!
//! A store failure while counting lets the request through with a warning: limits are about
//! fairness and budget, and an unreachable counter must not take the whole team offline.

use super::ClientKey;
use crate::store::Store;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;

/// Counters outlive their window a little; the window is in the name, so this only bounds
/// how long they take space.
const MINUTE_TTL: Duration = Duration::from_secs(120);
const DAY_TTL: Duration = Duration::from_secs(2 * 86_400);

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    RequestsPerMinute,
    TokensPerMinute,
    TokensPerDay,
}

impl LimitKind {
    /// OpenAI's words for it, used in messages ("requests per min (RPM)").
    pub fn describe(self) -> &'static str {
        match self {
            LimitKind::RequestsPerMinute => "requests per min (RPM)",
            LimitKind::TokensPerMinute => "tokens per min (TPM)",
            LimitKind::TokensPerDay => "tokens per day (TPD)",
        }
    }

    /// OpenAI's error `type` for a rate limit: `requests` or `tokens`.
    pub fn error_type(self) -> crate::error::ErrorType {
        use crate::error::ErrorType;
        match self {
            LimitKind::RequestsPerMinute => ErrorType::Requests,
            LimitKind::TokensPerMinute | LimitKind::TokensPerDay => ErrorType::Tokens,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            LimitKind::RequestsPerMinute => "rpm",
            LimitKind::TokensPerMinute => "tpm",
            LimitKind::TokensPerDay => "tpd",
        }
    }
}

/// One limit's state in its current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub kind: LimitKind,
    pub limit: u64,
    pub used: u64,
    /// Until the window ends.
    pub reset: Duration,
}

impl Quota {
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    fn exhausted(&self) -> bool {
        self.used >= self.limit
    }
}

/// What the `x-ratelimit-*` headers report for one request of a limited key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateSnapshot {
    pub requests: Option<Quota>,
    /// The tighter of the minute and day token windows.
    pub tokens: Option<Quota>,
}

impl RateSnapshot {
    /// Adds OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` headers.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (what, quota) in [("requests", self.requests), ("tokens", self.tokens)] {
            let Some(q) = quota else { continue };
            for (field, value) in [
                ("limit", q.limit.to_string()),
                ("remaining", q.remaining().to_string()),
                ("reset", go_duration(q.reset)),
            ] {
                let name = format!("x-ratelimit-{field}-{what}");
                if let (Ok(name), Ok(value)) = (
                    HeaderName::try_from(name),
                    HeaderValue::try_from(value.as_str()),
                ) {
                    headers.insert(name, value);
                }
            }
        }
    }
}

/// A request refused by a limit, with the headers to send along.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub quota: Quota,
    pub snapshot: RateSnapshot,
}

/// A duration the way OpenAI's reset headers write it (Go style): `850ms`, `12s`, `6m0s`,
/// `3h2m1s`.
pub fn go_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// The fixed windows a request at `now_ms` (unix milliseconds) falls in.
#[derive(Debug, Clone)]
struct Windows {
    minute: i64,
    day: String,
    minute_reset: Duration,
    day_reset: Duration,
}

impl Windows {
    fn at(now_ms: i64) -> Self {
        let ms = |v: i64| Duration::from_millis(u64::try_from(v).unwrap_or(0));
        Self {
            minute: now_ms.div_euclid(60_000),
            day: crate::calendar::day(now_ms.div_euclid(1000)),
            minute_reset: ms(60_000 - now_ms.rem_euclid(60_000)),
            day_reset: ms(86_400_000 - now_ms.rem_euclid(86_400_000)),
        }
    }
}

fn now_ms() -> i64 {
    crate::store::Clock::System.now_millis()
}

async fn read(store: &Store, name: &str) -> u64 {
    store.get_counter(name).await.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "rate-limit counter unreadable; not limiting");
        0
    })
}

/// Checks `key`'s limits for one new request and counts it. `Ok` carries the headers'
/// numbers (empty for an unlimited key); `Err` the limit that refuses it.
pub async fn admit(store: &Store, key: &ClientKey) -> Result<RateSnapshot, Refusal> {
    let w = Windows::at(now_ms());
    let mut snapshot = RateSnapshot::default();
    let mut token_quotas = Vec::new();
    if let Some(limit) = key.tpm {
        let used = read(store, &format!("tpm:{}:{}", key.id, w.minute)).await;
        token_quotas.push(Quota {
            kind: LimitKind::TokensPerMinute,
            limit,
            used,
            reset: w.minute_reset,
        });
    }
    if let Some(limit) = key.daily_tokens {
        let used = read(store, &format!("tpd:{}:{}", key.id, w.day)).await;
        token_quotas.push(Quota {
            kind: LimitKind::TokensPerDay,
            limit,
            used,
            reset: w.day_reset,
        });
    }
    // Report the window that binds first: exhausted, else least remaining.
    snapshot.tokens = token_quotas
        .iter()
        .copied()
        .min_by_key(|q| (!q.exhausted(), q.remaining()));
    if let Some(limit) = key.rpm {
        let name = format!("rpm:{}:{}", key.id, w.minute);
        let used = store
            .incr_counter(&name, 1, MINUTE_TTL)
            .await
            .unwrap_or_else(|err| {
                tracing::warn!(error = %err, "rate-limit counter not writable; not limiting");
                0
            });
        // `used` counts this request (refused ones too): over the limit only past it.
        let quota = Quota {
            kind: LimitKind::RequestsPerMinute,
            limit,
            used: used.min(limit),
            reset: w.minute_reset,
        };
        snapshot.requests = Some(quota);
        if used > limit {
            return Err(Refusal { quota, snapshot });
        }
    }
    if let Some(quota) = snapshot.tokens.filter(Quota::exhausted) {
        return Err(Refusal { quota, snapshot });
    }
    Ok(snapshot)
}

/// Counts `extra` more requests against `key`'s per-minute limit: a Chat Completions request
/// with `n` choices is `n` upstream requests, so it counts as `n` (one was counted by
/// [`admit`]). `Err` when that goes past the limit (the requests stay counted, as refused
/// ones do in [`admit`]).
pub async fn admit_more(store: &Store, key: &ClientKey, extra: u64) -> Result<(), Quota> {
    let (Some(limit), true) = (key.rpm, extra > 0) else {
        return Ok(());
    };
    let w = Windows::at(now_ms());
    let name = format!("rpm:{}:{}", key.id, w.minute);
    let used = store
        .incr_counter(&name, extra, MINUTE_TTL)
        .await
        .unwrap_or_else(|err| {
            tracing::warn!(error = %err, "rate-limit counter not writable; not limiting");
            0
        });
    if used > limit {
        return Err(Quota {
            kind: LimitKind::RequestsPerMinute,
            limit,
            used: used.min(limit),
            reset: w.minute_reset,
        });
    }
    Ok(())
}

/// Adds a finished request's tokens to `key`'s token windows (only those it is limited by).
pub async fn add_tokens(store: &Store, key: &ClientKey, tokens: u64) {
    if tokens == 0 {
        return;
    }
    let w = Windows::at(now_ms());
    if key.tpm.is_some() {
        let name = format!("tpm:{}:{}", key.id, w.minute);
        if let Err(err) = store.incr_counter(&name, tokens, MINUTE_TTL).await {
            tracing::warn!(error = %err, "could not count tokens against a per-minute limit");
        }
    }
    if key.daily_tokens.is_some() {
        let name = format!("tpd:{}:{}", key.id, w.day);
        if let Err(err) = store.incr_counter(&name, tokens, DAY_TTL).await {
            tracing::warn!(error = %err, "could not count tokens against a daily limit");
        }
    }
}

/// Shell-style match: `*` any run of characters (also none), `?` exactly one; everything
/// else literal, case-sensitive (model names are).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("qwen3-*", "qwen3-max-2026-01-23"));
        assert!(glob_match("*", ""));
        assert!(glob_match("qwen?-max", "qwen3-max"));
        assert!(glob_match("*max*", "qwen3-max-2026"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("qwen3-*", "qwen2-max"));
        assert!(!glob_match("qwen3-max", "qwen3-max-2026"));
        assert!(!glob_match("?", ""));
        assert!(!glob_match("Qwen3-*", "qwen3-max"));
    }

    #[test]
    fn reset_durations_read_like_openai() {
        assert_eq!(go_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(go_duration(Duration::from_millis(11_200)), "12s");
        assert_eq!(go_duration(Duration::from_secs(360)), "6m0s");
        assert_eq!(go_duration(Duration::from_secs(3 * 3600 + 121)), "3h2m1s");
    }

    #[test]
    fn windows_reset_at_their_boundaries() {
        let w = Windows::at(1_769_126_400_000 + 59_500);
        assert_eq!(w.minute_reset, Duration::from_millis(500));
        assert_eq!(w.day, "2026-01-23");
        assert_eq!(w.day_reset, Duration::from_millis(86_400_000 - 59_500));
    }

    fn key(rpm: Option<u64>, tpm: Option<u64>, daily: Option<u64>) -> ClientKey {
        ClientKey {
            id: "key_t".into(),
            name: "t".into(),
            models: vec![],
            regions: vec![],
            rpm,
            tpm,
            daily_tokens: daily,
        }
    }

    #[tokio::test]
    async fn requests_then_tokens_are_limited() {
        let store = Store::open("memory").await.unwrap();
        let k = key(Some(2), Some(100), Some(1000));
        let first = admit(&store, &k).await.unwrap();
        assert_eq!(first.requests.unwrap().remaining(), 1);
        assert_eq!(first.tokens.unwrap().kind, LimitKind::TokensPerMinute);
        add_tokens(&store, &k, 100).await;
        let refused = admit(&store, &k).await.unwrap_err();
        assert_eq!(refused.quota.kind, LimitKind::TokensPerMinute);
        assert_eq!(refused.snapshot.tokens.unwrap().remaining(), 0);
        let mut headers = HeaderMap::new();
        refused.snapshot.apply(&mut headers);
        assert_eq!(headers["x-ratelimit-limit-tokens"], "100");
        assert_eq!(headers["x-ratelimit-remaining-tokens"], "0");
        assert_eq!(headers["x-ratelimit-limit-requests"], "2");

        let r = key(Some(2), None, None);
        let r = ClientKey {
            id: "key_r".into(),
            ..r
        };
        assert!(admit(&store, &r).await.is_ok());
        assert!(admit(&store, &r).await.is_ok());
        let refused = admit(&store, &r).await.unwrap_err();
        assert_eq!(refused.quota.kind, LimitKind::RequestsPerMinute);
        assert_eq!(refused.snapshot.requests.unwrap().remaining(), 0);
        assert!(refused.snapshot.tokens.is_none());

        let unlimited = admit(&store, &key(None, None, None)).await.unwrap();
        assert_eq!(unlimited, RateSnapshot::default());
    }
}
