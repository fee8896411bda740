// event_loop2_join_concurrency: concurrency on one thread
//
// Two `.await`s in a row run one after the other: two 100 ms calls take 200 ms. `tokio::join!`
// polls both futures together, so while one waits for its answer the other makes progress:
// 100 ms in all, on one thread. That is concurrency, not parallelism: nothing runs at the same
// instant, the waits just overlap. Node's `Promise.all` is the same idea.
//
// Why it matters: a dashboard endpoint made five independent backend calls in a row, and its
// latency was the sum of theirs. With `join!` it became the slowest one.
//
// Production caveat: `join!` waits for every branch, even after one has failed. When the calls
// return `Result`, `tokio::try_join!` answers at the first `Err` and drops the other calls
// (tokio's `try_join!` docs), so a failed backend does not cost the slow one's latency.
//
// What to do: in `dashboard`, run the two calls with `tokio::join!` instead of one after the
// other. Run `backlings hint` if you are stuck.

use std::future::Future;

/// The two backends a dashboard reads. Production code calls HTTP services; the tests plug in
/// fakes with known latencies.
pub trait Backends {
    fn profile(&self, user: u32) -> impl Future<Output = String>;
    fn orders(&self, user: u32) -> impl Future<Output = Vec<u32>>;
}

/// The profile and the orders of `user`.
pub async fn dashboard(api: &impl Backends, user: u32) -> (String, Vec<u32>) {
    // TODO: these two calls do not depend on each other, but the second starts only when the
    // first has finished. Run them together with `tokio::join!`.
    let profile = api.profile(user).await;
    let orders = api.orders(user).await;
    (profile, orders)
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;
    use tokio::time::{Instant, sleep, timeout};

    /// A fake pair of backends: fixed latencies, and a log of when each call ran (in ms).
    struct Fake {
        profile_ms: u64,
        orders_ms: u64,
        t0: Instant,
        calls: Mutex<Vec<(&'static str, u64, u64)>>,
    }

    impl Fake {
        fn new(profile_ms: u64, orders_ms: u64) -> Self {
            let (t0, calls) = (Instant::now(), Mutex::new(Vec::new()));
            Fake {
                profile_ms,
                orders_ms,
                t0,
                calls,
            }
        }
        async fn call(&self, name: &'static str, ms: u64) {
            let start = self.t0.elapsed().as_millis() as u64;
            sleep(Duration::from_millis(ms)).await;
            let end = self.t0.elapsed().as_millis() as u64;
            self.calls.lock().unwrap().push((name, start, end));
        }
    }

    impl Backends for Fake {
        async fn profile(&self, user: u32) -> String {
            self.call("profile", self.profile_ms).await;
            format!("user {user} ({} ms)", self.profile_ms)
        }
        async fn orders(&self, user: u32) -> Vec<u32> {
            self.call("orders", self.orders_ms).await;
            vec![user * 1000 + self.orders_ms as u32, user]
        }
    }

    // The default #[tokio::test] runtime has one thread: no parallelism is possible here.
    #[tokio::test(start_paused = true)]
    async fn both_calls_overlap_in_time() {
        for (user, profile_ms, orders_ms) in [(4, 100, 100), (7, 40, 160), (9, 170, 30)] {
            let api = Fake::new(profile_ms, orders_ms);
            let (profile, orders) = timeout(Duration::from_secs(5), dashboard(&api, user))
                .await
                .expect("dashboard never finished");
            assert_eq!(
                (profile, orders),
                (
                    format!("user {user} ({profile_ms} ms)"),
                    vec![user * 1000 + orders_ms as u32, user]
                ),
                "expected what the two backends answered for user {user}"
            );
            let mut calls = api.calls.lock().unwrap().clone();
            calls.sort();
            let slowest = profile_ms.max(orders_ms);
            assert_eq!(
                calls,
                vec![("orders", 0, orders_ms), ("profile", 0, profile_ms)],
                "both calls must start at 0 ms and run side by side (profile {profile_ms} ms, \
                 orders {orders_ms} ms): expected both started at 0"
            );
            assert_eq!(
                api.t0.elapsed(),
                Duration::from_millis(slowest),
                "the waits overlap: expected the slowest call's {slowest} ms, not the sum"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ten_dashboards_at_once_take_no_longer() {
        let api = Fake::new(60, 90);
        let all = futures::future::join_all((0..10).map(|user| dashboard(&api, user))).await;
        assert_eq!(all[9].1, vec![9090, 9], "expected the orders of user 9");
        assert_eq!(
            api.t0.elapsed(),
            Duration::from_millis(90),
            "ten dashboards share the waits too: expected 90 ms"
        );
        assert_eq!(api.calls.lock().unwrap().len(), 20, "expected 20 calls");
    }
}
