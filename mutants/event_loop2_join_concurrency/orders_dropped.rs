// mutant: joins both but returns no orders; both_calls_overlap expects [40, 41]
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
// What to do: in `dashboard`, run the two calls with `tokio::join!` instead of one after the
// other. Run `backlings hint` if you are stuck.

use std::time::Duration;
use tokio::time::sleep;

pub async fn fetch_profile(user: u32) -> String {
    sleep(Duration::from_millis(100)).await;
    format!("user {user}")
}

pub async fn fetch_orders(user: u32) -> Vec<u32> {
    sleep(Duration::from_millis(100)).await;
    vec![user * 10, user * 10 + 1]
}

/// The profile and the orders of `user`.
pub async fn dashboard(user: u32) -> (String, Vec<u32>) {
    // Both futures are polled together: their waits overlap.
    let (profile, _orders) = tokio::join!(fetch_profile(user), fetch_orders(user));
    (profile, Vec::new())
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    // The default #[tokio::test] runtime has one thread: no parallelism is possible here.
    #[tokio::test(start_paused = true)]
    async fn both_calls_overlap() {
        let start = Instant::now();
        let (profile, orders) = dashboard(4).await;
        assert_eq!(profile, "user 4", "expected the profile of user 4");
        assert_eq!(orders, vec![40, 41], "expected the orders of user 4");
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(100),
            "two 100 ms calls at once: expected exactly 100 ms"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn ten_dashboards_at_once_take_no_longer() {
        let start = Instant::now();
        let all = futures::future::join_all((0..10).map(dashboard)).await;
        assert_eq!(all[9].1, vec![90, 91], "expected the orders of user 9");
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(100),
            "expected exactly 100 ms"
        );
    }
}
