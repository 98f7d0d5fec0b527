//! Token usage as Model Studio reports it, in one shape for logs, metrics and the ledger.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    /// Built-in tool calls (`usage.x_tools.*.count` summed).
    pub tool_calls: u64,
}

impl Usage {
    /// Reads a Responses API `usage` object; `None` when it is absent or not an object.
    pub fn from_responses(usage: &Value) -> Option<Self> {
        let obj = usage.as_object()?;
        let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
        // Two lookups, not `Value::pointer`: that unescapes each path token into a new
        // String, which cost more than the rest of reading the body (bench/PROFILE.md).
        let detail = |outer: &str, inner: &str| obj.get(outer).and_then(|d| d.get(inner));
        let tool_calls = obj
            .get("x_tools")
            .and_then(Value::as_object)
            .map(|tools| tools.values().map(|t| n(t.get("count"))).sum())
            .unwrap_or(0);
        Some(Self {
            input_tokens: n(obj.get("input_tokens")),
            output_tokens: n(obj.get("output_tokens")),
            cached_tokens: n(detail("input_tokens_details", "cached_tokens")),
            reasoning_tokens: n(detail("output_tokens_details", "reasoning_tokens")),
            tool_calls,
        })
    }

    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cached_tokens += other.cached_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.tool_calls += other.tool_calls;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_model_studio_usage() {
        let v = serde_json::json!({
            "input_tokens": 40836, "output_tokens": 2106, "total_tokens": 42942,
            "input_tokens_details": {"cached_tokens": 7},
            "output_tokens_details": {"reasoning_tokens": 677},
            "x_tools": {"web_extractor": {"count": 1}, "web_search": {"count": 2}}
        });
        let u = Usage::from_responses(&v).unwrap();
        assert_eq!(u.input_tokens, 40836);
        assert_eq!(u.output_tokens, 2106);
        assert_eq!(u.cached_tokens, 7);
        assert_eq!(u.reasoning_tokens, 677);
        assert_eq!(u.tool_calls, 3);
        assert_eq!(u.total(), 42942);
        assert!(Usage::from_responses(&Value::Null).is_none());
    }
}
