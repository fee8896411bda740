// event_loop_quiz: a fan-out aggregator
//
// This combines the topic. A search page asks three backends at once (`join!`), gives each a
// deadline (`timeout`), and answers with what it has when a backend is late: a partial result
// is better than no page. Ranking the scores is CPU work, so it yields to the scheduler every
// 1 000 scores (`yield_now`) and the other tasks on the thread stay responsive.
//
// Why it matters: this is the shape of every API gateway and BFF. Without deadlines one slow
// backend makes the whole page slow; without concurrency the latencies add up; without yields
// one large answer stalls every other request on the thread.
//
// Production caveat: yielding is a stopgap for short bursts. Heavy ranking belongs on
// `tokio::task::spawn_blocking` or a pool such as rayon (tokio's `spawn_blocking` docs),
// where it no longer delays the requests that share this thread.
//
// What to do: write `aggregate` (it ships as `todo!()`). Run `backlings hint` if you are stuck.

use std::future::Future;
use std::time::Duration;
use tokio::time::timeout;

/// One search backend. Production code calls a service; the tests plug in fakes.
pub trait Backend {
    fn name(&self) -> &'static str;
    /// Asks the backend; it answers with raw scores, after its own latency.
    fn query(&self) -> impl Future<Output = Vec<u64>>;
    /// CPU work for one score (a ranking model, say).
    fn rank(&self, score: u64) -> u64;
}

#[derive(Debug, PartialEq, Eq)]
pub struct Aggregate {
    /// The sum of `rank(score)` over every score that arrived in time.
    pub total: u64,
    /// The backends that answered in time, in the order given.
    pub answered: Vec<&'static str>,
    /// True when at least one backend missed the deadline.
    pub partial: bool,
}

