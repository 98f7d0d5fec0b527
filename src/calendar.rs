//! UTC days and timestamps without a date-time dependency: the ledger is kept per UTC day
//! (`YYYY-MM-DD`), key times are unix seconds shown as RFC 3339.

use std::time::{SystemTime, UNIX_EPOCH};

/// Current unix time in seconds (0 if the clock is before 1970).
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// (year, month, day) of the proleptic Gregorian calendar for days since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a Gregorian date (`days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The UTC day of unix second `secs`, as `YYYY-MM-DD`.
pub fn day(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Today (UTC) as `YYYY-MM-DD`.
pub fn today() -> String {
    day(now_secs())
}

/// Unix second `secs` as RFC 3339 UTC, e.g. `2026-01-23T04:05:06Z`.
pub fn rfc3339(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rest = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Checks a `YYYY-MM-DD` date (a real calendar day) and returns it normalised.
pub fn parse_day(text: &str) -> Option<String> {
    let text = text.trim();
    let mut parts = text.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !(all_digits(y) && all_digits(m) && all_digits(d)) {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    // A day that does not exist (e.g. 02-30) does not survive the round trip.
    let back = day(days_from_civil(y, m, d) * 86_400);
    (back == text).then_some(back)
}

/// A `--since` value: a date `YYYY-MM-DD`, `today`, or a span back from today such as `7d`
/// (the day that many days ago).
pub fn since_day(text: &str) -> Option<String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("today") {
        return Some(today());
    }
    if let Some(day) = parse_day(text) {
        return Some(day);
    }
    let span = humantime::parse_duration(text).ok()?;
    let back = i64::try_from(span.as_secs()).ok()?;
    Some(day(now_secs().saturating_sub(back)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_timestamps() {
        assert_eq!(day(0), "1970-01-01");
        assert_eq!(day(951_782_400), "2000-02-29");
        assert_eq!(day(1_769_126_400 + 86_399), "2026-01-23");
        assert_eq!(rfc3339(1_769_137_506), "2026-01-23T03:05:06Z");
        assert_eq!(day(-1), "1969-12-31");
    }

    #[test]
    fn parses_real_days_only() {
        assert_eq!(parse_day("2026-01-23").as_deref(), Some("2026-01-23"));
        assert_eq!(parse_day("2024-02-29").as_deref(), Some("2024-02-29"));
        for bad in [
            "2025-02-29",
            "2026-13-01",
            "2026-1-01",
            "26-01-01",
            "2026-01-00",
            "x",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
        assert_eq!(since_day("today"), Some(today()));
        assert_eq!(since_day("1d"), Some(day(now_secs() - 86_400)));
        assert_eq!(since_day("yesterday-ish"), None);
    }
}
