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
// Production caveat: yielding is a stopgap. The work still runs on the async worker thread
// and still delays everything else on it by one slice each turn. CPU-heavy work belongs on
// `tokio::task::spawn_blocking` or a pool such as rayon (tokio's `spawn_blocking` docs).
//
// What to do: in `crunch`, give the other tasks a turn every 1 000 iterations with
// `tokio::task::yield_now().await`. The checksum must not change.
// Run `backlings hint` if you are stuck.

/// CPU-bound work: folds `step` over `0..n`, one call per item (`sum = step(sum, i)`).
pub async fn crunch(n: u64, mut step: impl FnMut(u64, u64) -> u64) -> u64 {
    let mut sum = 0;
    for i in 0..n {
        sum = step(sum, i);
        if i % 1000 == 999 {
            // Back to the scheduler: tasks that are ready run before this loop goes on.
            tokio::task::yield_now().await;
        }
    }
    sum
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::task::{Context, Poll};
    use std::time::Duration;

    fn hash(sum: u64, i: u64) -> u64 {
        sum.wrapping_mul(31).wrapping_add(i)
    }

    fn reference(n: u64) -> u64 {
        (0..n).fold(0, hash)
    }

    /// Puts the ping task straight back in the run queue (tokio's `yield_now` instead defers
    /// the wake-up, so two yielding tasks could run two turns in a row).
    struct Requeue(bool);

    impl std::future::Future for Requeue {
        type Output = ();
        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    /// Runs `crunch(n)` next to a ping task on one thread. Returns the checksum and the trace
    /// of the ping task's turns: how many steps `crunch` had done at each of them.
    async fn crunch_with_ping(n: u64) -> (u64, Vec<u64>) {
        let steps = Arc::new(AtomicU64::new(0));
        let finished = Arc::new(AtomicBool::new(false));
        let (s, f) = (steps.clone(), finished.clone());
        let work = tokio::spawn(async move {
            let sum = crunch(n, |sum, i| {
                s.fetch_add(1, Ordering::Relaxed);
                hash(sum, i)
            })
            .await;
            f.store(true, Ordering::SeqCst);
            sum
        });
        let (s, f) = (steps.clone(), finished.clone());
        let ping = tokio::spawn(async move {
            let mut turns = Vec::new();
            while !f.load(Ordering::SeqCst) {
                turns.push(s.load(Ordering::Relaxed));
                Requeue(false).await;
            }
            turns
        });
        let run = tokio::time::timeout(Duration::from_secs(10), async {
            (work.await.expect("crunch panicked"), ping.await.unwrap())
        });
        let (sum, turns) = run.await.expect("crunch never finished");
        assert_eq!(
            steps.load(Ordering::Relaxed),
            n,
            "expected one step per item"
        );
        (sum, turns)
    }

    // One thread: `crunch` and the ping task must share it.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn the_ping_task_gets_a_turn_every_1000_steps_throughout() {
        for n in [100_000, 23_456] {
            let (sum, turns) = crunch_with_ping(n).await;
            assert_eq!(
                sum,
                reference(n),
                "the checksum over 0..{n} must not change"
            );
            // The gaps between the ping task's turns, from the start to the end of the run.
            let mut at = vec![0];
            at.extend(turns.iter().copied());
            at.push(n);
            let worst = at.windows(2).map(|w| w[1] - w[0]).max().unwrap();
            let (from, to) = at
                .windows(2)
                .find(|w| w[1] - w[0] == worst)
                .map(|w| (w[0], w[1]))
                .unwrap();
            assert!(
                worst <= 1000,
                "crunch({n}) ran from step {from} to step {to} without letting the ping task \
                 run: expected a turn at least every 1000 steps for the whole run \
                 (ping turns: {})",
                turns.len()
            );
            let mut slices = turns.clone();
            slices.dedup();
            assert!(
                slices.len() as u64 <= n / 500 + 1,
                "crunch({n}) paused {} times: expected about one pause per 1000 steps, as \
                 each yield is a trip through the scheduler",
                slices.len()
            );
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn short_crunches_are_still_correct() {
        for n in [0, 10, 1000, 1001] {
            let mut calls = 0;
            let sum = crunch(n, |sum, i| {
                calls += 1;
                hash(sum, i)
            })
            .await;
            assert_eq!(sum, reference(n), "expected the checksum over 0..{n}");
            assert_eq!(calls, n, "expected exactly {n} steps");
        }
    }
}
