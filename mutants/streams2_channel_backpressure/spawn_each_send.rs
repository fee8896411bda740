// mutant: spawns a task per send so the producer never waits; the_producer_never_runs_more_than_capacity_ahead catches it
// streams2_channel_backpressure: a bounded channel pushes back
//
// A bounded `mpsc` channel holds at most `CAPACITY` messages. `send(x).await` waits while it is
// full: the producer slows down to the consumer's pace. That wait is backpressure. `try_send`
// never waits; when the channel is full it returns an error, and ignoring that error silently
// drops the message.
//
// Why it matters: an event forwarder used `try_send` and ignored its result. Under load the
// channel filled and it dropped a third of the audit events, with no error anywhere. With
// `send().await`, the slow consumer would have slowed the producer instead.
//
// What to do: in `produce`, replace the `try_send` (whose error is ignored) with
// `send(x).await`. Run `backlings hint` if you are stuck.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

pub const CAPACITY: usize = 4;

/// Produces `0..n` (in real life: reads rows, parses files) and sends them on. `produced`
/// counts every item made so far, sent or not.
pub async fn produce(tx: mpsc::Sender<u32>, n: u32, produced: Arc<AtomicUsize>) {
    for x in 0..n {
        produced.fetch_add(1, Ordering::SeqCst);
        // `send` waits while the channel is full: the producer slows to the consumer's pace.
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(x).await;
        });
    }
}

/// A consumer that takes 10 ms per item.
/// Returns the items and how far ahead of it the producer ever got.
pub async fn consume(mut rx: mpsc::Receiver<u32>, produced: Arc<AtomicUsize>) -> (Vec<u32>, usize) {
    let mut got = Vec::new();
    let mut max_ahead = 0;
    while let Some(x) = rx.recv().await {
        got.push(x);
        max_ahead = max_ahead.max(produced.load(Ordering::SeqCst).saturating_sub(got.len()));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (got, max_ahead)
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::timeout;

    async fn pipeline(n: u32) -> (Vec<u32>, usize) {
        let (tx, rx) = mpsc::channel(CAPACITY);
        let produced = Arc::new(AtomicUsize::new(0));
        let producer = tokio::spawn(produce(tx, n, produced.clone()));
        let result = timeout(Duration::from_secs(60), consume(rx, produced))
            .await
            .expect("the consumer must finish once the producer is done");
        producer.await.expect("the producer must not panic");
        result
    }

    #[tokio::test(start_paused = true)]
    async fn every_item_arrives_in_order() {
        let (got, _) = pipeline(100).await;
        assert_eq!(got.len(), 100, "expected all 100 items, got {}", got.len());
        assert_eq!(
            got,
            (0..100).collect::<Vec<_>>(),
            "expected 0..100 in order"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_producer_never_runs_more_than_capacity_ahead() {
        let (got, max_ahead) = pipeline(100).await;
        assert_eq!(got.len(), 100, "expected all 100 items");
        // CAPACITY items wait in the channel, and one more in the producer's hand.
        assert!(
            max_ahead <= CAPACITY + 1,
            "the producer got {max_ahead} items ahead of the consumer: expected at most {}",
            CAPACITY + 1
        );
    }
}
