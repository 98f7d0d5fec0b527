//! Conversations across regions: which region holds each response id (affinity), and —
//! when `store.conversations` is on — each turn's input and output items, so a conversation
//! whose home region is down can be replayed in full to a healthy one.
//!
//! Model Studio keeps a response (and so `previous_response_id`) only in the region that
//! created it: a follow-up sent elsewhere fails. The gateway therefore remembers every id it
//! sees with its region and routes follow-ups and `GET/DELETE /v1/responses/{id}` home.
//!
//! Every id also remembers the team key that created it (its *owner*): with team keys, an id
//! is visible only to its owner ([`may_use`]), and an id the store does not know is treated
//! as someone else's. Without team keys, store failures never fail a request: affinity is
//! best effort (logged), because refusing to serve when the store hiccups would be worse
//! than an occasional wrong-region 400.

mod replay;

pub use replay::{ReplayError, replay_input, request_input};

use crate::store::{Affinity, Store, StoreError, Turn};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Affinity and turn memory over the configured store.
#[derive(Debug, Clone)]
pub struct Conversations {
    store: Store,
    affinity_ttl: Duration,
    keep_turns: bool,
    max_turns: usize,
}

impl Conversations {
    pub fn new(store: Store, affinity_ttl: Duration, keep_turns: bool, max_turns: usize) -> Self {
        Self {
            store,
            affinity_ttl,
            keep_turns,
            max_turns: max_turns.max(1),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether turns are kept, so replay is possible.
    pub fn keeps_turns(&self) -> bool {
        self.keep_turns
    }

    /// The region and owner of `response_id`, if the gateway saw it.
    pub async fn lookup(&self, response_id: &str) -> Result<Option<Affinity>, StoreError> {
        self.store.get_affinity(response_id).await
    }

    /// Deletes expired records every `every` in the background, for the process's lifetime.
    /// Reads already ignore expired rows; this only keeps the store from growing.
    pub fn spawn_purger(&self, every: Duration) {
        let store = self.store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                match store.purge_expired().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(purged = n, "expired store records removed"),
                    Err(err) => tracing::warn!(error = %err, "store purge failed"),
                }
            }
        });
    }

    /// Forgets an id the client deleted.
    pub fn forget(&self, response_id: &str) {
        let store = self.store.clone();
        let id = response_id.to_owned();
        tokio::spawn(async move {
            if let Err(err) = store.delete_affinity(&id).await {
                tracing::warn!(error = %err, "could not forget a deleted response id");
            }
        });
    }

    /// The full input to send instead of `previous_response_id` + `input`, from turns
    /// `owner` created only (any turn, without team keys).
    pub async fn replay(
        &self,
        previous: &str,
        input: &Value,
        owner: Option<&str>,
    ) -> Result<Vec<Value>, ReplayError> {
        let history = self
            .store
            .history(previous, self.max_turns)
            .await
            .map_err(|e| ReplayError::Store(e.to_string()))?;
        if owner.is_some() && history.turns.iter().any(|t| t.owner.as_deref() != owner) {
            return Err(ReplayError::Incomplete(previous.to_owned()));
        }
        replay_input(&history, previous, input)
    }

    /// A recorder for one response created in `region` by `owner` (see [`TurnRecorder`]).
    pub fn recorder(
        self: &Arc<Self>,
        region: Arc<str>,
        owner: Option<String>,
        previous: Option<String>,
        input: Option<Vec<Value>>,
    ) -> TurnRecorder {
        TurnRecorder {
            conversations: self.clone(),
            region,
            owner,
            previous,
            input: if self.keep_turns { input } else { None },
            remembered: None,
        }
    }
}

/// Watches one response as it passes through (body or stream, never altering it) and stores
/// its id's region as soon as it is known, and its turn when it is complete.
#[derive(Debug)]
pub struct TurnRecorder {
    conversations: Arc<Conversations>,
    region: Arc<str>,
    owner: Option<String>,
    previous: Option<String>,
    input: Option<Vec<Value>>,
    remembered: Option<String>,
}

impl TurnRecorder {
    /// Whether this response's turn (its output items) will be stored.
    pub fn keeps_turn(&self) -> bool {
        self.input.is_some()
    }

    /// Called with the id from `response.created`: stored in the background, long before a
    /// client could send the follow-up (that needs the stream's end).
    pub fn on_id(&mut self, id: &str) {
        if let Some(write) = self.affinity_write(id) {
            tokio::spawn(write);
        }
    }

    /// Called with a terminal stream event's `response`: stored in the background.
    pub fn on_response(&mut self, response: &Value) {
        let writes = self.writes(response);
        tokio::spawn(async move {
            for write in writes {
                write.await;
            }
        });
    }

