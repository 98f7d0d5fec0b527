//! Chat `messages` → Responses `input` items (docs/chat-completions.md, "Messages").
//!
//! Order is kept, with one exception Model Studio forces on us: every
//! `function_call_output` must sit right after its own `function_call`, so tool results
//! are collected first and re-emitted next to their call.

use super::TranslateError;
use super::fields::{Obj, invalid_type, missing, nested_str, present, required_str};
use serde_json::{Value, json};
use std::collections::HashMap;

/// A `function_call` waiting for its output while the messages are walked.
struct CallSlot {
    item: Value,
    call_id: String,
    /// Legacy `function_call` (no id): outputs are matched by function name instead.
    legacy_name: Option<String>,
    output: Option<Value>,
    /// Index of the assistant message that made the call, for error messages.
    message_index: usize,
}

enum Entry {
    Item(Value),
    Call(usize),
}

#[derive(Default)]
struct Walk {
    entries: Vec<Entry>,
    calls: Vec<CallSlot>,
    by_id: HashMap<String, Vec<usize>>,
}

/// Translates the whole `messages` array. It is non-empty (checked by the caller).
pub(crate) fn to_input(messages: &[Value]) -> Result<Vec<Value>, TranslateError> {
    let mut walk = Walk::default();
    for (i, message) in messages.iter().enumerate() {
        walk.message(i, message)?;
    }
    walk.finish()
}

impl Walk {
    fn message(&mut self, i: usize, message: &Value) -> Result<(), TranslateError> {
        let path = format!("messages[{i}]");
        let Some(msg) = message.as_object() else {
            return Err(invalid_type(&path, "an object", message));
        };
        let role_path = format!("{path}.role");
        let role = match present(msg, "role") {
            None => return Err(missing(&role_path)),
            Some(Value::String(role)) => role.as_str(),
            Some(other) => return Err(invalid_type(&role_path, "a string", other)),
        };
        match role {
            "system" | "developer" => {
                let text = text_content(msg, &path, false)?;
                self.push_message(role, Value::String(text));
            }
            "user" => {
                let content = user_content(msg, &path)?;
                self.push_message("user", content);
            }
            "assistant" => self.assistant(i, msg, &path)?,
            "tool" => self.tool(msg, &path)?,
            "function" => self.legacy_function_result(msg, &path)?,
            other => {
                return Err(TranslateError::invalid_code(
                    role_path,
                    "invalid_value",
                    format!(
                        "Invalid value: '{other}'. Supported values are: 'system', 'developer', \
                         'user', 'assistant', 'tool', and 'function'."
                    ),
                ));
            }
        }
        Ok(())
    }

    fn push_message(&mut self, role: &str, content: Value) {
        self.entries.push(Entry::Item(json!({
            "type": "message",
            "role": role,
            "content": content,
        })));
    }

    /// Text first, then calls: the text is part of the same turn and must not be lost.
    fn assistant(&mut self, i: usize, msg: &Obj, path: &str) -> Result<(), TranslateError> {
        let text = match present(msg, "content") {
            None => None,
            Some(_) => Some(text_content(msg, path, true)?),
        };
        let tool_calls = match present(msg, "tool_calls") {
            None => &[][..],
            Some(Value::Array(calls)) => calls.as_slice(),
            Some(other) => {
                return Err(invalid_type(
                    &format!("{path}.tool_calls"),
                    "an array",
                    other,
                ));
            }
        };
        let legacy_call = match present(msg, "function_call") {
            None => None,
            Some(Value::Object(call)) => Some(call),
            Some(other) => {
                return Err(invalid_type(
                    &format!("{path}.function_call"),
                    "an object",
                    other,
                ));
            }
        };
        let has_calls = !tool_calls.is_empty() || legacy_call.is_some();
        match text {
            Some(text) if !(text.is_empty() && has_calls) => {
                self.push_message("assistant", Value::String(text));
            }
            None if !has_calls => {
                return Err(TranslateError::invalid_code(
                    format!("{path}.content"),
                    "missing_required_parameter",
                    format!(
                        "Invalid '{path}': an assistant message needs 'content' unless it has \
                         'tool_calls' or 'function_call'."
                    ),
                ));
            }
            _ => {}
        }
        for (j, call) in tool_calls.iter().enumerate() {
            self.tool_call(i, call, &format!("{path}.tool_calls[{j}]"))?;
        }
        if let Some(call) = legacy_call {
            let call_path = format!("{path}.function_call");
            let name = required_str(call, "name", &format!("{call_path}.name"))?;
            let arguments = arguments_string(call, &call_path)?;
            // Legacy calls carry no id; one is made up so the output can point at it.
            let call_id = format!("call_legacy_{i}");
            self.add_call(i, call_id, Some(name.to_owned()), name, arguments);
        }
        Ok(())
    }

