// cache3_single_flight: concurrent misses for one key share one load
//
// When a popular key is missing (it expired, or the service just started), every request for
// it misses at the same moment and each one queries the database: a cache stampede. Single
// flight fixes it: the first miss starts the load and registers it in `in_flight`; every miss
// that arrives while it runs awaits the same load instead of starting its own. `Shared` makes
// one future awaitable by many: its output is cloned to each of them, and whichever clone is
// polled drives it. So the load goes on when the caller that started it goes away, as long as
// another caller still awaits it; if every caller leaves, nothing polls it (it is not a spawned
// task) and it waits in `in_flight` for the next caller. Look up `in_flight` and register a new
// load under one lock: checked in one lock section and registered in another, two callers can
// both miss and both load (a race only a multi-threaded runtime shows, so no test here can).
// The load itself (given) stores a good value and, success or failure, leaves `in_flight`: a
// failed load is not cached, and the next caller tries again.
//
// Why it matters: a product page's cache entry expired during a sale; 3,000 requests missed in
// the same second and sent 3,000 identical queries to the database, which fell over; the
// pages that were still cached then missed too, and the outage lasted an hour.
//
// Production caveat: this dedupes within one process. Twenty replicas still send twenty loads
// when a key expires; across processes the usual tools are a short lock in Redis
// (`SET lock:key token NX PX 5000`, only the winner loads) or serving the stale value while
// one caller refreshes it.
//
// What to do: in `get`, on a miss, await the load already in flight for the key if there is
// one; otherwise start the load, register it in `in_flight`, and await it.
// Run `backlings hint` if you are stuck.

use futures::future::{BoxFuture, FutureExt, Shared};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("load failed: {0}")]
pub struct LoadError(pub String);

/// The slow source (a database, another service).
pub trait Loader: Send + Sync + 'static {
    fn load(&self, key: String) -> BoxFuture<'static, Result<String, LoadError>>;
}

type Flight = Shared<BoxFuture<'static, Result<String, LoadError>>>;

#[derive(Default)]
struct State {
    values: HashMap<String, String>,
    in_flight: HashMap<String, Flight>,
}

#[derive(Clone)]
pub struct Cache {
    loader: Arc<dyn Loader>,
    state: Arc<Mutex<State>>,
}

impl Cache {
    pub fn new(loader: Arc<dyn Loader>) -> Cache {
        let state = Arc::default();
        Cache { loader, state }
    }

    pub async fn get(&self, key: &str) -> Result<String, LoadError> {
        let flight = {
            let mut state = self.state.lock().unwrap();
            if let Some(value) = state.values.get(key) {
                return Ok(value.clone());
            }
            // TODO: every miss starts a load of its own. Await the load already in flight for
            // this key; if there is none, make the load `Shared`, register it, and await it.
            self.load(key)
        };
        flight.await
    }

    /// Loads `key`, then (in one step) stores a good value and leaves `in_flight`.
    fn load(&self, key: &str) -> impl Future<Output = Result<String, LoadError>> + Send + 'static {
        let (loader, state, key) = (self.loader.clone(), self.state.clone(), key.to_string());
        async move {
            let result = loader.load(key.clone()).await;
            let mut state = state.lock().unwrap();
            state.in_flight.remove(&key);
            if let Ok(value) = &result {
                state.values.insert(key, value.clone());
            }
            result
        }
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::{Instant, sleep, timeout};

    /// Takes `latency` per load, counts loads per key, and fails the loads whose number (per
    /// key, from 1) is in `fail`.
    struct FakeLoader {
        latency: Duration,
        fail: Vec<(String, usize)>,
        loads: Mutex<Vec<(String, Duration)>>,
        epoch: Instant,
    }

    impl FakeLoader {
        fn new(latency_ms: u64, fail: &[(&str, usize)]) -> Arc<FakeLoader> {
            Arc::new(FakeLoader {
                latency: Duration::from_millis(latency_ms),
                fail: fail.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
                loads: Mutex::new(Vec::new()),
                epoch: Instant::now(),
            })
        }
        fn loads_of(&self, key: &str) -> usize {
            self.loads
                .lock()
                .unwrap()
                .iter()
                .filter(|(k, _)| k == key)
                .count()
        }
    }

