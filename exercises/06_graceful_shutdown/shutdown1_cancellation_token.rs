// shutdown1_cancellation_token: stop workers with a CancellationToken
//
// In async Rust, stopping is cooperative: nothing interrupts a loop from the outside, so a
// worker must listen for the stop request itself. A `CancellationToken` (from tokio-util) is a
// cloneable "please stop" flag that you can `.await`. `child_token()` builds a tree: cancelling
// a parent cancels all its children, but cancelling one child leaves its parent and siblings
// running.
//
// Why it matters: on every deploy, Kubernetes (or systemd, or PM2 for a Node app) asks the
// service to stop. The process cancels one top-level token, and every pool, worker and
// connection below it must stop, while an admin can still stop one worker alone. A worker that
// never checks the flag keeps going until the hard kill arrives, and dies half-way through a
// job.
//
// Production caveat: cancellation only stops a worker at an `.await` where it is watching the
// token. A job that runs for 20 s between two awaits (or blocks its thread) is not interrupted;
// give long jobs their own checks, or run them under the drain deadline of shutdown4.
//
// What to do: in `worker`, make the loop stop as soon as `token.cancelled()` completes. In
// `Pool::spawn`, give each worker its own token in the tree. Run `backlings hint` if stuck.

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
            // TODO: add a branch that breaks out of the loop when `token.cancelled()` completes.
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

/// A group of workers that can be stopped one at a time, all together, or from above.
pub struct Pool {
    root: CancellationToken,
    workers: BTreeMap<usize, (CancellationToken, JoinHandle<u64>)>,
    next_id: usize,
}

impl Pool {
    /// A pool below `parent` (say, the process-wide shutdown token): cancelling `parent`
    /// stops every worker of the pool; shutting the pool down leaves `parent` alone.
    pub fn new(parent: &CancellationToken) -> Pool {
        Pool {
            root: parent.child_token(),
            workers: BTreeMap::new(),
            next_id: 0,
        }
    }

