// svc_quiz: an import service
//
// The topic in one service, the way FastAPI + Pydantic + Celery + beat would build it. `POST
// /imports` validates its body (every bad field listed, 422), reserves a place in the queue
// (`try_reserve`: a full queue is 503 before anything is stored), stores the import and
// answers `202 Accepted` with a `Location`. A pool of N worker tasks shares one
// receiver behind `Arc<Mutex<Receiver>>`: a worker locks it only to take the next job, and
// releases the lock before the work, or the pool runs one job at a time. Results are written
// to SQLite on the blocking pool (`threads2`). A nightly cleanup deletes old imports; when it
// runs next is computed from the injected clock.
//
// Why it matters: a pool of eight workers ran exactly as fast as one. Each held the queue's
// lock while it worked, because the guard of a `while let` scrutinee lives for the whole body.
//
// Production caveat: N workers on one in-memory queue share its failure: a crash loses every
// queued job (at-most-once across a crash), and the nightly cleanup runs in every replica.
//
// What to do: (1) `worker`: take each job with the lock held only for `recv`; (2) `submit`:
// validate first (rows: 1 to MAX_ROWS, none blank); (3) `next_cleanup`.
// Run `backlings hint` if you are stuck.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc};

pub const MAX_ROWS: usize = 100;
pub const DAY: u64 = 86_400;
pub const CLEANUP_AT: u64 = 3 * 3600; // 03:00 UTC
pub const RETENTION: u64 = 7 * DAY;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> u64; // seconds since the Unix epoch, UTC
}
pub trait Transform: Send + Sync + 'static {
    fn apply(&self, rows: Vec<String>) -> BoxFuture<'static, Vec<String>>;
}

/// The database: one connection, used on the blocking pool, one call at a time. (On a
/// current_thread runtime, `#[tokio::test]`'s default, a `spawn_blocking` call in flight
/// stops a paused clock from auto-advancing; a plain thread of our own would not.)
#[derive(Clone)]
pub struct Db(Arc<std::sync::Mutex<Connection>>);

impl Db {
    pub fn open() -> rusqlite::Result<Db> {
        let conn = Connection::open_in_memory()?;
        // `rows` is NULL while the import is pending, then a JSON array.
        conn.execute_batch(
            "CREATE TABLE imports (id INTEGER PRIMARY KEY, created_at INTEGER, rows TEXT)",
        )?;
        Ok(Db(Arc::new(std::sync::Mutex::new(conn))))
    }

    pub async fn call<T, F>(&self, f: F) -> rusqlite::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = self.0.clone();
        let run = move || f(&mut conn.lock().expect("no call panicked"));
        let task = tokio::task::spawn_blocking(run);
        task.await.expect("the call ran")
    }
}

pub type Job = (i64, Vec<String>);

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub queue: mpsc::Sender<Job>,
}

pub fn app(db: Db, clock: Arc<dyn Clock>, t: Arc<dyn Transform>, n: usize, cap: usize) -> Router {
    let (queue, rx) = mpsc::channel(cap);
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..n {
        tokio::spawn(worker(rx.clone(), t.clone(), db.clone()));
    }
    let state = AppState { db, clock, queue };
    let routes = Router::new().route("/imports", post(submit));
    routes.route("/imports/{id}", get(status)).with_state(state)
}

async fn worker(rx: Arc<Mutex<mpsc::Receiver<Job>>>, t: Arc<dyn Transform>, db: Db) {
    // TODO (1/3): a `while let` keeps its scrutinee's temporaries, the lock guard too, alive
    // for the whole body: this worker holds the queue while it works. Take the lock only for
    // `recv`.
    while let Some((id, rows)) = rx.lock().await.recv().await {
        let rows = json!(t.apply(rows).await).to_string();
        let sql = "UPDATE imports SET rows = ?2 WHERE id = ?1";
        let _ = db.call(move |c| c.execute(sql, (id, rows))).await;
    }
}

#[derive(Deserialize)]
pub struct ImportRequest {
    pub rows: Vec<String>,
}

async fn submit(State(s): State<AppState>, Json(req): Json<ImportRequest>) -> Response {
    // TODO (2/3): validate first: 422 with `{"errors": [...]}` listing "rows" (not 1 to
    // MAX_ROWS rows) and "rows[i]" for each blank row, all of them, in order.
    // Reserve a place in the queue before anything is stored: a full queue leaves no trace.
    let retry = [(header::RETRY_AFTER, "30")];
    let Ok(permit) = s.queue.try_reserve() else {
        return (StatusCode::SERVICE_UNAVAILABLE, retry).into_response();
    };
    let now = s.clock.now() as i64;
    let sql = "INSERT INTO imports (created_at) VALUES (?1)";
    let insert = move |c: &mut Connection| c.execute(sql, [now]).map(|_| c.last_insert_rowid());
    let Ok(id) = s.db.call(insert).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    permit.send((id, req.rows));
    let location = [(header::LOCATION, format!("/imports/{id}"))];
    let body = Json(json!({ "id": id, "status": "pending" }));
    (StatusCode::ACCEPTED, location, body).into_response()
}

