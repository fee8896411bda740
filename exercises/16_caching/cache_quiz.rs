// cache_quiz: a read-through price cache in front of SQLite
//
// Callers ask the cache, never the database. Each fill lives for its TTL plus a jitter from a
// seeded xorshift, so keys filled together expire apart; past `capacity`, the least recently
// used entry goes (cache2); concurrent misses share one numbered read (cache3). A write
// commits, then deletes the key and forgets its read in flight: deleting before the commit
// lets a read in between cache the old price again, and updating instead of deleting lets two
// writers reach the database and the cache in different orders. A failed read answers with
// the expired copy, if one is still cached, flagged `stale: true`.
//
// Why it matters: a pricing page cached everything with one TTL; every hour all keys expired
// at once and the database saw a wall of reads. When the database went down, so did the page,
// though the cache held prices a minute old.
//
// Production caveat: with several replicas, a write deletes the key only in the replica that
// served it; the others serve the old price until their TTL. A shared cache (Redis) or an
// invalidation broadcast (Redis pub/sub) fixes that.
//
// What to do: (1) jitter each fill's TTL; (2) serve the stale copy when a read fails;
// (3) delete on write. Run `backlings hint` if you are stuck.

use futures::future::{self, BoxFuture, FutureExt, Shared};
use rusqlite::{Connection, OptionalExtension};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("database unavailable")]
pub struct DbError;

/// The database port: prices in cents by product id (`None`: no such product).
pub trait Db: Send + Sync + 'static {
    fn price(&self, id: i64) -> BoxFuture<'static, Result<Option<i64>, DbError>>;
    fn set_price(&self, id: i64, cents: i64) -> BoxFuture<'static, Result<(), DbError>>;
}

pub struct Sqlite(Mutex<Connection>);

impl Sqlite {
    pub fn open() -> rusqlite::Result<Sqlite> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch("CREATE TABLE prices (id INTEGER PRIMARY KEY, cents INTEGER)")?;
        Ok(Sqlite(Mutex::new(conn)))
    }
}

impl Db for Sqlite {
    fn price(&self, id: i64) -> BoxFuture<'static, Result<Option<i64>, DbError>> {
        let sql = "SELECT cents FROM prices WHERE id = ?1";
        let row = self.0.lock().unwrap().query_row(sql, [id], |r| r.get(0));
        future::ready(row.optional().map_err(|_| DbError)).boxed()
    }
    fn set_price(&self, id: i64, cents: i64) -> BoxFuture<'static, Result<(), DbError>> {
        let sql = "INSERT OR REPLACE INTO prices VALUES (?1, ?2)";
        let done = self.0.lock().unwrap().execute(sql, (id, cents));
        future::ready(done.map(|_| ()).map_err(|_| DbError)).boxed()
    }
}

#[derive(Clone, Copy)]
pub struct Config {
    pub ttl: Duration,
    pub jitter: Duration,
    pub capacity: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Answer {
    pub cents: Option<i64>,
    pub stale: bool,
}

/// Marsaglia's xorshift64: the same seed gives the same jitter, run after run.
pub fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

type Flight = Shared<BoxFuture<'static, Result<Option<i64>, DbError>>>;

#[derive(Default)]
struct State {
    entries: HashMap<i64, (Option<i64>, Instant, u64)>, // id -> (cents, expires_at, last use)
    by_use: BTreeMap<u64, i64>,                         // last use -> id, oldest first
    flights: HashMap<i64, (u64, Flight)>,               // id -> (read number, read)
    counter: u64,                                       // numbers uses and reads
    rng: u64,
}

impl State {
    fn touch(&mut self, id: i64) {
        self.counter += 1;
        if let Some((_, _, used)) = self.entries.get_mut(&id) {
            self.by_use.remove(used);
            *used = self.counter;
            self.by_use.insert(self.counter, id);
        }
    }

