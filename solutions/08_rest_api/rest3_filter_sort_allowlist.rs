// rest3_filter_sort_allowlist: the query string picks from a list, it never writes SQL
//
// In `GET /todos?sort=-title&done=false`, `false` is a value: bind it as `?1`. A column name or
// `DESC` cannot be bound (placeholders stand for values, so `ORDER BY ?1` sorts every row by
// one constant), so the order must be part of the SQL text. Build that text from an allow-list:
// parse `sort` into a closed enum with `FromStr`, answer `400` to anything else, and let each
// variant choose a fixed `&'static str` fragment. Every order ends with `id` in the same
// direction, so rows that tie keep one order from request to request (a cursor needs that).
//
// Why it matters: a deny-list kept `;` and spaces out of `?sort=`. An attacker sent
// `sort=(CASE/**/WHEN/**/substr(password,1,1)>'m'/**/THEN/**/title/**/ELSE/**/created_at/**/END)`
// (comments stand in for spaces), and each page's order answered a yes-or-no question about a
// password.
//
// Production caveat: each key you allow is a promise to sort fast. Without an index that
// delivers that order, SQLite sorts every matching row on each request (`EXPLAIN QUERY PLAN`
// shows `USE TEMP B-TREE FOR ORDER BY`): keep the list short and index what is on it.
//
// What to do: make `SortKey` an enum of the four orders (`created_at`, `-created_at`, `title`,
// `-title`) with `FromStr` and a fixed fragment each; parse `done` into a `bool` and bind it.
// Run `backlings hint` if you are stuck.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// Tables `users (id, name, password)` and `todos (id, user_id, title, done, created_at)`.
pub type Db = Arc<Mutex<Connection>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Todo {
    pub id: i64,
    pub title: String,
    pub done: bool,
    pub created_at: String,
    pub owner: String,
}

#[derive(Deserialize)]
pub struct ListQuery {
    pub sort: Option<String>,
    pub done: Option<String>,
}

/// An RFC 9457 problem response.
pub fn problem(status: StatusCode, detail: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = serde_json::json!({
        "type": "about:blank", "title": title, "status": status.as_u16(), "detail": detail,
    });
    let content_type = [(header::CONTENT_TYPE, "application/problem+json")];
    (status, content_type, body.to_string()).into_response()
}

/// How `GET /todos` is ordered; without `?sort=`, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    CreatedAt,
    #[default]
    CreatedAtDesc,
    Title,
    TitleDesc,
}

impl FromStr for SortKey {
    type Err = String;

    // The allow-list: these four strings, exactly; anything else is the client's mistake.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "created_at" => Ok(Self::CreatedAt),
            "-created_at" => Ok(Self::CreatedAtDesc),
            "title" => Ok(Self::Title),
            "-title" => Ok(Self::TitleDesc),
            _ => Err("sort must be one of created_at, -created_at, title, -title".into()),
        }
    }
}

impl SortKey {
    /// The ORDER BY clause: written here, never taken from the request.
    pub fn order_by(self) -> &'static str {
        match self {
            Self::CreatedAt => "t.created_at ASC, t.id ASC",
            Self::CreatedAtDesc => "t.created_at DESC, t.id DESC",
            Self::Title => "t.title ASC, t.id ASC",
            Self::TitleDesc => "t.title DESC, t.id DESC",
        }
    }
}

pub fn app(db: Db) -> Router {
    Router::new().route("/todos", get(list)).with_state(db)
}

