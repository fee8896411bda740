// shutdown_quiz: shut a small service down in the right order
//
// A real service has several parts that each need a graceful end, and the order matters.
// Requests spawn background jobs, so the jobs can only be awaited once no request is left to
// spawn more. Requests and jobs both record metrics, so the metrics buffer is flushed last.
// The exit code tells the supervisor whether the shutdown was clean.
//
// Why it matters: a service that flushes its metrics before its jobs are done loses the last
// numbers of every deploy, and one that waits for its jobs before its requests are drained
// exits with work still running. Kubernetes, systemd and CI all read the exit code: non-zero
// means "look at this".
//
// What to do: write the shutdown sequence at the end of `run` (it ships as `todo!()`),
// following the steps in the TODO. Run `backlings hint` if you are stuck.
//
// Requests arrive on a channel here instead of a TcpListener, so that the tests can pause the
// clock and check the timings exactly.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinSet};
use tokio::time::{sleep, timeout};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long the request drain may take after the shutdown starts.
pub const GRACE: Duration = Duration::from_secs(5);

pub struct Request {
    pub id: u32,
    /// How long the handler takes to answer.
    pub work: Duration,
    /// How long the background job it starts takes (think: sending the receipt email).
    pub job: Duration,
}

/// The service's event log, in the order things happened.
pub type Log = Arc<Mutex<Vec<String>>>;

/// A buffered metrics client, like a StatsD client or a `BufWriter`: `record` only adds to a
/// buffer in memory, and `flush` sends the buffer out. Whatever is still in the buffer when the
/// process exits is lost.
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

    /// The lines sent so far.
    pub fn sent(&self) -> Vec<String> {
        self.sent.lock().unwrap().clone()
    }
}

/// What the handlers and jobs share.
#[derive(Clone)]
struct Ctx {
    log: Log,
    metrics: Arc<Metrics>,
    jobs: TaskTracker,
}

impl Ctx {
    fn log(&self, event: impl Into<String>) {
        self.log.lock().unwrap().push(event.into());
    }
}