    fn store(&mut self, id: i64, cents: Option<i64>, cfg: &Config) {
        // TODO (1/3): every key filled together expires together. Add a jitter: one draw per
        // fill, `xorshift(&mut self.rng) % (jitter in ms + 1)` more milliseconds.
        let expires_at = Instant::now() + cfg.ttl;
        let used = self.entries.get(&id).map_or(0, |e| e.2);
        self.entries.insert(id, (cents, expires_at, used));
        self.touch(id);
        while self.entries.len() > cfg.capacity
            && let Some((_, oldest)) = self.by_use.pop_first()
        {
            self.entries.remove(&oldest);
        }
    }
}

#[derive(Clone)]
pub struct Cache {
    db: Arc<dyn Db>,
    cfg: Config,
    state: Arc<Mutex<State>>,
}

impl Cache {
    pub fn new(db: Arc<dyn Db>, cfg: Config) -> Cache {
        let rng = cfg.seed;
        let state = Arc::new(Mutex::new(State {
            rng,
            ..State::default()
        }));
        Cache { db, cfg, state }
    }

    pub async fn get(&self, id: i64) -> Result<Answer, DbError> {
        let fresh = |cents| Answer {
            cents,
            stale: false,
        };
        let flight = {
            let mut s = self.state.lock().unwrap();
            if let Some(&(cents, expires_at, _)) = s.entries.get(&id)
                && Instant::now() < expires_at
            {
                s.touch(id);
                return Ok(fresh(cents));
            }
            let joined = s.flights.get(&id).map(|(_, flight)| flight.clone());
            joined.unwrap_or_else(|| self.start_read(&mut s, id))
        };
        // TODO (2/3): when the read fails, answer with the expired copy if one is still
        // cached, flagged `stale: true`; pass the error on only when there is none.
        flight.await.map(fresh)
    }

    fn start_read(&self, s: &mut State, id: i64) -> Flight {
        s.counter += 1;
        let (n, db, cfg, state) = (s.counter, self.db.clone(), self.cfg, self.state.clone());
        let read = async move {
            let result = db.price(id).await;
            let mut s = state.lock().unwrap();
            // Still the key's current read (no write came in between)? Then store.
            if s.flights.get(&id).is_some_and(|(m, _)| *m == n) {
                s.flights.remove(&id);
                if let Ok(cents) = result {
                    s.store(id, cents, &cfg);
                }
            }
            result
        };
        let flight = read.boxed().shared();
        s.flights.insert(id, (n, flight.clone()));
        flight
    }

    pub async fn set_price(&self, id: i64, cents: i64) -> Result<(), DbError> {
        self.db.set_price(id, cents).await?;
        // TODO (3/3): updating the cache races with other writers and with the read in
        // flight. Delete the key instead (from both maps) and forget its read in flight.
        self.state.lock().unwrap().store(id, Some(cents), &self.cfg);
        Ok(())
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::time::{sleep, sleep_until, timeout};

    /// SQLite behind a slow network: every read takes `latency` (it reads the row when it
    /// starts) and fails while `down` (writes still go through). A write takes the next pair
    /// in `writes` (default 0, 0): it commits after the first delay, then is acknowledged
    /// after the second.
    struct SlowDb {
        db: Arc<Sqlite>,
        latency: Duration,
        down: AtomicBool,
        reads: Mutex<Vec<i64>>,
        writes: Mutex<VecDeque<(u64, u64)>>,
    }

    impl SlowDb {
        fn reads_of(&self, id: i64) -> usize {
            self.reads
                .lock()
                .unwrap()
                .iter()
                .filter(|r| **r == id)
                .count()
        }
    }

    impl Db for SlowDb {
        fn price(&self, id: i64) -> BoxFuture<'static, Result<Option<i64>, DbError>> {
            self.reads.lock().unwrap().push(id);
            let (latency, down) = (self.latency, self.down.load(Ordering::SeqCst));
            let row = self.db.price(id);
            Box::pin(async move {
                sleep(latency).await;
                if down { Err(DbError) } else { row.await }
            })
        }
        fn set_price(&self, id: i64, cents: i64) -> BoxFuture<'static, Result<(), DbError>> {
            let (commit, ack) = self.writes.lock().unwrap().pop_front().unwrap_or((0, 0));
            let sqlite = self.db.clone();
            Box::pin(async move {
                if commit > 0 {
                    sleep(Duration::from_millis(commit)).await;
                }
                let done = sqlite.set_price(id, cents).await;
                sleep(Duration::from_millis(ack)).await;
                done
            })
        }
    }

