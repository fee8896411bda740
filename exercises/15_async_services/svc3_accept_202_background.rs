// svc3_accept_202_background: long work leaves the request path
//
// Rendering a report takes seconds; an HTTP request should not. Celery's pattern: the handler
// puts a job on a queue and answers `202 Accepted` at once, with the job's id and a `Location`
// where the client polls its status; a worker does the work later. In tokio the queue is a
// bounded `mpsc` channel and the worker a spawned task that loops on `recv()`. Bounded matters:
// when the queue is full, `try_send` fails at once with `TrySendError::Full`, and the handler
// answers `503 Service Unavailable` with `Retry-After`, instead of `send().await`, which would
// hold the request open until there is room (backpressure that nobody sees but the client).
//
// Why it matters: an export endpoint rendered inline; the load balancer cut requests at 30 s,
// clients retried, and every retry rendered the same export again.
//
// Production caveat: this queue lives in memory. A job acknowledged with 202 is lost if the
// process stops before the worker finishes it: at-most-once across a crash. Jobs that must
// survive a deploy go to a durable queue (a jobs table, a broker with acknowledgements).
//
// What to do: in `submit`, hand the job to the worker with `try_send` and answer 202 with the
// job's `Location`; a full queue is 503 with `Retry-After` and leaves no job behind.
// Run `backlings hint` if you are stuck.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

pub const RETRY_AFTER_SECS: u64 = 5;

/// The slow work, injected.
pub trait Renderer: Send + Sync + 'static {
    fn render(&self, input: String) -> BoxFuture<'static, String>;
}

/// `None` while pending, `Some(result)` once done.
type Jobs = Arc<Mutex<HashMap<u64, Option<String>>>>;

#[derive(Clone)]
pub struct AppState {
    jobs: Jobs,
    queue: mpsc::Sender<(u64, String)>,
    renderer: Arc<dyn Renderer>,
}

#[derive(Deserialize)]
pub struct ReportRequest {
    pub input: String,
}

/// Builds the app and spawns its one worker, fed by a queue of `capacity` jobs.
pub fn app(renderer: Arc<dyn Renderer>, capacity: usize) -> Router {
    let (queue, mut rx) = mpsc::channel::<(u64, String)>(capacity);
    let jobs = Jobs::default();
    let (worker_jobs, worker_renderer) = (jobs.clone(), renderer.clone());
    tokio::spawn(async move {
        while let Some((id, input)) = rx.recv().await {
            let result = worker_renderer.render(input).await;
            worker_jobs.lock().unwrap().insert(id, Some(result));
        }
    });
    let state = AppState {
        jobs,
        queue,
        renderer,
    };
    Router::new()
        .route("/reports", post(submit))
        .route("/reports/{id}", get(status))
        .with_state(state)
}

async fn submit(State(state): State<AppState>, Json(req): Json<ReportRequest>) -> Response {
    let id = {
        let mut jobs = state.jobs.lock().unwrap();
        let id = jobs.len() as u64 + 1;
        jobs.insert(id, None);
        id
    };
    // TODO: the request waits for the whole render. Hand `(id, input)` to the worker with
    // `try_send` instead; when the queue is full, answer 503 with `Retry-After:
    // RETRY_AFTER_SECS` and forget the job.
    let result = state.renderer.render(req.input).await;
    state.jobs.lock().unwrap().insert(id, Some(result));
    let location = [(header::LOCATION, format!("/reports/{id}"))];
    let body = Json(json!({ "id": id, "status": "pending" }));
    (StatusCode::ACCEPTED, location, body).into_response()
}

