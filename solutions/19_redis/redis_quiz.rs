// redis_quiz: two instances of a service sharing one Redis
//
// Every instance of a service runs the same code, and they must agree. Here each instance
// has a near cache (a map in its own memory) in front of a cache shared in Redis
// (`SET … EX`), in front of the database; and a rate limit per client that holds across all
// instances (INCR + `EXPIRE … NX` in one MULTI). A write goes to the database, then deletes
// the Redis entry (delete, don't update: the next read loads the fresh row) and publishes the
// id on an invalidation channel. Every instance subscribed to that channel before serving
// (the subscription is confirmed in `start`), and drops the id from its near cache.
//
// Why it matters: a price change reached one pod's memory and Redis, but the other five pods
// served the old price from their own maps for an hour; a limit counted in each pod's memory
// let every client through six times over.
//
// Production caveat: pub/sub delivers at most once. An instance that reconnects misses what
// was published meanwhile, so its near cache may hold a value nobody will ever invalidate:
// keep near-cache entries short-lived, and clear the whole near cache after a reconnect (what
// Redis's client-side caching docs tell clients to do when the invalidation link drops).
//
// What to do: two TODOs: count requests in Redis in `allow`; invalidate in `update`.
// Run `backlings hint` if you are stuck.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use redis::AsyncCommands;
use redis::RedisError;
use redis::aio::MultiplexedConnection;

/// The database behind the caches.
pub trait Db: Send + Sync + 'static {
    fn load(&self, id: u64) -> String;
    fn store(&self, id: u64, value: &str);
}

#[derive(Clone)]
pub struct Config {
    /// Every key and channel of the service starts with it.
    pub prefix: String,
    pub ttl_secs: u64,
    pub limit: u64,
    pub window_secs: u64,
}

pub struct Instance<D> {
    conn: MultiplexedConnection,
    db: Arc<D>,
    cfg: Config,
    /// The near cache: this instance's own copies, dropped when an invalidation arrives.
    near: Arc<Mutex<HashMap<u64, String>>>,
}

impl<D: Db> Instance<D> {
    /// Connects, and subscribes to the invalidations before serving anything.
    pub async fn start(
        client: &redis::Client,
        db: Arc<D>,
        cfg: Config,
    ) -> Result<Self, RedisError> {
        let conn = client.get_multiplexed_async_connection().await?;
        let near = Arc::new(Mutex::new(HashMap::new()));
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(invalidations(&cfg)).await?; // returns once Redis confirmed it
        let evict = Arc::clone(&near);
        tokio::spawn(async move {
            let mut stream = pubsub.into_on_message();
            while let Some(msg) = stream.next().await {
                if let Ok(id) = msg.get_payload::<u64>() {
                    evict.lock().unwrap().remove(&id);
                }
            }
        });
        Ok(Instance {
            conn,
            db,
            cfg,
            near,
        })
    }

    pub fn cache_key(&self, id: u64) -> String {
        format!("{}:user:{id}", self.cfg.prefix)
    }

    pub fn rate_key(&self, client: &str) -> String {
        format!("{}:rate:{client}", self.cfg.prefix)
    }

    /// Counts one request from `client`, across every instance; true when it is allowed.
    pub async fn allow(&mut self, client: &str) -> Result<bool, RedisError> {
        let key = self.rate_key(client);
        // Shared by every instance: INCR and EXPIRE NX run together, or not at all.
        let (count,): (u64,) = redis::pipe()
            .atomic()
            .incr(&key, 1)
            .cmd("EXPIRE")
            .arg(&key)
            .arg(self.cfg.window_secs)
            .arg("NX")
            .ignore()
            .query_async(&mut self.conn)
            .await?;
        Ok(count <= self.cfg.limit)
    }

    /// The near cache, then Redis, then the database (stored in Redis with its TTL).
    pub async fn get(&mut self, id: u64) -> Result<String, RedisError> {
        if let Some(value) = self.near.lock().unwrap().get(&id) {
            return Ok(value.clone());
        }
        let key = self.cache_key(id);
        let value = match self.conn.get::<_, Option<String>>(&key).await? {
            Some(value) => value,
            None => {
                let value = self.db.load(id);
                let _: () = self.conn.set_ex(&key, &value, self.cfg.ttl_secs).await?;
                value
            }
        };
        self.near.lock().unwrap().insert(id, value.clone());
        Ok(value)
    }

