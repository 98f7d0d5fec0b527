//! Shared backend for several replicas: every operation is one atomic Redis command, a
//! `MULTI` pipeline or a Lua script, so replicas never interleave half-updates.
//!
//! Layout under the prefix (default `qgw:`): `affinity:{id}` and `turn:{id}` (JSON) with
//! a TTL; `key:{id}` a hash of JSON-encoded fields, indexed by `key-name:{name}` and
//! `key-hash:{hash}` (both → id), the set `keys` (ids) and the sorted set `keys-by-created`
//! (member: name, score: created_at, so it lists in (created_at, name) order, and pages
//! seek by rank); `counter:{name}` with a TTL;
//! `usage:{["day","key","model","region"]}` a hash of counters, listed by the sorted set
//! `usage-index` (all scores 0, so members sort by their JSON text, day first).
//! Redis expires records itself, so `RedisStore::purge_expired` has nothing to do.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Cmd, Pipeline, RedisError, Script, cmd, pipe};

use super::chain::ChainWalk;
use super::records::{KeyField, USAGE_COUNTERS, UsageFrom, to_i64, to_u64};
use super::{
    Affinity, History, KeyRecord, Page, StoreError, Turn, UsageCursor, UsageDelta, UsageRow,
};

mod codec;
mod scripts;

use codec::*;
use scripts::*;

/// The key prefix `Store::open` uses; tests pick their own to share a server safely.
pub const DEFAULT_PREFIX: &str = "qgw:";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Generous for a local Redis, short enough that a hung server fails requests quickly.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const RECONNECT_RETRIES: usize = 3;
/// Redis rejects expiries that overflow its clock; a century is "forever" here.
const MAX_TTL_MS: u128 = 100 * 365 * 24 * 3600 * 1000;

/// A reconnecting multiplexed connection and the key prefix. Clones share the connection.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: Arc<str>,
}

/// Hand-written so the connection (and its credentials) never reach a log.
impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn backend(op: &'static str) -> impl Fn(RedisError) -> StoreError {
    move |source| StoreError::Backend {
        op,
        source: Box::new(source),
    }
}

fn codec(op: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |source| StoreError::Codec { op, source }
}

/// A connection error as text with the URL's password removed: the error is the only
/// diagnostic an operator gets, but it must be safe to log.
fn connect_error(url: &str, err: &RedisError) -> StoreError {
    let message = crate::config::redact_password(&err.to_string(), url);
    StoreError::Backend {
        op: "connect",
        source: message.into(),
    }
}

/// PX milliseconds for `ttl`, or `None` when it is zero (Redis refuses `PX 0`; an entry
/// that expires at once is simply not written).
fn ttl_ms(ttl: Duration) -> Option<u64> {
    let ms = ttl.as_millis().min(MAX_TTL_MS);
    // MAX_TTL_MS fits in u64, so the conversion cannot fail; 0 is a harmless fallback.
    let ms = u64::try_from(ms).unwrap_or(0);
    (ms > 0).then_some(ms)
}

impl RedisStore {
    /// Connects to `url` (`redis://[user:pass@]host[:port][/db]`), storing every key under
    /// `prefix`. Fails now if Redis is unreachable; later drops reconnect on their own.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        let client = ::redis::Client::open(url).map_err(|e| connect_error(url, &e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| connect_error(url, &e))?;
        Ok(RedisStore {
            conn,
            prefix: Arc::from(prefix),
        })
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    async fn query<T: ::redis::FromRedisValue>(
        &self,
        op: &'static str,
        cmd: &Cmd,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        cmd.query_async(&mut conn).await.map_err(backend(op))
    }

    async fn query_pipe<T: ::redis::FromRedisValue>(
        &self,
        op: &'static str,
        pipe: &Pipeline,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        pipe.query_async(&mut conn).await.map_err(backend(op))
    }

