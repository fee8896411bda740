// pubsub1_broadcast_lagged: a slow subscriber loses messages, learns how many, and carries on
//
// Pub/sub fans one stream of messages out to every subscriber. `tokio::sync::broadcast` does
// it in process: every `Receiver` sees every message sent after it subscribed, out of one
// ring buffer of `capacity` slots (rounded up to a power of two: `channel(3)` keeps 4). The
// sender never waits for a slow receiver: when the ring is full, the oldest message is
// overwritten. The receiver that had not read it then gets `Err(RecvError::Lagged(n))`: `n`
// messages are gone, and its next `recv` returns the oldest one still kept. Lagged is news,
// not the end: only `RecvError::Closed` (every sender dropped, the buffer read) ends the
// stream. Delivery is at most once: a message reaches a subscriber once or not at all.
//
// Why it matters: a live dashboard treated every `recv` error as "the channel is gone". On
// the first traffic spike each open dashboard lagged once and silently stopped updating, and
// nothing in the logs said why.
//
// Production caveat: Redis Pub/Sub is at most once too, and harsher: by default a subscriber
// more than 32 MB behind (or 8 MB behind for 60 s) is disconnected
// (`client-output-buffer-limit pubsub 32mb 8mb 60`), and what was published while it was away
// is never replayed. When every message must arrive, use a log with acknowledgements (Redis
// Streams with consumer groups, Kafka), not pub/sub.
//
// What to do: make `run_subscriber` count what it missed on `Lagged` and keep receiving, and
// return only when the channel is closed.
// Run `backlings hint` if you are stuck.

use std::future::Future;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

/// What one subscriber saw.
#[derive(Debug, Default, PartialEq)]
pub struct Report {
    /// Every message handled, in the order received.
    pub handled: Vec<u64>,
    /// How many messages were overwritten before this subscriber read them.
    pub missed: u64,
}

/// Hands every message to `handle`, one at a time, until the channel is closed.
pub async fn run_subscriber<H, F>(mut rx: Receiver<u64>, mut handle: H) -> Report
where
    H: FnMut(u64) -> F,
    F: Future<Output = ()>,
{
    let mut report = Report::default();
    loop {
        match rx.recv().await {
            Ok(msg) => {
                handle(msg).await;
                report.handled.push(msg);
            }
            // `n` messages were overwritten: count them; the next recv gets the oldest kept.
            Err(RecvError::Lagged(n)) => report.missed += n,
            Err(RecvError::Closed) => return report,
        }
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::broadcast;
    use tokio::task::JoinHandle;
    use tokio::time::sleep;

    /// A subscriber task whose handler takes `handle_ms` per message (on the paused clock).
    fn spawn_subscriber(rx: Receiver<u64>, handle_ms: u64) -> JoinHandle<Report> {
        tokio::spawn(run_subscriber(rx, move |_| async move {
            if handle_ms > 0 {
                sleep(Duration::from_millis(handle_ms)).await;
            }
        }))
    }

    /// The `m`-th message sent: scrambled, not a sequence, so nothing can be read from gaps
    /// between payloads (761 and 1000 are coprime: the first 1000 are all different).
    fn payload(m: u64) -> u64 {
        m * 761 % 1000
    }

    /// Waits for a subscriber whose channel is closed. Uses yields, not time: a loop that
    /// never ends must fail here, not hang.
    async fn finished(handle: JoinHandle<Report>, who: &str) -> Report {
        for _ in 0..100 {
            if handle.is_finished() {
                break;
            }
            tokio::task::yield_now().await;
        }
        if !handle.is_finished() {
            handle.abort();
            panic!(
                "{who}: every sender is dropped and the buffer is read, yet the subscriber \
                 still runs: `Err(RecvError::Closed)` must end the loop"
            );
        }
        match handle.await {
            Ok(report) => report,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lagging_subscriber_counts_what_it_missed_and_reads_the_rest() {
        for capacity in [4u64, 8] {
            let sent = 3 * capacity + 2;
            let (tx, rx) = broadcast::channel(capacity as usize);
            let sub = spawn_subscriber(rx, 0);
            // All sent before the subscriber runs: only the last `capacity` are still kept.
            for m in 0..sent {
                tx.send(payload(m)).unwrap();
            }
            drop(tx);
            let report = finished(sub, "the lagging subscriber").await;
            let kept: Vec<u64> = (sent - capacity..sent).map(payload).collect();
            assert_eq!(
                report,
                Report {
                    handled: kept.clone(),
                    missed: sent - capacity,
                },
                "capacity {capacity}, {sent} sent at once: expected the n of Lagged({}) counted \
                 as missed (the payloads are not a sequence), then the {capacity} messages \
                 still kept, {kept:?}",
                sent - capacity
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_fast_subscriber_gets_all_and_the_slow_one_keeps_up_with_the_latest() {
        for (capacity, slow_ms) in [(4usize, 35u64), (8, 95)] {
            let (tx, fast_rx) = broadcast::channel(capacity);
            let fast = spawn_subscriber(fast_rx, 0);
            let slow = spawn_subscriber(tx.subscribe(), slow_ms);
            // 60 messages, one every 10 ms: the slow one falls behind again and again.
            let sent: Vec<u64> = (0..60).map(payload).collect();
            for &m in &sent {
                tx.send(m).unwrap();
                sleep(Duration::from_millis(10)).await;
            }
            sleep(Duration::from_secs(60)).await;
            drop(tx);
            let fast = finished(fast, "the fast subscriber").await;
            let slow = finished(slow, "the slow subscriber").await;
            assert_eq!(
                fast,
                Report {
                    handled: sent.clone(),
                    missed: 0
                },
                "capacity {capacity}: the fast subscriber keeps up and gets all 60, in order"
            );
            // Where each handled message was in the sent order.
            let at: Vec<usize> = slow
                .handled
                .iter()
                .map(|h| sent.iter().position(|m| m == h).unwrap_or(usize::MAX))
                .collect();
            assert!(
                slow.missed > 0 && at.windows(2).all(|w| w[0] < w[1]),
                "capacity {capacity}, {slow_ms} ms per message: the slow one misses some and \
                 handles the rest in order; got {slow:?}"
            );
            assert_eq!(
                (slow.handled.last(), slow.handled.len() as u64 + slow.missed),
                (sent.last(), 60),
                "capacity {capacity}, {slow_ms} ms per message: the slow subscriber lags many \
                 times and carries on after each: it handles the last message ({}), and what it \
                 handled plus what it counted as missed is all 60; got {slow:?}",
                sent[59]
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn closed_ends_the_loop_after_the_buffered_messages() {
        for capacity in [4usize, 8] {
            let (tx, rx) = broadcast::channel(capacity);
            let sub = spawn_subscriber(rx, 0);
            for m in 0..capacity as u64 - 1 {
                tx.send(m).unwrap();
            }
            drop(tx);
            assert_eq!(
                finished(sub, "a subscriber with messages left").await,
                Report {
                    handled: (0..capacity as u64 - 1).collect(),
                    missed: 0
                },
                "capacity {capacity}: the messages sent before the close are still delivered, \
                 then Closed ends the loop"
            );

            let (tx, rx) = broadcast::channel::<u64>(capacity);
            let idle = spawn_subscriber(rx, 0);
            tokio::task::yield_now().await;
            drop(tx);
            assert_eq!(
                finished(idle, "an idle subscriber").await,
                Report::default(),
                "a subscriber waiting on an empty channel returns when the last sender goes"
            );
        }
    }
}
