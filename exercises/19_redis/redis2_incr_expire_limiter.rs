// redis2_incr_expire_limiter: a fixed window on Redis, INCR and EXPIRE NX in one MULTI
//
// The fixed-window limiter of `rate1_fixed_window`, shared by every instance of a service:
// `INCR rate:<client>` counts the request, and the key's TTL is the window. When the key
// expires, Redis deletes it and the next INCR starts a new window at 1. The classic code sends
// `EXPIRE` only when INCR answered 1, in a second round trip. A process that dies between the
// two leaves a counter with no TTL: it never resets, and once it passes the limit that client
// is denied forever. Since Redis 7.0, `EXPIRE key seconds NX` sets a TTL only when the key has
// none, so it can go out on every hit, in the same `MULTI`/`EXEC` transaction as the INCR:
// both run, or (the connection died before EXEC) neither.
//
// Why it matters: a deploy killed the API pods in the middle of a peak. A few counters had
// been INCRed but never EXPIREd; their API keys answered 429 for three days, until someone
// read the TTLs.
//
// Production caveat: a fixed window lets a client send up to twice the limit across a window
// boundary (the end of one window, then the start of the next); a sliding log or a token
// bucket smooths that. And `EXPIRE … NX` needs Redis 7.0 or newer: on older servers the same
// guarantee takes a Lua script (EVAL) doing the INCR and the EXPIRE.
//
// What to do: in `hit`, send INCR and `EXPIRE key window NX` in one atomic pipeline.
// Run `backlings hint` if you are stuck.

use redis::AsyncCommands;
use redis::RedisError;
use redis::aio::ConnectionLike;

pub struct Limiter<C> {
    conn: C,
    prefix: String,
    limit: u64,
    window_secs: u64,
}

impl<C: ConnectionLike + Send + Sync> Limiter<C> {
    pub fn new(conn: C, prefix: &str, limit: u64, window_secs: u64) -> Self {
        Limiter {
            conn,
            prefix: prefix.to_owned(),
            limit,
            window_secs,
        }
    }

    /// The Redis key counting `client`'s requests in the current window.
    pub fn key(&self, client: &str) -> String {
        format!("{}:rate:{client}", self.prefix)
    }

    /// Counts one request from `client`; true when it is allowed.
    pub async fn hit(&mut self, client: &str) -> Result<bool, RedisError> {
        let key = self.key(client);
        // TODO: two round trips: a crash after the INCR leaves a counter with no TTL, and a
        // counter that already lost its TTL never gets one (it is past 1). Send INCR and
        // `EXPIRE key window NX` together in one MULTI/EXEC pipeline.
        let count: u64 = self.conn.incr(&key, 1).await?;
        if count == 1 {
            let _: bool = self.conn.expire(&key, self.window_secs as i64).await?;
        }
        Ok(count <= self.limit)
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use redis::AsyncCommands;
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

    /// A connection that counts its round trips (`trips`) and dies after `budget` of them, like
    /// a process killed mid-request. A pipeline caught by the crash is torn: only its first
    /// `cut` commands reach Redis, and `torn` counts all of its commands.
    struct DiesAfter {
        inner: MultiplexedConnection,
        budget: usize,
        cut: usize,
        torn: usize,
        trips: usize,
    }

    async fn dies_after(budget: usize, cut: usize) -> DiesAfter {
        DiesAfter {
            inner: connect().await,
            budget,
            cut,
            torn: 0,
            trips: 0,
        }
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
            self.trips += 1;
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
            self.trips += 1;
            self.inner.req_packed_commands(pipeline, offset, count)
        }

        fn get_db(&self) -> i64 {
            self.inner.get_db()
        }
    }

    fn assert_window(pttl: i64, window_secs: u64, key: &str) {
        let ms = window_secs as i64 * 1000;
        assert!(
            ms - 2000 < pttl && pttl <= ms,
            "PTTL {key} = {pttl} ms: expected just under {ms} ms, the window of {window_secs} s \
             (-1 means no TTL: the counter never resets)"
        );
    }

