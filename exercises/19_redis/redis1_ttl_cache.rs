// redis1_ttl_cache: cache-aside on Redis, with the TTL in the same command as the value
//
// Cache-aside: read the key; on a miss, load from the source of truth and store the value
// with a time to live, so a stale entry disappears on its own. In Redis the TTL lives with the
// key: `SET key value EX seconds` stores both in one command. `SET` followed by a separate
// `EXPIRE` is two commands, and a process that dies (or a connection that drops) between them
// leaves a key with no TTL at all: `PTTL` answers -1, and that entry is served forever.
//
// Why it matters: a deploy killed the pods in the middle of a traffic peak. A few hundred
// profile keys had been SET but never EXPIREd; weeks later users still saw their old names,
// and nothing but a manual `DEL` could fix it.
//
// Production caveat: a later plain `SET` on a key discards its TTL (the SET docs: "Any previous
// time to live associated with the key is discarded on successful SET operation"), so every
// write to a cache key must give the TTL again (`EX`) or keep it (`KEEPTTL`). And Redis may
// evict a key long before its TTL under `maxmemory`: a cache must always survive a miss.
//
// What to do: in `get`, store the loaded value and its TTL in one command.
// Run `backlings hint` if you are stuck.

use redis::AsyncCommands;
use redis::RedisError;
use redis::aio::ConnectionLike;

/// The slow source of truth the cache sits in front of (a database, another service).
pub trait Loader {
    fn load(&self, id: u64) -> String;
}

pub struct TtlCache<C, L> {
    conn: C,
    loader: L,
    prefix: String,
    ttl_secs: u64,
}

impl<C: ConnectionLike + Send + Sync, L: Loader> TtlCache<C, L> {
    pub fn new(conn: C, loader: L, prefix: &str, ttl_secs: u64) -> Self {
        TtlCache {
            conn,
            loader,
            prefix: prefix.to_owned(),
            ttl_secs,
        }
    }

    /// The Redis key of user `id`.
    pub fn key(&self, id: u64) -> String {
        format!("{}:user:{id}", self.prefix)
    }

    /// The cached value of user `id`, loaded and stored on a miss.
    pub async fn get(&mut self, id: u64) -> Result<String, RedisError> {
        let key = self.key(id);
        let cached: Option<String> = self.conn.get(&key).await?;
        if let Some(value) = cached {
            return Ok(value);
        }
        let value = self.loader.load(id);
        // TODO: two commands: a crash after the SET leaves the key without a TTL, forever.
        // Store the value and its TTL in one command.
        let _: () = self.conn.set(&key, &value).await?;
        let _: bool = self.conn.expire(&key, self.ttl_secs as i64).await?;
        Ok(value)
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use redis::aio::MultiplexedConnection;
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static NEXT: AtomicUsize = AtomicUsize::new(0);

    /// A key prefix of its own for each test, unique per process.
    fn prefix(test: &str) -> String {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("t:{}:{n}:{test}", std::process::id())
    }

    async fn connect() -> MultiplexedConnection {
        let url = std::env::var("REDIS_URL").expect("the runner sets REDIS_URL");
        let client = redis::Client::open(url).expect("a valid REDIS_URL");
        client
            .get_multiplexed_async_connection()
            .await
            .expect("the throwaway Redis accepts a connection")
    }

    async fn pttl(conn: &mut MultiplexedConnection, key: &str) -> i64 {
        redis::cmd("PTTL").arg(key).query_async(conn).await.unwrap()
    }

    /// Forces expiry: a deadline in the past deletes the key now. Never wait for a TTL.
    async fn expire_now(conn: &mut MultiplexedConnection, key: &str) {
        let _: i64 = redis::cmd("PEXPIREAT")
            .arg(key)
            .arg(1)
            .query_async(conn)
            .await
            .unwrap();
    }

    /// The source of truth: counts its loads, and its answer changes with each load.
    struct CountingLoader(AtomicUsize);

    impl Loader for &CountingLoader {
        fn load(&self, id: u64) -> String {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            format!("user-{id}-v{n}")
        }
    }

    /// A connection that dies after `budget` round trips, like a process killed mid-request.
    /// A pipeline caught by the crash is torn: only its first `cut` commands reach Redis, and
    /// `torn` counts all of its commands, so that the test can try every cut.
    struct DiesAfter {
        inner: MultiplexedConnection,
        budget: usize,
        cut: usize,
        torn: usize,
    }

    fn crashed() -> redis::RedisError {
        std::io::Error::other("the process died here").into()
    }

    /// Sends `bytes` on a connection of its own, reads one reply per command, and hangs up.
    /// Redis discards the queued commands of a MULTI whose connection closed before EXEC.
    fn send_and_hang_up(bytes: &[u8]) {
        let url = std::env::var("REDIS_URL").expect("the runner sets REDIS_URL");
        let path = url
            .strip_prefix("redis+unix://")
            .expect("a redis+unix:// URL");
        let mut stream =
            UnixStream::connect(path).expect("the throwaway Redis accepts a connection");
        stream.write_all(bytes).unwrap();
        let commands = 1 + bytes.windows(3).filter(|w| *w == b"\r\n*").count();
        let mut replies = BufReader::new(stream);
        for _ in 0..commands {
            replies.read_line(&mut String::new()).unwrap();
        }
    }

    impl ConnectionLike for DiesAfter {
        fn req_packed_command<'a>(
            &'a mut self,
            cmd: &'a redis::Cmd,
        ) -> redis::RedisFuture<'a, redis::Value> {
            if self.budget == 0 {
                return Box::pin(async { Err(crashed()) });
            }
            self.budget -= 1;
            self.inner.req_packed_command(cmd)
        }

