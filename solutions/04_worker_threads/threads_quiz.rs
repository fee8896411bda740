// threads_quiz: a parallel word count behind an async front end
//
// This combines the topic. An async handler must not do CPU-heavy work on the runtime's
// threads, so it hands the job to the blocking pool (`spawn_blocking`). There, the job uses
// several cores: it splits the documents into parts and counts each part on a scoped thread
// that borrows it (`thread::scope`), all parts at the same time, then adds up the counts.
//
// Why it matters: a search service rebuilt its term statistics inside a request handler. The
// p99 latency of every other endpoint went to seconds whenever it ran. Offloading it fixed
// the latency; splitting it across cores brought the rebuild from minutes to seconds.
//
// Production caveat: the blocking pool is sized for waiting, not for computing. Tokio starts
// up to 512 blocking threads by default (`Builder::max_blocking_threads`), and its docs advise
// limiting CPU-bound jobs with a semaphore, or using a CPU pool such as rayon: ten requests at
// once here would start ten times `parts` busy threads on a machine with a few cores.
//
// What to do: rewrite `word_count` (it ships counting on the runtime's thread, one part after
// another). Run `backlings hint` if you are stuck.

use std::collections::{BTreeMap, HashMap};
use std::thread;

pub type Counts = BTreeMap<String, usize>;

/// Counts the words of one part of the documents. CPU-heavy: keep it off the runtime's thread.
pub trait Tally: Send + Sync + 'static {
    fn tally(&self, part: &[String]) -> HashMap<String, usize>;
}

