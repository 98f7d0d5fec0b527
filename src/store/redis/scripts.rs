//! The Lua scripts that make multi-key updates atomic on the server.

use super::*;

/// Atomically creates a key record and its indexes, or names the field already taken.
/// KEYS: record, name index, hash index, id set, listing order. ARGV: id, created_at,
/// name, then field/value pairs.
pub(super) static CREATE_KEY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('EXISTS', KEYS[1]) == 1 then return 'id' end
        if redis.call('EXISTS', KEYS[2]) == 1 then return 'name' end
        if redis.call('EXISTS', KEYS[3]) == 1 then return 'hash' end
        redis.call('HSET', KEYS[1], unpack(ARGV, 4))
        redis.call('SET', KEYS[2], ARGV[1])
        redis.call('SET', KEYS[3], ARGV[1])
        redis.call('SADD', KEYS[4], ARGV[1])
        redis.call('ZADD', KEYS[5], ARGV[2], ARGV[3])
        return 'ok'
        ",
    )
});

/// The names of up to ARGV[2] keys in listing order, after the key named ARGV[1] (when
/// ARGV[3] is '1') or from the first: rank and range in one step, so a key created in
/// between cannot shift the page. `false` when the cursor's name is not in the index.
/// KEYS: listing order.
pub(super) static KEYS_PAGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local start = 0
        if ARGV[3] == '1' then
            local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
            if not rank then return false end
            start = rank + 1
        end
        return redis.call('ZRANGE', KEYS[1], start, start + tonumber(ARGV[2]) - 1)
        ",
    )
});

/// Keys added to the listing order per `ZADD` when it is rebuilt.
pub(super) const BACKFILL_BATCH: usize = 1000;

/// Adds to a counter, giving it its expiry only when it is created (fixed windows).
/// KEYS: counter. ARGV: increment, ttl in ms.
pub(super) static INCR_COUNTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('EXISTS', KEYS[1]) == 0 then
            redis.call('SET', KEYS[1], 0, 'PX', ARGV[2])
        end
        return redis.call('INCRBY', KEYS[1], ARGV[1])
        ",
    )
});
