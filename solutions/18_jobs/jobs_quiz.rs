// jobs_quiz: a job service, from the POST to the dead-letter queue
//
// `POST /jobs` with an `Idempotency-Key` header stores a job and answers `202 Accepted` with
// its id. A retry (same key, same body) gets the same id and the job runs once; the same key
// with another body is `409 Conflict` (the IETF Idempotency-Key draft suggests 422 there, and
// 409 for a retry while the first request is still in progress). Key, body hash (SHA-256) and
// job are one row. The handler holds the connection's mutex from lookup to insert, so two
// submits never interleave; with a pool of connections, the UNIQUE key is what stops a second
// job (the loser of a race gets a constraint error and must look the key up again). Workers
// claim due jobs with one `UPDATE … RETURNING` (jobs4). A transient failure is retried with
// capped exponential backoff; a permanent one, or the last allowed attempt, leaves the job
// `dead` (the dead-letter state) with its last error. `GET /jobs/{id}` shows the state, the
// number of attempts and the last error.
//
// Why it matters: a signup service sent a welcome email on every retry of a slow request,
// and retried a "mailbox does not exist" bounce every minute for a week. Both are the same
// two decisions: what makes two requests one job, and which errors are worth another try.
//
// Production caveat: these workers hold no lease. A process killed mid-job leaves its job
// `running` for ever; production stores a `locked_until` (jobs4) or uses a queue with a
// visibility timeout, and then a job can run twice: handlers must be idempotent.
//
// What to do: (1) `submit`: look the key up before inserting, in the transaction; (2)
// `after_failure`: which failures are retried, and after how long.
// Run `backlings hint` if you are stuck.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq)]
pub enum JobError {
    /// Worth another try: a timeout, a 503.
    Transient(String),
    /// Fails again whenever it is tried: a 400, a payload that cannot work.
    Permanent(String),
}

/// Runs one attempt of job `id`.
pub trait Handler: Send + Sync + 'static {
    fn run(&self, id: i64, payload: Value) -> BoxFuture<'static, Result<(), JobError>>;
}

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub workers: usize,
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

/// After failed attempt number `attempt` (from 1): `Some(delay)` to try again after `delay`,
/// `None` to dead-letter the job.
pub fn after_failure(policy: &Policy, attempt: u32, err: &JobError) -> Option<Duration> {
    // Only transient errors are retried, and only while attempts are left: base · 2^(n-1),
    // capped.
    match err {
        JobError::Permanent(_) => None,
        JobError::Transient(_) if attempt >= policy.max_attempts => None,
        JobError::Transient(_) => {
            let factor = 2u32.saturating_pow(attempt - 1);
            Some(policy.base.saturating_mul(factor).min(policy.cap))
        }
    }
}

pub const POLL: Duration = Duration::from_millis(10);

#[derive(Clone)]
struct AppState {
    db: Arc<Mutex<Connection>>,
}

pub fn app(handler: Arc<dyn Handler>, policy: Policy) -> Router {
    let conn = Connection::open_in_memory().expect("an in-memory database opens");
    // `run_at` is in milliseconds since the service started.
    conn.execute_batch(
        "CREATE TABLE jobs (
             id INTEGER PRIMARY KEY, idem_key TEXT NOT NULL UNIQUE, body_hash TEXT NOT NULL,
             payload TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'queued',
             attempts INTEGER NOT NULL DEFAULT 0, run_at INTEGER NOT NULL DEFAULT 0,
             last_error TEXT
         );",
    )
    .expect("the schema is valid");
    let db = Arc::new(Mutex::new(conn));
    let epoch = Instant::now();
    for _ in 0..policy.workers {
        tokio::spawn(worker(db.clone(), handler.clone(), policy, epoch));
    }
    let (routes, state) = (Router::new().route("/jobs", post(submit)), AppState { db });
    routes.route("/jobs/{id}", get(status)).with_state(state)
}

