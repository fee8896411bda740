// shutdown4_grace_period: a drain needs a deadline
//
// A drain waits for the requests in flight, but one stuck request (a hung upstream, a lock
// that is never released) makes it wait forever. So the drain gets a deadline, the grace
// period. When it runs out, abort what is left, and report how many requests were cut off.
//
// Why it matters: Kubernetes sends SIGTERM, waits `terminationGracePeriodSeconds` (30 s by
// default), then sends SIGKILL. A service that drains with no deadline of its own gets killed
// mid-way, with no log line saying which requests were lost. nginx's `worker_shutdown_timeout`
// is the same idea.
//
// Production caveat: aborting a task drops its future; it never interrupts code running
// between two `.await`s. Work already handed to the outside world (a query running in the
// database, a request sent upstream) goes on without you, so a handler that writes must leave
// nothing half-done that a retry cannot repair (a transaction, an idempotency key).
//
// What to do: in `serve`, give the drain one deadline, `GRACE`, with `tokio::time::timeout`.
// If the time runs out, abort the remaining tasks, then drain again so they are counted as
// aborted. Run `backlings hint` if you are stuck.
//
// Requests arrive on a channel here instead of a TcpListener, so that the tests can pause the
// clock and check the timings exactly.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinSet};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// How long the drain may take after the shutdown starts.
pub const GRACE: Duration = Duration::from_secs(5);

pub struct Request {
    pub id: u32,
    /// The handler's slow part: a database call, an upstream request. The tests supply it.
    pub work: BoxFuture<'static, ()>,
}

/// The ids of the requests whose handler ran to the end.
pub type Finished = Arc<Mutex<Vec<u32>>>;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub served: usize,
    pub aborted: usize,
}

