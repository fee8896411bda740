// threads2_spawn_blocking: blocking code belongs on the blocking pool
//
// An async runtime has a few worker threads and expects every task to hand its thread back
// quickly. A blocking call (a synchronous driver, `std::fs`, a long-held mutex, heavy CPU work)
// holds a worker thread, and every task scheduled on it stops. `tokio::task::spawn_blocking`
// moves the call to a separate pool of threads made for blocking and gives you a future for its
// result. Node has such a pool too, hidden: libuv's thread pool runs its `fs` and `dns.lookup`.
//
// Why it matters: a service called a synchronous PDF library inside a handler. Under load the
// runtime's threads all sat in that call, and even `/health` stopped answering.
//
// Production caveat: a blocking task cannot be cancelled once it runs. Aborting its
// `JoinHandle`, or a `timeout` around it, only stops the waiting: the closure runs to its end and
// keeps its thread, and runtime shutdown waits for it (tokio docs, `spawn_blocking`).
//
// What to do: in `report`, run the renderer with `tokio::task::spawn_blocking` and await the
// result. Run `backlings hint` if you are stuck.

/// A synchronous library: `render` blocks the calling thread until the document is ready.
pub trait Renderer: Send + 'static {
    fn render(&mut self, order_id: u64) -> Result<String, String>;
}

/// Renders the report for `order_id` without holding up the async runtime.
pub async fn report<R: Renderer>(mut renderer: R, order_id: u64) -> Result<String, String> {
    // TODO: this blocks the runtime's thread for as long as the render takes. Run it on the
    // blocking pool instead (`tokio::task::spawn_blocking`) and await the result.
    renderer.render(order_id)
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};
    use std::thread::{self, ThreadId};
    use std::time::Duration;
    use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
    use tokio::time::timeout;

    const WAIT: Duration = Duration::from_secs(2);
    const UNFINISHED: &str = "report did not finish: run the render with spawn_blocking and await it \
        (tokio's paused test clock waits for blocking-pool work, not for threads of your own)";

    /// Where `render` ran: its thread, and whether that thread belongs to the runtime's
    /// blocking pool (blocking-pool threads can see the runtime; other threads cannot).
    type RanOn = Arc<Mutex<Option<(ThreadId, bool)>>>;

    /// A legacy renderer that, while it renders, asks an async service on the runtime
    /// `questions` questions and blocks for each answer. It can only finish if the runtime's
    /// thread stays free while it runs.
    struct Legacy {
        questions: u64,
        ask: UnboundedSender<u64>,
        answers: mpsc::Receiver<u64>,
        ran_on: RanOn,
    }

    impl Renderer for Legacy {
        fn render(&mut self, order_id: u64) -> Result<String, String> {
            let in_pool = tokio::runtime::Handle::try_current().is_ok();
            *self.ran_on.lock().unwrap() = Some((thread::current().id(), in_pool));
            let mut total = 0;
            for question in 1..=self.questions {
                self.ask.send(question).map_err(|_| "the service is gone")?;
                total += self.answers.recv_timeout(WAIT).map_err(|_| {
                    format!("no answer to question {question} within {WAIT:?}: the runtime's thread was blocked")
                })?;
            }
            Ok(format!("order {order_id}: {total}"))
        }
    }

    /// Runs `report` on this test's single runtime thread, next to a service task that answers
    /// each question `q` with `q * 10`.
    async fn check(order_id: u64, questions: u64, want: &str) {
        let (ask, mut asked) = unbounded_channel();
        let (reply, answers) = mpsc::channel();
        let service = tokio::spawn(async move {
            while let Some(q) = asked.recv().await {
                let _ = reply.send(q * 10);
            }
        });
        let ran_on = RanOn::default();
        let legacy = Legacy {
            questions,
            ask,
            answers,
            ran_on: Arc::clone(&ran_on),
        };
        let result = timeout(WAIT, report(legacy, order_id))
            .await
            .expect(UNFINISHED);
        service.abort();
        assert_eq!(
            result,
            Ok(want.to_string()),
            "expected Ok({want:?}): the render needs {questions} answers from a task on the runtime's only thread"
        );
        let (thread, in_pool) = ran_on.lock().unwrap().expect("report never called render");
        assert_ne!(
            thread,
            thread::current().id(),
            "render ran on the runtime's thread"
        );
        assert!(
            in_pool,
            "render ran on a thread of your own: use the runtime's blocking pool (spawn_blocking), which reuses and caps its threads"
        );
    }

    // One runtime thread: if `report` blocks it, the service task cannot answer.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn the_service_keeps_answering_during_a_3_question_render() {
        check(7, 3, "order 7: 60").await;
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn the_service_keeps_answering_during_a_5_question_render() {
        check(41, 5, "order 41: 150").await;
    }

    struct Broken;

    impl Renderer for Broken {
        fn render(&mut self, order_id: u64) -> Result<String, String> {
            Err(format!("no font for order {order_id}"))
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_render_error_reaches_the_caller() {
        let result = timeout(WAIT, report(Broken, 9)).await.expect(UNFINISHED);
        assert_eq!(
            result,
            Err("no font for order 9".to_string()),
            "expected the renderer's own error, unchanged"
        );
    }
}
