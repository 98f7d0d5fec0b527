//! How big a Chat Completions request's structure is, counted before any of it is built.
//!
//! A 10 MB body of 300,000 tiny messages becomes hundreds of MB as a JSON tree, so the
//! counts are taken by a streaming pass that allocates nothing (serde's `IgnoredAny` for
//! every value it does not count) and stops at the first limit crossed: the tree is only
//! built for a request within `chat.max_messages`, `chat.max_content_parts` and
//! `chat.max_tools`.

use super::TranslateError;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
use std::fmt;

/// Bounds on a request's structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    pub max_messages: usize,
    /// Content parts over all messages.
    pub max_content_parts: usize,
    /// `tools` plus legacy `functions`.
    pub max_tools: usize,
}

impl Default for SizeLimits {
    fn default() -> Self {
        Self {
            max_messages: 10_000,
            max_content_parts: 50_000,
            max_tools: 512,
        }
    }
}

/// Which bound a request crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crossed {
    Messages,
    Parts,
    Tools,
}

struct Counter<'a> {
    limits: SizeLimits,
    messages: Cell<usize>,
    parts: Cell<usize>,
    tools: Cell<usize>,
    crossed: &'a Cell<Option<Crossed>>,
}

impl Counter<'_> {
    fn bump<E: serde::de::Error>(
        &self,
        cell: &Cell<usize>,
        max: usize,
        what: Crossed,
    ) -> Result<(), E> {
        cell.set(cell.get() + 1);
        if cell.get() > max {
            self.crossed.set(Some(what));
            return Err(E::custom("size limit"));
        }
        Ok(())
    }
}

/// Checks `body`'s counts. Bodies that are not JSON objects pass: the full parse that
/// follows refuses them with its own, better message.
pub fn check_chat_size(body: &[u8], limits: SizeLimits) -> Result<(), TranslateError> {
    let crossed = Cell::new(None);
    let counter = Counter {
        limits,
        messages: Cell::new(0),
        parts: Cell::new(0),
        tools: Cell::new(0),
        crossed: &crossed,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = (&counter).deserialize(&mut de);
    let (param, limit, name) = match crossed.get() {
        None => return Ok(()),
        Some(Crossed::Messages) => ("messages", limits.max_messages, "chat.max_messages"),
        Some(Crossed::Parts) => (
            "messages",
            limits.max_content_parts,
            "chat.max_content_parts",
        ),
        Some(Crossed::Tools) => ("tools", limits.max_tools, "chat.max_tools"),
    };
    let what = match crossed.get() {
        Some(Crossed::Parts) => "content parts",
        Some(Crossed::Tools) => "tools",
        _ => "messages",
    };
    Err(TranslateError::invalid_code(
        param,
        "request_too_large",
        format!("The request has more than {limit} {what}, this gateway's limit ({name})."),
    ))
}

/// Visitor methods that accept any scalar where a list or object is counted: odd shapes
/// are the full parser's to refuse, with its better message.
macro_rules! accept_scalars {
    () => {
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    };
}

impl<'de> DeserializeSeed<'de> for &Counter<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(Top(self))
    }
}

struct Top<'c, 'a>(&'c Counter<'a>);

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "messages" => map.next_value_seed(Seq(self.0, Item::Message))?,
                "tools" | "functions" => map.next_value_seed(Seq(self.0, Item::Tool))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Item {
    Message,
    Tool,
    Part,
}

/// A list whose elements are counted (anything else in its place is skipped).
struct Seq<'c, 'a>(&'c Counter<'a>, Item);

impl<'de> DeserializeSeed<'de> for Seq<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seq<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let c = self.0;
        loop {
            let more = match self.1 {
                Item::Message => {
                    let more = seq.next_element_seed(Message(c))?.is_some();
                    if more {
                        c.bump(&c.messages, c.limits.max_messages, Crossed::Messages)?;
                    }
                    more
                }
                Item::Tool | Item::Part => {
                    let more = seq.next_element::<IgnoredAny>()?.is_some();
                    if more {
                        match self.1 {
                            Item::Tool => c.bump(&c.tools, c.limits.max_tools, Crossed::Tools)?,
                            _ => c.bump(&c.parts, c.limits.max_content_parts, Crossed::Parts)?,
                        }
                    }
                    more
                }
            };
            if !more {
                return Ok(());
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
    accept_scalars!();
}

/// One message: its `content` parts are counted.
struct Message<'c, 'a>(&'c Counter<'a>);

impl<'de> DeserializeSeed<'de> for Message<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Message<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "content" {
                map.next_value_seed(Seq(self.0, Item::Part))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    accept_scalars!();
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: SizeLimits = SizeLimits {
        max_messages: 3,
        max_content_parts: 4,
        max_tools: 2,
    };

    fn messages(n: usize) -> String {
        let one = r#"{"role":"user","content":"hi"}"#;
        format!(r#"{{"model":"m","messages":[{}]}}"#, vec![one; n].join(","))
    }

    #[test]
    fn counts_messages_parts_and_tools() {
        assert!(check_chat_size(messages(3).as_bytes(), SMALL).is_ok());
        let err = check_chat_size(messages(4).as_bytes(), SMALL).unwrap_err();
        assert!(format!("{err:?}").contains("chat.max_messages"), "{err:?}");
        let parts = r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"},{"type":"text","text":"c"}]},{"role":"user","content":[{"type":"text","text":"d"},{"type":"text","text":"e"}]}]}"#;
        let err = check_chat_size(parts.as_bytes(), SMALL).unwrap_err();
        assert!(format!("{err:?}").contains("chat.max_content_parts"));
        let tools = r#"{"tools":[{},{},{}],"messages":[]}"#;
        assert!(
            format!(
                "{:?}",
                check_chat_size(tools.as_bytes(), SMALL).unwrap_err()
            )
            .contains("chat.max_tools")
        );
        // Nested "messages" keys elsewhere are not counted; odd shapes pass to the parser.
        let nested =
            r#"{"metadata":{"messages":[1,2,3,4,5]},"messages":[{"content":{"x":[1,2,3,4,5,6]}}]}"#;
        assert!(check_chat_size(nested.as_bytes(), SMALL).is_ok());
        for odd in [
            "[1,2]",
            "nope",
            r#"{"messages":"x"}"#,
            r#"{"messages":[1,"a",null]}"#,
        ] {
            assert!(check_chat_size(odd.as_bytes(), SMALL).is_ok(), "{odd}");
        }
    }
}
