// mutant: buffer_unordered yields results as they finish; order_survives_inverted_latencies expects 1..6 in order
// streams3_buffered: bounded concurrency, in order
//
// `.then(f)` runs one future at a time: nine 100 ms lookups take 900 ms. `.map(f)` turns the
// stream into a stream of futures that have not started, and `.buffered(n)` runs up to `n` of
// them at once and yields their results in the input order. `.buffer_unordered(n)` yields
// them as they finish instead, which reorders them.
//
// Why it matters: an import enriched each row with a pricing call, one at a time, and took
// hours. Firing all the calls at once got it rate-limited and banned. Bounded concurrency is
// the middle way, and `buffered` keeps rows in their order.
//
// What to do: in `prices`, replace `.then(...)` with `.map(...)` and `.buffered(MAX_IN_FLIGHT)`.
// Run `backlings hint` if you are stuck.

use futures::stream::{self, Stream, StreamExt};
use std::cell::Cell;
use std::time::Duration;

pub const MAX_IN_FLIGHT: usize = 3;

/// A pricing service that records how many calls it has started and how many ran at once.
#[derive(Default)]
pub struct Pricing {
    started: Cell<usize>,
    in_flight: Cell<usize>,
    peak: Cell<usize>,
}

impl Pricing {
    /// The price of `sku`, after `latency_ms`.
    pub async fn price(&self, sku: u32, latency_ms: u64) -> (u32, u64) {
        self.started.set(self.started.get() + 1);
        self.in_flight.set(self.in_flight.get() + 1);
        self.peak.set(self.peak.get().max(self.in_flight.get()));
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
        self.in_flight.set(self.in_flight.get() - 1);
        (sku, u64::from(sku) * 100)
    }

    pub fn started(&self) -> usize {
        self.started.get()
    }

    pub fn peak(&self) -> usize {
        self.peak.get()
    }
}

/// `(sku, latency_ms)` in, `(sku, price)` out, in the same order.
pub fn prices(pricing: &Pricing, skus: Vec<(u32, u64)>) -> impl Stream<Item = (u32, u64)> + '_ {
    stream::iter(skus)
        // `map` only creates the futures; `buffered` runs up to MAX_IN_FLIGHT of them at once
        // and still yields the results in input order.
        .map(move |(sku, ms)| pricing.price(sku, ms))
        .buffer_unordered(MAX_IN_FLIGHT)
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::{Instant, timeout};

    const LIMIT: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn nine_lookups_run_three_at_a_time() {
        let pricing = Pricing::default();
        let start = Instant::now();
        let skus = (1..=9).map(|s| (s, 100)).collect();
        let got: Vec<_> = timeout(LIMIT, prices(&pricing, skus).collect())
            .await
            .unwrap();
        assert_eq!(got.len(), 9, "expected 9 prices");
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(300),
            "9 x 100 ms, 3 at a time: expected exactly 300 ms"
        );
        assert_eq!(
            pricing.peak(),
            MAX_IN_FLIGHT,
            "expected at most and at least 3 in flight"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn order_survives_inverted_latencies() {
        let pricing = Pricing::default();
        let skus = vec![(1, 300), (2, 200), (3, 100), (4, 300), (5, 10), (6, 50)];
        let got: Vec<_> = timeout(LIMIT, prices(&pricing, skus).collect())
            .await
            .unwrap();
        let order: Vec<u32> = got.iter().map(|(sku, _)| *sku).collect();
        assert_eq!(
            order,
            vec![1, 2, 3, 4, 5, 6],
            "results come back in input order"
        );
        assert_eq!(got[2], (3, 300), "sku 3 costs 300");
    }

    #[tokio::test(start_paused = true)]
    async fn the_stream_is_lazy_and_bounded() {
        let pricing = Pricing::default();
        let skus = (1..=100).map(|s| (s, 100)).collect();
        let stream = prices(&pricing, skus);
        assert_eq!(
            pricing.started(),
            0,
            "building the stream must start no lookup"
        );
        let two: Vec<_> = timeout(LIMIT, stream.take(2).collect()).await.unwrap();
        assert_eq!(
            two,
            vec![(1, 100), (2, 200)],
            "expected the first two prices"
        );
        assert!(
            pricing.started() <= 5,
            "taking 2 results started {} lookups: expected at most 5",
            pricing.started()
        );
    }
}
