// jobs1_backoff: wait longer after each failure, up to a cap, at a random point
//
// A job that calls a flaky service retries. Retrying at once, or every 100 ms, hammers a
// service that is already down. Exponential backoff doubles the wait after each failure
// (100, 200, 400, 800 ms, ...) and a cap keeps it bounded (never more than, say, 30 s). Jitter
// spreads the clients out: with "full jitter" each wait is drawn at random between zero and
// that ceiling, so a thousand clients that failed together do not all come back together. The
// random numbers come from a seeded generator here, so every delay is an exact, testable
// number.
//
// Why it matters: a database failed over and 2 000 workers lost it at the same moment. They
// all retried every second, on the same beat: the new primary got 2 000 connections in the
// same millisecond, every second, and fell over too.
//
// Production caveat: backoff spreads retries out in time; it does not limit how many there
// are. Retries at several layers multiply (3 attempts at each of 3 layers is 27 calls to the
// bottom one), so a retry budget (tower's `retry::budget`, Finagle's `RetryBudget`) caps
// retries at a share of normal traffic.
//
// What to do: implement `Backoff::delay` as documented: `min(cap, base * 2^retry)`, then
// full jitter when there is a generator. It must not overflow for large `retry`.
// Run `backlings hint` if you are stuck.

use std::future::Future;
use std::time::Duration;

/// Marsaglia's xorshift64 (shifts 13, 7, 17): tiny, seeded, and the same numbers every run.
pub struct XorShift(u64);

impl XorShift {
    /// The seed must not be 0 (xorshift would return 0 forever).
    pub fn new(seed: u64) -> XorShift {
        assert_ne!(seed, 0, "xorshift needs a seed other than 0");
        XorShift(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// `Some`: full jitter, drawn from this generator. `None`: no jitter.
    pub jitter: Option<XorShift>,
}

impl Backoff {
    /// The wait before retry number `retry` (0 is the first retry, after the first failure).
    /// Without jitter it is the ceiling `min(cap, base * 2^retry)`. With jitter it is a whole
    /// number of milliseconds, `next_u64() % (ceiling_ms + 1)`: uniform in `0..=ceiling`, one
    /// draw per call.
    pub fn delay(&mut self, retry: u32) -> Duration {
        // Doubling saturates instead of overflowing; the cap then bounds it.
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.cap);
        match &mut self.jitter {
            None => ceiling,
            Some(rng) => {
                let ceiling_ms = ceiling.as_millis() as u64;
                Duration::from_millis(rng.next_u64() % (ceiling_ms + 1))
            }
        }
    }
}

/// Calls `op` until it succeeds or has failed `max_attempts` times, and waits
/// `backoff.delay(n)` before retry `n`. Gives up with the last error.
pub async fn retry<T, E, F, Fut>(
    backoff: &mut Backoff,
    max_attempts: u32,
    mut op: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut retries = 0;
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(err) if retries + 1 >= max_attempts => return Err(err),
            Err(_) => {
                tokio::time::sleep(backoff.delay(retries)).await;
                retries += 1;
            }
        }
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn plain(base: u64, cap: u64) -> Backoff {
        Backoff {
            base: ms(base),
            cap: ms(cap),
            jitter: None,
        }
    }

    /// Runs an operation that fails `failures` times, then succeeds, with at most
    /// `max_attempts` attempts. Returns the result and the time of each attempt, in ms.
    async fn attempts(
        backoff: &mut Backoff,
        max_attempts: u32,
        failures: u32,
    ) -> (Result<u32, String>, Vec<u64>) {
        let start = Instant::now();
        let mut times = Vec::new();
        let result = retry(backoff, max_attempts, || {
            times.push(start.elapsed().as_millis() as u64);
            let n = times.len() as u32;
            async move {
                if n > failures {
                    Ok(n)
                } else {
                    Err(format!("failure {n}"))
                }
            }
        })
        .await;
        (result, times)
    }

    #[tokio::test(start_paused = true)]
    async fn without_jitter_each_wait_doubles() {
        let (result, times) = attempts(&mut plain(100, 60_000), 10, 3).await;
        assert_eq!(
            times,
            vec![0, 100, 300, 700],
            "base 100 ms, 3 failures: expected attempts at 0, 100, 300, 700 ms (waits 100, 200, 400)"
        );
        assert_eq!(
            result,
            Ok(4),
            "the fourth attempt succeeds and its value is returned"
        );
        let (result, times) = attempts(&mut plain(30, 60_000), 10, 5).await;
        assert_eq!(
            times,
            vec![0, 30, 90, 210, 450, 930],
            "base 30 ms, 5 failures: expected waits 30, 60, 120, 240, 480 ms"
        );
        assert_eq!(result, Ok(6));
    }

