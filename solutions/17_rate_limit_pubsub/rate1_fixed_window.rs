// rate1_fixed_window: a counter per client per window, like Redis's INCR + EXPIRE
//
// The simplest rate limit: allow `limit` requests per `window` for each client. In Redis it is
// two commands: `INCR rate:<client>` counts the request, and when the count comes back as 1
// (the first request of a window) `EXPIRE rate:<client> <window>` gives the key a lifetime.
// When the key expires, Redis deletes it and the next request starts a fresh window at 1. In
// process it is a map from client to `(count, expires_at)`; each client's window starts at
// its own first request, not on a shared grid. Expired means a fresh window, and the clock is
// injected, so the tests decide what time it is.
//
// Why it matters: a login endpoint counted failed attempts per IP and never reset the count.
// A week later, every office behind one NAT address was locked out for good.
//
// Production caveat: a map keyed by client grows with every client ever seen: a scan from a
// million IPs is a million entries kept forever. Redis forgets them through EXPIRE; in process
// you must evict expired windows yourself (`evict_expired`, called by a periodic task). And in
// Redis, INCR then EXPIRE are two commands: a client that dies between them leaves a key with
// no TTL that never resets. The Redis docs' fix is a Lua script that runs both at once; since
// Redis 7, `INCR` and `EXPIRE key <window> NX` (set a TTL only if there is none) in one MULTI.
//
// What to do: in `hit`, start a new window when the client's window has expired.
// Run `backlings hint` if you are stuck.

use std::collections::HashMap;
use std::time::Duration;

/// The time port: how long since some fixed start.
pub trait Clock {
    fn now(&self) -> Duration;
}

struct Counter {
    count: u64,
    expires_at: Duration,
}

pub struct FixedWindow<C> {
    clock: C,
    limit: u64,
    window: Duration,
    counters: HashMap<String, Counter>,
}

impl<C: Clock> FixedWindow<C> {
    pub fn new(clock: C, limit: u64, window: Duration) -> Self {
        FixedWindow {
            clock,
            limit,
            window,
            counters: HashMap::new(),
        }
    }

    /// Counts one request from `client`; true when it is allowed.
    pub fn hit(&mut self, client: &str) -> bool {
        let now = self.clock.now();
        let window = self.window;
        let counter = self.counters.entry(client.to_owned()).or_insert(Counter {
            count: 0,
            expires_at: now + window,
        });
        // The key has expired: like Redis after EXPIRE, start again at 0 with a new lifetime.
        if now >= counter.expires_at {
            *counter = Counter {
                count: 0,
                expires_at: now + window,
            };
        }
        counter.count += 1;
        counter.count <= self.limit
    }

    /// Forgets every client whose window is over: what Redis's EXPIRE does for you.
    pub fn evict_expired(&mut self) {
        let now = self.clock.now();
        self.counters.retain(|_, c| now < c.expires_at);
    }