/// Counts every word of `docs` off the async runtime, in `parts` parts (at least 1) that run
/// at the same time, one thread each.
pub async fn word_count<T: Tally>(docs: Vec<String>, parts: usize, tally: T) -> Counts {
    // CPU work goes to the blocking pool, so the runtime's thread keeps serving other tasks.
    tokio::task::spawn_blocking(move || {
        let chunk = docs.len().div_ceil(parts).max(1);
        // Scoped threads borrow their part of `docs` and the tally: no copies, no Arc. Start
        // them all before joining any, so that the parts run at the same time.
        let partials: Vec<HashMap<String, usize>> = thread::scope(|s| {
            let tally = &tally;
            let handles: Vec<_> = docs
                .chunks(chunk)
                .map(|part| s.spawn(move || tally.tally(part)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // Merge: add up, never overwrite, the counts of a word seen in several parts.
        let mut total = Counts::new();
        for partial in partials {
            for (word, n) in partial {
                *total.entry(word).or_insert(0) += n;
            }
        }
        total
    })
    .await
    .expect("the word count panicked")
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::Range;
    use std::sync::mpsc;
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;
    use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
    use tokio::time::timeout;

    const WAIT: Duration = Duration::from_secs(2);
    const UNFINISHED: &str = "word_count did not finish: run the job with spawn_blocking and await it \
        (tokio's paused test clock waits for blocking-pool work, not for threads of your own)";

    /// What the parts went through.
    #[derive(Default, Clone, Copy)]
    struct Seen {
        entered: usize,
        gave_up: usize,    // waited WAIT for the other parts in vain
        unanswered: usize, // got no answer from the runtime within WAIT
        copied: usize,     // counted a copy of the documents, not a part of `docs` itself
    }

    /// A word counter that checks how it is called. Each part first waits, for up to WAIT,
    /// until `want` parts are inside at the same time; then it asks a service task on the
    /// runtime for a go-ahead and blocks until the answer comes, which only happens while the
    /// runtime's thread is free.
    struct Probe {
        want: usize,
        docs: Range<usize>, // where the caller's `docs` live in memory
        seen: Mutex<Seen>,
        turn: Condvar,
        service: UnboundedSender<mpsc::Sender<()>>,
    }

    struct Shared(Arc<Probe>);

    impl Tally for Shared {
        fn tally(&self, part: &[String]) -> HashMap<String, usize> {
            let probe = &self.0;
            let mut seen = probe.seen.lock().unwrap();
            seen.entered += 1;
            seen.copied += usize::from(!probe.docs.contains(&(part.as_ptr() as usize)));
            probe.turn.notify_all();
            let (mut seen, waited) = probe
                .turn
                .wait_timeout_while(seen, WAIT, |s| s.entered < probe.want && s.gave_up == 0)
                .unwrap();
            if waited.timed_out() {
                seen.gave_up += 1;
                probe.turn.notify_all();
            }
            // Once one part went unanswered, the others do not wait again.
            let patience = if seen.unanswered == 0 {
                WAIT
            } else {
                Duration::ZERO
            };
            drop(seen);
            let (go, go_ahead) = mpsc::channel();
            let _ = probe.service.send(go);
            if go_ahead.recv_timeout(patience).is_err() {
                probe.seen.lock().unwrap().unanswered += 1;
            }
            Plain.tally(part)
        }
    }

    /// Counts, and checks nothing.
    struct Plain;

    impl Tally for Plain {
        fn tally(&self, part: &[String]) -> HashMap<String, usize> {
            reference(part).into_iter().collect()
        }
    }

    fn reference(docs: &[String]) -> Counts {
        let mut counts = Counts::new();
        for word in docs.iter().flat_map(|d| d.split_whitespace()) {
            *counts.entry(word.to_lowercase()).or_insert(0) += 1;
        }
        counts
    }

    fn docs(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("the quick fox {} The lazy dog {}", i % 7, i % 3))
            .collect()
    }

    /// Counts `docs` in `parts` parts with a `Probe`, on this test's single runtime thread,
    /// next to the service task that answers the parts.
    async fn run(docs: Vec<String>, parts: usize) -> Seen {
        let (service, mut asks) = unbounded_channel::<mpsc::Sender<()>>();
        let answering = tokio::spawn(async move {
            while let Some(go) = asks.recv().await {
                let _ = go.send(());
            }
        });
        // Moving a Vec moves no element: the parts must point into this range.
        let start = docs.as_ptr() as usize;
        let probe = Arc::new(Probe {
            want: parts,
            docs: start..start + std::mem::size_of_val(docs.as_slice()),
            seen: Mutex::default(),
            turn: Condvar::new(),
            service,
        });
        let counting = word_count(docs, parts, Shared(Arc::clone(&probe)));
        timeout(WAIT * 2, counting).await.expect(UNFINISHED);
        answering.abort();
        *probe.seen.lock().unwrap()
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn counts_match_a_sequential_count() {
        for (n, parts) in [(1001, 4), (10, 3), (0, 4)] {
            let input = docs(n);
            let want = reference(&input);
            let got = timeout(WAIT, word_count(input, parts, Plain))
                .await
                .expect(UNFINISHED);
            assert_eq!(
                got.get("the").copied().unwrap_or(0),
                2 * n,
                "\"the\" appears twice in each of {n} documents: add up the parts' counts"
            );
            assert_eq!(
                got, want,
                "{n} documents in {parts} parts: expected the same counts as a sequential count"
            );
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn the_parts_run_at_the_same_time() {
        for (n, parts) in [(1001, 4), (10, 3)] {
            let seen = run(docs(n), parts).await;
            assert_eq!(
                seen.entered, parts,
                "{n} documents in {parts} parts: expected {parts} calls of tally, one per thread, got {}",
                seen.entered
            );
            assert_eq!(
                seen.gave_up, 0,
                "the {parts} parts never ran at the same time (a part waited {WAIT:?} for the others): start every thread before joining any"
            );
            assert_eq!(
                seen.copied, 0,
                "{} of {parts} parts were copies of the documents: scoped threads can borrow their part of `docs`",
                seen.copied
            );
        }
    }

    // One runtime thread: the service task answers the parts only while that thread is free.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn the_runtime_keeps_serving_during_the_count() {
        for (n, parts) in [(1001, 4), (10, 3)] {
            let seen = run(docs(n), parts).await;
            assert!(seen.entered > 0, "tally was never called");
            assert_eq!(
                seen.unanswered, 0,
                "{} of {} parts got no answer from a task on the runtime within {WAIT:?}: the count held the runtime's only thread (run it with spawn_blocking)",
                seen.unanswered, seen.entered
            );
        }
    }
}