async fn status(State(s): State<AppState>, Path(id): Path<i64>) -> Response {
    let sql = "SELECT rows FROM imports WHERE id = ?1";
    let read = move |c: &mut Connection| c.query_row(sql, [id], |r| r.get(0)).optional();
    match s.db.call::<Option<Option<String>>, _>(read).await {
        Ok(Some(rows)) => {
            let rows: Option<serde_json::Value> = rows.and_then(|r| serde_json::from_str(&r).ok());
            let status = if rows.is_some() { "done" } else { "pending" };
            Json(json!({ "id": id, "status": status, "rows": rows })).into_response()
        }
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The next 03:00 UTC strictly after `now`.
pub fn next_cleanup(now: u64) -> u64 {
    // TODO (3/3): today's 03:00 may already be past.
    now - now % DAY + CLEANUP_AT
}

/// Deletes the finished imports created more than `RETENTION` ago; returns how many.
pub async fn cleanup(db: &Db, clock: &dyn Clock) -> rusqlite::Result<usize> {
    let before = clock.now().saturating_sub(RETENTION) as i64;
    let sql = "DELETE FROM imports WHERE rows IS NOT NULL AND created_at < ?1";
    db.call(move |c| c.execute(sql, [before])).await
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::time::{Instant, sleep, timeout};
    use tower::ServiceExt;

    struct FakeClock(AtomicU64);

    impl Clock for FakeClock {
        fn now(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    /// Upper-cases every row after `took`, and records how many imports ran at once.
    #[derive(Default)]
    struct Upper {
        took: Duration,
        running: AtomicUsize,
        peak: AtomicUsize,
    }

    impl Transform for Arc<Upper> {
        fn apply(&self, rows: Vec<String>) -> BoxFuture<'static, Vec<String>> {
            let me = self.clone();
            Box::pin(async move {
                let now = me.running.fetch_add(1, Ordering::SeqCst) + 1;
                me.peak.fetch_max(now, Ordering::SeqCst);
                sleep(me.took).await;
                me.running.fetch_sub(1, Ordering::SeqCst);
                rows.iter().map(|r| r.to_uppercase()).collect()
            })
        }
    }

    struct Service {
        app: Router,
        db: Db,
        clock: Arc<FakeClock>,
        upper: Arc<Upper>,
    }

    fn service(workers: usize, cap: usize, took_s: u64) -> Service {
        let db = Db::open().unwrap();
        let clock = Arc::new(FakeClock(1_700_000_000.into()));
        let upper = Arc::new(Upper {
            took: Duration::from_secs(took_s),
            ..Default::default()
        });
        let app = app(
            db.clone(),
            clock.clone(),
            Arc::new(upper.clone()),
            workers,
            cap,
        );
        Service {
            app,
            db,
            clock,
            upper,
        }
    }

    async fn call(
        app: &Router,
        method: &str,
        uri: &str,
        body: &str,
    ) -> (StatusCode, Option<String>, serde_json::Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let res = timeout(Duration::from_secs(60), app.clone().oneshot(req))
            .await
            .expect("the request hung")
            .unwrap();
        let status = res.status();
        let head = [header::LOCATION, header::RETRY_AFTER]
            .iter()
            .find_map(|h| res.headers().get(h));
        let head = head.map(|v| v.to_str().unwrap().to_string());
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (
            status,
            head,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    async fn import(
        app: &Router,
        rows: &[&str],
    ) -> (StatusCode, Option<String>, serde_json::Value) {
        call(
            app,
            "POST",
            "/imports",
            &json!({ "rows": rows }).to_string(),
        )
        .await
    }

    async fn get_import(app: &Router, id: i64) -> (StatusCode, serde_json::Value) {
        let (status, _, body) = call(app, "GET", &format!("/imports/{id}"), "").await;
        (status, body)
    }

    /// The workers' writes run on the blocking pool (`Db::call`), on real threads: yield to
    /// them a while before reading, without moving the paused clock.
    async fn settle() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::ZERO).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn imports_are_accepted_at_once_and_run_in_parallel() {
        for (workers, imports, took) in [(3usize, 3usize, 1u64), (2, 4, 3)] {
            let s = service(workers, 10, took);
            let start = Instant::now();
            for n in 1..=imports {
                let rows: Vec<String> = (0..n).map(|i| format!("row {n}.{i}")).collect();
                let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
                let (status, location, body) = import(&s.app, &rows).await;
                assert_eq!(status, StatusCode::ACCEPTED, "import {n}: expected 202");
                assert_eq!(
                    location,
                    Some(format!("/imports/{n}")),
                    "expected Location: /imports/{n}"
                );
                assert_eq!(body, json!({"id": n, "status": "pending"}));
            }
            assert_eq!(
                start.elapsed(),
                Duration::ZERO,
                "every POST answers at t = 0"
            );
            let (_, body) = get_import(&s.app, 1).await;
            assert_eq!(body["status"], "pending", "nothing is done at t = 0");

            let rounds = imports.div_ceil(workers) as u64;
            sleep(Duration::from_secs(took * rounds) - Duration::from_millis(1)).await;
            settle().await;
            let (_, body) = get_import(&s.app, imports as i64).await;
            assert_eq!(
                body["status"],
                "pending",
                "{workers} workers, {imports} imports of {took} s: the last is not done before {} s",
                took * rounds
            );
            sleep(Duration::from_millis(2)).await;
            settle().await;
            for n in 1..=imports {
                let (status, body) = get_import(&s.app, n as i64).await;
                assert_eq!(status, StatusCode::OK);
                let want: Vec<String> = (0..n).map(|i| format!("ROW {n}.{i}")).collect();
                assert_eq!(
                    body,
                    json!({"id": n, "status": "done", "rows": want}),
                    "{workers} workers: import {n} is done at {} s",
                    took * rounds
                );
            }
            assert_eq!(
                s.upper.peak.load(Ordering::SeqCst),
                workers,
                "{workers} workers run {workers} imports at once: does a worker hold the queue's lock while it works?"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_invalid_field_is_listed_and_nothing_is_stored() {
        let s = service(1, 10, 1);
        let many: Vec<String> = (0..=MAX_ROWS).map(|i| i.to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let mut blank = many.clone();
        blank[50] = "  ";
        let cases: [(&[&str], &[&str]); 5] = [
            (&[], &["rows"]),
            (&blank, &["rows", "rows[50]"]),
            (&["a", " ", "b", ""], &["rows[1]", "rows[3]"]),
            (&many, &["rows"]),
            (&["\t"], &["rows[0]"]),
        ];
        for (rows, want) in cases {
            let (status, _, body) = import(&s.app, rows).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{} rows: expected 422",
                rows.len()
            );
            assert_eq!(
                body["errors"],
                json!(want),
                "expected every bad field, in order"
            );
        }
        let (status, location, _) = import(&s.app, &many[..MAX_ROWS]).await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "exactly MAX_ROWS rows is allowed"
        );
        assert_eq!(
            location.as_deref(),
            Some("/imports/1"),
            "the refused imports stored nothing"
        );
        let (status, _, _) = call(&s.app, "POST", "/imports", "{not json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "malformed JSON: 400");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_is_503_and_stores_nothing() {
        for cap in [1usize, 3] {
            let s = service(1, cap, 100);
            assert_eq!(import(&s.app, &["first"]).await.0, StatusCode::ACCEPTED);
            sleep(Duration::from_millis(1)).await; // the worker takes the first import
            for n in 0..cap {
                assert_eq!(
                    import(&s.app, &["queued"]).await.0,
                    StatusCode::ACCEPTED,
                    "cap {cap}: queued {n} fits"
                );
            }
            let (status, retry, _) = import(&s.app, &["one too many"]).await;
            assert_eq!(
                status,
                StatusCode::SERVICE_UNAVAILABLE,
                "cap {cap}: the queue is full: 503"
            );
            assert_eq!(retry.as_deref(), Some("30"), "Retry-After: 30");
            let (status, _) = get_import(&s.app, cap as i64 + 2).await;
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "the refused import was never stored"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_nightly_cleanup_follows_the_injected_clock() {
        let day0 = 1_700_006_400; // 2023-11-15 00:00:00 UTC
        for day in [day0, day0 + 400 * DAY] {
            for (now, next) in [
                (day, day + 10_800),
                (day + 10_799, day + 10_800),
                (day + 10_800, day + 86_400 + 10_800),
                (day + 23 * 3600, day + 86_400 + 10_800),
                (day - 1, day + 10_800),
            ] {
                assert_eq!(
                    next_cleanup(now),
                    next,
                    "now = {now}: the next 03:00 UTC strictly after it is {next}"
                );
            }
        }

        let s = service(2, 10, 1);
        s.clock.0.store(day0, Ordering::SeqCst);
        import(&s.app, &["old"]).await;
        s.clock.0.store(day0 + 2 * DAY, Ordering::SeqCst);
        import(&s.app, &["newer"]).await;
        sleep(Duration::from_secs(2)).await;
        settle().await;
        s.clock.0.store(day0 + 5 * DAY, Ordering::SeqCst);
        import(&s.app, &["pending"]).await; // never done: the worker is never given the time
        s.clock.0.store(day0 + 8 * 86_400, Ordering::SeqCst);
        assert_eq!(
            cleanup(&s.db, s.clock.as_ref()).await.unwrap(),
            1,
            "8 days in: only the import of day 0 is past the 7-day retention"
        );
        assert_eq!(
            get_import(&s.app, 1).await.0,
            StatusCode::NOT_FOUND,
            "import 1 was cleaned up"
        );
        assert_eq!(
            get_import(&s.app, 2).await.0,
            StatusCode::OK,
            "import 2 (day 2) is kept"
        );
        s.clock.0.store(day0 + 30 * DAY, Ordering::SeqCst);
        assert_eq!(
            cleanup(&s.db, s.clock.as_ref()).await.unwrap(),
            1,
            "day 30: import 2 goes, the pending import 3 stays"
        );
        assert_eq!(get_import(&s.app, 3).await.1["status"], "pending");
    }
}