    fn tool_call(&mut self, i: usize, call: &Value, path: &str) -> Result<(), TranslateError> {
        let Some(call) = call.as_object() else {
            return Err(invalid_type(path, "an object", call));
        };
        if let Some(kind) = nested_str(call, "type", &format!("{path}.type"))?
            && kind != "function"
        {
            return Err(TranslateError::invalid_code(
                format!("{path}.type"),
                "invalid_value",
                format!("Invalid value: '{kind}'. Only 'function' tool calls are supported."),
            ));
        }
        let id = required_str(call, "id", &format!("{path}.id"))?;
        let function_path = format!("{path}.function");
        let function = match present(call, "function") {
            Some(Value::Object(f)) => f,
            Some(other) => return Err(invalid_type(&function_path, "an object", other)),
            None => return Err(missing(&function_path)),
        };
        let name = required_str(function, "name", &format!("{function_path}.name"))?;
        let arguments = arguments_string(function, &function_path)?;
        self.add_call(i, id.to_owned(), None, name, arguments);
        Ok(())
    }

    fn add_call(
        &mut self,
        message_index: usize,
        call_id: String,
        legacy_name: Option<String>,
        name: &str,
        arguments: String,
    ) {
        let slot = self.calls.len();
        self.calls.push(CallSlot {
            item: json!({
                "type": "function_call",
                "call_id": call_id,
                "name": name,
                "arguments": arguments,
            }),
            call_id: call_id.clone(),
            legacy_name,
            output: None,
            message_index,
        });
        self.by_id.entry(call_id).or_default().push(slot);
        self.entries.push(Entry::Call(slot));
    }

    fn tool(&mut self, msg: &Obj, path: &str) -> Result<(), TranslateError> {
        let call_id = required_str(msg, "tool_call_id", &format!("{path}.tool_call_id"))?;
        let output = text_content(msg, path, false)?;
        let candidates = self.by_id.get(call_id).map(Vec::as_slice).unwrap_or(&[]);
        let slot = candidates
            .iter()
            .rev()
            .copied()
            .find(|&s| self.calls.get(s).is_some_and(|c| c.output.is_none()));
        match slot {
            Some(slot) => {
                self.set_output(slot, output);
                Ok(())
            }
            None if candidates.is_empty() => Err(TranslateError::invalid(
                path,
                format!(
                    "Invalid '{path}': messages with role 'tool' must be a response to a preceding \
                     message with 'tool_calls'; no earlier assistant tool call has id '{call_id}'."
                ),
            )),
            None => Err(TranslateError::invalid(
                path,
                format!("Invalid '{path}': tool call '{call_id}' already has a response."),
            )),
        }
    }

    /// Legacy `{role:"function", name, content}`: answers the latest unanswered legacy
    /// call of that name.
    fn legacy_function_result(&mut self, msg: &Obj, path: &str) -> Result<(), TranslateError> {
        let name = required_str(msg, "name", &format!("{path}.name"))?;
        let output = text_content(msg, path, false)?;
        let slot = self
            .calls
            .iter()
            .rposition(|c| c.output.is_none() && c.legacy_name.as_deref() == Some(name));
        match slot {
            Some(slot) => {
                self.set_output(slot, output);
                Ok(())
            }
            None => Err(TranslateError::invalid(
                path,
                format!(
                    "Invalid '{path}': a 'function' message must answer an earlier assistant \
                     'function_call' named '{name}' that has no response yet."
                ),
            )),
        }
    }

    fn set_output(&mut self, slot: usize, output: String) {
        if let Some(call) = self.calls.get_mut(slot) {
            call.output = Some(json!({
                "type": "function_call_output",
                "call_id": call.call_id,
                "output": output,
            }));
        }
    }

    /// Lays the items out, each output right after its call. A call without an output is
    /// refused, as OpenAI does: Model Studio cannot pair it either.
    fn finish(self) -> Result<Vec<Value>, TranslateError> {
        let mut calls: Vec<Option<CallSlot>> = self.calls.into_iter().map(Some).collect();
        let mut input = Vec::with_capacity(self.entries.len() * 2);
        for entry in self.entries {
            match entry {
                Entry::Item(item) => input.push(item),
                Entry::Call(slot) => {
                    let Some(call) = calls.get_mut(slot).and_then(Option::take) else {
                        continue;
                    };
                    let Some(output) = call.output else {
                        let path = format!("messages[{}]", call.message_index);
                        return Err(TranslateError::invalid(
                            &path,
                            format!(
                                "Invalid '{path}': an assistant message with 'tool_calls' must be \
                                 followed by tool messages responding to each 'tool_call_id'. \
                                 No response for: {}.",
                                call.call_id
                            ),
                        ));
                    };
                    input.push(call.item);
                    input.push(output);
                }
            }
        }
        Ok(input)
    }
}

/// `arguments` as the string Responses wants; an object some clients send is serialised.
fn arguments_string(function: &Obj, path: &str) -> Result<String, TranslateError> {
    Ok(match present(function, "arguments") {
        None => "{}".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(v @ Value::Object(_)) => v.to_string(),
        Some(other) => {
            return Err(invalid_type(
                &format!("{path}.arguments"),
                "a string",
                other,
            ));
        }
    })
}