    /// Called with a whole non-streaming body before it is returned, so a client's immediate
    /// follow-up already finds the id (bounded: a slow store delays, never blocks, it).
    pub async fn finish(&mut self, response: &Value) {
        let writes = self.writes(response);
        Self::settle(writes).await;
    }

    /// As [`TurnRecorder::finish`] for a recorder that keeps no turn
    /// ([`TurnRecorder::keeps_turn`] false): only the id is remembered, so the caller need
    /// not parse the whole body for it.
    pub async fn finish_id(&mut self, id: &str) {
        debug_assert!(!self.keeps_turn());
        Self::settle(self.affinity_write(id).into_iter().collect()).await;
    }

    /// Awaits the writes, bounded: a slow store delays, never blocks, the answer.
    async fn settle(writes: Vec<Write>) {
        let all = async move {
            for write in writes {
                write.await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(2), all)
            .await
            .is_err()
        {
            tracing::warn!("store too slow; response id remembered late or not at all");
        }
    }

    fn affinity_write(&mut self, id: &str) -> Option<Write> {
        if id.is_empty() || self.remembered.as_deref() == Some(id) {
            return None;
        }
        self.remembered = Some(id.to_owned());
        let store = self.conversations.store.clone();
        let id = id.to_owned();
        let affinity = Affinity::new(self.region.to_string(), self.owner.clone());
        let ttl = self.conversations.affinity_ttl;
        Some(Box::pin(async move {
            if let Err(err) = store.put_affinity(&id, &affinity, ttl).await {
                tracing::warn!(error = %err, "could not remember a response id's region");
            }
        }))
    }

    fn writes(&mut self, response: &Value) -> Vec<Write> {
        let Some(id) = response.get("id").and_then(Value::as_str) else {
            return Vec::new();
        };
        let mut writes: Vec<Write> = self.affinity_write(id).into_iter().collect();
        let failed = response.get("status").and_then(Value::as_str) == Some("failed");
        let Some(input) = self.input.take().filter(|_| !failed) else {
            return writes;
        };
        let turn = Turn {
            response_id: id.to_owned(),
            previous_response_id: self.previous.clone(),
            region: self.region.to_string(),
            input,
            output: response
                .get("output")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            created_at: response
                .get("created_at")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
            owner: self.owner.clone(),
        };
        let store = self.conversations.store.clone();
        let ttl = self.conversations.affinity_ttl;
        writes.push(Box::pin(async move {
            if let Err(err) = store.put_turn(&turn, ttl).await {
                tracing::warn!(error = %err, "could not store a conversation turn");
            }
        }));
        writes
    }
}

/// Whether a caller may see a response whose record is `affinity`: always without team
/// keys (`caller` `None`), else only the key that created it. An id without owner (created
/// without team keys, or stored before owners were recorded) is no team key's.
pub fn may_use(affinity: &Affinity, caller: Option<&str>) -> bool {
    caller.is_none_or(|key| affinity.owner.as_deref() == Some(key))
}

type Write = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn turn(id: &str, previous: Option<&str>, owner: Option<&str>) -> Turn {
        Turn {
            response_id: id.into(),
            previous_response_id: previous.map(Into::into),
            region: "r0".into(),
            input: vec![json!({"type": "message", "role": "user", "content": id})],
            output: Vec::new(),
            created_at: 0,
            owner: owner.map(Into::into),
        }
    }

    /// A replay uses only the asking key's turns: a chain that runs through another
    /// tenant's turn (or an ownerless one) is not replayed for a team key.
    #[tokio::test]
    async fn replays_only_the_callers_own_turns() {
        let store = Store::open("memory").await.unwrap();
        let hour = Duration::from_secs(3600);
        store
            .put_turn(&turn("t1", None, Some("key_b")), hour)
            .await
            .unwrap();
        store
            .put_turn(&turn("t2", Some("t1"), Some("key_a")), hour)
            .await
            .unwrap();
        store
            .put_turn(&turn("t3", None, Some("key_a")), hour)
            .await
            .unwrap();
        let c = Conversations::new(store, hour, true, 10);
        let input = json!("next");
        assert!(c.replay("t2", &input, Some("key_a")).await.is_err());
        assert!(c.replay("t3", &input, Some("key_b")).await.is_err());
        assert_eq!(
            c.replay("t3", &input, Some("key_a")).await.unwrap().len(),
            2
        );
        assert_eq!(c.replay("t2", &input, None).await.unwrap().len(), 3);
        let owned = Affinity::new("r0", Some("key_a".into()));
        assert!(may_use(&owned, Some("key_a")) && may_use(&owned, None));
        assert!(!may_use(&owned, Some("key_b")));
        assert!(!may_use(&Affinity::new("r0", None), Some("key_a")));
    }
}