/// Asks the three backends at once, each with `deadline`, and ranks what arrives in time.
pub async fn aggregate(backends: &[impl Backend; 3], deadline: Duration) -> Aggregate {
    // TODO:
    // 1. Query the three backends at once (`tokio::join!`), each in `timeout(deadline, ..)`.
    // 2. In the order given: if a backend answered in time, add `rank(score)` of each of its
    //    scores to `total` and its name to `answered`; if it was late, set `partial`.
    // 3. Ranking is CPU work: `tokio::task::yield_now().await` every 1 000 scores ranked,
    //    counted across all backends.
    todo!()
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::task::{Context, Poll};
    use tokio::time::{Instant, sleep, timeout};

    struct Fake {
        name: &'static str,
        ms: u64,
        scores: u64,
        ranked: Arc<AtomicU64>,
    }

    impl Backend for Fake {
        fn name(&self) -> &'static str {
            self.name
        }
        async fn query(&self) -> Vec<u64> {
            if self.ms > 0 {
                sleep(Duration::from_millis(self.ms)).await;
            }
            (1..=self.scores).collect()
        }
        fn rank(&self, score: u64) -> u64 {
            self.ranked.fetch_add(1, Ordering::Relaxed);
            score * 3 + 1
        }
    }

    /// Three fakes: (name, latency in ms, number of scores), sharing one counter of ranks.
    fn fakes(spec: [(&'static str, u64, u64); 3]) -> ([Fake; 3], Arc<AtomicU64>) {
        let ranked = Arc::new(AtomicU64::new(0));
        let fake = |(name, ms, scores)| Fake {
            name,
            ms,
            scores,
            ranked: ranked.clone(),
        };
        (spec.map(fake), ranked)
    }

    /// What the ranks of scores 1..=n add up to.
    fn ranks(n: u64) -> u64 {
        3 * n * (n + 1) / 2 + n
    }

    async fn run(spec: [(&'static str, u64, u64); 3], deadline_ms: u64) -> (Aggregate, u64) {
        let (backends, _) = fakes(spec);
        let start = Instant::now();
        let deadline = Duration::from_millis(deadline_ms);
        let result = timeout(Duration::from_secs(5), aggregate(&backends, deadline))
            .await
            .expect("aggregate never finished");
        (result, start.elapsed().as_millis() as u64)
    }

    #[tokio::test(start_paused = true)]
    async fn all_three_answer_in_the_slowest_ones_time() {
        let cases = [
            ([("web", 50, 3), ("news", 120, 4), ("ads", 80, 2)], 200, 120),
            ([("web", 30, 5), ("news", 10, 1), ("ads", 60, 7)], 100, 60),
        ];
        for (spec, deadline, slowest) in cases {
            let (result, took) = run(spec, deadline).await;
            let expected = Aggregate {
                total: spec.iter().map(|s| ranks(s.2)).sum(),
                answered: spec.iter().map(|s| s.0).collect(),
                partial: false,
            };
            assert_eq!(
                result, expected,
                "{spec:?}: expected every backend, in order"
            );
            assert_eq!(
                took, slowest,
                "{spec:?}: the backends run at once: expected the slowest one's {slowest} ms"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn late_backends_give_a_partial_result_at_the_deadline() {
        let cases = [
            (
                [("web", 50, 3), ("news", 900, 4), ("ads", 80, 2)],
                200,
                vec!["web", "ads"],
            ),
            (
                [("web", 90, 5), ("news", 20, 1), ("ads", 40, 7)],
                75,
                vec!["news", "ads"],
            ),
            (
                [("web", 90, 5), ("news", 80, 1), ("ads", 99, 7)],
                75,
                vec![],
            ),
        ];
        for (spec, deadline, answered) in cases {
            let (result, took) = run(spec, deadline).await;
            let in_time = spec.iter().filter(|s| s.1 < deadline);
            let expected = Aggregate {
                total: in_time.map(|s| ranks(s.2)).sum(),
                answered,
                partial: true,
            };
            assert_eq!(
                result, expected,
                "{spec:?} with a {deadline} ms deadline: expected only the backends in time"
            );
            assert_eq!(
                took, deadline,
                "expected to answer at the {deadline} ms deadline"
            );
        }
    }

    /// Puts the ping task straight back in the run queue (tokio's `yield_now` defers it).
    struct Requeue(bool);

    impl Future for Requeue {
        type Output = ();
        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn the_ping_task_gets_a_turn_every_1000_scores_throughout() {
        for spec in [
            [("web", 0, 20_500), ("news", 0, 7_300), ("ads", 0, 1)],
            [("web", 0, 999), ("news", 0, 0), ("ads", 0, 12_001)],
        ] {
            let (backends, ranked) = fakes(spec);
            let n: u64 = spec.iter().map(|s| s.2).sum();
            let finished = Arc::new(AtomicBool::new(false));
            let (seen, done) = (ranked.clone(), finished.clone());
            let ping = tokio::spawn(async move {
                let mut turns = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    turns.push(seen.load(Ordering::Relaxed));
                    Requeue(false).await;
                }
                turns
            });
            let result = aggregate(&backends, Duration::from_millis(100)).await;
            finished.store(true, Ordering::SeqCst);
            let turns = ping.await.unwrap();
            assert_eq!(
                result.total,
                spec.iter().map(|s| ranks(s.2)).sum(),
                "wrong total"
            );
            assert_eq!(
                ranked.load(Ordering::Relaxed),
                n,
                "expected {n} scores ranked"
            );
            let mut at = vec![0];
            at.extend(turns.iter().copied());
            at.push(n);
            let worst = at.windows(2).map(|w| w[1] - w[0]).max().unwrap();
            assert!(
                worst <= 1000,
                "{spec:?}: the ping task waited while {worst} scores were ranked: expected a \
                 turn at least every 1000 scores (counted across backends) for the whole run"
            );
            let mut slices = turns.clone();
            slices.dedup();
            assert!(
                slices.len() as u64 <= n / 500 + 2,
                "{spec:?}: ranking paused {} times for {n} scores: expected about one pause \
                 per 1000 scores, as each yield is a trip through the scheduler",
                slices.len()
            );
        }
    }
}