async fn status(State(state): State<AppState>, Path(id): Path<u64>) -> Response {
    match state.jobs.lock().unwrap().get(&id) {
        None => StatusCode::NOT_FOUND.into_response(),
        Some(None) => Json(json!({ "id": id, "status": "pending" })).into_response(),
        Some(Some(result)) => {
            Json(json!({ "id": id, "status": "done", "result": result })).into_response()
        }
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use std::time::Duration;
    use tokio::sync::Semaphore;
    use tokio::time::{Instant, sleep, timeout};
    use tower::ServiceExt;

    /// Takes `took` per job, after a permit of `gate` (when there is one); records its inputs.
    struct Slow {
        took: Duration,
        gate: Option<Arc<Semaphore>>,
        seen: Arc<Mutex<Vec<String>>>,
    }

    impl Renderer for Slow {
        fn render(&self, input: String) -> BoxFuture<'static, String> {
            let (took, gate, seen) = (self.took, self.gate.clone(), self.seen.clone());
            Box::pin(async move {
                seen.lock().unwrap().push(input.clone());
                if let Some(gate) = gate {
                    gate.acquire().await.unwrap().forget();
                }
                sleep(took).await;
                input.to_uppercase()
            })
        }
    }

    fn slow(secs: u64, gate: Option<Arc<Semaphore>>) -> (Arc<Slow>, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let took = Duration::from_secs(secs);
        (
            Arc::new(Slow {
                took,
                gate,
                seen: seen.clone(),
            }),
            seen,
        )
    }

    struct Answer {
        status: StatusCode,
        location: Option<String>,
        retry_after: Option<String>,
        body: serde_json::Value,
    }

    async fn call(app: &Router, method: &str, uri: &str, body: &str) -> Answer {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let res = timeout(Duration::from_secs(60), app.clone().oneshot(req))
            .await
            .expect("the request never returned: is the handler waiting for room in the queue?")
            .unwrap();
        let head = |h| {
            res.headers()
                .get(h)
                .map(|v: &header::HeaderValue| v.to_str().unwrap().to_string())
        };
        let (location, retry_after) = (head(header::LOCATION), head(header::RETRY_AFTER));
        let status = res.status();
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Answer {
            status,
            location,
            retry_after,
            body,
        }
    }

    async fn submit(app: &Router, input: &str) -> Answer {
        call(
            app,
            "POST",
            "/reports",
            &json!({ "input": input }).to_string(),
        )
        .await
    }

    #[tokio::test(start_paused = true)]
    async fn post_answers_202_at_once_and_the_status_goes_pending_then_done() {
        for (secs, input) in [(5, "q3 sales"), (2, "churn")] {
            let (renderer, seen) = slow(secs, None);
            let app = app(renderer, 4);
            let start = Instant::now();
            let res = submit(&app, input).await;
            assert_eq!(
                start.elapsed(),
                Duration::ZERO,
                "POST must answer at t = 0, not after the {secs} s job"
            );
            assert_eq!(res.status, StatusCode::ACCEPTED, "expected 202 Accepted");
            assert_eq!(
                res.location.as_deref(),
                Some("/reports/1"),
                "expected Location: /reports/1"
            );
            assert_eq!(
                res.body,
                json!({"id": 1, "status": "pending"}),
                "the body names the job"
            );

            sleep(Duration::from_millis(secs * 1000 - 1)).await;
            let res = call(&app, "GET", "/reports/1", "").await;
            assert_eq!(
                res.body["status"], "pending",
                "at {secs} s - 1 ms the job is still running"
            );
            assert_eq!(
                *seen.lock().unwrap(),
                [input],
                "the worker took the job exactly once"
            );
            sleep(Duration::from_millis(2)).await;
            let res = call(&app, "GET", "/reports/1", "").await;
            let want = json!({"id": 1, "status": "done", "result": input.to_uppercase()});
            assert_eq!(res.body, want, "at {secs} s + 1 ms the job is done");
            assert_eq!(
                call(&app, "GET", "/reports/2", "").await.status,
                StatusCode::NOT_FOUND
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_is_503_with_retry_after_and_leaves_no_job() {
        for capacity in [2u64, 1] {
            let gate = Arc::new(Semaphore::new(0));
            let (renderer, seen) = slow(1, Some(gate.clone()));
            let app = app(renderer, capacity as usize);
            let res = submit(&app, "job1").await;
            assert_eq!(res.status, StatusCode::ACCEPTED);
            sleep(Duration::from_millis(1)).await; // the worker takes job 1 and blocks on the gate
            for n in 2..=capacity + 1 {
                let res = submit(&app, &format!("job{n}")).await;
                assert_eq!(
                    res.status,
                    StatusCode::ACCEPTED,
                    "capacity {capacity}: job {n} fits in the queue"
                );
                assert_eq!(res.location, Some(format!("/reports/{n}")));
            }
            let res = submit(&app, "too many").await;
            assert_eq!(
                res.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "capacity {capacity}: the queue is full: expected 503"
            );
            assert_eq!(
                res.retry_after.as_deref(),
                Some("5"),
                "a 503 tells the client when to retry: Retry-After: 5"
            );
            let gone = call(&app, "GET", &format!("/reports/{}", capacity + 2), "").await;
            assert_eq!(
                gone.status,
                StatusCode::NOT_FOUND,
                "a refused job leaves nothing behind"
            );

            sleep(Duration::from_millis(1)).await;
            assert_eq!(
                *seen.lock().unwrap(),
                ["job1"],
                "capacity {capacity}: while job 1 waits at its gate, no other job has started \
                 (one worker takes jobs one at a time)"
            );

            // Open the gate: each job takes 1 s, one after another.
            gate.add_permits(10);
            sleep(Duration::from_millis(500)).await;
            for n in 1..=capacity + 1 {
                sleep(Duration::from_secs(1)).await;
                let res = call(&app, "GET", &format!("/reports/{n}"), "").await;
                assert_eq!(
                    res.body["status"], "done",
                    "capacity {capacity}: job {n} is done {n}.5 s after the gate opened"
                );
                if n <= capacity {
                    let next = call(&app, "GET", &format!("/reports/{}", n + 1), "").await;
                    assert_eq!(
                        next.body["status"],
                        "pending",
                        "capacity {capacity}: job {} is still pending {n}.5 s after the gate \
                         opened: jobs run one at a time, 1 s each",
                        n + 1
                    );
                }
            }
            let ok = submit(&app, "later").await;
            assert_eq!(ok.status, StatusCode::ACCEPTED, "room again: accepted");
            assert_eq!(
                ok.location,
                Some(format!("/reports/{}", capacity + 2)),
                "ids stay unique"
            );
            sleep(Duration::from_secs(2)).await;
            assert_eq!(
                seen.lock().unwrap().len() as u64,
                capacity + 2,
                "every accepted job ran once"
            );
        }
    }
}
