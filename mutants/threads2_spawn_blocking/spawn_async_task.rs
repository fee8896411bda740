// mutant: tokio::spawn of an async block still runs the blocking call on the runtime's only thread; the service task starves
// threads2_spawn_blocking: blocking code belongs on the blocking pool
//
// An async runtime has a few worker threads and expects every task to return to it quickly.
// A blocking call (a synchronous driver, `std::fs`, a mutex held for long, heavy CPU work)
// holds a worker thread, and every task scheduled on it stops. `tokio::task::spawn_blocking`
// moves the call to a separate pool of threads made for blocking, and gives you a future for
// its result. It is what `worker_threads` or a thread pool is for in Node.
//
// Why it matters: a service called a synchronous PDF library inside a handler. Under load the
// runtime's threads all sat in that call, and even `/health` stopped answering.
//
// What to do: in `report`, run `legacy_report` with `tokio::task::spawn_blocking`, and await
// it. Run `backlings hint` if you are stuck.

use std::sync::mpsc::Receiver;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// A synchronous legacy call that asks an async service three questions, and waits for each
/// answer for at most 500 ms.
pub struct Legacy {
    pub ask: UnboundedSender<u32>,
    pub answers: Receiver<u32>,
}

pub fn legacy_report(legacy: Legacy) -> Result<u32, &'static str> {
    let mut total = 0;
    for question in 1..=3 {
        legacy
            .ask
            .send(question)
            .map_err(|_| "the async service is gone")?;
        total += legacy
            .answers
            .recv_timeout(Duration::from_millis(500))
            .map_err(|_| "no answer for 500 ms: the async side was starved")?;
    }
    Ok(total)
}

pub async fn report(legacy: Legacy) -> Result<u32, &'static str> {
    // On the blocking pool, the call leaves the runtime's thread free for other tasks.
    tokio::spawn(async move { legacy_report(legacy) })
        .await
        .expect("legacy_report panicked")
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    // One runtime thread: if `report` blocks it, the service task cannot answer.
    #[tokio::test(flavor = "current_thread")]
    async fn the_async_service_keeps_answering_during_the_report() {
        let (ask, mut questions) = tokio::sync::mpsc::unbounded_channel();
        let (reply, answers) = mpsc::channel();
        let service = tokio::spawn(async move {
            while let Some(q) = questions.recv().await {
                let _ = reply.send(q * 10);
            }
        });
        let result = report(Legacy { ask, answers }).await;
        service.abort();
        assert_eq!(
            result,
            Ok(10 + 20 + 30),
            "expected the three answers, summed: Ok(60)"
        );
    }
}
