// rate2_token_bucket_429: a token bucket in front of the routes, answering 429 + Retry-After
//
// A token bucket allows a burst and then a steady rate. It holds at most `capacity` tokens;
// a token drips in every `interval`; each request takes one, and a request that finds no
// whole token is refused. Unlike a fixed window, there is no boundary where two windows'
// worth of requests get through back to back. Here the level is kept as time (one token is
// `interval`), so parts of a token add up exactly. Refusing is the middleware's job: an axum
// `from_fn_with_state` layer answers `429 Too Many Requests` before any handler runs, with
// `Retry-After` saying when to come back. RFC 9110 §10.2.3 makes its delay-seconds a
// non-negative decimal integer, so 50 ms must become 1 s: round up, or a client that obeys
// `Retry-After: 0` comes straight back and is refused again.
//
// Why it matters: a partner's batch job retried every 429 at once, with no delay. Sending
// `Retry-After` (and its SDK honouring it) turned a retry storm into one retry per second.
//
// Production caveat: this bucket lives in one process. Behind a load balancer with three
// replicas, a client gets three buckets and three times the rate. A limit that must hold for
// the whole service keeps its state in a shared store (Redis, with the check and the update
// in one Lua script so they are atomic).
//
// What to do: refill the bucket in `try_take`, and fill in `Retry-After` in `rate_limit`.
// Run `backlings hint` if you are stuck.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

pub struct TokenBucket {
    /// The most tokens the bucket holds: the burst.
    capacity: u32,
    /// One token drips in every `interval` (10 per second: 100 ms).
    interval: Duration,
    /// What the bucket holds, as time: `interval` per token.
    level: Duration,
    /// When the level was last brought up to date.
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: u32, interval: Duration) -> Self {
        TokenBucket {
            capacity,
            interval,
            level: interval * capacity,
            last: Instant::now(),
        }
    }

    /// Takes one token, or says how long until there is one.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        // Refill: every moment since the last call adds to the level, up to a full bucket.
        let full = self.interval * self.capacity;
        self.level = (self.level + now.saturating_duration_since(self.last)).min(full);
        self.last = now;
        if self.level >= self.interval {
            self.level -= self.interval;
            Ok(())
        } else {
            Err(self.interval - self.level)
        }
    }
}

/// The middleware's state: one bucket, shared by every request.
pub type Limiter = Arc<Mutex<TokenBucket>>;

/// Lets a request through when it gets a token; otherwise answers 429 with `Retry-After`.
pub async fn rate_limit(State(limiter): State<Limiter>, req: Request, next: Next) -> Response {
    let verdict = limiter.lock().unwrap().try_take(Instant::now());
    match verdict {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            // Whole seconds, rounded up: a client that waits this long finds a token.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let retry_after = [(header::RETRY_AFTER, secs.to_string())];
            (StatusCode::TOO_MANY_REQUESTS, retry_after).into_response()
        }
    }
}

pub fn app(bucket: TokenBucket) -> Router {
    let limiter: Limiter = Arc::new(Mutex::new(bucket));
    Router::new()
        .route("/report", get(report))
        .layer(from_fn_with_state(limiter, rate_limit))
}

