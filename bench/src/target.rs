//! The servers under test, as described by run.sh in `targets.json`, and how to call them.

use serde_json::{Value, json};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

/// The model every request names (each gateway is configured to route it to the mock).
pub const MODEL: &str = "qwen3-max-2026-01-23";

/// The key every client request carries: LiteLLM's master key (run.sh configures it), ignored
/// by qwen-gateway (auth mode none), passed on as the upstream key by Portkey; the mock takes
/// any Bearer token.
pub const CLIENT_KEY: &str = "sk-bench-0c6f1e9a4d2b47d8a3e5f7091b2c4d6e";

/// One server a request can be sent to.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    /// Base URL below which `/responses` and `/chat/completions` live.
    pub base: String,
    /// Server process whose memory and CPU are read; `None` if unknown.
    pub pid: Option<u32>,
    /// Extra request headers (Portkey's routing headers).
    pub headers: Vec<(String, String)>,
    /// Model name to ask for on `/chat/completions`.
    pub chat_model: String,
    /// The mock itself (the floor), not a gateway.
    pub direct: bool,
    /// Why this target could not be run at all.
    pub unavailable: Option<String>,
    /// Why this target cannot serve `/chat/completions` (decided by run.sh or the probe).
    pub chat_na: Option<String>,
    /// Why this target cannot serve a given surface (decided by the probe).
    pub api_na: Vec<(Api, String)>,
    /// The server's log, quoted when a probe fails.
    pub log: Option<String>,
}

/// What run.sh hands over.
pub struct Setup {
    pub mock: String,
    pub targets: Vec<Target>,
    pub versions: Vec<(String, String)>,
}

fn str_field(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

pub fn load(path: &str) -> Result<Setup, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    let targets: Vec<Target> = v["targets"]
        .as_array()
        .ok_or("targets.json: no targets")?
        .iter()
        .map(|t| Target {
            name: str_field(t, "name").unwrap_or_default(),
            base: str_field(t, "base")
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_owned(),
            pid: t.get("pid").and_then(Value::as_u64).map(|p| p as u32),
            headers: t
                .get("headers")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
            chat_model: str_field(t, "chat_model").unwrap_or_else(|| MODEL.to_owned()),
            direct: t.get("direct").and_then(Value::as_bool).unwrap_or(false),
            unavailable: str_field(t, "unavailable"),
            chat_na: str_field(t, "chat_na"),
            api_na: Vec::new(),
            log: str_field(t, "log"),
        })
        .collect();
    // A fixed order for the tables, whatever order run.sh started them in.
    let rank = |t: &Target| match t.name.as_str() {
        _ if t.direct => 0,
        "qwen-gateway" => 1,
        "LiteLLM" => 2,
        "Portkey" => 3,
        _ => 4,
    };
    let mut targets: Vec<Target> = targets;
    targets.sort_by_key(rank);
    let versions = v
        .get("versions")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    Ok(Setup {
        mock: str_field(&v, "mock")
            .ok_or("targets.json: no mock")?
            .trim_end_matches('/')
            .to_owned(),
        targets,
        versions,
    })
}

/// The API surfaces a scenario exercises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Responses,
    ResponsesStream,
    Chat,
    ChatStream,
}

impl Api {
    pub fn is_chat(self) -> bool {
        matches!(self, Api::Chat | Api::ChatStream)
    }
    pub fn is_stream(self) -> bool {
        matches!(self, Api::ResponsesStream | Api::ChatStream)
    }
}

/// A ready-to-send request.
#[derive(Clone, Debug)]
pub struct Call {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Target {
    /// Why `api` cannot be exercised on this target, if it cannot.
    pub fn na(&self, api: Api) -> Option<String> {
        if let Some(r) = &self.unavailable {
            return Some(r.clone());
        }
        if api.is_chat()
            && let Some(r) = &self.chat_na
        {
            return Some(r.clone());
        }
        self.api_na
            .iter()
            .find(|(a, _)| *a == api)
            .map(|(_, r)| r.clone())
    }