    fn setup(
        latency_ms: u64,
        ttl_s: u64,
        jitter_ms: u64,
        capacity: usize,
        seed: u64,
    ) -> (Arc<SlowDb>, Cache) {
        let sqlite = Sqlite::open().unwrap();
        for id in 1..=9 {
            let written = sqlite.set_price(id, id * 100).now_or_never();
            assert_eq!(
                written,
                Some(Ok(())),
                "Sqlite writes before it returns its future"
            );
        }
        let db = Arc::new(SlowDb {
            db: Arc::new(sqlite),
            latency: Duration::from_millis(latency_ms),
            down: AtomicBool::new(false),
            reads: Mutex::new(Vec::new()),
            writes: Mutex::new(VecDeque::new()),
        });
        let cfg = Config {
            ttl: Duration::from_secs(ttl_s),
            jitter: Duration::from_millis(jitter_ms),
            capacity,
            seed,
        };
        (db.clone(), Cache::new(db, cfg))
    }

    fn fresh(cents: i64) -> Result<Answer, DbError> {
        Ok(Answer {
            cents: Some(cents),
            stale: false,
        })
    }

    async fn get(cache: &Cache, id: i64) -> Result<Answer, DbError> {
        timeout(Duration::from_secs(600), cache.get(id))
            .await
            .expect("a get hung")
    }

