//! The request context: what handlers, streams and the router learn about one request while
//! serving it (region, model, usage, the caller's key, streams still draining), shared with
//! the access log that books it at the end. A small module that depends on nothing above it,
//! so domain modules can fill it in without knowing the HTTP layer (as axum's request
//! extensions carry it there).

use crate::auth::ClientKey;
use crate::usage::Usage;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// What handlers learn about a request, for the log line (and later metrics and the ledger).
#[derive(Debug, Default, Clone)]
pub struct RequestInfo {
    pub region: Option<Arc<str>>,
    pub model: Option<String>,
    /// `model` is in the catalog ([`crate::models::ModelCatalog::is_known`]); see
    /// [`RequestInfo::model_label`].
    pub model_known: bool,
    pub stream: bool,
    pub usage: Option<Usage>,
    pub error_code: Option<String>,
    /// The team key the request came with (`auth.mode = "keys"`).
    pub client: Option<Arc<ClientKey>>,
    /// `usage` is (partly) an estimate: the stream ended without the upstream's own count.
    pub usage_estimated: bool,
    /// Size of the body sent upstream, for an input-token estimate.
    pub upstream_request_bytes: usize,
    /// One per upstream stream still being read after its client left (see
    /// [`RequestMeta::register_drain`]); the line waits for them, so the usage they find is
    /// booked.
    pub drains: Vec<CancellationToken>,
}

/// What metrics labels name an unknown model that the upstream refused.
pub const OTHER_MODEL: &str = "other";

/// The most of a client's model name a log line or a ledger row keeps.
const MODEL_CHARS: usize = 128;

pub fn clipped(model: &str) -> &str {
    &model[..model.floor_char_boundary(MODEL_CHARS)]
}

impl RequestInfo {
    /// The model as a metrics label. A client may send any string as `model`, and each
    /// distinct one would be a new series for as long as the process lives: so a name is
    /// kept when the catalog knows it or the upstream served it (Model Studio's own list
    /// bounds those), and is [`OTHER_MODEL`] otherwise. (The ledger keeps the name asked
    /// for, clipped: who asked for which refused model is what its reader wants to know,
    /// and its rows are per key and day on disk.)
    pub fn model_label(&self, status: u16) -> Option<String> {
        let model = self.model.as_ref()?;
        let served = (200..300).contains(&status) && self.error_code.is_none();
        Some(if self.model_known || served {
            model.clone()
        } else {
            OTHER_MODEL.to_owned()
        })
    }
}

/// Shared between the handler (and its stream) and the log line.
#[derive(Debug, Default, Clone)]
pub struct RequestMeta(Arc<Mutex<RequestInfo>>);

impl RequestMeta {
    pub fn update(&self, f: impl FnOnce(&mut RequestInfo)) {
        match self.0.lock() {
            Ok(mut info) => f(&mut info),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// A token an upstream stream cancels when it no longer needs reading: at once when it
    /// ends normally, or after reading on to its usage once the client has left. The log
    /// line of a client that left waits (bounded) for every registered token.
    pub fn register_drain(&self) -> CancellationToken {
        let token = CancellationToken::new();
        self.update(|i| i.drains.push(token.clone()));
        token
    }

    /// Whether a stream this request's client left should be read on to its usage: when a
    /// team key's token limits count it (walking away must not dodge them). Otherwise the
    /// upstream request is closed at once (saving what it would still generate) and an
    /// estimate is booked.
    pub fn drain_wanted(&self) -> bool {
        match self.0.lock() {
            Ok(info) => info.client.as_ref().is_some_and(|k| k.counts_tokens()),
            Err(poisoned) => poisoned
                .into_inner()
                .client
                .as_ref()
                .is_some_and(|k| k.counts_tokens()),
        }
    }

    /// Adds an estimate for a stream whose usage the upstream never reported: `output`
    /// tokens counted from the deltas relayed, input from the request's size (about four
    /// bytes a token), and marks the usage estimated.
    pub fn estimate_usage(&self, output: u64) {
        self.update(|i| {
            let input = (i.upstream_request_bytes / 4) as u64;
            let usage = i.usage.get_or_insert_with(Usage::default);
            usage.output_tokens += output;
            usage.input_tokens += input;
            i.usage_estimated = true;
        });
    }

    pub fn snapshot(&self) -> RequestInfo {
        match self.0.lock() {
            Ok(info) => info.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}