    /// How many clients the limiter remembers.
    pub fn tracked(&self) -> usize {
        self.counters.len()
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A clock the test moves by hand, shared with the limiter.
    #[derive(Clone, Default)]
    struct FakeClock(Rc<Cell<Duration>>);

    impl FakeClock {
        fn set_ms(&self, ms: u64) {
            self.0.set(Duration::from_millis(ms));
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Duration {
            self.0.get()
        }
    }

    fn limiter(limit: u64, window_s: u64) -> (FakeClock, FixedWindow<FakeClock>) {
        let clock = FakeClock::default();
        let limiter = FixedWindow::new(clock.clone(), limit, Duration::from_secs(window_s));
        (clock, limiter)
    }

    /// Sends `n` requests from `client` at the current time; returns how many were allowed.
    fn burst(l: &mut FixedWindow<FakeClock>, client: &str, n: u64) -> u64 {
        (0..n).filter(|_| l.hit(client)).count() as u64
    }

    #[test]
    fn the_limit_holds_in_every_window() {
        for (limit, window_s) in [(3, 10), (5, 60)] {
            let (clock, mut l) = limiter(limit, window_s);
            let w = window_s * 1000;
            // Five windows in a row, each hammered with twice the limit at its start and end.
            for k in 0..5 {
                clock.set_ms(k * w);
                let allowed = burst(&mut l, "ann", 2 * limit);
                assert_eq!(
                    allowed,
                    limit,
                    "limit {limit} per {window_s} s, window {k} (starting at {} ms): \
                     expected exactly {limit} allowed of {}; a counter that never resets \
                     allows 0 after the first window",
                    k * w,
                    2 * limit
                );
                clock.set_ms(k * w + w - 1);
                assert!(
                    !l.hit("ann"),
                    "limit {limit} per {window_s} s: at {} ms the window that started at {} ms \
                     is still open (it ends at {} ms), expected denied",
                    k * w + w - 1,
                    k * w,
                    (k + 1) * w
                );
            }
        }
    }

    #[test]
    fn the_window_ends_exactly_at_its_expiry() {
        for (limit, window_s) in [(3, 10), (5, 60)] {
            let (clock, mut l) = limiter(limit, window_s);
            let w = window_s * 1000;
            clock.set_ms(400);
            assert_eq!(burst(&mut l, "bob", limit), limit, "the first {limit} pass");
            clock.set_ms(400 + w - 1);
            assert!(
                !l.hit("bob"),
                "limit {limit} per {window_s} s, first request at 400 ms: at {} ms the window \
                 is still open, expected denied",
                400 + w - 1
            );
            clock.set_ms(400 + w);
            assert_eq!(
                burst(&mut l, "bob", limit + 1),
                limit,
                "limit {limit} per {window_s} s, first request at 400 ms: the key expires at \
                 exactly {} ms, so a new window allows {limit} again (and no more)",
                400 + w
            );
        }
    }

    #[test]
    fn a_new_window_starts_at_zero_from_the_first_request_after_expiry() {
        for (limit, window_s) in [(3, 10), (5, 60)] {
            let (clock, mut l) = limiter(limit, window_s);
            let w = window_s * 1000;
            // cid used 1 of its limit; what it did not use does not carry over.
            clock.set_ms(400);
            assert!(l.hit("cid"), "cid's first request passes");
            clock.set_ms(400 + w);
            assert_eq!(
                burst(&mut l, "cid", 2 * limit),
                limit,
                "limit {limit} per {window_s} s: after 1 request in its last window, cid's new \
                 window starts at 0 and allows exactly {limit} of {}",
                2 * limit
            );
            // dan comes back after three and a half idle windows: his new window runs from
            // that request, not from where the old one would have gone on.
            assert_eq!(burst(&mut l, "dan", limit), limit, "dan's first window");
            let back = 400 + 3 * w + w / 2;
            clock.set_ms(back);
            assert_eq!(
                burst(&mut l, "dan", 2 * limit),
                limit,
                "limit {limit} per {window_s} s: dan is back at {back} ms after a long idle: \
                 expected exactly {limit} of {} allowed",
                2 * limit
            );
            clock.set_ms(back + w - 1);
            assert!(
                !l.hit("dan"),
                "dan's new window runs from {back} ms to {} ms: at {} ms expected denied",
                back + w,
                back + w - 1
            );
        }
    }

    #[test]
    fn later_requests_do_not_move_the_window() {
        for (limit, window_s) in [(3, 10), (5, 60)] {
            let (clock, mut l) = limiter(limit, window_s);
            let w = window_s * 1000;
            assert!(l.hit("ann"), "ann's first request, at 0 ms, passes");
            clock.set_ms(w / 2);
            assert_eq!(
                burst(&mut l, "ann", limit),
                limit - 1,
                "limit {limit} per {window_s} s: at {} ms ann has used 1 of her window's \
                 {limit}: expected {} more allowed",
                w / 2,
                limit - 1
            );
            clock.set_ms(w);
            assert_eq!(
                burst(&mut l, "ann", limit + 1),
                limit,
                "limit {limit} per {window_s} s: ann's window started at her first request \
                 (0 ms) and ends at {w} ms, whatever came later; expected {limit} of {} \
                 allowed at {w} ms (a window restarted by each allowed request is still open)",
                limit + 1
            );
        }
    }

    #[test]
    fn a_client_back_soon_after_expiry_gets_a_window_from_then() {
        for (limit, window_s) in [(3, 10), (5, 60)] {
            let (clock, mut l) = limiter(limit, window_s);
            let w = window_s * 1000;
            assert!(l.hit("bob"), "bob's first request, at 0 ms, passes");
            // Back half a window after the old one ended: the new window runs from now.
            let back = w + w / 2;
            clock.set_ms(back);
            assert_eq!(
                burst(&mut l, "bob", 2 * limit),
                limit,
                "limit {limit} per {window_s} s: bob is back at {back} ms, expected {limit} of \
                 {} allowed",
                2 * limit
            );
            clock.set_ms(back + w - 1);
            assert!(
                !l.hit("bob"),
                "bob's new window runs from {back} ms to {} ms, not on the old grid (to {} ms): \
                 at {} ms expected denied",
                back + w,
                2 * w,
                back + w - 1
            );
            clock.set_ms(back + w);
            assert_eq!(
                burst(&mut l, "bob", limit + 1),
                limit,
                "at {} ms bob's window has expired: expected {limit} of {} allowed",
                back + w,
                limit + 1
            );
        }
    }

    #[test]
    fn each_client_has_its_own_window_from_its_first_request() {
        for (limit, window_s) in [(3, 10), (5, 60)] {
            let (clock, mut l) = limiter(limit, window_s);
            let w = window_s * 1000;
            assert_eq!(burst(&mut l, "ann", limit + 2), limit, "ann's first window");
            // Bob starts later: his window runs from his own first request, like EXPIRE on INCR = 1.
            clock.set_ms(w / 2);
            assert_eq!(
                burst(&mut l, "bob", limit + 2),
                limit,
                "bob is limited apart from ann: expected {limit} allowed"
            );
            clock.set_ms(w);
            assert_eq!(
                burst(&mut l, "ann", limit + 2),
                limit,
                "at {w} ms ann's window (from 0 ms) has expired: expected {limit} allowed"
            );
            assert!(
                !l.hit("bob"),
                "at {w} ms bob's window (from {} ms to {} ms) is still open: expected denied \
                 (a window per client, not one grid for all)",
                w / 2,
                w / 2 + w
            );
            clock.set_ms(w / 2 + w);
            assert_eq!(
                burst(&mut l, "bob", limit + 2),
                limit,
                "at {} ms bob's window has expired: expected {limit} allowed",
                w / 2 + w
            );
            // A denied storm from one client does not touch another.
            assert_eq!(burst(&mut l, "eve", limit), limit, "eve is fresh");
        }
    }

    #[test]
    fn idle_clients_are_forgotten() {
        for (limit, window_s) in [(3, 10), (5, 60)] {
            let (clock, mut l) = limiter(limit, window_s);
            let w = window_s * 1000;
            for i in 0..1000 {
                l.hit(&format!("scanner-{i}"));
            }
            clock.set_ms(w - 1);
            l.hit("regular");
            l.evict_expired();
            assert_eq!(
                l.tracked(),
                1001,
                "at {} ms no window has ended yet: expected all 1001 clients kept",
                w - 1
            );
            clock.set_ms(w);
            l.evict_expired();
            assert_eq!(
                l.tracked(),
                1,
                "at {w} ms the 1000 scanners' windows are over: expected only \"regular\" \
                 (window until {} ms) kept",
                2 * w - 1
            );
            assert_eq!(
                burst(&mut l, "regular", limit),
                limit - 1,
                "regular's window (from {} ms) survives the eviction with 1 request used: \
                 expected {} more allowed",
                w - 1,
                limit - 1
            );
            assert_eq!(
                burst(&mut l, "scanner-7", limit + 1),
                limit,
                "a forgotten client starts a fresh window: expected {limit} allowed"
            );
        }
    }
}