    impl Loader for FakeLoader {
        fn load(&self, key: String) -> BoxFuture<'static, Result<String, LoadError>> {
            let mut loads = self.loads.lock().unwrap();
            loads.push((key.clone(), self.epoch.elapsed()));
            let n = loads.iter().filter(|(k, _)| *k == key).count();
            let fails = self.fail.contains(&(key.clone(), n));
            let latency = self.latency;
            Box::pin(async move {
                sleep(latency).await;
                if fails {
                    Err(LoadError(format!("{key} load {n}")))
                } else {
                    Ok(format!("{key}={n}"))
                }
            })
        }
    }

    /// Starts one task per key in `keys`, all at once, and returns (ms when done, result).
    async fn crowd(cache: &Cache, keys: &[&str]) -> Vec<(u64, Result<String, LoadError>)> {
        let start = Instant::now();
        let tasks: Vec<_> = keys
            .iter()
            .map(|k| {
                let (cache, key) = (cache.clone(), k.to_string());
                tokio::spawn(async move {
                    let result = cache.get(&key).await;
                    (start.elapsed().as_millis() as u64, result)
                })
            })
            .collect();
        let mut out = Vec::new();
        for task in tasks {
            let done = timeout(Duration::from_secs(60), task).await;
            match done.expect("a get hung for 60 s") {
                Ok(r) => out.push(r),
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn many_concurrent_misses_share_one_load() {
        for (callers, latency) in [(50, 100u64), (20, 250)] {
            let loader = FakeLoader::new(latency, &[]);
            let cache = Cache::new(loader.clone());
            let got = crowd(&cache, &vec!["hot"; callers]).await;
            assert_eq!(
                loader.loads_of("hot"),
                1,
                "{callers} concurrent gets of a missing key: expected exactly 1 load"
            );
            for (ms, result) in got {
                assert_eq!(
                    result,
                    Ok("hot=1".to_string()),
                    "every caller gets the one load"
                );
                assert_eq!(
                    ms, latency,
                    "the load takes {latency} ms: every caller is done at exactly {latency} ms"
                );
            }
            // Loaded: later gets are hits, answered at once.
            let again = crowd(&cache, &["hot", "hot"]).await;
            assert!(again.iter().all(|(ms, _)| *ms == 0), "a hit takes 0 ms");
            assert_eq!(loader.loads_of("hot"), 1, "a hit does not load");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn different_keys_load_independently() {
        for latency in [100u64, 250] {
            let loader = FakeLoader::new(latency, &[]);
            let cache = Cache::new(loader.clone());
            let keys: Vec<&str> = ["a", "b", "c"].iter().cycle().take(30).copied().collect();
            let got = crowd(&cache, &keys).await;
            for key in ["a", "b", "c"] {
                assert_eq!(
                    loader.loads_of(key),
                    1,
                    "key {key}: 10 concurrent gets, 1 load"
                );
            }
            for ((ms, result), key) in got.into_iter().zip(keys) {
                assert_eq!(
                    result,
                    Ok(format!("{key}=1")),
                    "a caller of {key} gets {key}'s value"
                );
                assert_eq!(
                    ms, latency,
                    "three keys load side by side: every caller done at {latency} ms, not later"
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_caller_joins_the_load_in_flight() {
        let loader = FakeLoader::new(100, &[]);
        let cache = Cache::new(loader.clone());
        let first = tokio::spawn({
            let cache = cache.clone();
            async move { cache.get("k").await }
        });
        sleep(Duration::from_millis(60)).await;
        let start = Instant::now();
        let late = timeout(Duration::from_secs(60), cache.get("k"))
            .await
            .unwrap();
        assert_eq!(
            late,
            Ok("k=1".to_string()),
            "the late caller gets the first load's value"
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(40),
            "arriving at 60 ms, it waits only for the load in flight: done at 100 ms"
        );
        assert_eq!(first.await.unwrap(), Ok("k=1".to_string()));
        assert_eq!(loader.loads_of("k"), 1, "one load for both callers");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_load_is_shared_then_not_cached() {
        for (callers, latency) in [(10, 100u64), (4, 250)] {
            let loader = FakeLoader::new(latency, &[("k", 1)]);
            let cache = Cache::new(loader.clone());
            let got = crowd(&cache, &vec!["k"; callers]).await;
            for (ms, result) in got {
                assert_eq!(
                    result,
                    Err(LoadError("k load 1".into())),
                    "the one load failed: every waiting caller gets its error"
                );
                assert_eq!(
                    ms, latency,
                    "every caller is done when the one load fails, at {latency} ms \
                     (not after a load of its own)"
                );
            }
            assert_eq!(loader.loads_of("k"), 1, "{callers} callers, 1 failed load");
            // The error is not cached: the next caller loads again, and that load succeeds.
            let got = crowd(&cache, &vec!["k"; callers]).await;
            assert_eq!(
                loader.loads_of("k"),
                2,
                "after a failure the next get loads again"
            );
            for (ms, result) in got {
                assert_eq!(result, Ok("k=2".into()), "the retry's value is shared");
                assert_eq!(ms, latency, "the retry takes one load: {latency} ms");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_load_survives_its_first_caller_going_away() {
        let loader = FakeLoader::new(100, &[]);
        let cache = Cache::new(loader.clone());
        let first = tokio::spawn({
            let cache = cache.clone();
            async move { cache.get("k").await }
        });
        sleep(Duration::from_millis(10)).await;
        let others = tokio::spawn({
            let cache = cache.clone();
            async move { crowd(&cache, &["k"; 5]).await }
        });
        sleep(Duration::from_millis(10)).await;
        first.abort(); // the caller that started the load disconnects
        let got = timeout(Duration::from_secs(60), others)
            .await
            .unwrap()
            .unwrap();
        for (ms, result) in got {
            assert_eq!(
                result,
                Ok("k=1".into()),
                "the load goes on without its starter"
            );
            assert_eq!(
                ms, 90,
                "joined at 10 ms, the load ends at 100 ms: done after 90 ms"
            );
        }
        assert_eq!(
            loader.loads_of("k"),
            1,
            "one load, even though its starter left"
        );
    }
}