    #[tokio::test]
    async fn the_limit_holds_in_every_window() {
        for (limit, window) in [(5, 60), (3, 10)] {
            let mut check = connect().await;
            let conn = dies_after(usize::MAX, 0).await; // never dies: counts round trips
            let mut limiter = Limiter::new(conn, &prefix("windows"), limit, window);
            let key = limiter.key("10.0.0.1");
            for w in 1..=3 {
                for n in 1..=limit {
                    let trips = limiter.conn.trips;
                    assert!(
                        limiter.hit("10.0.0.1").await.unwrap(),
                        "window {w}: hit {n} of {limit} is allowed"
                    );
                    let trips = limiter.conn.trips - trips;
                    assert_eq!(
                        trips, 1,
                        "hit {n} took {trips} round trips: expected 1, one MULTI/EXEC. A GET \
                         then a SET lets two instances both read 4 and both write 5, and a crash \
                         between two round trips can leave a counter without its TTL"
                    );
                    assert_window(pttl(&mut check, &key).await, window, &key);
                }
                for n in limit + 1..=limit + 2 {
                    assert!(
                        !limiter.hit("10.0.0.1").await.unwrap(),
                        "window {w}: hit {n} is over the limit of {limit}"
                    );
                }
                let count: u64 = check.get(&key).await.unwrap();
                assert_eq!(count, limit + 2, "window {w}: INCR counts denied hits too");
                expire_now(&mut check, &key).await; // the window is over
            }
            assert!(
                limiter.hit("10.0.0.2").await.unwrap(),
                "another client has a window of its own"
            );
        }
    }

    #[tokio::test]
    async fn the_window_end_does_not_move_with_each_hit() {
        for (limit, window) in [(5, 60), (3, 10)] {
            let mut check = connect().await;
            let mut limiter = Limiter::new(connect().await, &prefix("fixed_end"), limit, window);
            let key = limiter.key("alice");
            assert!(limiter.hit("alice").await.unwrap());
            // Pretend most of the window went by: 1.5 s of it are left.
            let _: i64 = redis::cmd("PEXPIRE")
                .arg(&key)
                .arg(1500)
                .query_async(&mut check)
                .await
                .unwrap();
            assert!(limiter.hit("alice").await.unwrap());
            let left = pttl(&mut check, &key).await;
            assert!(
                0 < left && left <= 1500,
                "PTTL {key} = {left} ms after a second hit: expected at most 1500 ms. The window \
                 ends where it started; a plain EXPIRE on every hit pushes the end back, and a \
                 client that keeps calling is never reset (EXPIRE ... NX sets a TTL only if none)"
            );
        }
    }

    #[tokio::test]
    async fn a_counter_that_lost_its_ttl_gets_one_back() {
        for (limit, window) in [(5, 60), (3, 10)] {
            let mut check = connect().await;
            let mut limiter = Limiter::new(connect().await, &prefix("repair"), limit, window);
            let key = limiter.key("bob");
            // Left behind by an old crash: at the limit, and no TTL.
            let _: () = check.set(&key, limit).await.unwrap();
            assert!(
                !limiter.hit("bob").await.unwrap(),
                "hit {} is over the limit of {limit}",
                limit + 1
            );
            assert_window(pttl(&mut check, &key).await, window, &key);
        }
    }

    #[tokio::test]
    async fn a_crash_at_any_point_leaves_no_counter_without_a_ttl() {
        for budget in 0..3 {
            let mut cut = 1;
            loop {
                let mut check = connect().await;
                let conn = dies_after(budget, cut).await;
                let mut limiter = Limiter::new(conn, &prefix("crash"), 5, 60);
                let key = limiter.key("carol");
                let _ = limiter.hit("carol").await; // may fail: the connection died
                let left = pttl(&mut check, &key).await;
                assert!(
                    left == -2 || left > 0,
                    "the connection died after {budget} round trip(s) (cutting any pipeline \
                     after {cut} command(s)) and left {key} with PTTL {left}: -1 is a counter \
                     with no TTL, that never resets. Expected -2 (no key) or a TTL: INCR and \
                     EXPIRE must run together (MULTI/EXEC) or not at all"
                );
                if cut + 1 >= limiter.conn.torn {
                    break; // every cut of the torn pipeline was tried
                }
                cut += 1;
            }
        }
    }
}
