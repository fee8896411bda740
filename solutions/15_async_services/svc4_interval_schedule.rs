// svc4_interval_schedule: what a scheduled task does after it ran late
//
// Celery beat and cron start a job "every minute". In tokio the loop is an `Interval`: each
// `tick().await` waits for the next deadline on a grid that starts at the first tick. When a
// run overruns (the first run takes 150 s of a 60 s period), deadlines are missed, and
// `MissedTickBehavior` decides what comes next:
// - `Burst` (the default) fires every missed tick as soon as it can: the late one at 150 s, and
//   the one due at 120 s right after it, then the grid: 0, 150, 150, 180, 240. Two runs back
//   to back for one late job.
// - `Delay` fires the late tick, then restarts the period from it: 0, 150, 210, 270, 330. The
//   job has moved for good.
// - `Skip` fires the late tick, drops the other missed ones and goes back to the original grid
//   (multiples of the period from the first tick): 0, 150, 180, 240, 300.
//
// Why it matters: a report job fell behind during a slow night and, with the default
// behaviour, ran twice in a row when it caught up; both runs mailed the report.
//
// Production caveat: an in-process interval runs in every replica: three pods means the
// nightly job runs three times, unless one scheduler is elected or each run takes a lease
// (a database row). And a tick that falls during a restart is simply lost.
//
// What to do: make the loop in `every` keep the original grid after an overrun.
// Run `backlings hint` if you are stuck.

use std::future::Future;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, interval};

/// Runs `job` now and then every `period`, one run at a time, until the handle is aborted.
pub fn every<F, Fut>(period: Duration, mut job: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut ticks = interval(period);
        // After an overrun, wait for the next point of the grid; never catch up.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            ticks.tick().await;
            job().await;
        }
    })
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use tokio::time::{Instant, sleep};

    /// Schedules a job every `period_s` whose runs take `durations_s` (then 0 s), watches for
    /// `watch_s` seconds and returns the second at which each run started.
    async fn starts(period_s: u64, durations_s: &[u64], watch_s: u64) -> Vec<u64> {
        let epoch = Instant::now();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(
            durations_s.iter().copied().collect::<VecDeque<_>>(),
        ));
        let (seen2, script2) = (seen.clone(), script.clone());
        let handle = every(Duration::from_secs(period_s), move || {
            let (seen, script) = (seen2.clone(), script2.clone());
            async move {
                let started = epoch.elapsed();
                seen.lock().unwrap().push(started.as_millis() as u64);
                let took = script.lock().unwrap().pop_front().unwrap_or(0);
                sleep(Duration::from_secs(took)).await;
            }
        });
        sleep(Duration::from_secs(watch_s)).await;
        handle.abort();
        let seen = seen.lock().unwrap().clone();
        seen.iter()
            .map(|ms| {
                assert_eq!(
                    ms % 1000,
                    0,
                    "runs start on whole seconds here: got {ms} ms"
                );
                ms / 1000
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn after_an_overrun_the_job_goes_back_to_its_grid() {
        let got = starts(60, &[150], 301).await;
        assert_eq!(
            got,
            vec![0, 150, 180, 240, 300],
            "every 60 s, first run 150 s long: expected starts 0, 150, 180, 240, 300 \
             (Burst gives 0, 150, 150, ...; Delay gives 0, 150, 210, ...)"
        );
        let got = starts(10, &[25], 51).await;
        assert_eq!(
            got,
            vec![0, 25, 30, 40, 50],
            "every 10 s, first run 25 s long: expected starts 0, 25, 30, 40, 50"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_overrun_also_keeps_the_grid() {
        // Runs: 0 (5 s), 60 (100 s: misses 120), 160, then 180, 240.
        let got = starts(60, &[5, 100], 241).await;
        assert_eq!(
            got,
            vec![0, 60, 160, 180, 240],
            "every 60 s, the second run 100 s long: expected starts 0, 60, 160, 180, 240"
        );
        // Runs: 0, 7 (20 s: misses 14 and 21), 27, then 28, 35.
        let got = starts(7, &[0, 20], 36).await;
        assert_eq!(
            got,
            vec![0, 7, 27, 28, 35],
            "every 7 s, the second run 20 s long: expected starts 0, 7, 27, 28, 35"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_that_fits_runs_exactly_on_the_grid_one_at_a_time() {
        for (period, took) in [(60, 59), (15, 3)] {
            let got = starts(period, &[took; 6], period * 5 + 1).await;
            let grid: Vec<u64> = (0..=5).map(|k| k * period).collect();
            assert_eq!(
                got, grid,
                "every {period} s, each run {took} s long: expected starts {grid:?}"
            );
        }
    }
}
