//! One behaviour suite ([`suite`]) run against every backend, so they cannot drift apart,
//! plus the few checks that only make sense for one backend.

mod redis_only;
mod redis_server;
mod sqlite_only;
mod suite;

use std::time::Duration;

use tempfile::TempDir;

use super::redis::RedisStore;
use super::{Clock, Store};
use redis_server::{RedisTarget, redis_target};

/// Where the manual clocks start (unix ms): any fixed instant will do.
const START_MILLIS: i64 = 1_700_000_000_000;

/// A store to test plus what it needs to stay alive and to let time pass.
pub(crate) struct Fixture {
    pub store: Store,
    /// The test clock for memory and SQLite; `None` for Redis, whose server owns time.
    clock: Option<Clock>,
    replica: Replica,
    _dir: Option<TempDir>,
}

/// How to get a second handle on the same state, as another gateway replica would.
enum Replica {
    /// Clones share state (memory, `:memory:`).
    Clone,
    SqliteFile(String),
    Redis {
        target: RedisTarget,
        prefix: String,
    },
}

impl Fixture {
    pub(crate) async fn memory() -> Fixture {
        let clock = Clock::manual(START_MILLIS);
        Fixture {
            store: open("memory", &clock).await,
            clock: Some(clock),
            replica: Replica::Clone,
            _dir: None,
        }
    }

    pub(crate) async fn sqlite_file() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        let clock = Clock::manual(START_MILLIS);
        Fixture {
            store: open(&url, &clock).await,
            clock: Some(clock),
            replica: Replica::SqliteFile(url),
            _dir: Some(dir),
        }
    }

    pub(crate) async fn sqlite_in_memory() -> Fixture {
        let clock = Clock::manual(START_MILLIS);
        Fixture {
            store: open("sqlite://:memory:", &clock).await,
            clock: Some(clock),
            replica: Replica::Clone,
            _dir: None,
        }
    }

    /// `None` when Redis tests are skipped (see [`redis_server`]). Each fixture gets its own
    /// key prefix, so tests can share an external server.
    pub(crate) async fn redis() -> Option<Fixture> {
        let target = redis_target(&[]).await?;
        let prefix = format!("qgw-test-{}:", uuid::Uuid::new_v4().simple());
        let store = RedisStore::connect(&target.url, &prefix)
            .await
            .expect("connect to test redis");
        Some(Fixture {
            store: Store::Redis(store),
            clock: None,
            replica: Replica::Redis { target, prefix },
            _dir: None,
        })
    }

    /// Another handle on the same state: a second connection where the backend has them.
    pub(crate) async fn replica(&self) -> Store {
        match &self.replica {
            Replica::Clone => self.store.clone(),
            Replica::SqliteFile(url) => open(url, self.clock.as_ref().expect("clock")).await,
            Replica::Redis { target, prefix } => Store::Redis(
                RedisStore::connect(&target.url, prefix)
                    .await
                    .expect("second redis connection"),
            ),
        }
    }

    /// Deletes this test's keys from a shared Redis (`QWEN_GATEWAY_TEST_REDIS_URL`); a
    /// spawned server just dies. Skipped when the test panicked: the keys are then evidence.
    pub(crate) async fn clean_up(self) {
        if let Replica::Redis { target, prefix } = &self.replica
            && target.is_shared()
        {
            redis_server::delete_prefixed(&target.url, prefix).await;
        }
    }

    /// A TTL for records meant to expire during the test: short in real time on Redis.
    pub(crate) fn short_ttl(&self) -> Duration {
        match self.clock {
            Some(_) => Duration::from_secs(60),
            None => Duration::from_millis(400),
        }
    }

    /// Lets `d` pass: moves the test clock, or sleeps on Redis.
    pub(crate) async fn pass(&self, d: Duration) {
        match &self.clock {
            Some(clock) => clock.advance(d),
            None => tokio::time::sleep(d).await,
        }
    }

    /// Lets `ttl` pass with room to spare, so what had it is now expired.
    pub(crate) async fn expire(&self, ttl: Duration) {
        let margin = match self.clock {
            Some(_) => Duration::from_millis(1),
            None => Duration::from_millis(150),
        };
        self.pass(ttl + margin).await;
    }
}

async fn open(url: &str, clock: &Clock) -> Store {
    Store::open_with_clock(url, clock.clone())
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"))
}

/// For each behaviour in [`suite`], one test per backend: `store::tests::<backend>::<name>`.
macro_rules! store_suite {
    ($($behaviour:ident),* $(,)?) => {
        store_suite!(@backend memory, Fixture::memory().await; $($behaviour),*);
        store_suite!(@backend sqlite_file, Fixture::sqlite_file().await; $($behaviour),*);
        store_suite!(@backend sqlite_in_memory, Fixture::sqlite_in_memory().await; $($behaviour),*);
        mod redis {
            use super::Fixture;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    if let Some(fixture) = Fixture::redis().await {
                        super::suite::$behaviour(&fixture).await;
                        fixture.clean_up().await;
                    }
                }
            )*
        }
    };
    (@backend $backend:ident, $fixture:expr; $($behaviour:ident),*) => {
        mod $backend {
            use super::Fixture;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    super::suite::$behaviour(&$fixture).await;
                }
            )*
        }
    };
}

store_suite!(
    affinity_put_get_expire,
    affinity_delete,
    affinity_and_turns_keep_their_owner,
    turns_put_get_expire,
    history_follows_chain,
    history_truncates_at_max_turns,
    history_missing_link_is_incomplete,
    history_expired_link_is_incomplete,
    history_cycle_is_incomplete,
    keys_create_lookup_list,
    keys_conflicts_write_nothing,
    keys_created_in_a_batch,
    keys_revoke,
    keys_revoke_prefers_id_over_name,
    keys_found_by_id_and_by_name,
    keys_pages_follow_the_listing_order,
    counters_add_and_read,
    counters_window_is_not_extended,
    counters_concurrent_increments_are_exact,
    usage_adds_into_rows,
    usage_since_filters_by_day,
    usage_pages_follow_the_ledger_order,
    usage_concurrent_records_are_exact,
    purge_expired_removes_only_expired,
);
