// shutdown_quiz: shut a small service down in the right order, under one deadline
//
// A real service has several parts that each need a graceful end, and the order matters.
// Requests spawn background jobs, so the jobs can only be awaited once no request is left to
// spawn more. Requests and jobs both record metrics, so the metrics buffer is flushed last.
// And the whole shutdown gets ONE deadline: the drain and the jobs share it, and whatever is
// still running when it passes is cut off. The exit code tells the supervisor how it went.
//
// Why it matters: a service that flushes its metrics before its jobs are done loses the last
// numbers of every deploy, and one that gives each step its own grace period overruns the
// orchestrator's, which then kills it with SIGKILL before the flush. Kubernetes, systemd and
// CI all read the exit code: non-zero means "look at this".
//
// Production caveat: keep your deadline well inside the orchestrator's. Kubernetes' grace
// period (`terminationGracePeriodSeconds`, 30 s by default) starts before the preStop hook
// runs, and SIGTERM only comes after the hook: a 10 s preStop sleep leaves your process 20 s
// before SIGKILL, which allows no cut-off, no flush and no exit code of your own.
//
// What to do: write the shutdown sequence at the end of `run` (it ships as `todo!()`),
// following the steps in the TODO. Run `backlings hint` if you are stuck.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinSet};
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long the whole shutdown may take, from the moment it starts.
pub const GRACE: Duration = Duration::from_secs(5);

pub struct Request {
    pub id: u32,
    /// The handler's slow part, and the background job it starts (think: the receipt email).
    /// The tests supply both.
    pub work: BoxFuture<'static, ()>,
    pub job: BoxFuture<'static, ()>,
}

/// The service's event log, in the order things happened.
pub type Log = Arc<Mutex<Vec<String>>>;

/// A buffered metrics client, like a StatsD client or a `BufWriter`: `record` only adds to a
/// buffer in memory, `flush` sends the buffer out. What is still buffered at exit is lost.
#[derive(Default)]
pub struct Metrics {
    buffer: Mutex<Vec<String>>,
    sent: Mutex<Vec<String>>,
}

impl Metrics {
    pub fn record(&self, line: String) {
        self.buffer.lock().unwrap().push(line);
    }

    /// Sends every buffered line and returns how many there were.
    pub fn flush(&self) -> usize {
        let lines = std::mem::take(&mut *self.buffer.lock().unwrap());
        let n = lines.len();
        self.sent.lock().unwrap().extend(lines);
        n
    }
}

/// What the handlers and jobs share.
#[derive(Clone)]
struct Ctx {
    log: Log,
    metrics: Arc<Metrics>,
    jobs: TaskTracker,
    /// Cancel it to cut off every job still running.
    cut_off: CancellationToken,
}

impl Ctx {
    fn log(&self, event: impl Into<String>) {
        self.log.lock().unwrap().push(event.into());
    }
}

async fn handle(req: Request, ctx: Ctx) {
    req.work.await;
    ctx.metrics.record(format!("request {}", req.id));
    ctx.log(format!("request {} done", req.id));
    // The follow-up must not delay the answer, so it runs as a tracked background job.
    let (id, job, job_ctx) = (req.id, req.job, ctx.clone());
    ctx.jobs.spawn(async move {
        tokio::select! {
            _ = job_ctx.cut_off.cancelled() => job_ctx.log(format!("job {id} cut off")),
            _ = job => {
                job_ctx.metrics.record(format!("job {id}"));
                job_ctx.log(format!("job {id} done"));
            }
        }
    });
}

#[derive(Debug, Default)]
struct Report {
    served: usize,
    aborted: usize,
}