impl Report {
    /// Counts one joined task. A panic in the handler is re-raised, so that it fails the test.
    fn record(&mut self, res: Result<(), JoinError>) {
        match res {
            Ok(()) => self.served += 1,
            Err(e) if e.is_cancelled() => self.aborted += 1,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

async fn handle(req: Request, finished: Finished) {
    req.work.await;
    finished.lock().unwrap().push(req.id);
}

/// Waits for every task in `conns` and records how each one ended.
async fn drain(conns: &mut JoinSet<()>, report: &mut Report) {
    while let Some(res) = conns.join_next().await {
        report.record(res);
    }
}

/// Serves requests until `shutdown` is cancelled, then drains them for at most `GRACE`.
pub async fn serve(
    mut requests: mpsc::Receiver<Request>,
    shutdown: CancellationToken,
    finished: Finished,
) -> Report {
    let mut conns = JoinSet::new();
    let mut report = Report::default();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(res) = conns.join_next() => report.record(res),
            Some(req) = requests.recv() => {
                conns.spawn(handle(req, finished.clone()));
            }
        }
    }
    // Stop accepting.
    requests.close();
    // TODO: give the drain one deadline, GRACE, with `timeout`. If the time runs out, abort the
    // tasks that are left, then drain again so that each one is counted as aborted.
    drain(&mut conns, &mut report).await;
    report
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use tokio::time::{Instant, sleep};

    const STUCK: Duration = Duration::from_secs(3600);

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Starts `serve` with one request per entry of `works` (ids 1, 2, ...): each one's work
    /// takes that long. Cancels at `shutdown_at` and returns the report and the finished ids.
    /// The sender stays alive: `serve` must stop because of the shutdown, not a closed channel.
    async fn run(works: &[Duration], shutdown_at: f64) -> (Report, Duration, Vec<u32>) {
        let start = Instant::now();
        let (tx, rx) = mpsc::channel(16);
        for (i, work) in works.iter().enumerate() {
            let work = sleep(*work).boxed();
            let id = i as u32 + 1;
            tx.try_send(Request { id, work }).unwrap();
        }
        let shutdown = CancellationToken::new();
        let finished = Finished::default();
        let handle = tokio::spawn(serve(rx, shutdown.clone(), finished.clone()));
        sleep(secs(shutdown_at)).await;
        shutdown.cancel();
        let report = match timeout(Duration::from_secs(60), handle).await {
            Ok(Ok(report)) => report,
            Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
            Err(_) => panic!("serve() was still draining 60 s after the shutdown (GRACE is 5 s)"),
        };
        let elapsed = start.elapsed();
        // Long enough for any request left running to finish: none may.
        sleep(2 * STUCK).await;
        let finished = finished.lock().unwrap().clone();
        drop(tx);
        (report, elapsed, finished)
    }

    fn report(served: usize, aborted: usize) -> Report {
        Report { served, aborted }
    }

    #[tokio::test(start_paused = true)]
    async fn stuck_requests_are_aborted_when_the_grace_period_ends() {
        let (got, elapsed, finished) = run(&[secs(0.2), STUCK], 1.0).await;
        assert_eq!(
            elapsed,
            secs(6.0),
            "shutdown at 1 s + GRACE of 5 s: serve() must return at exactly 6 s"
        );
        assert_eq!(
            got,
            report(1, 1),
            "request 1 served, stuck request 2 aborted"
        );
        assert_eq!(
            finished,
            [1],
            "the stuck request must be aborted, not left running: only request 1 may finish"
        );

        let (got, elapsed, finished) = run(&[STUCK, secs(0.3), secs(4.0), STUCK], 2.5).await;
        assert_eq!(
            elapsed,
            secs(7.5),
            "shutdown at 2.5 s + GRACE of 5 s: serve() must return at exactly 7.5 s"
        );
        assert_eq!(
            got,
            report(2, 2),
            "requests 2 and 3 (done at 4 s) served, stuck requests 1 and 4 aborted"
        );
        assert_eq!(finished, [2, 3], "only requests 2 and 3 may finish");
    }

    #[tokio::test(start_paused = true)]
    async fn serve_returns_as_soon_as_the_last_request_is_done() {
        let (got, elapsed, finished) = run(&[secs(2.0), secs(3.0)], 1.0).await;
        assert_eq!(
            elapsed,
            secs(3.0),
            "the last request ends at 3 s: serve() must return then, not wait out the grace period"
        );
        assert_eq!(
            got,
            report(2, 0),
            "both requests end in time: 2 served, 0 aborted"
        );
        assert_eq!(finished, [1, 2]);

        let (got, elapsed, finished) = run(&[secs(6.5), secs(0.5), secs(1.5)], 2.0).await;
        assert_eq!(
            elapsed,
            secs(6.5),
            "the last request ends at 6.5 s, before the deadline (7 s): serve() must return then"
        );
        assert_eq!(
            got,
            report(3, 0),
            "all 3 requests end in time: 3 served, 0 aborted"
        );
        assert_eq!(finished, [2, 3, 1]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_grace_period_is_one_deadline_for_the_whole_drain() {
        let (got, elapsed, finished) = run(&[secs(4.0), secs(8.0), STUCK], 1.0).await;
        assert_eq!(
            elapsed,
            secs(6.0),
            "the deadline is 1 s + 5 s = 6 s for the whole drain, even though request 1 ended at 4 s"
        );
        assert_eq!(
            got,
            report(1, 2),
            "request 1 (4 s) served; request 2 (8 s) and the stuck one aborted"
        );
        assert_eq!(finished, [1]);

        let (got, elapsed, finished) =
            run(&[secs(3.0), secs(5.0), secs(7.0), secs(9.5)], 0.5).await;
        assert_eq!(
            elapsed,
            secs(5.5),
            "the deadline is 0.5 s + 5 s = 5.5 s for the whole drain, however many requests end \
             before it"
        );
        assert_eq!(
            got,
            report(2, 2),
            "requests 1 and 2 (3 s, 5 s) served; 3 and 4 (7 s, 9.5 s) aborted"
        );
        assert_eq!(finished, [1, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_panic_in_a_handler_is_not_counted_as_aborted() {
        let (tx, rx) = mpsc::channel(16);
        tx.try_send(Request {
            id: 1,
            work: sleep(STUCK).boxed(),
        })
        .unwrap();
        let work = async {
            sleep(secs(2.0)).await;
            panic!("request 2 failed on purpose");
        };
        tx.try_send(Request {
            id: 2,
            work: work.boxed(),
        })
        .unwrap();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(serve(rx, shutdown.clone(), Finished::default()));
        sleep(secs(1.0)).await;
        shutdown.cancel();
        let res = timeout(Duration::from_secs(60), handle)
            .await
            .expect("serve() was still draining 60 s after the shutdown");
        let err = match res {
            Ok(report) => panic!(
                "request 2 panicked during the drain: serve() must re-raise the panic, not \
                 return {report:?} (only a task cut off by abort_all() counts as aborted)"
            ),
            Err(err) => err,
        };
        let payload = err.into_panic();
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"request 2 failed on purpose"),
            "serve() must re-raise the handler's own panic"
        );
        drop(tx);
    }
}
