// shutdown1_cancellation_token: stop workers with a CancellationToken
//
// In async Rust, stopping is cooperative: nothing interrupts a loop from the outside, so a
// worker must listen for the stop request itself. A `CancellationToken` (from tokio-util) is a
// cloneable "please stop" flag that you can `.await`. `child_token()` builds a tree: cancelling
// a parent cancels all its children, but cancelling one child leaves its siblings running.
//
// Why it matters: on every deploy, Kubernetes (or systemd, or PM2 for a Node app) asks the
// service to stop. A worker that never checks the stop flag keeps going until the hard kill
// arrives, and dies half-way through a job.
//
// What to do: in `worker`, add a `select!` branch that breaks out of the loop as soon as
// `token.cancelled()` completes. In `Pool::spawn`, give each worker its own child token.
// Run `backlings hint` if you are stuck.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, interval_at};
use tokio_util::sync::CancellationToken;

/// A worker does one job per tick.
pub const TICK: Duration = Duration::from_millis(100);

/// Does one job per tick until `token` is cancelled, then returns how many jobs it did.
pub async fn worker(token: CancellationToken) -> u64 {
    let mut ticks = interval_at(Instant::now() + TICK, TICK);
    let mut done = 0;
    loop {
        tokio::select! {
            // The stop request is one more event the loop waits for, so it is seen at once,
            // not only at the next tick.
            _ = token.cancelled() => break,
            _ = ticks.tick() => done += 1,
        }
    }
    done
}

/// Waits for a task and re-raises its panic, so that a failing task fails the test.
async fn join(handle: JoinHandle<u64>) -> u64 {
    match handle.await {
        Ok(done) => done,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// A group of workers that can be stopped one at a time or all together.
pub struct Pool {
    root: CancellationToken,
    workers: BTreeMap<usize, (CancellationToken, JoinHandle<u64>)>,
    next_id: usize,
}

impl Pool {
    pub fn new() -> Self {
        Pool {
            root: CancellationToken::new(),
            workers: BTreeMap::new(),
            next_id: 0,
        }
    }

    /// Starts a worker and returns its id.
    pub fn spawn(&mut self) -> usize {
        // A child token: cancelled by `root.cancel()`, but cancelling it leaves `root` and the
        // other workers alone.
        let token = self.root.child_token();
        let handle = tokio::spawn(worker(token.clone()));
        let id = self.next_id;
        self.next_id += 1;
        self.workers.insert(id, (token, handle));
        id
    }

    /// Stops one worker and returns how many jobs it did.
    pub async fn stop(&mut self, id: usize) -> u64 {
        let (token, handle) = self.workers.remove(&id).expect("no worker with this id");
        token.cancel();
        join(handle).await
    }

    /// Stops every remaining worker and returns their job counts, in id order.
    pub async fn shutdown(self) -> Vec<u64> {
        self.root.cancel();
        let mut counts = Vec::new();
        for (_, (_, handle)) in self.workers {
            counts.push(join(handle).await);
        }
        counts
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::{sleep, timeout};

    const LIMIT: Duration = Duration::from_secs(5);

    #[tokio::test(start_paused = true)]
    async fn worker_stops_as_soon_as_the_token_is_cancelled() {
        let start = Instant::now();
        let token = CancellationToken::new();
        let handle = tokio::spawn(worker(token.clone()));
        sleep(Duration::from_millis(350)).await;
        token.cancel();
        let done = timeout(LIMIT, join(handle))
            .await
            .expect("after cancel() the worker must stop, but it was still running 5 s later");
        assert_eq!(
            done, 3,
            "jobs ran at 100, 200 and 300 ms: expected 3 jobs, got {done}"
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(350),
            "the worker must stop at the moment of cancel() (350 ms), not at its next tick"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_one_worker_leaves_its_siblings_running() {
        let start = Instant::now();
        let mut pool = Pool::new();
        let ids = [pool.spawn(), pool.spawn(), pool.spawn()];
        sleep(Duration::from_millis(250)).await;
        let done = timeout(LIMIT, pool.stop(ids[1]))
            .await
            .expect("stop() must stop the worker at once, but it was still running 5 s later");
        assert_eq!(
            done, 2,
            "the stopped worker ran at 100 and 200 ms: expected 2 jobs"
        );
        sleep(Duration::from_millis(200)).await;
        let counts = timeout(LIMIT, pool.shutdown())
            .await
            .expect("shutdown() must stop every worker, but one was still running 5 s later");
        assert_eq!(
            counts,
            vec![4, 4],
            "the two other workers must keep running until shutdown at 450 ms: \
             expected 4 jobs each (stop() must cancel only its own worker)"
        );
        assert_eq!(start.elapsed(), Duration::from_millis(450));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_every_worker_at_once() {
        let start = Instant::now();
        let mut pool = Pool::new();
        pool.spawn();
        pool.spawn();
        sleep(Duration::from_millis(150)).await;
        let counts = timeout(LIMIT, pool.shutdown())
            .await
            .expect("shutdown() must stop every worker, but one was still running 5 s later");
        assert_eq!(
            counts,
            vec![1, 1],
            "one job each before 150 ms: expected [1, 1]"
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(150),
            "shutdown() must stop the workers at once (150 ms), not at their next tick"
        );
    }
}