    /// Writes `value` to the database and invalidates every cached copy, on every instance.
    pub async fn update(&mut self, id: u64, value: &str) -> Result<(), RedisError> {
        self.db.store(id, value);
        // Delete, don't update: every copy goes, and the next read loads the fresh row.
        let key = self.cache_key(id);
        self.near.lock().unwrap().remove(&id);
        let _: usize = self.conn.del(&key).await?;
        let _: usize = self.conn.publish(invalidations(&self.cfg), id).await?;
        Ok(())
    }
}

/// The channel every instance listens to for ids whose cached copies are stale.
fn invalidations(cfg: &Config) -> String {
    format!("{}:invalidate", cfg.prefix)
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static NEXT: AtomicUsize = AtomicUsize::new(0);

    /// The database: counts its loads.
    #[derive(Default)]
    struct FakeDb {
        rows: Mutex<HashMap<u64, String>>,
        loads: AtomicUsize,
    }

    impl Db for FakeDb {
        fn load(&self, id: u64) -> String {
            self.loads.fetch_add(1, Ordering::SeqCst);
            let rows = self.rows.lock().unwrap();
            rows.get(&id)
                .cloned()
                .unwrap_or_else(|| format!("user-{id}-v1"))
        }

        fn store(&self, id: u64, value: &str) {
            self.rows.lock().unwrap().insert(id, value.to_owned());
        }
    }

    struct Service {
        a: Instance<FakeDb>,
        b: Instance<FakeDb>,
        db: Arc<FakeDb>,
        check: MultiplexedConnection,
    }

    /// Two instances of one service (a key prefix of its own per test), and a connection to
    /// look at Redis.
    async fn service(test: &str, ttl_secs: u64, limit: u64, window_secs: u64) -> Service {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("t:{}:{n}:{test}", std::process::id());
        let cfg = Config {
            prefix,
            ttl_secs,
            limit,
            window_secs,
        };
        let url = std::env::var("REDIS_URL").expect("the runner sets REDIS_URL");
        let client = redis::Client::open(url).expect("a valid REDIS_URL");
        let db = Arc::new(FakeDb::default());
        let a = Instance::start(&client, Arc::clone(&db), cfg.clone())
            .await
            .unwrap();
        let b = Instance::start(&client, Arc::clone(&db), cfg)
            .await
            .unwrap();
        let check = client.get_multiplexed_async_connection().await.unwrap();
        Service { a, b, db, check }
    }

    async fn pttl(conn: &mut MultiplexedConnection, key: &str) -> i64 {
        redis::cmd("PTTL").arg(key).query_async(conn).await.unwrap()
    }

    fn assert_ttl(pttl: i64, secs: u64, key: &str) {
        let ms = secs as i64 * 1000;
        assert!(
            ms - 2000 < pttl && pttl <= ms,
            "PTTL {key} = {pttl} ms: expected just under {ms} ms ({secs} s); -1 means no TTL"
        );
    }

    /// What `inst` answers once the invalidations in flight have arrived: at most 1000 turns
    /// of the runtime (each one reads the sockets), no sleeps.
    async fn settled(inst: &mut Instance<FakeDb>, id: u64, want: &str) -> String {
        let mut got = inst.get(id).await.unwrap();
        for _ in 0..1000 {
            if got == want {
                break;
            }
            tokio::task::yield_now().await;
            got = inst.get(id).await.unwrap();
        }
        got
    }

    #[tokio::test]
    async fn the_instances_share_one_limit_in_every_window() {
        for (limit, window) in [(4, 30), (6, 90)] {
            let s = &mut service("limit", 60, limit, window).await;
            let key = s.a.rate_key("10.0.0.1");
            for w in 1..=3 {
                for n in 1..=limit {
                    let inst = if n % 2 == 1 { &mut s.a } else { &mut s.b };
                    assert!(
                        inst.allow("10.0.0.1").await.unwrap(),
                        "window {w}: request {n} of {limit} is allowed"
                    );
                }
                assert!(
                    !s.a.allow("10.0.0.1").await.unwrap(),
                    "window {w}: A counted the {limit} requests of A and B: denied"
                );
                assert!(
                    !s.b.allow("10.0.0.1").await.unwrap(),
                    "window {w}: B counted them too: denied"
                );
                assert_ttl(pttl(&mut s.check, &key).await, window, &key);
                // The window is over: force the expiry, never wait for it.
                let _: i64 = redis::cmd("PEXPIREAT")
                    .arg(&key)
                    .arg(1)
                    .query_async(&mut s.check)
                    .await
                    .unwrap();
            }
            assert!(
                s.b.allow("10.0.0.2").await.unwrap(),
                "another client has a window of its own"
            );
        }
    }

    #[tokio::test]
    async fn a_counter_that_lost_its_ttl_gets_one_back() {
        for (limit, window) in [(4, 30), (6, 90)] {
            let s = &mut service("repair", 60, limit, window).await;
            let key = s.a.rate_key("bob");
            let _: () = s.check.set(&key, limit).await.unwrap(); // an old crash: no TTL
            assert!(
                !s.a.allow("bob").await.unwrap(),
                "request {} is over the limit of {limit}",
                limit + 1
            );
            assert_ttl(pttl(&mut s.check, &key).await, window, &key);
        }
    }

    #[tokio::test]
    async fn an_update_on_one_instance_reaches_the_other() {
        for (id, ttl, a_writes) in [(7, 60, true), (8, 300, false)] {
            let s = &mut service("invalidate", ttl, 5, 60).await;
            let key = s.a.cache_key(id);
            let channel = format!("{}:invalidate", key.split(":user:").next().unwrap());
            let (_, listeners): (String, usize) = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&channel)
                .query_async::<Vec<(String, usize)>>(&mut s.check)
                .await
                .unwrap()[0]
                .clone();
            assert_eq!(
                listeners, 2,
                "both instances listen on {channel}, the service's own channel"
            );
            let v1 = format!("user-{id}-v1");
            assert_eq!(
                s.a.get(id).await.unwrap(),
                v1,
                "a miss loads from the database"
            );
            assert_eq!(
                s.b.get(id).await.unwrap(),
                v1,
                "the other instance reads it from Redis"
            );
            assert_eq!(
                s.db.loads.load(Ordering::SeqCst),
                1,
                "one load for both instances"
            );
            assert_ttl(pttl(&mut s.check, &key).await, ttl, &key);
            // Changed behind the service's back: the near caches still answer v1.
            let _: () = redis::cmd("SET")
                .arg(&key)
                .arg("elsewhere")
                .arg("KEEPTTL")
                .query_async(&mut s.check)
                .await
                .unwrap();
            assert_eq!(
                s.a.get(id).await.unwrap(),
                v1,
                "A's second read comes from its near cache"
            );
            assert_eq!(
                s.b.get(id).await.unwrap(),
                v1,
                "B's second read comes from its near cache"
            );

            let v2 = format!("user-{id}-v2");
            let (writer, reader) = if a_writes {
                (&mut s.a, &mut s.b)
            } else {
                (&mut s.b, &mut s.a)
            };
            writer.update(id, &v2).await.unwrap();
            let exists: bool = s.check.exists(&key).await.unwrap();
            assert!(
                !exists,
                "after the write, {key} is deleted from Redis (delete, don't update)"
            );
            assert_eq!(
                writer.get(id).await.unwrap(),
                v2,
                "the writer reads its own write"
            );
            let seen = settled(reader, id, &v2).await;
            assert_eq!(
                seen, v2,
                "the other instance still serves {seen:?} from its near cache: the write must \
                 publish an invalidation that every instance receives"
            );
            assert_eq!(
                s.db.loads.load(Ordering::SeqCst),
                2,
                "one more load after the write"
            );
        }
    }
}
