// streams3_buffered: bounded concurrency, in order
//
// `.then(f)` runs one future at a time: nine 100 ms lookups take 900 ms. `.map(f)` turns the
// stream into a stream of futures that have not started yet, and `.buffered(n)` runs up to `n`
// of them at once and yields their results in the input order. As soon as the result at the
// head is yielded, the next future starts: a sliding window, not batches of `n`.
// `.buffer_unordered(n)` yields results as they finish instead, which reorders them.
//
// Why it matters: an import enriched each row with a pricing call, one at a time, and took
// hours. Firing all the calls at once got it rate-limited and banned. Bounded concurrency is
// the middle way, and `buffered` keeps rows in their order.
//
// Production caveat: `buffered(n)` counts a result that has finished but waits for a slower one
// before it against `n` (the futures docs of `FuturesOrdered::len`). One slow call at the head
// holds the window, and fewer than `n` calls run meanwhile. If order does not matter,
// `buffer_unordered(n)` keeps `n` busy.
//
// What to do: in `prices`, run up to `max_in_flight` lookups at once and keep the input order.
// Run `backlings hint` if you are stuck.

use futures::stream::{self, Stream, StreamExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub sku: u32,
    pub cents: u64,
}

/// The seam to the pricing service: production calls it over HTTP, the tests use a fake.
pub trait PriceApi {
    fn price(&self, sku: u32) -> impl Future<Output = Price>;
}

