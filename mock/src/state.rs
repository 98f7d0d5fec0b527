//! State shared by the HTTP handlers and the [`crate::MockServer`] handle: the request log,
//! counters, gates, default controls and the stored responses behind `previous_response_id`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::config::MockConfig;

/// One request the mock received, and what it answered.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// `HTTP/1.1` or `HTTP/2.0`: the mock also speaks h2c (prior knowledge), as Model Studio
    /// speaks HTTP/2 over TLS, so a gateway's choice of protocol can be checked.
    pub version: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Lower-case names, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON, if it was JSON.
    pub body: Option<Value>,
    /// Status answered; 0 while undecided or when the connection was dropped before a head.
    pub status: u16,
    /// Exact body bytes written so far (complete once `finished`).
    pub response_body: Vec<u8>,
    /// The mock wrote its whole body.
    pub finished: bool,
    /// The client went away before the whole body was written.
    pub cancelled: bool,
}

impl RecordedRequest {
    /// Value of header `name` (lower-case), if received.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The JSON form `GET /_mock/requests` serves (body bytes as a lossy UTF-8 string).
    pub(crate) fn to_json(&self) -> Value {
        serde_json::json!({
            "method": self.method,
            "path": self.path,
            "version": self.version,
            "headers": self.headers,
            "body": self.body,
            "status": self.status,
            "response_body": String::from_utf8_lossy(&self.response_body),
            "finished": self.finished,
            "cancelled": self.cancelled,
        })
    }
}

/// Counters, for tests that assert on connection behaviour (e.g. that a gateway cancels
/// upstream streams when its client goes away, or leaks no connection).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct MockStats {
    pub requests: u64,
    pub open_streams: u64,
    pub completed_streams: u64,
    pub cancelled_streams: u64,
    /// TCP connections currently open (idle keep-alive ones included).
    pub open_connections: u64,
    /// TCP connections accepted since start (a client that reuses its connections keeps
    /// this at one per concurrent request).
    pub accepted_connections: u64,
    /// API requests (not `/_mock`) whose answer is not over yet: the handler still runs
    /// (e.g. in `x-mock-header-delay-ms`) or the body is still being written.
    pub in_flight_requests: u64,
}

/// A recorded request that a streaming body keeps updating.
pub(crate) type Record = Arc<Mutex<RecordedRequest>>;

/// A response kept for `GET /responses/{id}` and `previous_response_id`.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    /// The non-streaming response object.
    pub response: Value,
    /// The normalised input items of the request.
    pub input: Vec<Value>,
    /// The whole conversation up to and including this response's output.
    pub conversation: Vec<Value>,
}

/// Locks, shrugging off poisoning: a panicking test thread must not take the mock down.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub open_streams: AtomicU64,
    pub completed_streams: AtomicU64,
    pub cancelled_streams: AtomicU64,
    pub open_connections: AtomicU64,
    pub accepted_connections: AtomicU64,
    pub in_flight_requests: AtomicU64,
}

/// Counts one unit in a gauge-like counter for as long as it lives.
pub(crate) struct Gauge {
    shared: Arc<Shared>,
    which: fn(&Counters) -> &AtomicU64,
}

impl Gauge {
    pub fn new(shared: Arc<Shared>, which: fn(&Counters) -> &AtomicU64) -> Gauge {
        which(&shared.counters).fetch_add(1, Ordering::SeqCst);
        Gauge { shared, which }
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        (self.which)(&self.shared.counters).fetch_sub(1, Ordering::SeqCst);
    }
}

/// Responses kept for `previous_response_id`; the oldest go first, so a long benchmark run
/// cannot exhaust memory. Far more than any test chains.
const STORE_CAPACITY: usize = 10_000;

#[derive(Default)]
struct Store {
    by_id: HashMap<String, Stored>,
    order: VecDeque<String>,
}

pub(crate) struct Shared {
    pub config: MockConfig,
    pub counters: Counters,
    records: Mutex<VecDeque<Record>>,
    /// Most requests kept in the log (0: all).
    record_limit: AtomicUsize,
    gates: Mutex<HashMap<String, Arc<Semaphore>>>,
    defaults: Mutex<Vec<(String, String)>>,
    store: Mutex<Store>,
}

impl Shared {
    pub fn new(config: MockConfig) -> Shared {
        Shared {
            config,
            counters: Counters::default(),
            records: Mutex::default(),
            record_limit: AtomicUsize::new(0),
            gates: Mutex::default(),
            defaults: Mutex::default(),
            store: Mutex::default(),
        }
    }

    pub fn record(&self, request: RecordedRequest) -> Record {
        let record = Arc::new(Mutex::new(request));
        let limit = self.record_limit.load(Ordering::SeqCst);
        let mut records = lock(&self.records);
        records.push_back(record.clone());
        while limit > 0 && records.len() > limit {
            records.pop_front();
        }
        drop(records);
        self.counters.requests.fetch_add(1, Ordering::SeqCst);
        record
    }

    pub fn set_record_limit(&self, limit: usize) {
        self.record_limit.store(limit, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.records)
            .iter()
            .map(|r| lock(r).clone())
            .collect()
    }

    /// Forgets recorded requests and resets the counters (open streams, connections and
    /// in-flight requests stay counted: they are still open).
    pub fn clear(&self) {
        lock(&self.records).clear();
        let c = &self.counters;
        c.requests.store(0, Ordering::SeqCst);
        c.completed_streams.store(0, Ordering::SeqCst);
        c.cancelled_streams.store(0, Ordering::SeqCst);
    }

    pub fn stats(&self) -> MockStats {
        let c = &self.counters;
        MockStats {
            requests: c.requests.load(Ordering::SeqCst),
            open_streams: c.open_streams.load(Ordering::SeqCst),
            completed_streams: c.completed_streams.load(Ordering::SeqCst),
            cancelled_streams: c.cancelled_streams.load(Ordering::SeqCst),
            open_connections: c.open_connections.load(Ordering::SeqCst),
            accepted_connections: c.accepted_connections.load(Ordering::SeqCst),
            in_flight_requests: c.in_flight_requests.load(Ordering::SeqCst),
        }
    }

    /// The gate called `name`, created on first use by either side.
    pub fn gate(&self, name: &str) -> Arc<Semaphore> {
        lock(&self.gates)
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(0)))
            .clone()
    }

    pub fn release(&self, name: &str) {
        self.gate(name).add_permits(1);
    }

    pub fn set_default(&self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        let mut defaults = lock(&self.defaults);
        defaults.retain(|(k, _)| *k != name);
        defaults.push((name, value.to_string()));
    }

    pub fn clear_defaults(&self) {
        lock(&self.defaults).clear();
    }

    pub fn defaults(&self) -> Vec<(String, String)> {
        lock(&self.defaults).clone()
    }

    pub fn default_header(&self, name: &str) -> Option<String> {
        lock(&self.defaults)
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    pub fn store(&self, id: &str, stored: Stored) {
        let mut store = lock(&self.store);
        if store.by_id.insert(id.to_string(), stored).is_none() {
            store.order.push_back(id.to_string());
        }
        while store.order.len() > STORE_CAPACITY {
            if let Some(oldest) = store.order.pop_front() {
                store.by_id.remove(&oldest);
            }
        }
    }

    pub fn stored(&self, id: &str) -> Option<Stored> {
        lock(&self.store).by_id.get(id).cloned()
    }

    pub fn delete(&self, id: &str) -> bool {
        let mut store = lock(&self.store);
        store.order.retain(|k| k != id);
        store.by_id.remove(id).is_some()
    }
}
