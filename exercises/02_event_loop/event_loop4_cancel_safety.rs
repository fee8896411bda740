// event_loop4_cancel_safety: select! drops the loser
//
// `tokio::select!` waits for the first of several futures and drops the others. In a loop,
// `select! { d = start() => .., _ = ticker.tick() => .. }` creates a brand-new download on
// every iteration, and every tick throws the old one away with its progress: the download
// starts over forever. Create the future once, before the loop, pin it, and select on
// `&mut fut`: then a tick only pauses it.
//
// Why it matters: a worker selected between "fetch the next batch" and a heartbeat ticker.
// Each heartbeat cancelled the fetch half-way, so under load no batch ever finished, and the
// queue grew all night while the worker looked healthy.
//
// Production caveat: even a pinned future is dropped when the loop exits early, and some
// operations lose data when dropped mid-way. Tokio's `select!` docs list which are cancel
// safe (`mpsc::Receiver::recv`, `AsyncReadExt::read`) and which are not (`read_exact`,
// `read_to_end`, `write_all`); only the safe ones belong directly in a `select!` branch.
//
// What to do: in `download_with_heartbeat`, start the download once, before the loop,
// `tokio::pin!` it, and select on `&mut download`. Run `backlings hint` if you are stuck.

use std::future::Future;
use std::time::Duration;
use tokio::time::interval;

pub const TICK: Duration = Duration::from_millis(10);

/// Runs a download while a heartbeat beats every `TICK`, and returns the downloaded data.
/// `start` begins a download (from scratch); `beat` tells the supervisor this worker is alive.
pub async fn download_with_heartbeat<F>(
    mut start: impl FnMut() -> F,
    mut beat: impl FnMut(),
) -> Vec<u8>
where
    F: Future<Output = Vec<u8>>,
{
    let mut ticker = interval(TICK);
    loop {
        // TODO: this starts a new download on every iteration, and a tick drops the old one.
        // Start it once before the loop, `tokio::pin!` it, and select on `&mut download`.
        tokio::select! {
            biased;
            data = start() => return data,
            _ = ticker.tick() => beat(),
        }
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::{Instant, sleep, timeout};

    /// Runs a download of `steps` steps of `step_ms` each. Returns the data, how many times the
    /// download was started, the times of the heartbeats (ms) and the total time (ms).
    async fn run(steps: u8, step_ms: u64) -> (Option<Vec<u8>>, usize, Vec<u64>, u64) {
        let t0 = Instant::now();
        let mut starts = 0;
        let mut beats = Vec::new();
        let download = download_with_heartbeat(
            || {
                starts += 1;
                async move {
                    let mut data = Vec::new();
                    for step in 1..=steps {
                        sleep(Duration::from_millis(step_ms)).await;
                        data.push(step);
                    }
                    data
                }
            },
            || beats.push(t0.elapsed().as_millis() as u64),
        );
        let data = timeout(Duration::from_secs(5), download).await.ok();
        (data, starts, beats, t0.elapsed().as_millis() as u64)
    }

    #[tokio::test(start_paused = true)]
    async fn the_download_is_started_once_and_finishes() {
        for (steps, step_ms) in [(3, 100), (4, 35)] {
            let total = steps as u64 * step_ms;
            let (data, starts, _, took) = run(steps, step_ms).await;
            assert_eq!(
                starts, 1,
                "the download must start exactly once: a tick must not drop it and start over"
            );
            assert_eq!(
                data,
                Some((1..=steps).collect()),
                "expected all {steps} steps of the download"
            );
            assert_eq!(
                took, total,
                "{steps} steps of {step_ms} ms: expected {total} ms"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_heartbeat_beats_every_tick_while_downloading() {
        for (steps, step_ms) in [(3, 100), (4, 35)] {
            let total = steps as u64 * step_ms;
            let (data, _, beats, _) = run(steps, step_ms).await;
            assert!(data.is_some(), "the {total} ms download never finished");
            let spread = beats.first().is_some_and(|&b| b <= 10)
                && beats.last().is_some_and(|&b| b + 10 >= total && b <= total)
                && beats.windows(2).all(|w| w[1] - w[0] == 10);
            assert!(
                spread,
                "expected a beat every 10 ms from the start (0 ms) to the end ({total} ms) of \
                 the download, got beats at {beats:?} ms"
            );
        }
    }
}
