//! Behaviours every backend must share. Each takes a fresh [`Fixture`]; the behaviours
//! are grouped by what they store, the shared builders stay here.

mod conversations;
mod keys;
mod usage;

pub(super) use conversations::*;
pub(super) use keys::*;
pub(super) use usage::*;

use std::time::Duration;

use serde_json::json;

use super::Fixture;
use crate::store::{KeyRecord, Store, StoreError, Turn, UsageDelta};

const HOUR: Duration = Duration::from_secs(3600);

fn turn(id: &str, previous: Option<&str>) -> Turn {
    Turn {
        response_id: id.to_owned(),
        previous_response_id: previous.map(str::to_owned),
        region: "intl".to_owned(),
        input: vec![json!({"role": "user", "content": format!("question {id}")})],
        output: vec![json!({"type": "message", "content": [{"type": "output_text", "text": id}]})],
        created_at: 1_700_000_000,
        owner: None,
    }
}

fn ids(turns: &[Turn]) -> Vec<&str> {
    turns.iter().map(|t| t.response_id.as_str()).collect()
}

fn key(id: &str, name: &str, created_at: i64) -> KeyRecord {
    KeyRecord {
        id: id.to_owned(),
        name: name.to_owned(),
        hash: format!("{:0>64}", hex_of(id)),
        prefix: format!("sk-qgw-{id}"),
        models: vec!["qwen-*".to_owned(), "qwen3-max".to_owned()],
        regions: vec![],
        rpm: Some(60),
        tpm: None,
        daily_tokens: Some(1_000_000),
        created_at,
        expires_at: None,
        revoked_at: None,
    }
}

/// A stand-in for a SHA-256 hex digest: distinct per id, lowercase hex.
fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn delta(day: &str, key_id: &str, model: &str, region: &str, n: u64) -> UsageDelta {
    UsageDelta {
        day: day.to_owned(),
        key_id: key_id.to_owned(),
        model: model.to_owned(),
        region: region.to_owned(),
        requests: 1,
        errors: n % 2,
        input_tokens: 100 * n,
        output_tokens: 10 * n,
        cached_tokens: n,
        reasoning_tokens: 2 * n,
        tool_calls: 3 * n,
        estimated: n % 3,
    }
}

fn conflict_text(result: Result<(), StoreError>) -> String {
    match result {
        Err(StoreError::Conflict { what }) => what,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// The region an affinity record names, or `None` when there is none.
async fn region_of(s: &Store, response_id: &str) -> Option<String> {
    s.get_affinity(response_id).await.unwrap().map(|a| a.region)
}
