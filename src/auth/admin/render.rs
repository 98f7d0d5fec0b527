//! Key lists and usage as the CLI prints them: aligned tables and CSV.

use super::*;
use crate::store::USAGE_COUNTERS;

/// Columns left-aligned (text) or right-aligned (numbers), two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>], numeric: &[bool]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .zip(numeric)
            .map(|((cell, &w), &num)| {
                if num {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        parts.join("  ").trim_end().to_owned()
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.clone()));
        out.push('\n');
    }
    out
}

fn or_dash(v: &str) -> String {
    if v.is_empty() { "-".into() } else { v.into() }
}

pub(super) fn key_label(line: &UsageLine) -> String {
    match (&line.key_name, line.row.key_id.as_str()) {
        (Some(name), _) => name.clone(),
        (None, "") => "(no key)".into(),
        (None, id) => id.to_owned(),
    }
}

/// The columns before the counters ([`USAGE_COUNTERS`]) in the CSV.
const USAGE_KEY_COLUMNS: [&str; 5] = ["day", "key_id", "key_name", "model", "region"];

fn numbers(l: &UsageLine) -> [u64; 8] {
    l.row.counters()
}

/// The ledger as a table with a total line.
pub fn usage_table(lines: &[UsageLine]) -> String {
    let header = [
        "DAY",
        "KEY",
        "MODEL",
        "REGION",
        "REQUESTS",
        "ERRORS",
        "INPUT",
        "OUTPUT",
        "CACHED",
        "REASONING",
        "TOOLS",
        "ESTIMATED",
    ];
    let mut numeric = vec![false; 4];
    numeric.extend([true; 8]);
    let mut totals = [0u64; 8];
    let mut rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            let n = numbers(l);
            for (t, v) in totals.iter_mut().zip(n) {
                *t = t.saturating_add(v);
            }
            let mut row = vec![
                l.row.day.clone(),
                key_label(l),
                or_dash(&l.row.model),
                or_dash(&l.row.region),
            ];
            row.extend(n.iter().map(u64::to_string));
            row
        })
        .collect();
    if lines.len() > 1 {
        let mut total = vec![
            "TOTAL".to_owned(),
            String::new(),
            String::new(),
            String::new(),
        ];
        total.extend(totals.iter().map(u64::to_string));
        rows.push(total);
    }
    if lines.is_empty() {
        return "no usage recorded\n".to_owned();
    }
    table(&header, &rows, &numeric)
}

/// A CSV field, quoted when it needs to be (RFC 4180).
fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

/// A CSV field a spreadsheet will not run: text starting with `=`, `+`, `-`, `@`, a tab or
/// a carriage return (what spreadsheets take for a formula) gets a leading `'`, then the
/// field is quoted as [`csv_field`] does.
fn spreadsheet_field(v: &str) -> String {
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        csv_field(&format!("'{v}"))
    } else {
        csv_field(v)
    }
}

/// The ledger as CSV with a header line.
pub fn usage_csv(lines: &[UsageLine]) -> String {
    csv_with(lines, csv_field)
}

/// [`usage_csv`] for a download a spreadsheet opens (the dashboard's `usage.csv`): text
/// cells that look like formulas are defused (see `spreadsheet_field`).
pub fn usage_csv_for_spreadsheets(lines: &[UsageLine]) -> String {
    csv_with(lines, spreadsheet_field)
}

fn csv_with(lines: &[UsageLine], field: fn(&str) -> String) -> String {
    let mut out = USAGE_KEY_COLUMNS
        .iter()
        .chain(&USAGE_COUNTERS)
        .copied()
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for l in lines {
        let mut fields = vec![
            field(&l.row.day),
            field(&l.row.key_id),
            field(l.key_name.as_deref().unwrap_or("")),
            field(&l.row.model),
            field(&l.row.region),
        ];
        fields.extend(numbers(l).iter().map(u64::to_string));
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[test]
fn spreadsheet_fields_are_defused_and_quoted() {
    assert_eq!(spreadsheet_field("=cmd"), "'=cmd");
    assert_eq!(spreadsheet_field("-1+2"), "'-1+2");
    assert_eq!(spreadsheet_field("@x,y"), "\"'@x,y\"");
    assert_eq!(spreadsheet_field("\tx"), "'\tx");
    assert_eq!(spreadsheet_field("a\"b"), "\"a\"\"b\"");
    assert_eq!(spreadsheet_field("qwen-plus"), "qwen-plus");
}

/// Keys as a table.
pub fn keys_table(views: &[KeyView]) -> String {
    if views.is_empty() {
        return "no keys\n".to_owned();
    }
    let header = [
        "ID", "NAME", "PREFIX", "STATUS", "MODELS", "REGIONS", "RPM", "TPM", "DAILY", "CREATED",
        "EXPIRES",
    ];
    let numeric = [
        false, false, false, false, false, false, true, true, true, false, false,
    ];
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |n| n.to_string());
    let list = |v: &[String]| {
        if v.is_empty() {
            "*".to_owned()
        } else {
            v.join(",")
        }
    };
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|k| {
            vec![
                k.id.clone(),
                k.name.clone(),
                k.prefix.clone(),
                k.status.as_str().to_owned(),
                list(&k.models),
                list(&k.regions),
                opt(k.rpm),
                opt(k.tpm),
                opt(k.daily_tokens),
                k.created_at.clone(),
                k.expires_at.clone().unwrap_or_else(|| "never".into()),
            ]
        })
        .collect();
    table(&header, &rows, &numeric)
}
