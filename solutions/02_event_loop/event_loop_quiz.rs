// event_loop_quiz: a fan-out aggregator
//
// This combines the topic. A search page asks three backends at once (`join!`), gives each a
// deadline (`timeout`), and answers with what it has when a backend is late: a partial result
// is better than no page. Summing the answers is CPU work, so it yields to the scheduler every
// 1 000 items (`yield_now`) and the other tasks on the thread stay responsive.
//
// Why it matters: this is the shape of every API gateway and BFF. Without deadlines one slow
// backend makes the whole page slow; without concurrency the latencies add up; without yields
// one large answer stalls every other request on the thread.
//
// What to do: write `aggregate` (it ships as `todo!()`). Run `backlings hint` if you are stuck.

use std::time::Duration;
use tokio::time::{sleep, timeout};

pub const DEADLINE: Duration = Duration::from_millis(200);

pub struct Backend {
    pub name: &'static str,
    pub latency: Duration,
    /// How many scores it returns.
    pub results: u64,
}

impl Backend {
    pub async fn query(&self) -> Vec<u64> {
        sleep(self.latency).await;
        (1..=self.results).collect()
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Aggregate {
    /// The sum of every score that arrived in time.
    pub total: u64,
    /// The backends that answered in time, in the order given.
    pub answered: Vec<&'static str>,
    /// True when at least one backend missed the deadline.
    pub partial: bool,
}

/// Sums scores, giving other tasks a turn every 1 000 items.
async fn sum_scores(scores: &[u64]) -> u64 {
    let mut total = 0;
    for (i, s) in scores.iter().enumerate() {
        total += s;
        if i % 1000 == 999 {
            tokio::task::yield_now().await;
        }
    }
    total
}

pub async fn aggregate(backends: &[Backend; 3]) -> Aggregate {
    // All three at once, each with its own deadline: one late backend costs only its share.
    let [a, b, c] = backends;
    let answers = tokio::join!(
        timeout(DEADLINE, a.query()),
        timeout(DEADLINE, b.query()),
        timeout(DEADLINE, c.query()),
    );
    let mut result = Aggregate {
        total: 0,
        answered: Vec::new(),
        partial: false,
    };
    for (backend, answer) in [(a, answers.0), (b, answers.1), (c, answers.2)] {
        match answer {
            Ok(scores) => {
                result.total += sum_scores(&scores).await;
                result.answered.push(backend.name);
            }
            Err(_late) => result.partial = true,
        }
    }
    result
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::time::Instant;

    fn backend(name: &'static str, ms: u64, results: u64) -> Backend {
        Backend {
            name,
            latency: Duration::from_millis(ms),
            results,
        }
    }

    async fn run(backends: [Backend; 3]) -> (Aggregate, Duration) {
        let start = Instant::now();
        let result = timeout(Duration::from_secs(5), aggregate(&backends))
            .await
            .expect("aggregate must finish");
        (result, start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn all_three_answer_in_the_slowest_ones_time() {
        let (result, took) = run([
            backend("web", 50, 3),
            backend("news", 120, 4),
            backend("ads", 80, 2),
        ])
        .await;
        assert_eq!(
            result,
            Aggregate {
                total: 6 + 10 + 3,
                answered: vec!["web", "news", "ads"],
                partial: false
            },
            "expected every backend, total 19"
        );
        assert_eq!(
            took,
            Duration::from_millis(120),
            "the backends run at once: expected 120 ms"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_backend_gives_a_partial_result_at_the_deadline() {
        let (result, took) = run([
            backend("web", 50, 3),
            backend("news", 900, 4),
            backend("ads", 80, 2),
        ])
        .await;
        assert_eq!(
            result,
            Aggregate {
                total: 6 + 3,
                answered: vec!["web", "ads"],
                partial: true
            },
            "news is late: expected web and ads only, total 9, partial"
        );
        assert_eq!(took, DEADLINE, "expected to answer at the 200 ms deadline");
    }

    #[tokio::test(start_paused = true)]
    async fn a_big_answer_does_not_starve_other_tasks() {
        let finished = Arc::new(AtomicBool::new(false));
        let flag = finished.clone();
        let agg = tokio::spawn(async move {
            let r = aggregate(&[
                backend("web", 10, 200_000),
                backend("news", 10, 1),
                backend("ads", 10, 1),
            ])
            .await;
            flag.store(true, Ordering::SeqCst);
            r
        });
        // Runs as soon as the aggregator is past its queries and busy summing.
        sleep(Duration::from_millis(10)).await;
        tokio::task::yield_now().await;
        let starved = finished.load(Ordering::SeqCst);
        let result = agg.await.expect("aggregate must not panic");
        assert_eq!(
            result.total,
            200_000 * 200_001 / 2 + 2,
            "expected the sum of every score"
        );
        assert!(
            !starved,
            "summing 200 000 scores must yield: another task got no turn until it ended"
        );
    }
}