    #[tokio::test(start_paused = true)]
    async fn the_cap_holds_and_the_last_error_is_returned() {
        let (result, times) = attempts(&mut plain(100, 1_000), 8, 99).await;
        assert_eq!(
            times,
            vec![0, 100, 300, 700, 1_500, 2_500, 3_500, 4_500],
            "base 100, cap 1 000 ms: expected waits 100, 200, 400, 800, then 1 000 every time"
        );
        assert_eq!(
            result,
            Err("failure 8".to_string()),
            "after 8 failed attempts: give up with the last error"
        );
        let (result, times) = attempts(&mut plain(50, 300), 6, 99).await;
        assert_eq!(
            times,
            vec![0, 50, 150, 350, 650, 950],
            "base 50, cap 300 ms: expected waits 50, 100, 200, 300, 300"
        );
        assert_eq!(result, Err("failure 6".to_string()));
        let (result, times) = attempts(&mut plain(50, 300), 1, 99).await;
        assert_eq!(
            (result, times),
            (Err("failure 1".to_string()), vec![0]),
            "max_attempts 1: one attempt, no retry"
        );
    }

    #[test]
    fn huge_retry_numbers_stay_at_the_cap() {
        for (base, cap) in [(100, 30_000), (7, 5_000)] {
            let mut backoff = plain(base, cap);
            for retry in [20, 31, 32, 33, 63, 64, 65, 1_000, u32::MAX] {
                assert_eq!(
                    backoff.delay(retry),
                    ms(cap),
                    "base {base} ms, cap {cap} ms, retry {retry}: expected the cap (doubling must saturate, not overflow)"
                );
            }
            let wait = jittered(base, cap, 3).delay(u32::MAX);
            assert!(
                wait <= ms(cap),
                "with jitter, retry u32::MAX: expected at most the cap, got {wait:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_wait_depends_on_its_retry_number_only() {
        let cases = [
            (100, 60_000, [800, 100, 800, 200], [0, 100, 300, 700]),
            (30, 200, [200, 30, 200, 60], [0, 30, 90, 210]),
        ];
        for (base, cap, waits, times) in cases {
            let mut backoff = plain(base, cap);
            let got = [3, 0, 3, 1].map(|retry| backoff.delay(retry).as_millis() as u64);
            assert_eq!(
                got, waits,
                "base {base} ms, cap {cap} ms: delay(3), delay(0), delay(3), delay(1) on one Backoff: \
                 expected {waits:?}: the wait is computed from `retry`, not kept in state that doubles on each call"
            );
            for run in 1..=2 {
                let (_, got) = attempts(&mut backoff, 4, 99).await;
                assert_eq!(
                    got, times,
                    "run {run} of a job on the same Backoff (base {base} ms, cap {cap} ms): expected attempts at {times:?} ms"
                );
            }
        }
    }

    fn jittered(base: u64, cap: u64, seed: u64) -> Backoff {
        Backoff {
            base: ms(base),
            cap: ms(cap),
            jitter: Some(XorShift::new(seed)),
        }
    }

    #[test]
    fn full_jitter_draws_once_per_wait_below_the_ceiling() {
        let cases: [(u64, u64, u64, [u64; 10]); 2] = [
            (
                100,
                2_000,
                42,
                [94, 133, 72, 166, 973, 1293, 1498, 291, 1737, 757],
            ),
            (30, 500, 7, [13, 44, 3, 32, 278, 73, 406, 402, 468, 482]),
        ];
        for (base, cap, seed, expected) in cases {
            let mut backoff = jittered(base, cap, seed);
            let got: Vec<u64> = (0..10)
                .map(|r| backoff.delay(r).as_millis() as u64)
                .collect();
            for (retry, wait) in got.iter().enumerate() {
                let ceiling = (base << retry).min(cap);
                assert!(
                    *wait <= ceiling,
                    "seed {seed}, retry {retry}: a wait of {wait} ms is above the ceiling min({cap}, {base} * 2^{retry}) = {ceiling} ms"
                );
            }
            assert_eq!(
                got, expected,
                "base {base}, cap {cap}, seed {seed}: expected next_u64() % (ceiling_ms + 1) for each retry, one draw each"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn two_seeds_retry_at_different_times() {
        let (_, a) = attempts(&mut jittered(100, 2_000, 42), 6, 99).await;
        let (_, b) = attempts(&mut jittered(100, 2_000, 7), 6, 99).await;
        assert_eq!(
            a,
            vec![0, 94, 227, 299, 465, 1_438],
            "seed 42: expected attempts at 0, 94, 227, 299, 465, 1 438 ms"
        );
        assert_eq!(
            b,
            vec![0, 32, 98, 169, 965, 1_821],
            "seed 7: expected attempts at 0, 32, 98, 169, 965, 1 821 ms: not in step with seed 42"
        );
    }
}