async fn list(
    State(db): State<Db>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Todo>>, Response> {
    let bad = |detail: String| problem(StatusCode::BAD_REQUEST, &detail);
    let sort = match q.sort {
        None => SortKey::default(),
        Some(s) => s.parse().map_err(bad)?,
    };
    // The filter is a typed value, bound as `?1`: NULL means "no filter".
    let done: Option<bool> = match q.done.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(bad("done must be true or false".into())),
    };
    let sql = format!(
        "SELECT t.id, t.title, t.done, t.created_at, u.name FROM todos t \
         JOIN users u ON u.id = t.user_id WHERE (?1 IS NULL OR t.done = ?1) ORDER BY {}",
        sort.order_by()
    );
    let internal = |_| problem(StatusCode::INTERNAL_SERVER_ERROR, "could not list todos");
    let conn = db.lock().unwrap();
    let mut stmt = conn.prepare(&sql).map_err(internal)?;
    let rows = stmt.query_map([done], |r| {
        let (id, title, done, created_at, owner) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        Ok(Todo {
            id,
            title,
            done,
            created_at,
            owner,
        })
    });
    let todos = rows.and_then(|rows| rows.collect()).map_err(internal)?;
    Ok(Json(todos))
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    /// (title, done, created_at, owner): owners are `ann` (id 1) and `bob` (id 2).
    type Row = (&'static str, bool, &'static str, i64);

    // Ties on purpose: equal titles and equal times, inserted out of every order.
    const SET_A: &[Row] = &[
        ("pay rent", false, "2026-03-02T09:00:00Z", 1),
        ("buy milk", true, "2026-03-01T08:00:00Z", 2),
        ("pay rent", true, "2026-03-03T07:00:00Z", 2),
        ("call mum", false, "2026-03-02T09:00:00Z", 1),
        ("buy milk", false, "2026-03-02T09:00:00Z", 2),
        ("answer mail", true, "2026-03-01T08:00:00Z", 1),
    ];
    const SET_B: &[Row] = &[
        ("water plants", true, "2026-05-10T12:00:00Z", 2),
        ("book flights", false, "2026-05-09T18:30:00Z", 1),
        ("water plants", false, "2026-05-09T18:30:00Z", 1),
        ("fix bike", false, "2026-05-11T06:15:00Z", 2),
        ("book flights", true, "2026-05-11T06:15:00Z", 1),
        ("fix bike", false, "2026-05-08T22:00:00Z", 1),
        ("zip files", true, "2026-05-09T18:30:00Z", 2),
    ];

    fn db(rows: &[Row]) -> Db {
        let conn = Connection::open_in_memory().unwrap();
        // Rows come back in reverse wherever a query leaves the order open.
        conn.execute_batch(
            "PRAGMA reverse_unordered_selects = ON;
             CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, password TEXT NOT NULL);
             CREATE TABLE todos (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),
                 title TEXT NOT NULL, done INTEGER NOT NULL, created_at TEXT NOT NULL);
             INSERT INTO users (name, password) VALUES ('ann', 'zz-ann-secret'), ('bob', 'aa-bob-secret');",
        )
        .unwrap();
        for (title, done, at, user) in rows {
            conn.execute(
                "INSERT INTO todos (user_id, title, done, created_at) VALUES (?1, ?2, ?3, ?4)",
                (user, title, done, at),
            )
            .unwrap();
        }
        Arc::new(Mutex::new(conn))
    }

    /// The ids the API must answer, computed here from the rows (ids are 1, 2, 3, ...).
    fn expected(rows: &[Row], sort: &str, done: Option<bool>) -> Vec<i64> {
        let mut v: Vec<(i64, &Row)> = (1..)
            .zip(rows)
            .filter(|(_, r)| done.is_none_or(|d| r.1 == d))
            .collect();
        let (key, desc) = match sort.strip_prefix('-') {
            Some(k) => (k, true),
            None => (sort, false),
        };
        v.sort_by(|a, b| {
            let o = if key == "title" {
                a.1.0.cmp(b.1.0)
            } else {
                a.1.2.cmp(b.1.2)
            };
            o.then(a.0.cmp(&b.0))
        });
        if desc {
            v.reverse();
        }
        v.into_iter().map(|(id, _)| id).collect()
    }

    async fn get(app: &Router, query: &str) -> (StatusCode, String, String) {
        let req = Request::get(format!("/todos{query}"))
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let ct = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (
            status,
            ct.unwrap_or_default(),
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    async fn ids(app: &Router, query: &str) -> Vec<i64> {
        let (status, _, body) = get(app, query).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "GET /todos{query}: expected 200, got {status}: {body}"
        );
        let todos: Vec<Todo> = serde_json::from_str(&body).unwrap();
        todos.iter().map(|t| t.id).collect()
    }

    async fn assert_problem(app: &Router, query: &str) {
        let (status, ct, body) = get(app, query).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "GET /todos{query}: expected 400, got {status}: {body}"
        );
        assert_eq!(
            ct, "application/problem+json",
            "GET /todos{query}: a 400 is a problem+json body"
        );
        let p: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            p["status"], 400,
            "GET /todos{query}: the problem's status is 400: {body}"
        );
    }

    async fn tables_survive(db: &Db, rows: i64) {
        let conn = db.lock().unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM todos", [], |r| r.get(0))
            .unwrap();
        let u: i64 = conn
            .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
            .unwrap();
        assert_eq!((n, u), (rows, 2), "both tables survive with every row");
    }

    #[tokio::test]
    async fn each_sort_key_orders_the_rows_and_id_breaks_ties() {
        for rows in [SET_A, SET_B] {
            let app = app(db(rows));
            for key in ["created_at", "-created_at", "title", "-title"] {
                let want = expected(rows, key, None);
                assert_eq!(
                    ids(&app, &format!("?sort={key}")).await,
                    want,
                    "?sort={key}: expected ids {want:?}, ties broken by id in the same direction"
                );
            }
            let want = expected(rows, "-created_at", None);
            assert_eq!(
                ids(&app, "").await,
                want,
                "without sort: newest first, expected {want:?}"
            );
        }
    }

    #[tokio::test]
    async fn the_done_filter_keeps_only_matching_rows_in_order() {
        for rows in [SET_A, SET_B] {
            let app = app(db(rows));
            for (done, key) in [
                (true, "title"),
                (false, "-created_at"),
                (false, "-title"),
                (true, "created_at"),
            ] {
                let want = expected(rows, key, Some(done));
                assert_eq!(
                    ids(&app, &format!("?done={done}&sort={key}")).await,
                    want,
                    "?done={done}&sort={key}: expected ids {want:?}"
                );
            }
            let want = expected(rows, "-created_at", Some(false));
            assert_eq!(
                ids(&app, "?done=false").await,
                want,
                "?done=false: expected {want:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_sort_outside_the_allow_list_is_a_400_problem() {
        for rows in [SET_A, SET_B] {
            let db = db(rows);
            let app = app(db.clone());
            for sort in [
                "password",
                "-password",
                "id",
                "done",
                "name",
                "user_id",
                "Title",
                "CREATED_AT",
                "title%20desc",
                "title%20",
                "+title",
                "--title",
                "-",
                "",
                "t.title",
                "2",
                "title,password",
                "created_at/**/DESC",
                "id;DROP%20TABLE%20todos",
                "id%3BDROP%20TABLE%20users",
                "(CASE/**/WHEN/**/substr(password,1,1)%3E'm'/**/THEN/**/title/**/ELSE/**/created_at/**/END)",
            ] {
                assert_problem(&app, &format!("?sort={sort}")).await;
            }
            tables_survive(&db, rows.len() as i64).await;
            assert_eq!(
                ids(&app, "?sort=title").await,
                expected(rows, "title", None),
                "the API still works"
            );
        }
    }

    #[tokio::test]
    async fn a_done_other_than_true_or_false_is_a_400_problem() {
        for rows in [SET_A, SET_B] {
            let db = db(rows);
            let app = app(db.clone());
            for done in [
                "yes",
                "1",
                "0",
                "TRUE",
                "False",
                "",
                "true%20OR%201=1",
                "false)%20OR%20(1=1",
                "done",
            ] {
                assert_problem(&app, &format!("?done={done}&sort=title")).await;
            }
            tables_survive(&db, rows.len() as i64).await;
        }
    }

    #[test]
    fn sort_keys_parse_exactly() {
        for key in ["created_at", "-created_at", "title", "-title"] {
            assert!(
                key.parse::<SortKey>().is_ok(),
                "{key:?} is on the allow-list"
            );
        }
        let keys: Vec<_> = ["created_at", "-created_at", "title", "-title"]
            .map(|k| k.parse::<SortKey>().unwrap())
            .into();
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b, "the four keys are four different orders");
            }
        }
        for key in [
            "password",
            "title ",
            " title",
            "title;",
            "-Title",
            "created_at DESC",
        ] {
            assert!(
                key.parse::<SortKey>().is_err(),
                "{key:?} is not on the allow-list"
            );
        }
    }
}