async fn handle(req: Request, ctx: Ctx) {
    sleep(req.work).await;
    ctx.metrics.record(format!("request {}", req.id));
    ctx.log(format!("request {} done", req.id));
    // The follow-up work must not delay the answer, so it runs as a tracked background job.
    let job_ctx = ctx.clone();
    ctx.jobs.spawn(async move {
        sleep(req.job).await;
        job_ctx.metrics.record(format!("job {}", req.id));
        job_ctx.log(format!("job {} done", req.id));
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
/// process exit code: 0 after a clean shutdown, 1 if requests had to be aborted.
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
    };
    let mut conns = JoinSet::new();
    let mut report = Report::default();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(res) = conns.join_next() => report.record(res),
            req = requests.recv() => match req {
                Some(req) => {
                    conns.spawn(handle(req, ctx.clone()));
                }
                None => break,
            },
        }
    }

    // TODO: shut down in this order, logging each step with `ctx.log(...)`:
    // 1. Stop accepting: close `requests`. Log "stopped accepting".
    // 2. Drain `conns` for at most GRACE; on timeout, abort the rest and drain again.
    //    Log "requests drained: served=<n> aborted=<n>".
    // 3. Wait for every background job in `ctx.jobs`. Log "jobs finished".
    // 4. Flush the metrics. Log "metrics flushed: <lines flushed>".
    // 5. Return the exit code: 0 if no request was aborted, 1 otherwise.
    todo!("the shutdown sequence")
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::task::JoinHandle;
    use tokio::time::Instant;

    const STUCK: Duration = Duration::from_secs(3600);

    struct Service {
        tx: mpsc::Sender<Request>,
        shutdown: CancellationToken,
        log: Log,
        metrics: Arc<Metrics>,
        handle: JoinHandle<u8>,
    }

    /// Starts `run` with one request per `(work, job)` pair, with ids 1, 2, ...
    fn start(requests: &[(Duration, Duration)]) -> Service {
        let (tx, rx) = mpsc::channel(16);
        for (i, &(work, job)) in requests.iter().enumerate() {
            let id = i as u32 + 1;
            tx.try_send(Request { id, work, job }).unwrap();
        }
        let shutdown = CancellationToken::new();
        let log = Log::default();
        let metrics = Arc::new(Metrics::default());
        let handle = tokio::spawn(run(rx, shutdown.clone(), log.clone(), metrics.clone()));
        Service {
            tx,
            shutdown,
            log,
            metrics,
            handle,
        }
    }

    /// Cancels at `at` and checks that `run` stops accepting at once.
    async fn cancel_at(service: &Service, at: Duration) {
        sleep(at).await;
        service.shutdown.cancel();
        timeout(Duration::from_millis(1), service.tx.closed())
            .await
            .expect("after the shutdown starts, run() must stop accepting requests at once");
    }

    async fn exit_code(service: &mut Service) -> u8 {
        match timeout(Duration::from_secs(60), &mut service.handle).await {
            Ok(Ok(code)) => code,
            Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
            Err(_) => panic!("run() was still shutting down 60 s after the shutdown started"),
        }
    }

    fn events(service: &Service) -> Vec<String> {
        service.log.lock().unwrap().clone()
    }

    fn sent_metrics(service: &Service) -> Vec<String> {
        let mut sent = service.metrics.sent();
        sent.sort();
        sent
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[tokio::test(start_paused = true)]
    async fn a_clean_shutdown_runs_its_steps_in_order() {
        let start_at = Instant::now();
        let mut service = start(&[(secs(1.0), secs(3.0)), (secs(2.0), secs(1.0))]);
        cancel_at(&service, secs(0.5)).await;
        let code = exit_code(&mut service).await;
        assert_eq!(
            events(&service),
            [
                "stopped accepting",
                "request 1 done",
                "request 2 done",
                "requests drained: served=2 aborted=0",
                "job 2 done",
                "job 1 done",
                "jobs finished",
                "metrics flushed: 4",
            ],
            "expected: stop accepting, drain requests, wait for jobs, flush metrics"
        );
        assert_eq!(
            sent_metrics(&service),
            ["job 1", "job 2", "request 1", "request 2"],
            "every metric must be flushed, the jobs' ones too"
        );
        assert_eq!(code, 0, "a clean shutdown exits with 0");
        assert_eq!(
            start_at.elapsed(),
            secs(4.0),
            "the last job ends at 4 s: run() must return then"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn jobs_started_before_the_shutdown_are_awaited() {
        let start_at = Instant::now();
        let mut service = start(&[(secs(0.1), secs(2.0))]);
        cancel_at(&service, secs(1.0)).await;
        let code = exit_code(&mut service).await;
        assert_eq!(
            events(&service),
            [
                "request 1 done",
                "stopped accepting",
                "requests drained: served=1 aborted=0",
                "job 1 done",
                "jobs finished",
                "metrics flushed: 2",
            ],
            "request 1 was served before the shutdown; its job must still be awaited"
        );
        assert_eq!(sent_metrics(&service), ["job 1", "request 1"]);
        assert_eq!(code, 0, "a clean shutdown exits with 0");
        assert_eq!(start_at.elapsed(), secs(2.1), "job 1 ends at 2.1 s");
    }

    #[tokio::test(start_paused = true)]
    async fn exceeding_the_grace_period_aborts_and_exits_with_1() {
        let start_at = Instant::now();
        let mut service = start(&[(STUCK, secs(1.0)), (secs(1.0), secs(1.0))]);
        cancel_at(&service, secs(0.5)).await;
        let code = exit_code(&mut service).await;
        assert_eq!(
            events(&service),
            [
                "stopped accepting",
                "request 2 done",
                "job 2 done",
                "requests drained: served=1 aborted=1",
                "jobs finished",
                "metrics flushed: 2",
            ],
            "the stuck request 1 must be aborted when the grace period ends (5.5 s)"
        );
        assert_eq!(sent_metrics(&service), ["job 2", "request 2"]);
        assert_eq!(code, 1, "requests were aborted: the exit code must be 1");
        assert_eq!(
            start_at.elapsed(),
            secs(5.5),
            "shutdown at 0.5 s + GRACE of 5 s: run() must return at 5.5 s"
        );
    }
}
