//! Responses `usage` → chat `usage` (docs/chat-completions.md, "The answer"), and its sum
//! over `n > 1` choices.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A chat completion's `usage`. Details are `None` unless upstream reported them, so no
/// number is made up; they serialise only when present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
    /// Model Studio's built-in tool counts, kept as an extension field in the shape upstream
    /// sent (undocumented, so not typed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_tools: Option<Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionTokensDetails {
    pub reasoning_tokens: u64,
}

/// Renames the Responses counters (`input_tokens` → `prompt_tokens`, ...).
pub fn chat_usage(responses_usage: &Value) -> ChatUsage {
    let count = |key: &str| responses_usage.get(key).and_then(Value::as_u64);
    let detail = |outer: &str, inner: &str| {
        responses_usage
            .get(outer)
            .and_then(|d| d.get(inner))
            .and_then(Value::as_u64)
    };
    let prompt = count("input_tokens").unwrap_or(0);
    let completion = count("output_tokens").unwrap_or(0);
    ChatUsage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: count("total_tokens").unwrap_or(prompt.saturating_add(completion)),
        prompt_tokens_details: detail("input_tokens_details", "cached_tokens")
            .map(|cached_tokens| PromptTokensDetails { cached_tokens }),
        completion_tokens_details: detail("output_tokens_details", "reasoning_tokens")
            .map(|reasoning_tokens| CompletionTokensDetails { reasoning_tokens }),
        x_tools: responses_usage
            .get("x_tools")
            .filter(|v| !v.is_null())
            .cloned(),
    }
}

impl ChatUsage {
    /// Adds another choice's usage (saturating). A detail only one side reported is kept as
    /// that side's figure: the other reported none, not zero.
    pub fn add(&mut self, other: &ChatUsage) {
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(other.completion_tokens);
        self.total_tokens = self.total_tokens.saturating_add(other.total_tokens);
        let cached = |d: Option<PromptTokensDetails>| d.map(|d| d.cached_tokens);
        self.prompt_tokens_details = reported_sum(
            cached(self.prompt_tokens_details),
            cached(other.prompt_tokens_details),
        )
        .map(|cached_tokens| PromptTokensDetails { cached_tokens });
        let reasoning = |d: Option<CompletionTokensDetails>| d.map(|d| d.reasoning_tokens);
        self.completion_tokens_details = reported_sum(
            reasoning(self.completion_tokens_details),
            reasoning(other.completion_tokens_details),
        )
        .map(|reasoning_tokens| CompletionTokensDetails { reasoning_tokens });
        self.x_tools = match (self.x_tools.take(), &other.x_tools) {
            (Some(a), Some(b)) => Some(sum_numbers(&a, b)),
            (a, b) => a.or_else(|| b.clone()),
        };
    }
}

/// The sum of two figures, saturating; one side's figure when only it reported one.
fn reported_sum(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.saturating_add(b)),
        (a, b) => a.or(b),
    }
}

/// Adds two JSON values of unknown shape number by number (objects key by key); where the
/// shapes differ, the first is kept.
fn sum_numbers(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_u64(), y.as_u64()) {
            (Some(x), Some(y)) => Value::from(x.saturating_add(y)),
            _ => a.clone(),
        },
        (Value::Object(x), Value::Object(y)) => {
            let mut out = x.clone();
            for (k, v) in y {
                let summed = match x.get(k) {
                    Some(existing) => sum_numbers(existing, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), summed);
            }
            Value::Object(out)
        }
        (keep, _) => keep.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn details_and_x_tools_are_copied_only_when_reported() {
        let bare = chat_usage(&json!({"input_tokens": 2, "output_tokens": 3}));
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            json!({"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5})
        );
        let full = chat_usage(&json!({
            "input_tokens": 2, "output_tokens": 3, "total_tokens": 6,
            "input_tokens_details": {"cached_tokens": 1},
            "output_tokens_details": {"reasoning_tokens": 2},
            "x_tools": {"web_search": {"count": 1}},
        }));
        assert_eq!(
            serde_json::to_value(&full).unwrap(),
            json!({"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 6,
                "prompt_tokens_details": {"cached_tokens": 1},
                "completion_tokens_details": {"reasoning_tokens": 2},
                "x_tools": {"web_search": {"count": 1}}})
        );
    }

    #[test]
    fn sums_counters_details_and_x_tools_of_any_shape() {
        let mut sum = chat_usage(&json!({
            "input_tokens": 2, "output_tokens": 3,
            "output_tokens_details": {"reasoning_tokens": 1},
            "x_tools": {"web_search": {"count": 1}, "odd": "text"},
        }));
        sum.add(&chat_usage(&json!({
            "input_tokens": 4, "output_tokens": 5,
            "input_tokens_details": {"cached_tokens": 2},
            "output_tokens_details": {"reasoning_tokens": 2},
            "x_tools": {"web_search": {"count": 2}, "code": {"count": 1}, "odd": 7},
        })));
        assert_eq!(
            serde_json::to_value(&sum).unwrap(),
            json!({"prompt_tokens": 6, "completion_tokens": 8, "total_tokens": 14,
                "prompt_tokens_details": {"cached_tokens": 2},
                "completion_tokens_details": {"reasoning_tokens": 3},
                "x_tools": {"web_search": {"count": 3}, "code": {"count": 1}, "odd": "text"}})
        );
        let mut big = ChatUsage {
            total_tokens: u64::MAX,
            ..ChatUsage::default()
        };
        big.add(&sum);
        assert_eq!(big.total_tokens, u64::MAX);
    }
}