        fn req_packed_commands<'a>(
            &'a mut self,
            pipeline: &'a redis::Pipeline,
            offset: usize,
            count: usize,
        ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
            if self.budget == 0 {
                let packed = pipeline.get_packed_pipeline();
                let starts: Vec<usize> = (2..packed.len())
                    .filter(|&i| &packed[i - 2..=i] == b"\r\n*")
                    .collect();
                self.torn = starts.len() + 1;
                if let Some(&end) = starts.get(self.cut.min(starts.len()).saturating_sub(1)) {
                    send_and_hang_up(&packed[..end]);
                }
                return Box::pin(async { Err(crashed()) });
            }
            self.budget -= 1;
            self.inner.req_packed_commands(pipeline, offset, count)
        }

        fn get_db(&self) -> i64 {
            self.inner.get_db()
        }
    }

    fn assert_ttl(pttl: i64, ttl_secs: u64, key: &str) {
        let ttl_ms = ttl_secs as i64 * 1000;
        assert!(
            ttl_ms - 2000 < pttl && pttl <= ttl_ms,
            "PTTL {key} = {pttl} ms: expected just under {ttl_ms} ms, the TTL of {ttl_secs} s \
             (-1 means no TTL at all: the key never expires)"
        );
    }

    #[tokio::test]
    async fn a_miss_loads_once_and_stores_the_value_with_its_ttl() {
        for (id, ttl) in [(7, 60), (42, 300)] {
            let mut check = connect().await;
            let loader = CountingLoader(AtomicUsize::new(0));
            let mut cache = TtlCache::new(connect().await, &loader, &prefix("miss"), ttl);
            let key = cache.key(id);
            let first = cache.get(id).await.unwrap();
            assert_eq!(
                first,
                format!("user-{id}-v1"),
                "a miss returns the loaded value"
            );
            assert_eq!(
                cache.get(id).await.unwrap(),
                first,
                "a hit returns the cached value"
            );
            assert_eq!(
                loader.0.load(Ordering::SeqCst),
                1,
                "a hit does not load again"
            );
            let stored: Option<String> = check.get(&key).await.unwrap();
            assert_eq!(
                stored.as_deref(),
                Some(first.as_str()),
                "the value lives in Redis at {key}"
            );
            assert_ttl(pttl(&mut check, &key).await, ttl, &key);
        }
    }

    #[tokio::test]
    async fn forced_expiry_reloads_in_every_window() {
        for (id, ttl) in [(3, 30), (9, 600)] {
            let mut check = connect().await;
            let loader = CountingLoader(AtomicUsize::new(0));
            let mut cache = TtlCache::new(connect().await, &loader, &prefix("expiry"), ttl);
            let key = cache.key(id);
            for window in 1..=3 {
                let value = cache.get(id).await.unwrap();
                assert_eq!(
                    value,
                    format!("user-{id}-v{window}"),
                    "window {window}: a fresh load after expiry"
                );
                assert_eq!(
                    cache.get(id).await.unwrap(),
                    value,
                    "window {window}: served from Redis"
                );
                assert_ttl(pttl(&mut check, &key).await, ttl, &key);
                expire_now(&mut check, &key).await;
            }
            assert_eq!(
                loader.0.load(Ordering::SeqCst),
                3,
                "one load per window, three windows"
            );
        }
    }

    #[tokio::test]
    async fn a_crash_at_any_point_leaves_no_key_without_a_ttl() {
        for budget in 0..4 {
            let mut cut = 1;
            loop {
                let mut check = connect().await;
                let loader = CountingLoader(AtomicUsize::new(0));
                let inner = connect().await;
                let conn = DiesAfter {
                    inner,
                    budget,
                    cut,
                    torn: 0,
                };
                let mut cache = TtlCache::new(conn, &loader, &prefix("crash"), 120);
                let key = cache.key(1);
                let _ = cache.get(1).await; // may fail: the connection died
                let left = pttl(&mut check, &key).await;
                assert!(
                    left == -2 || left > 0,
                    "the connection died after {budget} round trip(s) (cutting any pipeline \
                     after {cut} command(s)) and left {key} with PTTL {left}: -1 is a key with \
                     no TTL, served forever. Expected -2 (no key) or a TTL: the value and its \
                     TTL must be written together (one command, or MULTI/EXEC), or not at all"
                );
                if cut + 1 >= cache.conn.torn {
                    break; // every cut of the torn pipeline was tried
                }
                cut += 1;
            }
        }
    }
}