/// The price of each of `skus`, in the same order, with at most `max_in_flight` lookups
/// running at any moment.
pub fn prices<P: PriceApi>(
    api: &P,
    skus: Vec<u32>,
    max_in_flight: usize,
) -> impl Stream<Item = Price> + '_ {
    stream::iter(skus)
        // TODO: `then` waits for each lookup before it starts the next one. Run up to
        // `max_in_flight` lookups at once instead, and keep the input order.
        .then(move |sku| api.price(sku))
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::time::Duration;
    use tokio::time::{Instant, sleep, timeout};

    const LIMIT: Duration = Duration::from_secs(60);

    /// `(sku, ms)` pairs: a latency per sku, or a start time per call.
    type Pairs = &'static [(u32, u64)];

    /// A fake pricing service: each sku has its latency, and every call is recorded with its
    /// start and end time (in ms since the fake was made).
    struct Fake {
        latency_ms: BTreeMap<u32, u64>,
        t0: Instant,
        calls: RefCell<Vec<(u32, u64, Option<u64>)>>,
    }

    impl Fake {
        fn new(latencies: &[(u32, u64)]) -> Fake {
            Fake {
                latency_ms: latencies.iter().copied().collect(),
                t0: Instant::now(),
                calls: RefCell::new(Vec::new()),
            }
        }

        fn now(&self) -> u64 {
            self.t0.elapsed().as_millis() as u64
        }

        fn skus(&self) -> Vec<u32> {
            self.latency_ms.keys().copied().collect()
        }

        fn started(&self) -> usize {
            self.calls.borrow().len()
        }

        /// The start time of each call, in the order the calls were made.
        fn starts(&self) -> Vec<(u32, u64)> {
            self.calls.borrow().iter().map(|c| (c.0, c.1)).collect()
        }

        /// The most calls that were running at the same moment, over the whole run.
        fn peak(&self) -> usize {
            let calls = self.calls.borrow();
            let mut edges: Vec<(u64, i32)> = Vec::new();
            for &(_, start, end) in calls.iter() {
                edges.push((start, 1));
                edges.push((end.unwrap_or(u64::MAX), -1));
            }
            // At the same instant, ends come before starts: a call that ends at 100 ms and
            // one that starts at 100 ms do not overlap.
            edges.sort();
            let (mut now, mut peak) = (0i32, 0i32);
            for (_, d) in edges {
                now += d;
                peak = peak.max(now);
            }
            peak as usize
        }
    }

    impl PriceApi for Fake {
        async fn price(&self, sku: u32) -> Price {
            let i = {
                let mut calls = self.calls.borrow_mut();
                calls.push((sku, self.now(), None));
                calls.len() - 1
            };
            sleep(Duration::from_millis(self.latency_ms[&sku])).await;
            self.calls.borrow_mut()[i].2 = Some(self.now());
            Price {
                sku,
                cents: u64::from(sku) * 100 + 7,
            }
        }
    }

    fn expected(skus: &[u32]) -> Vec<Price> {
        skus.iter()
            .map(|&sku| Price {
                sku,
                cents: u64::from(sku) * 100 + 7,
            })
            .collect()
    }

    async fn run(fake: &Fake, max_in_flight: usize) -> Vec<Price> {
        timeout(LIMIT, prices(fake, fake.skus(), max_in_flight).collect())
            .await
            .expect("the stream must end once every sku is priced")
    }

    #[tokio::test(start_paused = true)]
    async fn lookups_run_max_in_flight_at_a_time() {
        // (skus, latency, max_in_flight, total time, start time of each call)
        let cases: [(u32, u64, usize, u64, &[u64]); 2] = [
            (9, 100, 3, 300, &[0, 0, 0, 100, 100, 100, 200, 200, 200]),
            (10, 50, 4, 150, &[0, 0, 0, 0, 50, 50, 50, 50, 100, 100]),
        ];
        for (n, ms, max, total, starts) in cases {
            let fake = Fake::new(&(1..=n).map(|s| (s, ms)).collect::<Vec<_>>());
            let got = run(&fake, max).await;
            assert_eq!(
                got,
                expected(&fake.skus()),
                "expected every price, in order"
            );
            assert_eq!(
                fake.now(),
                total,
                "{n} x {ms} ms, {max} at a time: expected exactly {total} ms"
            );
            let at: Vec<u64> = fake.starts().iter().map(|s| s.1).collect();
            assert_eq!(
                at, starts,
                "{n} x {ms} ms with max_in_flight = {max}: expected the calls to start at these ms"
            );
            assert_eq!(
                fake.peak(),
                max,
                "expected exactly {max} calls running at once at the peak, never more"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_finished_head_makes_room_for_the_next_lookup() {
        // A sliding window: when the head finishes, the next call starts at once; it does not
        // wait for the rest of a batch. (sku latencies, max_in_flight, (sku, start ms))
        let cases: [(Pairs, usize, Pairs); 2] = [
            (
                &[(1, 10), (2, 100), (3, 10), (4, 10)],
                2,
                &[(1, 0), (2, 0), (3, 10), (4, 100)],
            ),
            (
                &[(1, 20), (2, 30), (3, 200), (4, 10), (5, 10)],
                3,
                &[(1, 0), (2, 0), (3, 0), (4, 20), (5, 30)],
            ),
        ];
        for (latencies, max, starts) in cases {
            let fake = Fake::new(latencies);
            let got = run(&fake, max).await;
            assert_eq!(
                got,
                expected(&fake.skus()),
                "expected every price, in order"
            );
            assert_eq!(
                fake.starts(),
                starts,
                "latencies {latencies:?}, max_in_flight = {max}: expected (sku, start ms) as \
                 shown; each call starts as soon as the one at the head has been yielded"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn order_survives_inverted_latencies() {
        let cases: [(Pairs, usize); 2] = [
            (
                &[(1, 300), (2, 200), (3, 100), (4, 300), (5, 10), (6, 50)],
                3,
            ),
            (&[(10, 90), (20, 70), (30, 50), (40, 30), (50, 10)], 5),
        ];
        for (latencies, max) in cases {
            let fake = Fake::new(latencies);
            let got = run(&fake, max).await;
            assert_eq!(
                got,
                expected(&fake.skus()),
                "later skus answer first: expected the prices still in input order"
            );
            assert_eq!(fake.peak(), max, "expected {max} calls running at once");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_stream_is_lazy_and_bounded_throughout() {
        for max in [3, 5] {
            let fake = Fake::new(&(1..=60).map(|s| (s, 100)).collect::<Vec<_>>());
            let mut stream = Box::pin(prices(&fake, fake.skus(), max));
            assert_eq!(
                fake.started(),
                0,
                "building the stream must start no lookup"
            );
            // A slow consumer: 1 s per price. The stream must never run more than
            // max_in_flight lookups ahead of what the consumer has taken.
            for taken in 1..=20 {
                let price = timeout(LIMIT, stream.next()).await.unwrap();
                assert_eq!(
                    price,
                    expected(&[taken as u32]).pop(),
                    "expected price #{taken}"
                );
                assert!(
                    fake.started() <= taken + max,
                    "after {taken} prices were taken, {} lookups had started: expected at \
                     most {taken} + max_in_flight ({max})",
                    fake.started()
                );
                sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
