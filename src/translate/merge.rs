//! `n > 1`: the choices of parallel completions merged into one answer, usage summed.

use serde_json::Value;

/// Appends the other completions' choices (re-indexed) and sums their usage.
pub fn merge_choices(first: &mut Value, others: Vec<Value>) {
    let mut usage = first.get("usage").cloned();
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
        usage = match (usage, other.get("usage")) {
            (Some(a), Some(b)) => Some(sum_usage(&a, b)),
            _ => None,
        };
    }
    match usage {
        Some(u) => first["usage"] = u,
        None => {
            if let Some(obj) = first.as_object_mut() {
                obj.remove("usage");
            }
        }
    }
}

/// Adds two chat `usage` objects field by field (nested details included).
pub fn sum_usage(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            Value::from(x.as_u64().unwrap_or(0) + y.as_u64().unwrap_or(0))
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut out = x.clone();
            for (k, v) in y {
                let summed = match x.get(k) {
                    Some(existing) => sum_usage(existing, v),
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
