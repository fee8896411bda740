// mutant: wakes on every poll, even the Ready one; the test expects exactly 1 wake
// event_loop1_poll_by_hand: what `.await` really does
//
// A future is a state machine with one method, `poll`. The executor (tokio's event loop)
// calls `poll`; the future answers `Ready(value)` or `Pending`. A future that answers
// `Pending` promises to call the waker in `cx` when it can make progress, or the executor
// never polls it again. Node's event loop works the same way, with callbacks instead of wakers.
//
// Why it matters: every hung async service with idle CPUs has a future that returned
// `Pending` and never arranged a wake-up: a custom future, a hand-written stream, a lock
// written by hand. Knowing the contract is how you spot it.
//
// What to do: implement `poll` for `YieldOnce`: the first poll wakes the task and returns
// `Pending`, the second returns `Ready(())`. Run `backlings hint` if you are stuck.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Gives the executor a chance to run other tasks once, then completes.
#[derive(Default)]
pub struct YieldOnce {
    yielded: bool,
    polls: usize,
}

impl YieldOnce {
    pub fn polls(&self) -> usize {
        self.polls
    }
}

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls += 1;
        cx.waker().wake_by_ref();
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        // `Pending` is a promise: wake the task so the executor polls it again.
        Poll::Pending
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use futures::task::{ArcWake, waker};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    struct CountingWaker(AtomicUsize);

    impl ArcWake for CountingWaker {
        fn wake_by_ref(arc_self: &Arc<Self>) {
            arc_self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn pending_once_with_a_wake_then_ready() {
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = waker(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = YieldOnce::default();

        let first = Pin::new(&mut fut).poll(&mut cx);
        assert_eq!(first, Poll::Pending, "the first poll must return Pending");
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            1,
            "Pending must come with exactly 1 wake"
        );

        let second = Pin::new(&mut fut).poll(&mut cx);
        assert_eq!(
            second,
            Poll::Ready(()),
            "the second poll must return Ready(())"
        );
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            1,
            "Ready needs no wake: expected still 1"
        );
        assert_eq!(fut.polls(), 2, "expected exactly 2 polls");
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_can_await_it() {
        let done = tokio::time::timeout(Duration::from_secs(5), YieldOnce::default()).await;
        assert!(
            done.is_ok(),
            "awaiting YieldOnce never finished: a Pending without a wake is never polled again"
        );
    }
}
