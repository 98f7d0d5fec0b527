//! `n > 1`: the choices of parallel completions merged into one answer, usage summed.

use super::usage::ChatUsage;
use serde::Deserialize;
use serde_json::Value;

/// Appends the other completions' choices (re-indexed) and sums their usage. A completion
/// without usage (cut by a stop sequence) leaves the merged answer without one: a partial
/// sum must not pass for the total.
pub fn merge_choices(first: &mut Value, others: Vec<Value>) {
    let mut usage = usage_of(first);
    for (offset, other) in others.into_iter().enumerate() {
        let index = offset + 1;
        if let Some(choices) = other.get("choices").and_then(Value::as_array) {
            for choice in choices {
                let mut choice = choice.clone();
                choice["index"] = Value::from(index);
                if let Some(list) = first.get_mut("choices").and_then(Value::as_array_mut) {
                    list.push(choice);
                }
            }
        }
        usage = match (usage, usage_of(&other)) {
            (Some(mut sum), Some(more)) => {
                sum.add(&more);
                Some(sum)
            }
            _ => None,
        };
    }
    let Some(obj) = first.as_object_mut() else {
        return;
    };
    match usage.map(serde_json::to_value) {
        Some(Ok(u)) => {
            obj.insert("usage".into(), u);
        }
        _ => {
            obj.remove("usage");
        }
    }
}

/// The typed usage of a completion the translator built (`None` when it has none).
fn usage_of(completion: &Value) -> Option<ChatUsage> {
    ChatUsage::deserialize(completion.get("usage")?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn choices_are_reindexed_and_usage_summed_or_dropped() {
        let one = |text: &str, usage: Option<Value>| {
            let mut c = json!({"choices": [{"index": 0, "message": {"content": text}}]});
            if let Some(u) = usage {
                c["usage"] = u;
            }
            c
        };
        let u = json!({"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5,
            "completion_tokens_details": {"reasoning_tokens": 1}});
        let mut first = one("a", Some(u.clone()));
        merge_choices(
            &mut first,
            vec![one("b", Some(u.clone())), one("c", Some(u.clone()))],
        );
        let indexes: Vec<u64> = first["choices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["index"].as_u64().unwrap())
            .collect();
        assert_eq!(indexes, [0, 1, 2]);
        assert_eq!(first["usage"]["total_tokens"], 15);
        assert_eq!(
            first["usage"]["completion_tokens_details"]["reasoning_tokens"],
            3
        );
        // One choice without usage (cut by a stop sequence): no partial sum passes for the total.
        let mut first = one("a", Some(u.clone()));
        merge_choices(&mut first, vec![one("b", None)]);
        assert!(first.get("usage").is_none());
    }
}