async fn report() -> &'static str {
    "the report"
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::time::advance;
    use tower::ServiceExt;

    /// The two parameter sets: (capacity, interval in ms).
    const SETS: [(u32, u64); 2] = [(10, 100), (3, 2000)];

    fn bucket_app(capacity: u32, interval_ms: u64) -> Router {
        app(TokenBucket::new(
            capacity,
            Duration::from_millis(interval_ms),
        ))
    }

    /// GET `uri`: the status and the `Retry-After` header, if any.
    async fn get_at(app: &Router, uri: &str) -> (StatusCode, Option<String>) {
        let (status, retry, _) = get_body(app, uri).await;
        (status, retry)
    }

    /// GET `uri`: the status, the `Retry-After` header and the body.
    async fn get_body(app: &Router, uri: &str) -> (StatusCode, Option<String>, String) {
        let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let retry = res
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_string());
        let body = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (status, retry, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn call(app: &Router) -> (StatusCode, Option<String>) {
        get_at(app, "/report").await
    }

    /// Sends `n` requests now; returns how many got 200.
    async fn burst(app: &Router, n: u32) -> u32 {
        let mut ok = 0;
        for _ in 0..n {
            if call(app).await.0 == StatusCode::OK {
                ok += 1;
            }
        }
        ok
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_passes_then_429_with_retry_after() {
        for ((capacity, interval), retry) in SETS.into_iter().zip(["1", "2"]) {
            let app = bucket_app(capacity, interval);
            assert_eq!(
                get_body(&app, "/report").await,
                (StatusCode::OK, None, "the report".to_string()),
                "capacity {capacity}: the first request reaches the handler"
            );
            assert_eq!(
                burst(&app, capacity - 1).await,
                capacity - 1,
                "capacity {capacity}: a full bucket lets a burst of {capacity} through"
            );
            assert_eq!(
                call(&app).await,
                (StatusCode::TOO_MANY_REQUESTS, Some(retry.to_string())),
                "capacity {capacity}, a token every {interval} ms: request {} gets 429 with \
                 Retry-After: {retry} (the next token is {interval} ms away, in whole seconds \
                 rounded up)",
                capacity + 1
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_drip_back_at_the_rate_window_after_window() {
        for (capacity, interval) in SETS {
            let app = bucket_app(capacity, interval);
            burst(&app, capacity).await;
            // Eight intervals in a row: one token per interval, at exactly its time.
            for k in 1..=8 {
                advance(ms(interval - 1)).await;
                assert_eq!(
                    call(&app).await.0,
                    StatusCode::TOO_MANY_REQUESTS,
                    "a token every {interval} ms: 1 ms before token {k} is due, expected 429"
                );
                advance(ms(1)).await;
                assert_eq!(
                    burst(&app, 3).await,
                    1,
                    "a token every {interval} ms: at {} ms after the burst exactly one token \
                     has dripped in, expected 1 of 3 requests to pass (a bucket that never \
                     refills lets none through)",
                    k * interval
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_idle_refills_only_up_to_the_burst() {
        for (capacity, interval) in SETS {
            // Full from the start and idle for an hour: still only a full bucket.
            let app = bucket_app(capacity, interval);
            advance(Duration::from_secs(3600)).await;
            assert_eq!(
                burst(&app, capacity + 5).await,
                capacity,
                "capacity {capacity}, a full bucket left idle for an hour: the hour it spent \
                 full adds nothing; expected exactly {capacity} of {} to pass (refill on every \
                 call, not only when the bucket runs dry)",
                capacity + 5
            );
            let app = bucket_app(capacity, interval);
            burst(&app, capacity).await;
            advance(Duration::from_secs(3600)).await;
            assert_eq!(
                burst(&app, capacity + 5).await,
                capacity,
                "capacity {capacity}, after an hour idle: the bucket is full, not overflowing; \
                 expected exactly {capacity} of {} to pass",
                capacity + 5
            );
            // Half the bucket back: half the burst passes.
            let half = capacity / 2;
            advance(ms(interval * u64::from(half))).await;
            assert_eq!(
                burst(&app, capacity).await,
                half,
                "{} ms after emptying the bucket: expected {half} tokens back",
                interval * u64::from(half)
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_rounds_up_to_whole_seconds() {
        // (capacity, interval, wait before asking, expected Retry-After)
        let cases = [
            (10, 100, 50, "1"),
            (3, 2000, 750, "2"),
            (3, 2000, 0, "2"),
            (3, 2000, 1500, "1"),
            (2, 3500, 200, "4"),
            (2, 3500, 2600, "1"),
        ];
        for (capacity, interval, waited, expected) in cases {
            let app = bucket_app(capacity, interval);
            burst(&app, capacity).await;
            advance(ms(waited)).await;
            let (status, retry) = call(&app).await;
            assert_eq!(
                (status, retry.as_deref()),
                (StatusCode::TOO_MANY_REQUESTS, Some(expected)),
                "a token every {interval} ms, asked {waited} ms after emptying: the next token \
                 is {} ms away, so Retry-After: {expected} (an integer, rounded up)",
                interval - waited
            );
            // A client that obeys Retry-After gets through.
            advance(Duration::from_secs(expected.parse().unwrap())).await;
            assert_eq!(
                call(&app).await.0,
                StatusCode::OK,
                "after waiting the {expected} s that Retry-After said, expected 200"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn denied_requests_do_not_spend_tokens() {
        for (capacity, interval) in SETS {
            let app = bucket_app(capacity, interval);
            burst(&app, capacity).await;
            advance(ms(interval / 2)).await;
            assert_eq!(burst(&app, 50).await, 0, "half a token: all 50 get 429");
            advance(ms(interval / 2)).await;
            assert_eq!(
                burst(&app, 2).await,
                1,
                "a token every {interval} ms: 50 refused requests took nothing, so at \
                 {interval} ms one token is there; expected 1 of 2 to pass"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_is_middleware_in_front_of_any_route() {
        for (capacity, interval) in SETS {
            let calls = Arc::new(AtomicUsize::new(0));
            let (c1, c2) = (calls.clone(), calls.clone());
            let limiter: Limiter = Arc::new(Mutex::new(TokenBucket::new(capacity, ms(interval))));
            // Two routes of the test's own, behind the learner's middleware: one shared bucket.
            let app = Router::new()
                .route(
                    "/a",
                    get(move || async move { c1.fetch_add(1, Ordering::SeqCst).to_string() }),
                )
                .route(
                    "/b",
                    get(move || async move { c2.fetch_add(1, Ordering::SeqCst).to_string() }),
                )
                .layer(from_fn_with_state(limiter, rate_limit));
            for i in 0..capacity + 4 {
                get_at(&app, if i % 2 == 0 { "/a" } else { "/b" }).await;
            }
            assert_eq!(
                calls.load(Ordering::SeqCst),
                capacity as usize,
                "capacity {capacity}, {} requests over two routes: the handlers ran {capacity} \
                 times; a 429 must be answered before the handler runs",
                capacity + 4
            );
            advance(ms(interval)).await;
            assert_eq!(
                get_at(&app, "/b").await.0,
                StatusCode::OK,
                "one interval later, /b gets the dripped token"
            );
        }
    }
}