    /// `SET key value PX ttl`, or a delete when the TTL is zero (the entry is expired at
    /// once, as in the other backends).
    async fn set_expiring(
        &self,
        op: &'static str,
        key: String,
        value: String,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        match ttl_ms(ttl) {
            Some(ms) => {
                let set = cmd("SET").arg(key).arg(value).arg("PX").arg(ms).clone();
                self.query::<()>(op, &set).await
            }
            None => self.query::<()>(op, cmd("DEL").arg(key)).await,
        }
    }

    pub(crate) async fn put_affinity(
        &self,
        response_id: &str,
        affinity: &Affinity,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = self.key("affinity", response_id);
        let json = serde_json::to_string(affinity).map_err(codec("put_affinity"))?;
        self.set_expiring("put_affinity", key, json, ttl).await
    }

    /// Values written before owners were recorded are a bare region name (never JSON:
    /// region names are config keys), read as an id without owner.
    pub(crate) async fn get_affinity(
        &self,
        response_id: &str,
    ) -> Result<Option<Affinity>, StoreError> {
        let key = self.key("affinity", response_id);
        let value: Option<String> = self.query("get_affinity", cmd("GET").arg(key)).await?;
        value
            .map(|v| {
                if v.starts_with('{') {
                    serde_json::from_str(&v).map_err(codec("get_affinity"))
                } else {
                    Ok(Affinity::new(v, None))
                }
            })
            .transpose()
    }

    pub(crate) async fn delete_affinity(&self, response_id: &str) -> Result<bool, StoreError> {
        let key = self.key("affinity", response_id);
        let deleted: i64 = self.query("delete_affinity", cmd("DEL").arg(key)).await?;
        Ok(deleted > 0)
    }

    pub(crate) async fn put_turn(&self, turn: &Turn, ttl: Duration) -> Result<(), StoreError> {
        let json = serde_json::to_string(turn).map_err(codec("put_turn"))?;
        let key = self.key("turn", &turn.response_id);
        self.set_expiring("put_turn", key, json, ttl).await
    }

    pub(crate) async fn get_turn(&self, response_id: &str) -> Result<Option<Turn>, StoreError> {
        self.fetch_turn("get_turn", response_id).await
    }

    async fn fetch_turn(
        &self,
        op: &'static str,
        response_id: &str,
    ) -> Result<Option<Turn>, StoreError> {
        let key = self.key("turn", response_id);
        let json: Option<String> = self.query(op, cmd("GET").arg(key)).await?;
        json.map(|json| serde_json::from_str(&json).map_err(codec(op)))
            .transpose()
    }

    /// One GET per turn: not a snapshot, but turns are written once and only expire, so a
    /// concurrent writer can at worst make the chain end early (`complete = false`).
    pub(crate) async fn history(
        &self,
        response_id: &str,
        max_turns: usize,
    ) -> Result<History, StoreError> {
        let mut walk = ChainWalk::new(response_id, max_turns);
        while let Some(id) = walk.next_id() {
            let turn = self.fetch_turn("history", &id).await?;
            walk.found(turn);
        }
        Ok(walk.finish())
    }

