// mutant: calls tokio::task::yield_now() without .await: the future is created and dropped, nothing yields; the ping test catches it
// event_loop3_cooperative_yield: long work must let others run
//
// Tokio's scheduling is cooperative: a task runs until it reaches an `.await` that is not
// ready, and only then can another task on the same thread run. A CPU loop with no `.await`
// holds the thread for its whole duration, and every other task waits: health checks time out,
// timers fire late. Node has the same rule: a long synchronous loop blocks the event loop.
//
// Why it matters: a service computed a report inside a request handler. While it ran, the
// same worker thread could not answer the load balancer's health check, and the instance was
// taken out of rotation every night.
//
// What to do: in `crunch`, give the other tasks a turn every 1 000 iterations with
// `tokio::task::yield_now().await`. The checksum must not change.
// Run `backlings hint` if you are stuck.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// CPU-bound work: a checksum over `0..n`. `done` tells others how far it got.
pub async fn crunch(n: u64, done: Arc<AtomicU64>) -> u64 {
    let mut sum = 0u64;
    for i in 0..n {
        sum = sum.wrapping_mul(31).wrapping_add(i);
        done.store(i + 1, Ordering::Relaxed);
        if i % 1000 == 999 {
            // Back to the scheduler: tasks that are ready run before this loop goes on.
            let _ = tokio::task::yield_now();
        }
    }
    sum
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    fn reference(n: u64) -> u64 {
        (0..n).fold(0u64, |s, i| s.wrapping_mul(31).wrapping_add(i))
    }

    // One thread: `crunch` and the ping task must share it.
    #[tokio::test(flavor = "current_thread")]
    async fn the_ping_task_runs_early_in_the_crunch() {
        let done = Arc::new(AtomicU64::new(0));
        let crunch = tokio::spawn(crunch(100_000, done.clone()));
        let ping = tokio::spawn(async move { done.load(Ordering::Relaxed) });
        let sum = crunch.await.expect("crunch must not panic");
        let seen = ping.await.expect("ping must not panic");
        assert!(
            seen <= 1000,
            "the ping task ran when crunch had done {seen} of 100000 iterations: \
             expected it to get a turn within the first 1000"
        );
        assert_eq!(sum, reference(100_000), "the checksum must not change");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_short_crunch_is_still_correct() {
        let done = Arc::new(AtomicU64::new(0));
        assert_eq!(
            crunch(10, done.clone()).await,
            reference(10),
            "expected the same checksum"
        );
        assert_eq!(
            done.load(Ordering::Relaxed),
            10,
            "expected 10 iterations done"
        );
    }
}
