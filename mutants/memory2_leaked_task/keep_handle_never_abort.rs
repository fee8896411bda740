// mutant: stores the JoinHandle but never aborts it; dropping a handle only detaches, so the task runs on and keeps the buckets alive
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
// What to do: keep the refill task's `JoinHandle` in `RateLimiter` and abort the task when the
// limiter is dropped. Run `backlings hint` if you are stuck.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
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
    // The limiter owns its task: when the limiter goes, the task (and what it captured) goes.
    refill_task: JoinHandle<()>,
}

impl RateLimiter {
    /// Starts the limiter. `refills` counts every refill round, so tests can see the task run.
    pub fn start(refills: Arc<AtomicU64>) -> RateLimiter {
        let buckets = Arc::new(Buckets {
            tokens: Mutex::new(HashMap::new()),
        });
        let state = Arc::clone(&buckets);
        let refill_task = tokio::spawn(async move {
            let mut ticks = interval_at(Instant::now() + REFILL_EVERY, REFILL_EVERY);
            loop {
                ticks.tick().await;
                state.refill();
                refills.fetch_add(1, Ordering::Relaxed);
            }
        });
        RateLimiter {
            buckets,
            refill_task,
        }
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

impl Drop for RateLimiter {
    fn drop(&mut self) {
        let _ = &self.refill_task;
        // Dropping a JoinHandle only detaches the task; abort() actually stops it. The task's
        // future, with its `Arc<Buckets>`, is dropped the next time the runtime gets to it.
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::sleep;

    #[tokio::test(start_paused = true)]
    async fn the_task_refills_while_the_limiter_is_alive() {
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
            "the bucket is empty: the 4th request must be refused"
        );
        sleep(Duration::from_millis(250)).await;
        assert_eq!(
            refills.load(Ordering::Relaxed),
            2,
            "refills run at 100 and 200 ms: expected 2 by 250 ms"
        );
        assert!(
            limiter.try_acquire("alice") && limiter.try_acquire("alice"),
            "2 refills put 2 tokens back: 2 requests must pass"
        );
        assert!(
            !limiter.try_acquire("alice"),
            "after 2 refills and 2 requests the bucket is empty again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_limiter_frees_its_state() {
        let refills = Arc::new(AtomicU64::new(0));
        let limiter = RateLimiter::start(Arc::clone(&refills));
        assert!(limiter.try_acquire("bob"));
        let buckets = limiter.buckets();
        sleep(Duration::from_millis(150)).await;
        drop(limiter);
        // Give the runtime one refill period to act on the drop.
        sleep(REFILL_EVERY).await;
        assert!(
            buckets.upgrade().is_none(),
            "100 ms after the limiter was dropped, its buckets must be freed, but {} strong \
             reference(s) remain (who else holds an Arc<Buckets>?)",
            buckets.strong_count()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_stops_when_the_limiter_is_dropped() {
        let refills = Arc::new(AtomicU64::new(0));
        let limiter = RateLimiter::start(Arc::clone(&refills));
        sleep(Duration::from_millis(350)).await;
        assert_eq!(
            refills.load(Ordering::Relaxed),
            3,
            "refills run at 100, 200 and 300 ms: expected 3 by 350 ms"
        );
        drop(limiter);
        sleep(Duration::from_secs(10)).await;
        assert_eq!(
            refills.load(Ordering::Relaxed),
            3,
            "the limiter was dropped at 350 ms: expected the refill count to stay at 3"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn each_limiter_has_its_own_task() {
        let old_refills = Arc::new(AtomicU64::new(0));
        let new_refills = Arc::new(AtomicU64::new(0));
        let old = RateLimiter::start(Arc::clone(&old_refills));
        let new = RateLimiter::start(Arc::clone(&new_refills));
        sleep(Duration::from_millis(150)).await;
        drop(old);
        sleep(Duration::from_millis(300)).await;
        assert_eq!(
            old_refills.load(Ordering::Relaxed),
            1,
            "the old limiter was dropped at 150 ms: expected 1 refill"
        );
        assert_eq!(
            new_refills.load(Ordering::Relaxed),
            4,
            "the other limiter is still alive at 450 ms: expected 4 refills"
        );
        assert!(new.try_acquire("carol"));
    }
}
