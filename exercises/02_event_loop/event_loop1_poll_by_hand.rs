// event_loop1_poll_by_hand: what `.await` really does
//
// A future is a state machine with one method, `poll`. The executor (tokio's event loop)
// calls `poll`; the future answers `Ready(value)` or `Pending`. A future that answers
// `Pending` promises that its waker (in `cx`) will be called when it can make progress, or the
// executor never polls it again. Node's event loop works the same way, with callbacks instead
// of wakers.
//
// Why it matters: every hung async service with idle CPUs has a future that returned
// `Pending` and never arranged a wake-up: a custom future, a hand-written stream, a lock
// written by hand. Knowing the contract is how you spot it.
//
// Production caveat: a future that keeps its waker to call it later (a timer, a hand-written
// lock) must keep the one from the *latest* poll: std's `Future::poll` docs say only that one
// should be woken, and the task may have moved to another thread since an earlier poll.
//
// What to do: implement `poll` for `YieldOnce`: the first poll wakes the task and returns
// `Pending`, the second returns `Ready(())`. Keep that state in the future itself, one per
// `.await`. Run `backlings hint` if you are stuck.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Gives the executor a chance to run other tasks once, then completes.
#[derive(Default)]
pub struct YieldOnce {
    yielded: bool,
}

impl Future for YieldOnce {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // TODO: the first poll wakes the task through `cx` and returns `Pending`; the second
        // returns `Ready(())`. `self.yielded` remembers which poll this is.
        Poll::Ready(())
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use futures::task::{ArcWake, waker};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    struct CountingWaker(AtomicUsize);

    impl ArcWake for CountingWaker {
        fn wake_by_ref(arc_self: &Arc<Self>) {
            arc_self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<CountingWaker>, std::task::Waker) {
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = waker(counter.clone());
        (counter, waker)
    }

    /// Polls `fut` by hand with a fresh counting waker; returns the answer and the wakes.
    fn poll_once(fut: &mut YieldOnce) -> (Poll<()>, usize) {
        let (counter, waker) = counting();
        let answer = Pin::new(fut).poll(&mut Context::from_waker(&waker));
        (answer, counter.0.load(Ordering::SeqCst))
    }

    #[test]
    fn pending_once_with_a_wake_then_ready() {
        // Two futures, one after the other: each has its own state.
        for round in 1..=2 {
            let mut fut = YieldOnce::default();
            let (first, wakes) = poll_once(&mut fut);
            assert_eq!(
                (first, wakes),
                (Poll::Pending, 1),
                "future #{round}, first poll: expected Pending with exactly 1 wake of this poll's waker"
            );
            let (second, wakes) = poll_once(&mut fut);
            assert_eq!(
                (second, wakes),
                (Poll::Ready(()), 0),
                "future #{round}, second poll (new waker): expected Ready(()) and no wake"
            );
        }
    }

    #[test]
    fn each_future_has_its_own_state() {
        // Both created first, then polled in turns: a shared flag would make `b` skip its turn.
        let (mut a, mut b) = (YieldOnce::default(), YieldOnce::default());
        assert_eq!(
            poll_once(&mut a).0,
            Poll::Pending,
            "a, first poll: expected Pending"
        );
        assert_eq!(
            poll_once(&mut b).0,
            Poll::Pending,
            "b, first poll: expected Pending"
        );
        assert_eq!(
            poll_once(&mut b).0,
            Poll::Ready(()),
            "b, second poll: expected Ready"
        );
        assert_eq!(
            poll_once(&mut a).0,
            Poll::Ready(()),
            "a, second poll: expected Ready"
        );
    }

    /// Wraps a future and fails once it was polled more than `limit` times, so a future that
    /// wakes itself forever fails fast instead of spinning.
    struct AtMost<F>(F, usize);

    impl<F: Future + Unpin> Future for AtMost<F> {
        type Output = F::Output;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            assert!(
                self.1 > 0,
                "polled too often: expected Ready on the second poll"
            );
            self.1 -= 1;
            Pin::new(&mut self.0).poll(cx)
        }
    }

    /// Two tasks on one thread, each awaiting `YieldOnce` between its steps.
    async fn interleave(steps: usize) -> Vec<String> {
        let log = Arc::new(Mutex::new(Vec::new()));
        let task = |name: &'static str| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..steps {
                    log.lock().unwrap().push(format!("{name}{i}"));
                    AtMost(YieldOnce::default(), 2).await;
                }
            })
        };
        let (a, b) = (task("a"), task("b"));
        let joined = tokio::time::timeout(Duration::from_secs(5), async { (a.await, b.await) })
            .await
            .expect("the tasks never finished: a Pending without a wake is never polled again");
        if let (Err(e), _) | (_, Err(e)) = joined {
            std::panic::resume_unwind(e.into_panic());
        }
        log.lock().unwrap().clone()
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn tasks_take_turns_at_each_yield() {
        for steps in [3, 5] {
            let expected: Vec<String> = (0..steps)
                .flat_map(|i| [format!("a{i}"), format!("b{i}")])
                .collect();
            assert_eq!(
                interleave(steps).await,
                expected,
                "each YieldOnce gives the other task one turn: expected strict alternation"
            );
        }
    }
}