impl Report {
    /// Counts one joined request task. A panic in the handler is re-raised.
    fn record(&mut self, res: Result<(), JoinError>) {
        match res {
            Ok(()) => self.served += 1,
            Err(e) if e.is_cancelled() => self.aborted += 1,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

/// Waits for every task in `conns` and records how each one ended.
async fn drain(conns: &mut JoinSet<()>, report: &mut Report) {
    while let Some(res) = conns.join_next().await {
        report.record(res);
    }
}

/// Runs the service until `shutdown` is cancelled, shuts it down in order, and returns the
/// process exit code: 0 after a clean shutdown, 1 if requests or jobs had to be cut off.
pub async fn run(
    mut requests: mpsc::Receiver<Request>,
    shutdown: CancellationToken,
    log: Log,
    metrics: Arc<Metrics>,
) -> u8 {
    let ctx = Ctx {
        log,
        metrics,
        jobs: TaskTracker::new(),
        cut_off: CancellationToken::new(),
    };
    let mut conns = JoinSet::new();
    let mut report = Report::default();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(res) = conns.join_next() => report.record(res),
            Some(req) = requests.recv() => {
                conns.spawn(handle(req, ctx.clone()));
            }
        }
    }
    // TODO: shut down in this order, under ONE deadline (GRACE from now) for all the steps,
    // logging each step with `ctx.log(...)`:
    // 1. Stop accepting: close `requests`. Log "stopped accepting".
    // 2. Drain `conns` until the deadline; past it, abort the rest and drain again.
    //    Log "requests drained: served=<n> aborted=<n>".
    // 3. Close `ctx.jobs` and wait for them until the same deadline; past it, cancel
    //    `ctx.cut_off` and wait again. Log "jobs finished", or "jobs cut off" if the deadline hit.
    // 4. Flush the metrics. Log "metrics flushed: <lines flushed>".
    // 5. Return the exit code: 0 if nothing was cut off, 1 otherwise.
    todo!("the shutdown sequence")
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use tokio::task::JoinHandle;
    use tokio::time::{sleep, timeout};

    const STUCK: f64 = 3600.0;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    struct Service {
        tx: mpsc::Sender<Request>,
        log: Log,
        metrics: Arc<Metrics>,
        handle: JoinHandle<u8>,
    }

    /// Starts `run` with the given requests (ids 1, 2, ...) and cancels it at `at` seconds,
    /// checking that it stops accepting at once.
    async fn start(requests: Vec<Request>, at: f64) -> Service {
        let (tx, rx) = mpsc::channel(16);
        for req in requests {
            tx.try_send(req).unwrap();
        }
        let shutdown = CancellationToken::new();
        let log = Log::default();
        let metrics = Arc::new(Metrics::default());
        let handle = tokio::spawn(run(rx, shutdown.clone(), log.clone(), metrics.clone()));
        sleep(secs(at)).await;
        shutdown.cancel();
        timeout(Duration::from_millis(1), tx.closed())
            .await
            .expect("after the shutdown starts, run() must stop accepting requests at once");
        Service {
            tx,
            log,
            metrics,
            handle,
        }
    }

    /// Requests from `(work, job)` durations in seconds.
    fn requests(spec: &[(f64, f64)]) -> Vec<Request> {
        let ids = 1..;
        ids.zip(spec)
            .map(|(id, &(work, job))| Request {
                id,
                // `async move` so that each clock starts when the work or job starts.
                work: async move { sleep(secs(work)).await }.boxed(),
                job: async move { sleep(secs(job)).await }.boxed(),
            })
            .collect()
    }

    /// Waits for the exit code, then checks the log, the metrics sent and the time it took.
    /// Also checks that nothing runs on after `run` returned.
    async fn expect(mut service: Service, code: u8, at: f64, events: &[&str], sent: &[&str]) {
        let start = Instant::now();
        let got = match timeout(secs(2.0 * STUCK), &mut service.handle).await {
            Ok(Ok(code)) => code,
            Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
            Err(_) => panic!("run() was still shutting down long after its deadline"),
        };
        let end = start.elapsed();
        sleep(secs(2.0 * STUCK)).await;
        assert_eq!(
            *service.log.lock().unwrap(),
            events,
            "expected: stop accepting, drain the requests, wait for the jobs, flush the \
             metrics, all within one deadline (nothing may run on after run() returned)"
        );
        let mut got_sent = service.metrics.sent.lock().unwrap().clone();
        got_sent.sort();
        assert_eq!(
            got_sent, sent,
            "every recorded metric must be flushed, last"
        );
        assert_eq!(got, code, "expected exit code {code}");
        assert_eq!(
            end,
            secs(at),
            "run() must return {at} s after the shutdown started"
        );
        drop(service.tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_clean_shutdown_runs_its_steps_in_order() {
        let service = start(requests(&[(1.0, 3.0), (2.0, 1.0)]), 0.5).await;
        let events = [
            "stopped accepting",
            "request 1 done",
            "request 2 done",
            "requests drained: served=2 aborted=0",
            "job 2 done",
            "job 1 done",
            "jobs finished",
            "metrics flushed: 4",
        ];
        let sent = ["job 1", "job 2", "request 1", "request 2"];
        expect(service, 0, 3.5, &events, &sent).await;

        // Request 1 was served before the shutdown: its job must still be awaited.
        let service = start(requests(&[(0.1, 2.0)]), 1.0).await;
        let events = [
            "request 1 done",
            "stopped accepting",
            "requests drained: served=1 aborted=0",
            "job 1 done",
            "jobs finished",
            "metrics flushed: 2",
        ];
        expect(service, 0, 1.1, &events, &["job 1", "request 1"]).await;
    }

    #[tokio::test(start_paused = true)]
    async fn stuck_requests_are_aborted_at_the_deadline_and_exit_with_1() {
        let service = start(requests(&[(STUCK, 1.0), (1.0, 1.0)]), 0.5).await;
        let events = [
            "stopped accepting",
            "request 2 done",
            "job 2 done",
            "requests drained: served=1 aborted=1",
            "jobs finished",
            "metrics flushed: 2",
        ];
        expect(service, 1, 5.0, &events, &["job 2", "request 2"]).await;

        let spec = [(0.5, 4.0), (STUCK, 0.1), (STUCK, 0.1)];
        let service = start(requests(&spec), 2.0).await;
        let events = [
            "request 1 done",
            "stopped accepting",
            "job 1 done",
            "requests drained: served=1 aborted=2",
            "jobs finished",
            "metrics flushed: 2",
        ];
        expect(service, 1, 5.0, &events, &["job 1", "request 1"]).await;
    }

    #[tokio::test(start_paused = true)]
    async fn jobs_get_only_what_the_drain_left_of_the_deadline() {
        // A stuck job is cut off when the deadline passes.
        let service = start(requests(&[(1.0, STUCK)]), 0.5).await;
        let events = [
            "stopped accepting",
            "request 1 done",
            "requests drained: served=1 aborted=0",
            "job 1 cut off",
            "jobs cut off",
            "metrics flushed: 1",
        ];
        expect(service, 1, 5.0, &events, &["request 1"]).await;

        // The drain takes 2.5 s of the 5 s; job 1 would need 3 s more, so it is cut off.
        let service = start(requests(&[(3.0, 3.0), (1.0, 0.5)]), 0.5).await;
        let events = [
            "stopped accepting",
            "request 2 done",
            "job 2 done",
            "request 1 done",
            "requests drained: served=2 aborted=0",
            "job 1 cut off",
            "jobs cut off",
            "metrics flushed: 3",
        ];
        let sent = ["job 2", "request 1", "request 2"];
        expect(service, 1, 5.0, &events, &sent).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_panic_in_a_handler_is_not_counted_as_aborted() {
        let mut reqs = requests(&[(STUCK, 0.0)]);
        reqs.push(Request {
            id: 2,
            work: async {
                sleep(secs(2.0)).await;
                panic!("request 2 failed on purpose");
            }
            .boxed(),
            job: sleep(secs(0.0)).boxed(),
        });
        let service = start(reqs, 1.0).await;
        let res = timeout(secs(2.0 * STUCK), service.handle)
            .await
            .expect("run() was still shutting down long after its deadline");
        let Err(err) = res else {
            panic!(
                "request 2 panicked during the drain: run() must re-raise the panic, not \
                 return an exit code (only a request cut off by abort_all() counts as aborted)"
            );
        };
        assert_eq!(
            err.into_panic().downcast_ref::<&str>(),
            Some(&"request 2 failed on purpose"),
            "run() must re-raise the handler's own panic"
        );
    }
}
