//! A `chat.completion.chunk`, typed. One is built and written per upstream event, so it is a
//! plain struct serialised straight into its frame rather than a `Value` (with
//! `preserve_order`, an `IndexMap` hashing every key: a third of chat's cost per event,
//! bench/README "CPU per relayed event").

use super::usage::ChatUsage;
use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chunk {
    pub id: Arc<str>,
    pub object: &'static str,
    pub created: i64,
    pub model: Arc<str>,
    /// `choices`: one choice, or none in the usage chunk.
    #[serde(rename = "choices", serialize_with = "zero_or_one")]
    pub choice: Option<Choice>,
    #[serde(skip_serializing_if = "UsageField::is_absent")]
    pub usage: UsageField,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    pub index: u32,
    pub delta: Delta,
    /// Always `null`: Model Studio's stream carries no log probabilities.
    pub logprobs: (),
    pub finish_reason: Option<&'static str>,
}

/// What a chunk adds; only the fields it carries are written (`{}` in the finish chunk).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_call: Option<Value>,
}

/// `usage` as OpenAI streams it: left out unless the client asked for usage; then `null` in
/// every chunk but the last, which carries the figures.
#[derive(Debug, Clone, PartialEq)]
pub enum UsageField {
    Absent,
    Null,
    Reported(Box<ChatUsage>),
}

impl Delta {
    pub fn content(text: String) -> Self {
        Self {
            content: Some(text),
            ..Self::default()
        }
    }
}

impl UsageField {
    fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }
}

impl Serialize for UsageField {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Reported(usage) => usage.serialize(s),
            Self::Absent | Self::Null => s.serialize_unit(),
        }
    }
}

fn zero_or_one<S: Serializer>(choice: &Option<Choice>, s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(usize::from(choice.is_some())))?;
    if let Some(choice) = choice {
        seq.serialize_element(choice)?;
    }
    seq.end()
}

impl Chunk {
    /// The chunk as JSON, for code (and tests) that inspect it rather than write it.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The final usage chunk: `choices` is always empty, as OpenAI sends it.
pub fn usage_chunk(id: &str, created: i64, model: &str, usage: &ChatUsage) -> Chunk {
    Chunk {
        id: id.into(),
        object: "chat.completion.chunk",
        created,
        model: model.into(),
        choice: None,
        usage: UsageField::Reported(Box::new(usage.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_openais_shape_in_openais_order() {
        let chunk = Chunk {
            id: "chatcmpl-1".into(),
            object: "chat.completion.chunk",
            created: 7,
            model: "qwen3-max".into(),
            choice: Some(Choice {
                index: 0,
                delta: Delta {
                    role: Some("assistant"),
                    content: Some("Hi".into()),
                    ..Delta::default()
                },
                logprobs: (),
                finish_reason: None,
            }),
            usage: UsageField::Null,
        };
        assert_eq!(
            serde_json::to_string(&chunk).unwrap(),
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":7,"model":"qwen3-max","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":null}"#
        );
        let finish = Chunk {
            choice: Some(Choice {
                delta: Delta::default(),
                finish_reason: Some("stop"),
                ..chunk.choice.clone().unwrap()
            }),
            usage: UsageField::Absent,
            ..chunk.clone()
        };
        assert_eq!(finish.to_value()["choices"][0]["delta"], json!({}));
        assert!(finish.to_value().get("usage").is_none());
        let usage = ChatUsage {
            prompt_tokens: 1,
            completion_tokens: 2,
            total_tokens: 3,
            ..ChatUsage::default()
        };
        let last = usage_chunk("chatcmpl-1", 7, "qwen3-max", &usage).to_value();
        assert_eq!(last["choices"], json!([]));
        assert_eq!(last["usage"]["total_tokens"], 3);
    }
}