    /// Starts a worker and returns its id.
    pub fn spawn(&mut self) -> usize {
        // TODO: give this worker its own token below `self.root`, so that `stop(id)` stops this
        // worker only, while `shutdown()` and a cancelled parent still stop them all.
        let token = self.root.clone();
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

    /// Stops every remaining worker and returns `(id, jobs done)` for each, in id order.
    pub async fn shutdown(self) -> Vec<(usize, u64)> {
        self.root.cancel();
        let mut counts = Vec::new();
        for (id, (_, handle)) in self.workers {
            counts.push((id, join(handle).await));
        }
        counts
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::{sleep, sleep_until, timeout};

    const LIMIT: Duration = Duration::from_secs(60);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn worker_stops_as_soon_as_the_token_is_cancelled() {
        for (cancel_at, jobs) in [(350, 3), (1_230, 12)] {
            let start = Instant::now();
            let token = CancellationToken::new();
            let handle = tokio::spawn(worker(token.clone()));
            sleep(ms(cancel_at)).await;
            token.cancel();
            let done = timeout(LIMIT, join(handle))
                .await
                .expect("after cancel() the worker must stop, but it was still running 60 s later");
            assert_eq!(
                start.elapsed(),
                ms(cancel_at),
                "the worker must stop at the moment of cancel() ({cancel_at} ms), not at a later tick"
            );
            assert_eq!(
                done, jobs,
                "one job per 100 ms tick before cancel() at {cancel_at} ms: expected {jobs} jobs"
            );
        }
    }

    enum Step {
        /// Start this many workers.
        Spawn(usize),
        /// Stop these workers, one after the other.
        Stop(&'static [usize]),
    }

    /// Plays `plan` (each step at its time in ms), shuts the pool down at `end` ms and returns
    /// every worker's job count, by id. Checks that no step lets time pass.
    async fn play(plan: &[(u64, Step)], end: u64) -> BTreeMap<usize, u64> {
        let start = Instant::now();
        let parent = CancellationToken::new();
        let mut pool = Pool::new(&parent);
        let mut jobs = BTreeMap::new();
        for (at, step) in plan {
            sleep_until(start + ms(*at)).await;
            match step {
                Step::Spawn(n) => {
                    for _ in 0..*n {
                        pool.spawn();
                    }
                }
                Step::Stop(ids) => {
                    for &id in *ids {
                        let done = timeout(LIMIT, pool.stop(id))
                            .await
                            .expect("stop(id) must stop that worker at once");
                        jobs.insert(id, done);
                    }
                }
            }
            assert_eq!(
                start.elapsed(),
                ms(*at),
                "stop(id) must return at once ({at} ms), not at the worker's next tick"
            );
        }
        sleep_until(start + ms(end)).await;
        let rest = timeout(LIMIT, pool.shutdown())
            .await
            .expect("shutdown() must stop every worker at once");
        assert_eq!(
            start.elapsed(),
            ms(end),
            "shutdown() must return at once ({end} ms)"
        );
        assert!(
            !parent.is_cancelled(),
            "shutting a pool down must not cancel its parent token (use a child token)"
        );
        jobs.extend(rest);
        jobs
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_some_workers_leaves_the_others_running() {
        let jobs = play(
            &[
                (0, Step::Spawn(5)),
                (250, Step::Stop(&[1, 3])),
                (420, Step::Stop(&[0])),
            ],
            730,
        )
        .await;
        assert_eq!(
            jobs,
            BTreeMap::from([(0, 4), (1, 2), (2, 7), (3, 2), (4, 7)]),
            "workers 1 and 3 stop at 250 ms (2 jobs), worker 0 at 420 ms (4 jobs); workers 2 and \
             4 must keep running until shutdown at 730 ms (7 jobs): stop(id) cancels one worker"
        );

        let jobs = play(
            &[
                (0, Step::Spawn(4)),
                (150, Step::Spawn(2)),
                (380, Step::Stop(&[4])),
                (510, Step::Stop(&[0, 2])),
            ],
            960,
        )
        .await;
        assert_eq!(
            jobs,
            BTreeMap::from([(0, 5), (1, 9), (2, 5), (3, 9), (4, 2), (5, 8)]),
            "workers 4 and 5 start at 150 ms; 4 stops at 380 ms (2 jobs), 0 and 2 at 510 ms \
             (5 jobs); 1 and 3 run until 960 ms (9 jobs), 5 from 150 to 960 ms (8 jobs)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_the_parent_stops_every_worker_of_every_pool() {
        for (first_end, parent_cancel, jobs_a, jobs_b) in [(230, 470, 2, 4), (610, 880, 6, 8)] {
            let start = Instant::now();
            let parent = CancellationToken::new();
            let mut a = Pool::new(&parent);
            let mut b = Pool::new(&parent);
            for _ in 0..3 {
                a.spawn();
                b.spawn();
            }
            sleep(ms(first_end)).await;
            let counts = timeout(LIMIT, a.shutdown()).await.expect("shutdown() hung");
            assert_eq!(
                counts,
                [(0, jobs_a), (1, jobs_a), (2, jobs_a)],
                "pool a shuts down at {first_end} ms: expected {jobs_a} jobs per worker"
            );
            sleep_until(start + ms(parent_cancel)).await;
            parent.cancel();
            // Pool b was never shut down: only the parent's cancel can have stopped it.
            sleep(ms(1_000)).await;
            let counts = timeout(LIMIT, b.shutdown()).await.expect("shutdown() hung");
            assert_eq!(
                counts,
                [(0, jobs_b), (1, jobs_b), (2, jobs_b)],
                "cancelling the parent at {parent_cancel} ms must stop pool b's workers then \
                 ({jobs_b} jobs each), not 1 s later at b.shutdown(): workers need tokens below \
                 the pool's root, which is below the parent"
            );
        }
    }
}