async fn worker(db: Arc<Mutex<Connection>>, handler: Arc<dyn Handler>, p: Policy, epoch: Instant) {
    let now = || epoch.elapsed().as_millis() as i64;
    loop {
        let sql = "UPDATE jobs SET state = 'running', attempts = attempts + 1
                   WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND run_at <= ?1
                               ORDER BY run_at, id LIMIT 1)
                   RETURNING id, payload, attempts";
        let claim = |r: &rusqlite::Row| Ok((r.get(0)?, r.get::<_, String>(1)?, r.get(2)?));
        let claimed = db.lock().unwrap().query_row(sql, [now()], claim).optional();
        let Ok(Some((id, payload, attempt))) = claimed else {
            tokio::time::sleep(POLL).await;
            continue;
        };
        let payload = serde_json::from_str(&payload).unwrap_or(Value::Null);
        let (state, run_at, error) = match handler.run(id, payload).await {
            Ok(()) => ("done", now(), None),
            Err(err) => match after_failure(&p, attempt, &err) {
                Some(delay) => ("queued", now() + delay.as_millis() as i64, Some(err)),
                None => ("dead", now(), Some(err)),
            },
        };
        let error = error.map(|(JobError::Transient(e) | JobError::Permanent(e))| e);
        let sql = "UPDATE jobs SET state = ?2, run_at = ?3, last_error = ?4 WHERE id = ?1";
        let _ = db.lock().unwrap().execute(sql, (id, state, run_at, error));
    }
}

