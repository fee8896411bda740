// streams2_channel_backpressure: a bounded channel pushes back
//
// A bounded `mpsc` channel holds at most its capacity in messages. `send(x).await` waits while
// it is full: the producer slows down to the consumer's pace, and it is woken only when there
// is room. That wait is backpressure. `try_send` never waits; when the channel is full it
// returns an error, and ignoring that error silently drops the message. When the receiver is
// dropped, `send` returns an error: the producer's cue to stop.
//
// Why it matters: an event forwarder used `try_send` and ignored its result. Under load the
// channel filled and it dropped a third of the audit events, with no error anywhere. With
// `send().await`, the slow consumer would have slowed the producer instead.
//
// Production caveat: a cancelled `send` loses its message. Raced in `tokio::select!` against a
// timeout or a shutdown signal, a `send` whose branch loses drops the message (tokio's docs of
// `Sender::send`, "Cancel safety"). There, wait for room with `reserve().await`, then call
// `permit.send(x)`, which cannot fail.
//
// What to do: in `produce`, replace the `try_send` (whose error is ignored) with a send that
// waits for room, and stop when the consumer is gone. Run `backlings hint` if you are stuck.

use tokio::sync::mpsc;

/// Sends every item of `items` (in real life: rows read from a file or a table) on `tx`, in
/// order. The channel and its consumer belong to the caller.
pub async fn produce(items: impl Iterator<Item = u32>, tx: mpsc::Sender<u32>) {
    for x in items {
        // `send` waits while the channel is full: the producer slows to the consumer's pace.
        if tx.send(x).await.is_err() {
            return; // the consumer is gone: stop reading
        }
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::pin::pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::task::Poll;
    use std::time::Duration;
    use tokio::time::{Instant, sleep, timeout};

    const LIMIT: Duration = Duration::from_secs(600);

    /// The producer, run as its own task on `capacity`'s channel. `pulled` counts the items
    /// taken from the source so far. The task gives up after `max_polls` polls, so that a
    /// producer that spins instead of waiting fails fast; it returns its poll count.
    fn start(
        n: u32,
        capacity: usize,
        max_polls: usize,
    ) -> (
        mpsc::Receiver<u32>,
        Arc<AtomicUsize>,
        tokio::task::JoinHandle<usize>,
    ) {
        let (tx, rx) = mpsc::channel(capacity);
        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = pulled.clone();
        let items = (0..n).inspect(move |_| {
            counter.fetch_add(1, SeqCst);
        });
        let task = tokio::spawn(async move {
            let mut producer = pin!(produce(items, tx));
            let mut polls = 0;
            poll_fn(|cx| {
                polls += 1;
                if polls > max_polls {
                    return Poll::Ready(());
                }
                producer.as_mut().poll(cx)
            })
            .await;
            polls
        });
        (rx, pulled, task)
    }

    async fn join(task: tokio::task::JoinHandle<usize>) -> usize {
        match timeout(LIMIT, task)
            .await
            .expect("the producer must finish")
        {
            Ok(polls) => polls,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// A consumer that takes `pace_ms` per item. Returns the items and, before and after each
    /// receive, how many items the producer had pulled beyond those received.
    async fn consume(
        rx: &mut mpsc::Receiver<u32>,
        pulled: &AtomicUsize,
        pace_ms: u64,
        limit: usize,
    ) -> (Vec<u32>, Vec<usize>) {
        let (mut got, mut ahead) = (Vec::new(), Vec::new());
        while got.len() < limit {
            ahead.push(pulled.load(SeqCst) - got.len());
            let Some(x) = timeout(LIMIT, rx.recv()).await.expect("recv hung") else {
                break;
            };
            got.push(x);
            ahead.push(pulled.load(SeqCst) - got.len());
            sleep(Duration::from_millis(pace_ms)).await;
        }
        (got, ahead)
    }

    // (items, channel capacity, consumer's ms per item)
    const CASES: [(u32, usize, u64); 2] = [(100, 4, 10), (300, 16, 3)];

    #[tokio::test(start_paused = true)]
    async fn every_item_arrives_in_order() {
        for (n, capacity, pace) in CASES {
            let t0 = Instant::now();
            let (mut rx, pulled, task) = start(n, capacity, 4 * n as usize + 100);
            let (got, _) = consume(&mut rx, &pulled, pace, usize::MAX).await;
            join(task).await;
            let total = Duration::from_millis(u64::from(n) * pace);
            assert_eq!(
                got,
                (0..n).collect::<Vec<_>>(),
                "capacity {capacity}, a consumer at {pace} ms per item: expected all of 0..{n} \
                 in order, got {} items",
                got.len()
            );
            assert_eq!(
                t0.elapsed(),
                total,
                "the consumer sets the pace: expected exactly {n} x {pace} ms; a producer that \
                 sleeps and retries leaves the consumer waiting"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_producer_stays_at_most_capacity_plus_one_ahead_throughout() {
        for (n, capacity, pace) in CASES {
            let (mut rx, pulled, task) = start(n, capacity, 4 * n as usize + 100);
            let (got, ahead) = consume(&mut rx, &pulled, pace, usize::MAX).await;
            join(task).await;
            assert_eq!(got.len(), n as usize, "expected all {n} items");
            // `capacity` items wait in the channel, and one more in the producer's hand.
            let max = ahead.iter().max().copied().unwrap_or(0);
            assert!(
                max <= capacity + 1,
                "capacity {capacity}: the producer got {max} items ahead of the consumer \
                 (trace {ahead:?}); expected at most {} at every step",
                capacity + 1
            );
            assert!(
                max >= capacity,
                "capacity {capacity}: the producer was never more than {max} items ahead; a \
                 fast producer should fill the channel, expected {capacity} or {}",
                capacity + 1
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_producer_waits_instead_of_spinning() {
        for (n, capacity, pace) in CASES {
            // A producer that waits is woken about once per item the consumer takes.
            let max_polls = 2 * n as usize + 10;
            let (mut rx, pulled, task) = start(n, capacity, max_polls);
            let (got, _) = consume(&mut rx, &pulled, pace, usize::MAX).await;
            let polls = join(task).await;
            assert!(
                polls <= max_polls,
                "the producer was polled more than {max_polls} times for {n} items: it must \
                 sleep in `send().await` until there is room, not retry in a loop"
            );
            assert_eq!(got.len(), n as usize, "expected all {n} items to arrive");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_producer_stops_when_the_consumer_goes_away() {
        for (take, capacity) in [(10, 4), (37, 8)] {
            let (mut rx, pulled, task) = start(100_000, capacity, 10_000);
            let (got, _) = consume(&mut rx, &pulled, 5, take).await;
            drop(rx);
            join(task).await;
            let pulled = pulled.load(SeqCst);
            assert_eq!(got.len(), take, "the consumer took {take} items");
            assert!(
                pulled <= take + capacity + 1,
                "the consumer left after {take} items (capacity {capacity}), but the producer \
                 read {pulled} of 100000: expected at most {} (stop when `send` fails)",
                take + capacity + 1
            );
        }
    }
}