    /// Starts `n` gets of `id` at once; returns (ms each took, answer).
    async fn crowd(cache: &Cache, id: i64, n: usize) -> Vec<(u64, Result<Answer, DbError>)> {
        let start = Instant::now();
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    let answer = cache.get(id).await;
                    (start.elapsed().as_millis() as u64, answer)
                })
            })
            .collect();
        let mut out = Vec::new();
        for task in tasks {
            match timeout(Duration::from_secs(600), task)
                .await
                .expect("a get hung")
            {
                Ok(r) => out.push(r),
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn fills_expire_at_their_jittered_deadlines() {
        // (TTL s, jitter ms, seed, [(product, deadline ms)] in time order: 4 products filled
        // together at 0 ms, then their second fills). Each fill draws once, in fill order:
        // deadline = fill time + TTL + xorshift(rng) % (jitter + 1) ms.
        let cases = [
            (
                60,
                6_000,
                42,
                [(2, 61_920), (3, 62_837), (1, 63_136), (4, 64_267)],
            ),
            (
                10,
                2_000,
                7,
                [(1, 10_276), (4, 10_505), (2, 10_936), (3, 11_392)],
            ),
        ];
        let seconds = [
            [(2, 122_071), (4, 125_456), (1, 127_356), (3, 128_013)],
            [(4, 21_607), (1, 21_669), (3, 22_022), (2, 22_539)],
        ];
        for ((ttl_s, jitter_ms, seed, first), second) in cases.into_iter().zip(seconds) {
            let (db, cache) = setup(0, ttl_s, jitter_ms, 10, seed);
            let start = Instant::now();
            for id in 1..=4 {
                assert_eq!(get(&cache, id).await, fresh(id * 100));
            }
            for (k, (id, at)) in first.into_iter().chain(second).enumerate() {
                let reads = 1 + k / 4;
                let case = format!("TTL {ttl_s} s, jitter up to {jitter_ms} ms, seed {seed}");
                sleep_until(start + Duration::from_millis(at - 1)).await;
                assert_eq!(get(&cache, id).await, fresh(id * 100));
                assert_eq!(
                    db.reads_of(id),
                    reads,
                    "{case}: product {id} is still fresh at {} ms (its deadline is {at} ms)",
                    at - 1
                );
                sleep_until(start + Duration::from_millis(at)).await;
                assert_eq!(get(&cache, id).await, fresh(id * 100));
                assert_eq!(
                    db.reads_of(id),
                    reads + 1,
                    "{case}: product {id} expires at exactly {at} ms and is read again"
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_misses_share_one_read_per_window() {
        for (latency, ttl_s) in [(100u64, 10u64), (250, 60)] {
            let (db, cache) = setup(latency, ttl_s, 0, 10, 1);
            for window in 1..=3 {
                let (a, b) = tokio::join!(crowd(&cache, 1, 30), crowd(&cache, 2, 10));
                for (id, got) in [(1, a), (2, b)] {
                    assert_eq!(
                        db.reads_of(id),
                        window,
                        "window {window}: concurrent misses of product {id} share 1 read"
                    );
                    for (ms, answer) in got {
                        assert_eq!(answer, fresh(id * 100));
                        assert_eq!(ms, latency, "every caller is done when the read ends");
                    }
                }
                sleep(Duration::from_secs(ttl_s)).await;
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_read_serves_the_stale_copy_flagged() {
        for (latency, ttl_s) in [(100u64, 10u64), (250, 60)] {
            let (db, cache) = setup(latency, ttl_s, 0, 10, 1);
            assert_eq!(
                get(&cache, 3).await,
                fresh(300),
                "a fresh answer has stale: false"
            );
            sleep(Duration::from_secs(ttl_s)).await;
            db.down.store(true, Ordering::SeqCst);
            let stale = Ok(Answer {
                cents: Some(300),
                stale: true,
            });
            for (ms, answer) in crowd(&cache, 3, 10).await {
                assert_eq!(
                    answer, stale,
                    "the copy expired and the database is down: expected the old price, \
                     flagged stale"
                );
                assert_eq!(
                    ms, latency,
                    "the stale answer comes when the failed read ends"
                );
            }
            assert_eq!(
                db.reads_of(3),
                2,
                "10 gets after expiry: 1 shared (failed) read"
            );
            assert_eq!(
                get(&cache, 3).await,
                stale,
                "still down: still the stale copy"
            );
            assert_eq!(
                db.reads_of(3),
                3,
                "a failure is not cached and does not refresh the copy: the next get reads again"
            );
            assert_eq!(
                get(&cache, 5).await,
                Err(DbError),
                "product 5 was never cached: with the database down, the error goes through"
            );
            // Back up, with a price someone else wrote meanwhile.
            db.down.store(false, Ordering::SeqCst);
            db.db.set_price(3, 399).await.unwrap();
            assert_eq!(
                get(&cache, 3).await,
                fresh(399),
                "back up: a fresh read, not stale"
            );
            assert_eq!(get(&cache, 3).await, fresh(399));
            assert_eq!(db.reads_of(3), 4, "the fresh copy is cached again");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_during_a_failed_read_leaves_no_stale_copy() {
        for (latency, ttl_s) in [(100u64, 10u64), (250, 60)] {
            let (db, cache) = setup(latency, ttl_s, 0, 10, 1);
            assert_eq!(get(&cache, 3).await, fresh(300));
            sleep(Duration::from_secs(ttl_s)).await;
            db.down.store(true, Ordering::SeqCst);
            let read = tokio::spawn({
                let cache = cache.clone();
                async move { cache.get(3).await } // fails after `latency`
            });
            sleep(Duration::from_millis(latency / 2)).await;
            cache.set_price(3, 333).await.unwrap();
            assert_eq!(
                read.await.unwrap(),
                Err(DbError),
                "latency {latency} ms: the write at {} ms deleted the expired 300, which is now \
                 known to be wrong: when the read fails there is no copy to serve",
                latency / 2
            );
            db.down.store(false, Ordering::SeqCst);
            assert_eq!(get(&cache, 3).await, fresh(333));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_deletes_the_key_and_the_next_read_loads_it() {
        for (id, cents) in [(4, 444), (7, 777)] {
            let (db, cache) = setup(100, 60, 0, 10, 1);
            assert_eq!(get(&cache, id).await, fresh(id * 100));
            assert_eq!(get(&cache, 1).await, fresh(100));
            cache.set_price(id, cents).await.unwrap();
            assert_eq!(
                cache.state.lock().unwrap().entries.len(),
                1,
                "after the write, product {id} is deleted from the cache (not updated): \
                 1 entry left"
            );
            assert_eq!(
                get(&cache, id).await,
                fresh(cents),
                "the next read loads {cents}"
            );
            assert_eq!(
                db.reads_of(id),
                2,
                "product {id}: read once, written, read again"
            );
            assert_eq!(
                get(&cache, 1).await,
                fresh(100),
                "the other product is untouched"
            );
            assert_eq!(db.reads_of(1), 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn racing_writers_leave_the_database_price() {
        // Writer A commits first and is acknowledged last; writer B commits second.
        for (ack_a, ack_b) in [(50u64, 10u64), (300, 20)] {
            let (db, cache) = setup(100, 60, 0, 10, 1);
            assert_eq!(get(&cache, 1).await, fresh(100));
            db.writes.lock().unwrap().extend([(0, ack_a), (0, ack_b)]);
            let a = tokio::spawn({
                let cache = cache.clone();
                async move { cache.set_price(1, 111).await }
            });
            sleep(Duration::from_millis(10)).await;
            cache.set_price(1, 222).await.unwrap();
            a.await.unwrap().unwrap();
            assert_eq!(db.db.price(1).await, Ok(Some(222)), "B committed last");
            assert_eq!(
                get(&cache, 1).await,
                fresh(222),
                "acks {ack_a} / {ack_b} ms: the database holds 222 (B committed last); a cache \
                 updated by each writer ends with A's 111, a deleted one reads 222"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_during_a_slow_commit_does_not_cache_the_old_price() {
        // The write commits `commit` ms after it starts; a get comes in at 10 ms.
        for (latency, commit) in [(100u64, 50u64), (40, 120)] {
            let (db, cache) = setup(latency, 60, 0, 10, 1);
            assert_eq!(get(&cache, 1).await, fresh(100));
            db.writes.lock().unwrap().push_back((commit, 0));
            let writer = tokio::spawn({
                let cache = cache.clone();
                async move { cache.set_price(1, 222).await }
            });
            sleep(Duration::from_millis(10)).await;
            assert_eq!(
                get(&cache, 1).await,
                fresh(100),
                "not committed yet: the cached 100"
            );
            writer.await.unwrap().unwrap();
            assert_eq!(
                get(&cache, 1).await,
                fresh(222),
                "read latency {latency} ms, commit at {commit} ms: the write returned, so the \
                 cache must not hold 100 (deleted before the commit, a get in between cached \
                 the old price again)"
            );
            assert_eq!(
                db.reads_of(1),
                2,
                "a hit at 10 ms, one read after the write"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_leaves_the_other_products_reads_in_flight() {
        for (latency, write_at) in [(100u64, 30u64), (250, 120)] {
            let (db, cache) = setup(latency, 60, 0, 10, 1);
            let early = tokio::spawn({
                let cache = cache.clone();
                async move { crowd(&cache, 2, 5).await } // reads product 2 from 0 ms
            });
            sleep(Duration::from_millis(write_at)).await;
            cache.set_price(1, 111).await.unwrap();
            for (ms, answer) in crowd(&cache, 2, 5).await {
                assert_eq!(answer, fresh(200));
                assert_eq!(
                    ms,
                    latency - write_at,
                    "latency {latency} ms: the gets of product 2 at {write_at} ms join its read \
                     in flight since 0 ms (the write of product 1 must not forget that read)"
                );
            }
            for (ms, answer) in early.await.unwrap() {
                assert_eq!((ms, answer), (latency, fresh(200)));
            }
            assert_eq!(get(&cache, 2).await, fresh(200));
            assert_eq!(
                db.reads_of(2),
                1,
                "latency {latency} ms: one read of product 2, shared and cached"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_in_flight_during_a_write_does_not_store_the_old_price() {
        for (latency, write_at) in [(100u64, 50u64), (250, 200)] {
            let (db, cache) = setup(latency, 60, 0, 10, 1);
            let start = Instant::now();
            let early = tokio::spawn({
                let cache = cache.clone();
                async move { cache.get(2).await } // reads 200 at 0 ms
            });
            sleep_until(start + Duration::from_millis(write_at)).await;
            cache.set_price(2, 250).await.unwrap();
            let late = tokio::spawn({
                let cache = cache.clone();
                async move { cache.get(2).await } // starts after the write
            });
            // The early read has ended (with 200); the late one is still in flight.
            sleep_until(start + Duration::from_millis(latency + 1)).await;
            assert_eq!(
                get(&cache, 2).await,
                fresh(250),
                "written at {write_at} ms: a get at {} ms must not see the old 200 that the \
                 read started at 0 ms brought back",
                latency + 1
            );
            let done = start.elapsed().as_millis() as u64;
            assert_eq!(
                done,
                write_at + latency,
                "it joins the read started after the write"
            );
            assert_eq!(
                late.await.unwrap(),
                fresh(250),
                "a read after the write sees 250"
            );
            assert_eq!(
                early.await.unwrap(),
                fresh(200),
                "the read from before the write"
            );
            sleep(Duration::from_millis(latency)).await;
            assert_eq!(get(&cache, 2).await, fresh(250), "the cache holds 250");
            assert_eq!(
                db.reads_of(2),
                2,
                "two reads: one before the write, one after"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_capacity_and_the_hot_key_stays() {
        for cap in [3usize, 5] {
            let (db, cache) = setup(0, 3600, 0, cap, 1);
            assert_eq!(get(&cache, 1).await, fresh(100));
            for id in 100..160 {
                let none = Ok(Answer {
                    cents: None,
                    stale: false,
                });
                assert_eq!(get(&cache, id).await, none, "product {id} does not exist");
                assert_eq!(get(&cache, 1).await, fresh(100));
                let expected = (id as usize - 98).min(cap);
                assert_eq!(
                    cache.state.lock().unwrap().entries.len(),
                    expected,
                    "capacity {cap}: {expected} entries"
                );
            }
            assert_eq!(
                db.reads_of(1),
                1,
                "capacity {cap}: product 1 was read after every insert, so it was never the \
                 least recently used: 1 database read"
            );
            get(&cache, 159).await.unwrap();
            get(&cache, 100).await.unwrap();
            assert_eq!(
                db.reads_of(159),
                1,
                "capacity {cap}: the newest entry stays"
            );
            assert_eq!(
                db.reads_of(100),
                2,
                "capacity {cap}: the oldest entry was evicted"
            );
            // A write deletes product 1 from both maps; then it is hot again.
            cache.set_price(1, 150).await.unwrap();
            for id in 200..220 {
                get(&cache, id).await.unwrap();
                assert_eq!(get(&cache, 1).await, fresh(150));
                let len = cache.state.lock().unwrap().entries.len();
                assert_eq!(len, cap, "capacity {cap}: full, {cap} entries");
            }
            assert_eq!(
                db.reads_of(1),
                2,
                "capacity {cap}: product 1 is read once after the write, then stays cached \
                 (a use number left behind by the delete must not evict it later)"
            );
        }
    }
}