async fn submit(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let key = headers.get("idempotency-key").and_then(|k| k.to_str().ok());
    let (Some(key), Ok(_)) = (key, serde_json::from_slice::<Value>(&body)) else {
        let error = json!({ "error": "an Idempotency-Key header and a JSON body are required" });
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    };
    let hash: String = Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let payload = String::from_utf8_lossy(&body).into_owned();
    let mut conn = s.db.lock().unwrap();
    let result = (|| {
        let tx = conn.transaction()?;
        // Look up, then insert, in one transaction: a retry finds the first job.
        let sql = "SELECT id, body_hash FROM jobs WHERE idem_key = ?1";
        let found = tx.query_row(sql, [key], |r| Ok((r.get(0)?, r.get::<_, String>(1)?)));
        let id = match found.optional()? {
            Some((id, stored)) if stored == hash => Some(id),
            Some(_) => None,
            None => {
                let sql = "INSERT INTO jobs (idem_key, body_hash, payload) VALUES (?1, ?2, ?3)
                           RETURNING id";
                Some(tx.query_row(sql, params![key, hash, payload], |r| r.get::<_, i64>(0))?)
            }
        };
        tx.commit().map(|_| id)
    })();
    match result {
        Ok(Some(id)) => (StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response(),
        Ok(None) => {
            let error = json!({ "error": "this Idempotency-Key was used with another body" });
            (StatusCode::CONFLICT, Json(error)).into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn status(State(s): State<AppState>, Path(id): Path<i64>) -> Response {
    let sql = "SELECT state, attempts, last_error FROM jobs WHERE id = ?1";
    let row = |r: &rusqlite::Row| {
        let (state, attempts): (String, u32) = (r.get(0)?, r.get(1)?);
        let error: Option<String> = r.get(2)?;
        Ok(json!({ "id": id, "state": state, "attempts": attempts, "last_error": error }))
    };
    match s.db.lock().unwrap().query_row(sql, [id], row).optional() {
        Ok(Some(job)) => Json(job).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    /// Runs each job by its payload: `{"fail": ["t", "p", ...], "ms": 1000}` fails attempt n
    /// with the n-th letter (transient or permanent) and then succeeds; each attempt takes
    /// `ms`. Records every attempt: (job id, start in ms since the test began).
    struct FakeHandler {
        epoch: Instant,
        calls: Mutex<Vec<(i64, u64)>>,
    }

    impl Handler for FakeHandler {
        fn run(&self, id: i64, payload: Value) -> BoxFuture<'static, Result<(), JobError>> {
            let mut calls = self.calls.lock().unwrap();
            calls.push((id, self.epoch.elapsed().as_millis() as u64));
            let attempt = calls.iter().filter(|c| c.0 == id).count();
            let fail = payload["fail"].as_array().cloned().unwrap_or_default();
            let result = match fail.get(attempt - 1).and_then(Value::as_str) {
                Some("t") => Err(JobError::Transient(format!("timeout on attempt {attempt}"))),
                Some(_) => Err(JobError::Permanent(format!(
                    "bad input on attempt {attempt}"
                ))),
                None => Ok(()),
            };
            let ms = payload["ms"].as_u64().unwrap_or(0);
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                result
            })
        }
    }

    fn service(policy: Policy) -> (Router, Arc<FakeHandler>) {
        let epoch = Instant::now();
        let calls = Mutex::new(Vec::new());
        let handler = Arc::new(FakeHandler { epoch, calls });
        (app(handler.clone(), policy), handler)
    }

    const A: Policy = Policy {
        workers: 2,
        max_attempts: 5,
        base: Duration::from_millis(100),
        cap: Duration::from_millis(1000),
    };
    const B: Policy = Policy {
        workers: 3,
        max_attempts: 4,
        base: Duration::from_millis(250),
        cap: Duration::from_millis(600),
    };

    async fn post(app: &Router, key: Option<&str>, body: &str) -> (StatusCode, Value) {
        let mut req = Request::builder().method("POST").uri("/jobs");
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        let req = req.header("content-type", "application/json");
        let res = app
            .clone()
            .oneshot(req.body(Body::from(body.to_string())).unwrap());
        let res = res.await.unwrap();
        let status = res.status();
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn get_job(app: &Router, id: i64) -> (StatusCode, Value) {
        let req = Request::get(format!("/jobs/{id}"))
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn submit_ok(app: &Router, key: &str, body: &str) -> i64 {
        let (status, json) = post(app, Some(key), body).await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "POST {body} with key {key}: expected 202"
        );
        json["id"]
            .as_i64()
            .expect("the 202 body is {\"id\": <the job's id>}")
    }

    /// Polls `GET /jobs/{id}` until the job is done or dead (at most 60 s on the paused clock).
    async fn final_state(app: &Router, id: i64) -> Value {
        let wait = async {
            loop {
                let (_, job) = get_job(app, id).await;
                if job["state"] == "done" || job["state"] == "dead" {
                    return job;
                }
                tokio::time::sleep(POLL).await;
            }
        };
        let job = tokio::time::timeout(Duration::from_secs(60), wait).await;
        job.unwrap_or_else(|_| panic!("job {id} is still not done or dead after 60 s"))
    }

    fn job(id: i64, state: &str, attempts: u32, last_error: Option<&str>) -> Value {
        json!({ "id": id, "state": state, "attempts": attempts, "last_error": last_error })
    }

    /// The start of each attempt of job `id`, in ms after its first attempt.
    fn attempts_of(handler: &FakeHandler, id: i64) -> Vec<u64> {
        let calls = handler.calls.lock().unwrap();
        let starts: Vec<u64> = calls.iter().filter(|c| c.0 == id).map(|c| c.1).collect();
        starts.iter().map(|t| t - starts[0]).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_post_answers_202_with_the_job_id_and_the_job_runs_once() {
        let (app, handler) = service(A);
        let bad = [(None, r#"{"n":1}"#), (Some("k-0"), "not json")];
        for (key, body) in bad {
            let (status, _) = post(&app, key, body).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "key {key:?}, body {body}: expected 400"
            );
        }
        for (n, key) in ["k-1", "k-2", "k-3"].into_iter().enumerate() {
            let id = submit_ok(&app, key, &format!(r#"{{"n":{n}}}"#)).await;
            assert_eq!(
                id,
                n as i64 + 1,
                "the jobs get ids 1, 2, 3 (a 400 stores nothing)"
            );
        }
        for id in 1..=3 {
            let got = final_state(&app, id).await;
            assert_eq!(
                got,
                job(id, "done", 1, None),
                "job {id} succeeds at its first try"
            );
        }
        let (status, _) = get_job(&app, 4).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "there is no job 4: expected 404"
        );
        let mut ran: Vec<i64> = handler.calls.lock().unwrap().iter().map(|c| c.0).collect();
        ran.sort();
        assert_eq!(ran, vec![1, 2, 3], "each job ran exactly once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_retried_request_gets_the_same_job_which_runs_once() {
        for (key, body) in [
            ("order-7", r#"{"email":"ann@x.io"}"#),
            ("a\"b", r#"{"n":2}"#),
        ] {
            let (app, handler) = service(A);
            let first = submit_ok(&app, key, body).await;
            let again = submit_ok(&app, key, body).await;
            assert_eq!(
                again, first,
                "the same key and body: expected the same job {first}"
            );
            final_state(&app, first).await;
            let late = submit_ok(&app, key, body).await;
            assert_eq!(
                late, first,
                "a retry after the job finished: still job {first}"
            );
            let other = submit_ok(&app, "another key", body).await;
            assert_eq!(
                other,
                first + 1,
                "another key is another job, with the same body"
            );
            final_state(&app, other).await;
            let ran: Vec<i64> = handler.calls.lock().unwrap().iter().map(|c| c.0).collect();
            assert_eq!(
                ran,
                vec![first, other],
                "three POSTs of job {first}: it runs once"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_key_with_another_body_is_409() {
        for (key, body, other) in [
            ("k", r#"{"n":1}"#, r#"{"n":2}"#),
            ("pay-9", r#"{"cents":100}"#, r#"{"cents":1000}"#),
        ] {
            let (app, handler) = service(B);
            let id = submit_ok(&app, key, body).await;
            let (status, _) = post(&app, Some(key), other).await;
            assert_eq!(
                status,
                StatusCode::CONFLICT,
                "key {key} reused with {other}: expected 409"
            );
            let again = submit_ok(&app, key, body).await;
            assert_eq!(again, id, "the original body still gets job {id}");
            assert_eq!(final_state(&app, id).await, job(id, "done", 1, None));
            let (status, _) = get_job(&app, id + 1).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "a 409 creates no job");
            assert_eq!(handler.calls.lock().unwrap().len(), 1, "one job ran, once");
        }
    }

    #[test]
    fn after_failure_follows_any_policy() {
        let ms = Duration::from_millis;
        let (t, p) = (
            JobError::Transient("timeout".into()),
            JobError::Permanent("bad".into()),
        );
        let c = Policy {
            workers: 1,
            max_attempts: 7,
            base: ms(70),
            cap: ms(500),
        };
        // The delay after each failed attempt, from 1 (None: dead-lettered).
        let cases = [
            (
                c,
                vec![
                    Some(70),
                    Some(140),
                    Some(280),
                    Some(500),
                    Some(500),
                    Some(500),
                    None,
                ],
            ),
            (
                Policy {
                    max_attempts: 8,
                    ..A
                },
                vec![
                    Some(100),
                    Some(200),
                    Some(400),
                    Some(800),
                    Some(1000),
                    Some(1000),
                    Some(1000),
                    None,
                ],
            ),
        ];
        for (policy, delays) in cases {
            let got: Vec<Option<u64>> = (1..=policy.max_attempts)
                .map(|n| after_failure(&policy, n, &t).map(|d| d.as_millis() as u64))
                .collect();
            assert_eq!(
                got, delays,
                "{policy:?}: expected the delays (ms) {delays:?}"
            );
            assert_eq!(
                after_failure(&policy, 1, &p),
                None,
                "a permanent error: no retry"
            );
        }
        // 2^(attempt - 1) no longer fits in a u32 from attempt 33: the delay stays at the cap.
        let long = Policy {
            max_attempts: 100,
            ..B
        };
        for attempt in [33, 40, 99] {
            let got = std::panic::catch_unwind(|| after_failure(&long, attempt, &t));
            let got = got.unwrap_or_else(|_| {
                let n = attempt - 1;
                panic!(
                    "after_failure panicked at attempt {attempt}: 2^{n} overflows a u32, saturate"
                )
            });
            assert_eq!(
                got,
                Some(long.cap),
                "attempt {attempt} of 100: expected the cap"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_with_capped_backoff() {
        // (policy, expected attempt starts): A doubles 100 ms; B doubles 250 ms up to 600 ms.
        let cases = [(A, [0, 100, 300, 700]), (B, [0, 250, 750, 1350])];
        for (policy, starts) in cases {
            let (app, handler) = service(policy);
            let id = submit_ok(&app, "k", r#"{"fail":["t","t","t"]}"#).await;
            let got = final_state(&app, id).await;
            assert_eq!(
                got,
                job(id, "done", 4, None),
                "three timeouts, then success"
            );
            assert_eq!(
                attempts_of(&handler, id),
                starts,
                "attempts (ms after the first) with base {:?}, cap {:?}: expected {starts:?}",
                policy.base,
                policy.cap
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_is_dead_lettered_at_once_with_its_error() {
        for (policy, fail, starts) in [(A, r#"["p"]"#, vec![0]), (B, r#"["t","p"]"#, vec![0, 250])]
        {
            let (app, handler) = service(policy);
            let id = submit_ok(&app, "k", &format!(r#"{{"fail":{fail}}}"#)).await;
            let n = starts.len() as u32;
            let error = format!("bad input on attempt {n}");
            let got = final_state(&app, id).await;
            assert_eq!(
                got,
                job(id, "dead", n, Some(&error)),
                "failures {fail}: a permanent error is not retried; it goes to the dead-letter \
                 state with its error"
            );
            assert_eq!(attempts_of(&handler, id), starts, "attempts for {fail}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn exhausted_retries_are_dead_lettered_with_the_last_error() {
        let cases = [
            (A, vec![0, 100, 300, 700, 1500]),
            (B, vec![0, 250, 750, 1350]),
        ];
        for (policy, starts) in cases {
            let (app, handler) = service(policy);
            let id = submit_ok(&app, "k", r#"{"fail":["t","t","t","t","t","t","t"]}"#).await;
            let n = policy.max_attempts;
            let error = format!("timeout on attempt {n}");
            let got = final_state(&app, id).await;
            assert_eq!(
                got,
                job(id, "dead", n, Some(&error)),
                "always a timeout: dead after max_attempts = {n}, with the last error"
            );
            assert_eq!(
                attempts_of(&handler, id),
                starts,
                "attempts with {policy:?}"
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
            let ran = handler.calls.lock().unwrap().len();
            assert_eq!(
                ran, n as usize,
                "a dead job is never run again: {n} attempts"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_workers_run_jobs_side_by_side() {
        for policy in [A, B] {
            let (app, handler) = service(policy);
            let n = 2 * policy.workers;
            for i in 0..n {
                submit_ok(&app, &format!("k{i}"), r#"{"ms":1000}"#).await;
            }
            for id in 1..=n as i64 {
                assert_eq!(final_state(&app, id).await, job(id, "done", 1, None));
            }
            let calls = handler.calls.lock().unwrap().clone();
            let first = calls.iter().map(|c| c.1).min().unwrap();
            let mut starts: Vec<u64> = calls.iter().map(|c| c.1 - first).collect();
            starts.sort();
            let w = policy.workers;
            let expected: Vec<u64> = (0..n).map(|i| (i / w) as u64 * 1000).collect();
            assert_eq!(
                starts, expected,
                "{n} one-second jobs, {w} workers: expected starts {expected:?}, {w} at a time"
            );
        }
    }
}
