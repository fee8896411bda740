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
// was published meanwhile, and a read racing a write can store the old value just after its
// invalidation went by ("Avoiding race conditions" in Redis's client-side caching docs). So a
// near cache may hold a value nobody will ever invalidate. This one keeps its entries until
// an invalidation, to stay short; in production give them a short TTL, and clear the whole
// near cache after a reconnect (what those docs tell clients to do when the link drops).
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
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixStream;

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

        /// Stores the row as the database keeps it: the next read sees `{value} (saved)`.
        fn store(&self, id: u64, value: &str) {
            let row = format!("{value} (saved)");
            self.rows.lock().unwrap().insert(id, row);
        }
    }

    /// A proxy of the test's own between one instance and Redis: it logs what the instance
    /// sends, and once `deaf` is set, the instance's subscription hears nothing more.
    struct Wire {
        log: Mutex<Vec<u8>>,
        deaf: AtomicBool,
        path: std::path::PathBuf,
    }

    impl Drop for Wire {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path); // the proxy's socket
        }
    }

    /// A client whose connections go through a new proxy.
    fn proxied(redis_url: &str) -> (redis::Client, Arc<Wire>) {
        let redis_path = redis_url.strip_prefix("redis+unix://").unwrap().to_owned();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("quiz-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let url = format!("redis+unix://{}", path.display());
        let (log, deaf) = Default::default();
        let wire = Arc::new(Wire { log, deaf, path });
        let w = Arc::clone(&wire);
        tokio::spawn(async move {
            while let Ok((app, _)) = listener.accept().await {
                let redis = UnixStream::connect(&redis_path).await.unwrap();
                tokio::spawn(forward(app, redis, Arc::clone(&w)));
            }
        });
        (redis::Client::open(url).unwrap(), wire)
    }

    async fn forward(app: UnixStream, redis: UnixStream, wire: Arc<Wire>) {
        let subscriber = &AtomicBool::new(false);
        let ((mut app_rx, mut app_tx), (mut redis_rx, mut redis_tx)) =
            (app.into_split(), redis.into_split());
        let up = async {
            let mut buf = vec![0; 4096];
            while let Ok(n @ 1..) = app_rx.read(&mut buf).await {
                wire.log.lock().unwrap().extend_from_slice(&buf[..n]);
                if buf[..n]
                    .to_ascii_lowercase()
                    .windows(9)
                    .any(|w| w == b"subscribe")
                {
                    subscriber.store(true, Ordering::SeqCst);
                }
                if redis_tx.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        };
        let down = async {
            let mut buf = vec![0; 4096];
            while let Ok(n @ 1..) = redis_rx.read(&mut buf).await {
                let deaf = subscriber.load(Ordering::SeqCst) && wire.deaf.load(Ordering::SeqCst);
                if !deaf && app_tx.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        };
        tokio::join!(up, down);
    }

    /// The commands an instance sent since the last call, one line each: "EXPIRE key 30 NX".
    fn sent(wire: &Wire) -> Vec<String> {
        let log = std::mem::take(&mut *wire.log.lock().unwrap());
        let text = String::from_utf8_lossy(&log);
        let mut lines = text.split("\r\n");
        let mut commands = Vec::new();
        while let Some(head) = lines.next() {
            let n = head.strip_prefix('*').and_then(|n| n.parse().ok());
            let words: Vec<&str> = (0..n.unwrap_or(0)).filter_map(|_| lines.nth(1)).collect();
            if let Some((name, args)) = words.split_first() {
                let command = format!("{} {}", name.to_uppercase(), args.join(" "));
                commands.push(command.trim_end().to_owned());
            }
        }
        commands
    }

    struct Service {
        a: Instance<FakeDb>,
        b: Instance<FakeDb>,
        db: Arc<FakeDb>,
        check: MultiplexedConnection,
        wires: [Arc<Wire>; 2],
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
        let client = redis::Client::open(url.as_str()).expect("a valid REDIS_URL");
        let db = Arc::new(FakeDb::default());
        let (client_a, wire_a) = proxied(&url);
        let a = Instance::start(&client_a, Arc::clone(&db), cfg.clone());
        let a = a.await.unwrap();
        let (client_b, wire_b) = proxied(&url);
        let b = Instance::start(&client_b, Arc::clone(&db), cfg);
        let b = b.await.unwrap();
        let check = client.get_multiplexed_async_connection().await.unwrap();
        let wires = [wire_a, wire_b];
        Service {
            a,
            b,
            db,
            check,
            wires,
        }
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
                    let wire = &s.wires[(n % 2 == 0) as usize];
                    sent(wire);
                    assert!(
                        inst.allow("10.0.0.1").await.unwrap(),
                        "window {w}: request {n} of {limit} is allowed"
                    );
                    let sent = sent(wire);
                    let incr = [format!("INCR {key}"), format!("INCRBY {key} 1")];
                    let expire = format!("EXPIRE {key} {window} NX");
                    assert!(
                        matches!(&sent[..], [m, i, e, x] if m == "MULTI" && incr.contains(i)
                            && *e == expire && x == "EXEC"),
                        "`allow` sent {sent:?}: expected MULTI, INCR {key}, {expire}, EXEC in \
                         one transaction. Two round trips or a plain pipeline can leave a counter \
                         without its TTL; GET then SET loses counts between instances; a plain \
                         EXPIRE moves the window's end with each request"
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
            let (writer, reader, wire) = if a_writes {
                (&mut s.a, &mut s.b, &s.wires[0])
            } else {
                (&mut s.b, &mut s.a, &s.wires[1])
            };
            // The writer's own subscription hears nothing more (as after a reconnect).
            wire.deaf.store(true, Ordering::SeqCst);
            sent(wire);
            writer.update(id, &v2).await.unwrap();
            let sent = sent(wire);
            let del = sent.iter().position(|c| *c == format!("DEL {key}"));
            let publish = sent
                .iter()
                .position(|c| *c == format!("PUBLISH {channel} {id}"));
            assert!(
                matches!((del, publish), (Some(d), Some(p)) if d < p),
                "`update` sent {sent:?}: expected DEL {key}, then PUBLISH {channel} {id}. \
                 Without the PUBLISH the other instances keep their near copies; published \
                 first, a reader can reload the old value from Redis before the DEL"
            );
            let exists: bool = s.check.exists(&key).await.unwrap();
            assert!(
                !exists,
                "after the write, {key} is deleted from Redis (delete, don't update)"
            );
            let v2 = format!("{v2} (saved)");
            assert_eq!(
                writer.get(id).await.unwrap(),
                v2,
                "the writer reads its own write, as the database stored it: it drops its own \
                 near copy itself (its subscription may be reconnecting) and reloads the row"
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