    pub(crate) async fn create_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let fields = encode_key(key)?;
        let mut invocation = CREATE_KEY.prepare_invoke();
        invocation
            .key(self.key("key", &key.id))
            .key(self.key("key-name", &key.name))
            .key(self.key("key-hash", &key.hash))
            .key(format!("{}keys", self.prefix))
            .key(self.order_key())
            .arg(&key.id)
            .arg(key.created_at)
            .arg(&key.name);
        for (field, value) in &fields {
            invocation.arg(field).arg(value);
        }
        let mut conn = self.conn.clone();
        let outcome: String = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(backend("create_key"))?;
        match outcome.as_str() {
            "ok" => Ok(()),
            "id" => Err(KeyField::Id.conflict(key)),
            "name" => Err(KeyField::Name.conflict(key)),
            "hash" => Err(KeyField::Hash.conflict(key)),
            _ => Err(StoreError::Backend {
                op: "create_key",
                source: "unexpected reply from the create-key script".into(),
            }),
        }
    }

    /// Key by key (each one atomic, the batch not): Redis has no transaction that could
    /// check a conflict and roll back what came before it.
    pub(crate) async fn create_keys(&self, keys: &[KeyRecord]) -> Result<(), StoreError> {
        for key in keys {
            self.create_key(key).await?;
        }
        Ok(())
    }

    async fn fetch_key(&self, op: &'static str, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let fields: HashMap<String, String> = self
            .query(op, cmd("HGETALL").arg(self.key("key", id)))
            .await?;
        decode_key(op, fields)
    }

    pub(crate) async fn key_by_hash(&self, hash: &str) -> Result<Option<KeyRecord>, StoreError> {
        let op = "key_by_hash";
        let id: Option<String> = self
            .query(op, cmd("GET").arg(self.key("key-hash", hash)))
            .await?;
        match id {
            Some(id) => self.fetch_key(op, &id).await,
            None => Ok(None),
        }
    }

    pub(crate) async fn key_by_id(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.fetch_key("key_by_id", id).await
    }

    pub(crate) async fn key_by_name(&self, name: &str) -> Result<Option<KeyRecord>, StoreError> {
        let op = "key_by_name";
        let id: Option<String> = self
            .query(op, cmd("GET").arg(self.key("key-name", name)))
            .await?;
        match id {
            Some(id) => self.fetch_key(op, &id).await,
            None => Ok(None),
        }
    }

    /// One pipelined `HGET key:{id} name` per id.
    pub(crate) async fn key_names(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        let op = "key_names";
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut fetch = pipe();
        for id in ids {
            fetch.cmd("HGET").arg(self.key("key", id)).arg("name");
        }
        let names: Vec<Option<String>> = self.query_pipe(op, &fetch).await?;
        let mut found = HashMap::with_capacity(ids.len());
        for (id, name) in ids.iter().zip(names) {
            if let Some(json) = name {
                // Fields hold JSON values (see `encode_key`).
                let name: String = serde_json::from_str(&json).map_err(codec(op))?;
                found.insert(id.clone(), name);
            }
        }
        Ok(found)
    }

    pub(crate) async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let op = "list_keys";
        let ids: Vec<String> = self
            .query(op, cmd("SMEMBERS").arg(format!("{}keys", self.prefix)))
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut fetch = pipe();
        for id in &ids {
            fetch.cmd("HGETALL").arg(self.key("key", id));
        }
        let records: Vec<HashMap<String, String>> = self.query_pipe(op, &fetch).await?;
        let mut keys = Vec::with_capacity(records.len());
        for fields in records {
            keys.extend(decode_key(op, fields)?);
        }
        keys.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
        Ok(keys)
    }

    fn order_key(&self) -> String {
        format!("{}keys-by-created", self.prefix)
    }

    /// Adds every key missing from `keys-by-created` (written by a gateway that predates
    /// it, possibly still running as another replica): two O(1) counts when nothing is
    /// missing, which is every time but the first.
    async fn ensure_key_order(&self, op: &'static str) -> Result<(), StoreError> {
        let mut counts = pipe();
        counts
            .cmd("SCARD")
            .arg(format!("{}keys", self.prefix))
            .cmd("ZCARD")
            .arg(self.order_key());
        let (ids, ordered): (u64, u64) = self.query_pipe(op, &counts).await?;
        if ids == ordered {
            return Ok(());
        }
        let ids: Vec<String> = self
            .query(op, cmd("SMEMBERS").arg(format!("{}keys", self.prefix)))
            .await?;
        for batch in ids.chunks(BACKFILL_BATCH) {
            let mut fetch = pipe();
            for id in batch {
                fetch
                    .cmd("HMGET")
                    .arg(self.key("key", id))
                    .arg("created_at")
                    .arg("name");
            }
            let fields: Vec<(Option<String>, Option<String>)> = self.query_pipe(op, &fetch).await?;
            let mut add = cmd("ZADD");
            add.arg(self.order_key());
            let mut any = false;
            for (created_at, name) in fields {
                let (Some(created_at), Some(name)) = (created_at, name) else {
                    continue;
                };
                let created_at: i64 = serde_json::from_str(&created_at).map_err(codec(op))?;
                let name: String = serde_json::from_str(&name).map_err(codec(op))?;
                add.arg(created_at).arg(name);
                any = true;
            }
            if any {
                self.query::<()>(op, &add).await?;
            }
        }
        Ok(())
    }

    pub(crate) async fn list_keys_page(
        &self,
        after: Option<&KeyRecord>,
        limit: usize,
    ) -> Result<Page<KeyRecord>, StoreError> {
        let op = "list_keys_page";
        self.ensure_key_order(op).await?;
        let mut conn = self.conn.clone();
        let names: Option<Vec<String>> = KEYS_PAGE
            .key(self.order_key())
            .arg(after.map_or("", |k| k.name.as_str()))
            .arg(limit.saturating_add(1))
            .arg(if after.is_some() { "1" } else { "0" })
            .invoke_async(&mut conn)
            .await
            .map_err(backend(op))?;
        let Some(mut names) = names else {
            return Err(StoreError::Backend {
                op,
                source: "the cursor's key is missing from keys-by-created".into(),
            });
        };
        let has_more = names.len() > limit;
        names.truncate(limit);
        if names.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                has_more,
            });
        }
        let mut resolve = pipe();
        for name in &names {
            resolve.cmd("GET").arg(self.key("key-name", name));
        }
        let ids: Vec<Option<String>> = self.query_pipe(op, &resolve).await?;
        let ids: Vec<String> = ids.into_iter().flatten().collect();
        let mut fetch = pipe();
        for id in &ids {
            fetch.cmd("HGETALL").arg(self.key("key", id));
        }
        let records: Vec<HashMap<String, String>> = self.query_pipe(op, &fetch).await?;
        let mut items = Vec::with_capacity(records.len());
        for fields in records {
            items.extend(decode_key(op, fields)?);
        }
        Ok(Page { items, has_more })
    }

    /// Two steps are safe without a script: keys and their indexes are never deleted, so
    /// an id found stays valid, and `HSETNX` keeps the first revocation time.
    pub(crate) async fn revoke_key(&self, id_or_name: &str, at: i64) -> Result<bool, StoreError> {
        let op = "revoke_key";
        let by_id: bool = self
            .query(op, cmd("EXISTS").arg(self.key("key", id_or_name)))
            .await?;
        let id = if by_id {
            id_or_name.to_owned()
        } else {
            let by_name: Option<String> = self
                .query(op, cmd("GET").arg(self.key("key-name", id_or_name)))
                .await?;
            match by_name {
                Some(id) => id,
                None => return Ok(false),
            }
        };
        let revoke = cmd("HSETNX")
            .arg(self.key("key", &id))
            .arg("revoked_at")
            .arg(at.to_string())
            .clone();
        self.query::<()>(op, &revoke).await?;
        Ok(true)
    }

    pub(crate) async fn incr_counter(
        &self,
        name: &str,
        by: u64,
        ttl: Duration,
    ) -> Result<u64, StoreError> {
        // A zero TTL still creates the counter for this call's answer; 1 ms is "at once".
        let ms = ttl_ms(ttl).unwrap_or(1);
        let mut conn = self.conn.clone();
        let value: i64 = INCR_COUNTER
            .key(self.key("counter", name))
            .arg(to_i64(by))
            .arg(ms)
            .invoke_async(&mut conn)
            .await
            .map_err(backend("incr_counter"))?;
        Ok(to_u64(value))
    }

    pub(crate) async fn get_counter(&self, name: &str) -> Result<u64, StoreError> {
        let key = self.key("counter", name);
        let value: Option<i64> = self.query("get_counter", cmd("GET").arg(key)).await?;
        Ok(value.map_or(0, to_u64))
    }

    pub(crate) async fn record_usage(&self, delta: &UsageDelta) -> Result<(), StoreError> {
        let member = usage_member(&delta.day, &delta.key_id, &delta.model, &delta.region)?;
        let row = self.key("usage", &member);
        let mut add = pipe();
        add.atomic();
        for (field, by) in USAGE_COUNTERS.iter().zip(delta.counters()) {
            add.cmd("HINCRBY")
                .arg(&row)
                .arg(field)
                .arg(to_i64(by))
                .ignore();
        }
        add.cmd("ZADD")
            .arg(format!("{}usage-index", self.prefix))
            .arg(0)
            .arg(&member)
            .ignore();
        self.query_pipe::<()>("record_usage", &add).await
    }

    pub(crate) async fn usage(&self, since_day: Option<&str>) -> Result<Vec<UsageRow>, StoreError> {
        let op = "usage";
        // Members are JSON arrays starting with the day, so `["DAY"` bounds the range.
        let min = match since_day {
            Some(day) => {
                let day = serde_json::to_string(day).map_err(codec(op))?;
                format!("[[{day}")
            }
            None => "-".to_owned(),
        };
        let index = format!("{}usage-index", self.prefix);
        let members: Vec<String> = self
            .query(op, cmd("ZRANGEBYLEX").arg(index).arg(min).arg("+"))
            .await?;
        let mut rows = self.usage_rows(op, &members).await?;
        rows.retain(|row| since_day.is_none_or(|since| row.day.as_str() >= since));
        rows.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        Ok(rows)
    }

    /// A `ZRANGEBYLEX` of `usage-index` from the bound, `limit + 1` members, then one
    /// pipelined `HGETALL` per row: pages follow the index's order, unsorted afterwards.
    pub(crate) async fn usage_page(
        &self,
        since_day: Option<&str>,
        after: Option<&UsageCursor>,
        limit: usize,
    ) -> Result<Page<UsageRow>, StoreError> {
        let op = "usage_page";
        let min = match UsageFrom::new(since_day, after) {
            UsageFrom::Start => "-".to_owned(),
            // Members are JSON arrays starting with the day, so `["DAY"` is where it starts.
            UsageFrom::Day(day) => {
                let day = serde_json::to_string(day).map_err(codec(op))?;
                format!("[[{day}")
            }
            UsageFrom::After(c) => {
                format!("({}", usage_member(&c.day, &c.key_id, &c.model, &c.region)?)
            }
        };
        let index = format!("{}usage-index", self.prefix);
        let range = cmd("ZRANGEBYLEX")
            .arg(index)
            .arg(min)
            .arg("+")
            .arg("LIMIT")
            .arg(0)
            .arg(limit.saturating_add(1))
            .clone();
        let members: Vec<String> = self.query(op, &range).await?;
        let rows = self.usage_rows(op, &members).await?;
        Ok(Page::of(rows, limit))
    }

    /// The ledger rows of these `usage-index` members, in the same order.
    async fn usage_rows(
        &self,
        op: &'static str,
        members: &[String],
    ) -> Result<Vec<UsageRow>, StoreError> {
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let mut fetch = pipe();
        for member in members {
            fetch.cmd("HGETALL").arg(self.key("usage", member));
        }
        let counts: Vec<HashMap<String, i64>> = self.query_pipe(op, &fetch).await?;
        let mut rows = Vec::with_capacity(members.len());
        for (member, counts) in members.iter().zip(counts) {
            let [day, key_id, model, region]: [String; 4] =
                serde_json::from_str(member).map_err(codec(op))?;
            let c = USAGE_COUNTERS.map(|field| counts.get(field).copied().map_or(0, to_u64));
            rows.push(UsageRow::from_parts(day, key_id, model, region, c));
        }
        Ok(rows)
    }

    pub(crate) async fn purge_expired(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}
