// event_loop4_cancel_safety: select! drops the loser
//
// `tokio::select!` waits for the first of several futures and drops the others. In a loop,
// `select! { d = download() => .., _ = ticker.tick() => .. }` creates a brand-new `download()`
// on every iteration, and every tick throws the old one away with its progress: the download
// starts over forever. Create the future once, before the loop, pin it, and select on
// `&mut fut`: then a tick only pauses it.
//
// Why it matters: a worker selected between "fetch the next batch" and a heartbeat ticker.
// Each heartbeat cancelled the fetch half-way, so under load no batch ever finished, and the
// queue grew all night while the worker looked healthy.
//
// What to do: in `download_with_heartbeat`, create the download future once, `tokio::pin!` it,
// and select on `&mut download`. Run `backlings hint` if you are stuck.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::{interval, sleep};

pub const TICK: Duration = Duration::from_millis(10);

/// A download in three 100 ms steps. `starts` counts how often it was started.
pub async fn download(starts: &AtomicUsize) -> Vec<u8> {
    starts.fetch_add(1, Ordering::SeqCst);
    let mut data = Vec::new();
    for step in 1..=3 {
        sleep(Duration::from_millis(100)).await;
        data.push(step);
    }
    data
}

/// Downloads while a heartbeat ticks every 10 ms; returns the data and the number of ticks.
pub async fn download_with_heartbeat(starts: &AtomicUsize) -> (Vec<u8>, u32) {
    let mut ticker = interval(TICK);
    let mut ticks = 0;
    // One future for the whole loop: a tick pauses it, and it resumes where it was.
    let download = download(starts);
    tokio::pin!(download);
    loop {
        tokio::select! {
            biased;
            data = &mut download => return (data, ticks),
            _ = ticker.tick() => ticks += 1,
        }
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::{Instant, timeout};

    #[tokio::test(start_paused = true)]
    async fn the_download_is_started_once_and_finishes() {
        let starts = AtomicUsize::new(0);
        let start = Instant::now();
        let (data, ticks) = timeout(Duration::from_secs(5), download_with_heartbeat(&starts))
            .await
            .expect("the download never finished: is it restarted on every tick?");
        assert_eq!(data, vec![1, 2, 3], "expected all three steps");
        assert_eq!(
            starts.load(Ordering::SeqCst),
            1,
            "the download must start exactly once"
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(300),
            "expected exactly 300 ms"
        );
        assert_eq!(
            ticks, 30,
            "the heartbeat ticks at 0, 10, .., 290 ms: expected 30 ticks"
        );
    }
}