    /// The request for `api`. The mock has no `/chat/completions`, so the direct target
    /// answers chat scenarios with the equivalent `/responses` call (the floor).
    pub fn call(&self, api: Api) -> Call {
        let (path, body) = match (api, self.direct) {
            (Api::Responses, _) | (Api::Chat, true) => {
                ("responses", json!({"model": MODEL, "input": "hello"}))
            }
            (Api::ResponsesStream, _) | (Api::ChatStream, true) => (
                "responses",
                json!({"model": MODEL, "input": "hello", "stream": true}),
            ),
            (Api::Chat, false) => (
                "chat/completions",
                json!({"model": self.chat_model, "messages": [{"role": "user", "content": "hello"}]}),
            ),
            (Api::ChatStream, false) => (
                "chat/completions",
                json!({"model": self.chat_model, "stream": true,
                       "messages": [{"role": "user", "content": "hello"}]}),
            ),
        };
        let mut headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("authorization".to_owned(), format!("Bearer {CLIENT_KEY}")),
        ];
        headers.extend(self.headers.iter().cloned());
        Call {
            url: format!("{}/{path}", self.base),
            headers,
            body: serde_json::to_vec(&body).unwrap_or_default(),
        }
    }
}

/// Timings of one exchange.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub first_byte: Duration,
    /// When the first piece of answer text arrived (a Responses `output_text.delta` event,
    /// or a chat chunk with non-empty `content`): what a user waits for, unlike the first
    /// byte, which may be a lifecycle event. The total when no text came.
    pub first_token: Duration,
    pub total: Duration,
}

/// Whether `window` holds the start of answer text: a Responses text delta, or a chat
/// chunk's `"content":"` followed by a character (the role chunk's `""` is not text).
fn holds_text(window: &[u8]) -> bool {
    const DELTA: &[u8] = b"response.output_text.delta";
    const CONTENT: &[u8] = b"\"content\":\"";
    window.windows(DELTA.len()).any(|w| w == DELTA)
        || window
            .windows(CONTENT.len() + 1)
            .any(|w| w.starts_with(CONTENT) && w[CONTENT.len()] != b'"')
}

/// Sends `call` and reads the whole answer; an error for a non-2xx status.
pub async fn send(client: &reqwest::Client, call: &Call) -> Result<Timing, String> {
    let start = Instant::now();
    let mut req = client.post(&call.url).body(call.body.clone());
    for (k, v) in &call.headers {
        req = req.header(k, v);
    }
    let res = req.send().await.map_err(|e| format!("{e:#}"))?;
    let status = res.status();
    let mut stream = res.bytes_stream();
    let mut first = None;
    let mut first_token = None;
    // The last bytes of the previous chunk, so a marker split across chunks is found.
    let mut window: Vec<u8> = Vec::new();
    let mut head = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("{e:#}"))?;
        first.get_or_insert_with(|| start.elapsed());
        if first_token.is_none() {
            window.extend_from_slice(&chunk);
            if holds_text(&window) {
                first_token = Some(start.elapsed());
            }
            let keep = window.len().saturating_sub(32);
            window.drain(..keep);
        }
        if head.len() < 300 {
            head.extend_from_slice(&chunk[..chunk.len().min(300 - head.len())]);
        }
    }
    if !status.is_success() {
        return Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&head).replace('\n', " ")
        ));
    }
    let total = start.elapsed();
    Ok(Timing {
        first_byte: first.unwrap_or(total),
        first_token: first_token.unwrap_or(total),
        total,
    })
}

/// One request of each kind the target claims to serve; failures mark the surface n/a.
/// A stream must end with a completion marker, so a gateway that mangles SSE is caught.
pub async fn probe(client: &reqwest::Client, t: &Target, api: Api) -> Result<(), String> {
    let call = t.call(api);
    let mut req = client.post(&call.url).body(call.body.clone());
    for (k, v) in &call.headers {
        req = req.header(k, v);
    }
    let res = req.send().await.map_err(|e| format!("{e:#}"))?;
    let status = res.status();
    let text = res.text().await.map_err(|e| format!("{e:#}"))?;
    let short = |s: &str| s.chars().take(160).collect::<String>().replace('\n', " ");
    if !status.is_success() {
        let mut why = format!(
            "HTTP {} from {}: {}",
            status.as_u16(),
            call.url,
            short(&text)
        );
        // The server's own account of the failure, if its log has one.
        let logged = t.log.as_ref().and_then(|p| std::fs::read_to_string(p).ok());
        if let Some(line) = logged.as_deref().and_then(|l| {
            l.lines()
                .rev()
                .find(|x| x.to_ascii_lowercase().contains("error"))
        }) {
            why.push_str(&format!("; its log says: {}", line.trim()));
        }
        return Err(why);
    }
    let chat = call.url.ends_with("/chat/completions");
    let ok = match (api.is_stream(), chat) {
        (false, false) => text.contains("\"output\""),
        (true, false) => text.contains("response.completed"),
        (false, true) => text.contains("\"choices\""),
        (true, true) => text.contains("[DONE]") || text.contains("finish_reason\":\"stop"),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "unexpected answer from {}: {}",
            call.url,
            short(&text)
        ))
    }
}
