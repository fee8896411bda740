// memory2_leaked_task: a background task that outlives its owner
//
// `tokio::spawn` detaches: the task runs until its future finishes, whether or not anyone holds
// its `JoinHandle`, and dropping the handle does not stop it. A loop that never ends keeps
// everything it captured alive forever: the async version of a leak. The owner must stop the
// task itself, for example by calling `JoinHandle::abort()` in its `Drop`.
//
// Why it matters: a service creates one rate-limit table per tenant, and each table spawns a
// task that refills its buckets every 100 ms. Tenants come and go, their tables are dropped,
// but the refill tasks keep running, each holding its table. Memory and CPU climb until the
// pod restarts. In Node it is the same story with a `setInterval` that is never cleared.
//
// A caveat: `abort()` is cooperative. The task is stopped where it next yields at an `.await`
// (an idle task is stopped without running again), so a task busy in a loop with no `.await`
// keeps running, and a `spawn_blocking` task cannot be aborted at all: give those a stop flag.
//
// What to do: keep the refill task's `JoinHandle` in `RateLimiter` and abort the task when the
// limiter is dropped. Run `backlings hint` if you are stuck.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::{Instant, interval_at};

/// How often the buckets are refilled.
pub const REFILL_EVERY: Duration = Duration::from_millis(100);
/// A bucket holds at most this many tokens.
pub const BURST: u32 = 3;

/// The shared state: one token bucket per client.
pub struct Buckets {
    tokens: Mutex<HashMap<String, u32>>,
}

impl Buckets {
    /// Every bucket gets one token back, up to `BURST`.
    fn refill(&self) {
        for tokens in self.tokens.lock().unwrap().values_mut() {
            *tokens = (*tokens + 1).min(BURST);
        }
    }
}

/// A per-tenant rate limiter with a background refill task.
pub struct RateLimiter {
    buckets: Arc<Buckets>,
    // TODO: keep the refill task's `JoinHandle` here, and stop the task when the limiter is
    // dropped (`impl Drop for RateLimiter`). Dropping a `JoinHandle` only detaches its task.
}

impl RateLimiter {
    /// Starts the limiter. `refills` counts every refill round, so tests can see the task run.
    pub fn start(refills: Arc<AtomicU64>) -> RateLimiter {
        let buckets = Arc::new(Buckets {
            tokens: Mutex::new(HashMap::new()),
        });
        let state = Arc::clone(&buckets);
        tokio::spawn(async move {
            let mut ticks = interval_at(Instant::now() + REFILL_EVERY, REFILL_EVERY);
            loop {
                ticks.tick().await;
                state.refill();
                refills.fetch_add(1, Ordering::Relaxed);
            }
        });
        RateLimiter { buckets }
    }

    /// Takes one token from `client`'s bucket; `false` means "429 Too Many Requests".
    pub fn try_acquire(&self, client: &str) -> bool {
        let mut tokens = self.buckets.tokens.lock().unwrap();
        let left = tokens.entry(client.to_string()).or_insert(BURST);
        if *left == 0 {
            return false;
        }
        *left -= 1;
        true
    }

    /// A non-owning handle to the shared state, so tests can check that it was freed.
    pub fn buckets(&self) -> std::sync::Weak<Buckets> {
        Arc::downgrade(&self.buckets)
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use tokio::time::sleep;

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test(start_paused = true)]
    async fn the_task_refills_while_the_limiter_is_alive() {
        // (how long we wait, refills by then, tokens back: one per refill, at most BURST)
        for (wait_ms, refills_then, tokens) in [(250, 2, 2), (730, 7, BURST)] {
            let refills = Arc::new(AtomicU64::new(0));
            let limiter = RateLimiter::start(Arc::clone(&refills));
            for _ in 0..BURST {
                assert!(
                    limiter.try_acquire("alice"),
                    "alice starts with {BURST} tokens"
                );
            }
            assert!(
                !limiter.try_acquire("alice"),
                "the bucket is empty: request {} must be refused",
                BURST + 1
            );
            sleep(Duration::from_millis(wait_ms)).await;
            assert_eq!(
                refills.load(Ordering::Relaxed),
                refills_then,
                "one refill every 100 ms: expected {refills_then} by {wait_ms} ms"
            );
            for n in 1..=tokens {
                assert!(
                    limiter.try_acquire("alice"),
                    "after {wait_ms} ms the bucket holds {tokens} tokens: request {n} must pass"
                );
            }
            assert!(
                !limiter.try_acquire("alice"),
                "after {wait_ms} ms the bucket holds {tokens} tokens (at most {BURST}): \
                 request {} must be refused",
                tokens + 1
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_limiter_frees_its_state_and_stops_its_task() {
        for alive_ms in [150, 420] {
            let refills = Arc::new(AtomicU64::new(0));
            let limiter = RateLimiter::start(Arc::clone(&refills));
            assert!(limiter.try_acquire("bob"));
            let buckets = limiter.buckets();
            sleep(Duration::from_millis(alive_ms)).await;
            assert!(
                buckets.upgrade().is_some(),
                "the limiter is alive, so its buckets must be too"
            );
            drop(limiter);
            // Give the runtime one refill period to act on the drop.
            sleep(REFILL_EVERY).await;
            assert!(
                buckets.upgrade().is_none(),
                "100 ms after the limiter was dropped, its buckets must be freed, but {} \
                 strong reference(s) remain (who else holds an Arc<Buckets>?)",
                buckets.strong_count()
            );
            assert_eq!(
                Arc::strong_count(&refills),
                1,
                "100 ms after the limiter was dropped, its refill task must be gone (the task \
                 still holds the refill counter)"
            );
            let expected = alive_ms / 100;
            sleep(Duration::from_secs(10)).await;
            assert_eq!(
                refills.load(Ordering::Relaxed),
                expected,
                "the limiter lived {alive_ms} ms: expected {expected} refills, and none after"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn tenants_come_and_go_without_leaking_tasks() {
        // A new tenant every 50 ms; each lives `life_ms`. Every one must be freed, with its
        // task, and must have been refilled exactly while it lived.
        for (tenants, life_ms) in [(40, 250), (12, 730)] {
            let life = Duration::from_millis(life_ms);
            let mut live = VecDeque::new();
            let mut gone = Vec::new();
            let mut step = 0;
            while gone.len() < tenants {
                if step % 5 == 0 && step / 5 < tenants {
                    let refills = Arc::new(AtomicU64::new(0));
                    let limiter = RateLimiter::start(Arc::clone(&refills));
                    live.push_back((Instant::now() + life, limiter, refills));
                }
                sleep(10 * MS).await;
                while live.front().is_some_and(|(end, ..)| *end <= Instant::now()) {
                    let (_, limiter, refills) = live.pop_front().unwrap();
                    gone.push((limiter.buckets(), refills));
                }
                step += 1;
            }
            sleep(REFILL_EVERY).await;
            let expected = life_ms / 100;
            for (i, (buckets, refills)) in gone.iter().enumerate() {
                assert!(
                    buckets.upgrade().is_none(),
                    "tenant {i} of {tenants} was dropped, but its buckets are still alive"
                );
                assert_eq!(
                    Arc::strong_count(refills),
                    1,
                    "tenant {i} of {tenants} was dropped, but its refill task still runs"
                );
                assert_eq!(
                    refills.load(Ordering::Relaxed),
                    expected,
                    "tenant {i} lived {life_ms} ms: expected {expected} refills"
                );
            }
        }
    }
}
