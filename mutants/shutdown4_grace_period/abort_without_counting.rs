// mutant: on timeout calls `abort_all()` but never joins the aborted tasks, so they are not counted: expected aborted 1, got 0
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
// What to do: in `serve`, wrap the drain in `tokio::time::timeout(GRACE, ...)`. If the time runs
// out, abort the remaining tasks, then drain again so they are counted as aborted.
// Run `backlings hint` if you are stuck.
//
// Requests arrive on a channel here instead of a TcpListener, so that the tests can pause the
// clock and check the timings exactly.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinSet};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// How long the drain may take after the shutdown starts.
pub const GRACE: Duration = Duration::from_secs(5);

pub struct Request {
    pub id: u32,
    /// How long the handler takes.
    pub work: Duration,
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
    tokio::time::sleep(req.work).await;
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
            req = requests.recv() => match req {
                Some(req) => {
                    conns.spawn(handle(req, finished.clone()));
                }
                None => break,
            },
        }
    }
    // Stop accepting.
    requests.close();
    let drained = timeout(GRACE, drain(&mut conns, &mut report)).await;
    if drained.is_err() {
        conns.abort_all();
    }
    report
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::task::JoinHandle;
    use tokio::time::{Instant, sleep};

    const STUCK: Duration = Duration::from_secs(3600);

    type Started = (
        mpsc::Sender<Request>,
        CancellationToken,
        Finished,
        JoinHandle<Report>,
    );

    /// Starts `serve` with one request per entry of `works` (ids 1, 2, ...). Keep the sender
    /// alive: the requests must stop because of the shutdown, not because the channel closed.
    fn start(works: &[Duration]) -> Started {
        let (tx, rx) = mpsc::channel(16);
        for (i, work) in works.iter().enumerate() {
            let id = i as u32 + 1;
            tx.try_send(Request { id, work: *work }).unwrap();
        }
        let shutdown = CancellationToken::new();
        let finished = Finished::default();
        let handle = tokio::spawn(serve(rx, shutdown.clone(), finished.clone()));
        (tx, shutdown, finished, handle)
    }

    async fn finish(handle: JoinHandle<Report>) -> Report {
        match timeout(Duration::from_secs(60), handle).await {
            Ok(Ok(report)) => report,
            Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
            Err(_) => panic!("serve() was still draining 60 s after the shutdown (GRACE is 5 s)"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_request_is_aborted_when_the_grace_period_ends() {
        let start_at = Instant::now();
        let (_tx, shutdown, finished, handle) = start(&[Duration::from_millis(200), STUCK]);
        sleep(Duration::from_secs(1)).await;
        shutdown.cancel();
        let report = finish(handle).await;
        assert_eq!(
            start_at.elapsed(),
            Duration::from_secs(6),
            "shutdown at 1 s + GRACE of 5 s: serve() must return at exactly 6 s"
        );
        assert_eq!(
            report,
            Report {
                served: 1,
                aborted: 1
            },
            "request 1 was served, the stuck request 2 was aborted"
        );
        sleep(2 * STUCK).await;
        assert_eq!(
            *finished.lock().unwrap(),
            vec![1],
            "the stuck request must be aborted, not left running: only request 1 may finish"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn serve_returns_as_soon_as_the_last_request_is_done() {
        let start_at = Instant::now();
        let (_tx, shutdown, finished, handle) =
            start(&[Duration::from_secs(2), Duration::from_secs(3)]);
        sleep(Duration::from_secs(1)).await;
        shutdown.cancel();
        let report = finish(handle).await;
        assert_eq!(
            start_at.elapsed(),
            Duration::from_secs(3),
            "the last request ends at 3 s: serve() must return then, not wait out the grace period"
        );
        assert_eq!(
            report,
            Report {
                served: 2,
                aborted: 0
            },
            "both requests end within the grace period: expected 2 served, 0 aborted"
        );
        assert_eq!(*finished.lock().unwrap(), vec![1, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_grace_period_is_one_deadline_for_the_whole_drain() {
        let start_at = Instant::now();
        let (_tx, shutdown, finished, handle) =
            start(&[Duration::from_secs(4), Duration::from_secs(8), STUCK]);
        sleep(Duration::from_secs(1)).await;
        shutdown.cancel();
        let report = finish(handle).await;
        assert_eq!(
            start_at.elapsed(),
            Duration::from_secs(6),
            "the deadline is 1 s + 5 s = 6 s for the whole drain, even though request 1 ended at 4 s"
        );
        assert_eq!(
            report,
            Report {
                served: 1,
                aborted: 2
            },
            "request 1 (4 s) was served; request 2 (8 s) and the stuck one were aborted"
        );
        sleep(2 * STUCK).await;
        assert_eq!(*finished.lock().unwrap(), vec![1]);
    }
}