/// Text of a system/developer/tool/assistant message: a string, or text parts joined by
/// `\n` (array content must not be dropped). Assistant `refusal` parts are dropped.
fn text_content(msg: &Obj, path: &str, assistant: bool) -> Result<String, TranslateError> {
    let content_path = format!("{path}.content");
    let parts = match present(msg, "content") {
        None => return Err(missing(&content_path)),
        Some(Value::String(s)) => return Ok(s.clone()),
        Some(Value::Array(parts)) => parts,
        Some(other) => {
            return Err(invalid_type(
                &content_path,
                "a string or an array of text parts",
                other,
            ));
        }
    };
    let mut texts = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let part_path = format!("{content_path}[{j}]");
        let Some(part) = part.as_object() else {
            return Err(invalid_type(&part_path, "an object", part));
        };
        match nested_str(part, "type", &format!("{part_path}.type"))? {
            Some("text") => {
                let text = nested_str(part, "text", &format!("{part_path}.text"))?
                    .ok_or_else(|| missing(&format!("{part_path}.text")))?;
                texts.push(text);
            }
            Some("refusal") if assistant => {}
            other => {
                return Err(TranslateError::invalid_code(
                    format!("{part_path}.type"),
                    "invalid_value",
                    format!(
                        "Invalid value: '{}'. This message role only supports 'text' parts.",
                        other.unwrap_or("")
                    ),
                ));
            }
        }
    }
    Ok(texts.join("\n"))
}

/// User content: a string stays a string; parts become `input_text` / `input_image` /
/// `input_file`. Audio input cannot be honoured upstream, so it is refused.
fn user_content(msg: &Obj, path: &str) -> Result<Value, TranslateError> {
    let content_path = format!("{path}.content");
    let parts = match present(msg, "content") {
        None => return Err(missing(&content_path)),
        Some(Value::String(s)) => return Ok(Value::String(s.clone())),
        Some(Value::Array(parts)) => parts,
        Some(other) => {
            return Err(invalid_type(
                &content_path,
                "a string or an array of content parts",
                other,
            ));
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let part_path = format!("{content_path}[{j}]");
        let Some(part) = part.as_object() else {
            return Err(invalid_type(&part_path, "an object", part));
        };
        out.push(user_part(part, &part_path)?);
    }
    Ok(Value::Array(out))
}

fn user_part(part: &Obj, path: &str) -> Result<Value, TranslateError> {
    let type_path = format!("{path}.type");
    match nested_str(part, "type", &type_path)? {
        Some("text") => {
            let text = nested_str(part, "text", &format!("{path}.text"))?
                .ok_or_else(|| missing(&format!("{path}.text")))?;
            Ok(json!({"type": "input_text", "text": text}))
        }
        Some("image_url") => image_part(part, path),
        Some("file") => file_part(part, path),
        Some("input_audio") => Err(TranslateError::invalid_code(
            path,
            "unsupported_value",
            format!(
                "Invalid '{path}': 'input_audio' content is not supported by this gateway \
                 (Model Studio's Responses API takes no audio input)."
            ),
        )),
        Some(other) => Err(TranslateError::invalid_code(
            type_path,
            "invalid_value",
            format!(
                "Invalid value: '{other}'. Supported values are: 'text', 'image_url' and 'file'."
            ),
        )),
        None => Err(missing(&type_path)),
    }
}

fn image_part(part: &Obj, path: &str) -> Result<Value, TranslateError> {
    let image_path = format!("{path}.image_url");
    let (url, detail) = match present(part, "image_url") {
        // Some clients send the URL directly instead of `{url}`.
        Some(Value::String(url)) => (url.as_str(), None),
        Some(Value::Object(image)) => (
            required_str(image, "url", &format!("{image_path}.url"))?,
            nested_str(image, "detail", &format!("{image_path}.detail"))?,
        ),
        Some(other) => return Err(invalid_type(&image_path, "an object", other)),
        None => return Err(missing(&image_path)),
    };
    Ok(json!({
        "type": "input_image",
        "image_url": url,
        "detail": detail.unwrap_or("auto"),
    }))
}

fn file_part(part: &Obj, path: &str) -> Result<Value, TranslateError> {
    let file_path = format!("{path}.file");
    let file = match present(part, "file") {
        Some(Value::Object(file)) => file,
        Some(other) => return Err(invalid_type(&file_path, "an object", other)),
        None => return Err(missing(&file_path)),
    };
    let mut item = serde_json::Map::new();
    item.insert("type".into(), "input_file".into());
    for key in ["file_id", "file_data", "filename"] {
        if let Some(value) = nested_str(file, key, &format!("{file_path}.{key}"))? {
            item.insert(key.into(), value.into());
        }
    }
    if !item.contains_key("file_id") && !item.contains_key("file_data") {
        return Err(TranslateError::invalid(
            &file_path,
            format!("Invalid '{file_path}': expected 'file_id' or 'file_data'."),
        ));
    }
    Ok(Value::Object(item))
}
