// threads_quiz: a parallel word count behind an async front end
//
// This combines the topic. An async handler must not do CPU-heavy work on the runtime's
// threads, so it hands the job to the blocking pool (`spawn_blocking`). There, the job uses
// every core: it splits the documents into `THREADS` parts and counts each on a scoped thread
// that borrows its part (`thread::scope`), then merges the partial counts.
//
// Why it matters: a search service rebuilt its term statistics inside a request handler. The
// p99 latency of every other endpoint went to seconds whenever it ran. Offloading it fixed
// the latency; splitting it across cores brought the rebuild from minutes to seconds.
//
// What to do: write `word_count` (it ships counting on the runtime's thread, on one core).
// Run `backlings hint` if you are stuck.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};

pub const THREADS: usize = 4;

pub type Counts = BTreeMap<String, usize>;

/// Counts lowercase words in one part of the documents.
fn count_part(docs: &[String]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for doc in docs {
        for word in doc.split_whitespace() {
            *counts.entry(word.to_lowercase()).or_insert(0) += 1;
        }
    }
    counts
}

/// Counts every word, on `THREADS` scoped threads, off the async runtime. `workers` records
/// the threads that counted.
pub async fn word_count(docs: Vec<String>, workers: Arc<Mutex<HashSet<ThreadId>>>) -> Counts {
    // TODO: this counts on the runtime's thread, on one core. Instead:
    // 1. run the job with `tokio::task::spawn_blocking`, and await it;
    // 2. inside, split `docs` into THREADS parts (`chunks`, rounding up) and count each with
    //    `count_part` on a scoped thread (`thread::scope`), inserting the thread's id into
    //    `workers`;
    // 3. merge the partial counts into one `Counts`, adding up the counts of each word.
    let _ = workers;
    count_part(&docs).into_iter().collect()
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn docs(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("the quick fox {} The lazy dog {}", i % 7, i % 3))
            .collect()
    }

    fn reference(docs: &[String]) -> Counts {
        count_part(docs).into_iter().collect()
    }

    #[tokio::test]
    async fn counts_match_a_sequential_count() {
        let input = docs(1001);
        let want = reference(&input);
        let workers = Arc::default();
        let got = word_count(input, Arc::clone(&workers)).await;
        assert_eq!(
            got.get("the"),
            Some(&2002),
            "\"the\" appears twice in each of 1001 documents"
        );
        assert_eq!(got, want, "expected the same counts as a sequential count");
    }

    #[tokio::test]
    async fn four_worker_threads_do_the_counting() {
        let workers: Arc<Mutex<HashSet<ThreadId>>> = Arc::default();
        word_count(docs(1001), Arc::clone(&workers)).await;
        let workers = workers.lock().unwrap();
        assert_eq!(
            workers.len(),
            THREADS,
            "expected exactly {THREADS} counting threads"
        );
        assert!(
            !workers.contains(&thread::current().id()),
            "the runtime's thread must not count"
        );
    }

    // One runtime thread: the ping task can only run if word_count leaves it free.
    #[tokio::test(flavor = "current_thread")]
    async fn the_runtime_thread_stays_free() {
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let job = tokio::spawn(async move {
            let counts = word_count(docs(20_000), Arc::default()).await;
            flag.store(true, Ordering::SeqCst);
            counts
        });
        let ping = tokio::spawn(async move { done.load(Ordering::SeqCst) });
        let job_was_done_when_ping_ran = ping.await.unwrap();
        job.await.unwrap();
        assert!(
            !job_was_done_when_ping_ran,
            "the other task only ran after the whole count: it blocked the runtime's thread"
        );
    }
}
