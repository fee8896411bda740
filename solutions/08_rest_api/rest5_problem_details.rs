// rest5_problem_details: one error format, and nothing leaks through it
//
// RFC 9457 ("Problem Details for HTTP APIs") is the standard error body: the media type
// `application/problem+json` and a JSON object with `type` (a URI naming the kind of problem,
// the key clients branch on), `title` (a short summary of that kind, the same every time),
// `status` (the HTTP status, repeated: it MUST match the real one) and `detail` (this
// occurrence, written to help the client fix it). A type may add members of its own: here a
// validation error lists each bad field in `errors`. The type `about:blank` means "nothing
// beyond the status code", and its title is the status's reason phrase ("Not Found"). In axum,
// one `ApiError` implements `IntoResponse`, so every failure of every handler has this shape.
//
// Why it matters: an API answered failed queries with SQLite's own text (`no such column:
// card_number`). Scanners collected those 500s and mapped the schema in an afternoon. Problem
// details are not a debugging tool for the implementation (RFC 9457, sections 4 and 5).
//
// Production caveat: hiding the database's message is half the job. Log it on the server under
// an id and hand the client that id, e.g. in `instance`, a URI identifying this occurrence (RFC
// 9457, section 3.1.5), so that a bug report leads to the log line.
//
// What to do: implement `into_response` for `ApiError`, following the table on the enum.
// Run `backlings hint` if you are stuck.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::{Arc, Mutex};

pub type Db = Arc<Mutex<Connection>>;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Todo {
    pub title: String,
    pub priority: i64,
}

/// Every way a request fails, and the problem it becomes: the HTTP status, then the members
/// `type`, `title`, `detail` (and `status`, always; `errors` only where listed; no others).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404, `about:blank`, "Not Found", `todo {id} does not exist`.
    #[error("todo {0} not found")]
    NotFound(i64),
    /// 422, `https://example.com/problems/validation`, "Invalid request", `{n} invalid
    /// field(s)`, and the extension `errors`: `[{"pointer": "#/title", "detail": "..."}, ...]`.
    #[error("invalid fields: {0:?}")]
    Validation(Vec<(&'static str, &'static str)>),
    /// A request axum could not read: its status, `about:blank`, its reason phrase, its text.
    #[error("rejected: {1}")]
    Rejected(StatusCode, String),
    /// 500, `about:blank`, "Internal Server Error", `the server could not complete the request`.
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        Self::Rejected(r.status(), r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::Rejected(r.status(), r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        const VALIDATION: &str = "https://example.com/problems/validation";
        let (status, kind, detail) = match &self {
            Self::NotFound(id) => (
                StatusCode::NOT_FOUND,
                None,
                format!("todo {id} does not exist"),
            ),
            Self::Validation(errors) => {
                let detail = format!("{} invalid field(s)", errors.len());
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some((VALIDATION, "Invalid request")),
                    detail,
                )
            }
            Self::Rejected(status, text) => (*status, None, text.clone()),
            // The database's message goes to the server's log, never to the client.
            Self::Db(e) => {
                eprintln!("database error: {e}");
                let detail = "the server could not complete the request".to_string();
                (StatusCode::INTERNAL_SERVER_ERROR, None, detail)
            }
        };
        // `about:blank` adds nothing to the status, so its title is the status's phrase.
        let phrase = status.canonical_reason().unwrap_or("Error");
        let (kind, title) = kind.unwrap_or(("about:blank", phrase));
        let mut body = json!({ "type": kind, "title": title, "status": status.as_u16() });
        body["detail"] = json!(detail);
        if let Self::Validation(errors) = &self {
            let list = errors
                .iter()
                .map(|(p, d)| json!({ "pointer": p, "detail": d }));
            body["errors"] = list.collect();
        }
        let content_type = [(header::CONTENT_TYPE, "application/problem+json")];
        (status, content_type, body.to_string()).into_response()
    }
}

pub fn app(db: Db) -> Router {
    Router::new()
        .route("/todos", post(create))
        .route("/todos/{id}", get(fetch))
        .with_state(db)
}

async fn create(
    State(db): State<Db>,
    body: Result<Json<Todo>, JsonRejection>,
) -> Result<(StatusCode, Json<Todo>), ApiError> {
    let Json(mut todo) = body?;
    todo.title = todo.title.trim().to_string();
    let mut errors = Vec::new();
    if todo.title.is_empty() {
        errors.push(("#/title", "must not be blank"));
    }
    if !(1..=5).contains(&todo.priority) {
        errors.push(("#/priority", "must be between 1 and 5"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let sql = "INSERT INTO todos (title, priority) VALUES (?1, ?2)";
    let conn = db.lock().unwrap();
    conn.execute(sql, (&todo.title, todo.priority))?;
    Ok((StatusCode::CREATED, Json(todo)))
}

async fn fetch(
    State(db): State<Db>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<Todo>, ApiError> {
    let Path(id) = id?;
    let sql = "SELECT title, priority FROM todos WHERE id = ?1";
    let row = |r: &rusqlite::Row| {
        Ok(Todo {
            title: r.get(0)?,
            priority: r.get(1)?,
        })
    };
    let todo = db.lock().unwrap().query_row(sql, [id], row).optional()?;
    todo.map(Json).ok_or(ApiError::NotFound(id))
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use serde_json::Value;
    use tower::ServiceExt;

    fn db() -> Db {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL,
                                 priority INTEGER NOT NULL)",
        )
        .unwrap();
        Arc::new(Mutex::new(conn))
    }

    struct Answer {
        status: StatusCode,
        content_type: String,
        headers: String,
        body: String,
    }

    impl Answer {
        fn json(&self) -> Value {
            serde_json::from_str(&self.body)
                .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {}", self.body))
        }
    }

    async fn read(res: Response) -> Answer {
        let status = res.status();
        let content_type = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map_or("(none)".into(), |v| v.to_str().unwrap().to_string());
        let headers = format!("{:?}", res.headers());
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        let body = String::from_utf8(bytes.to_vec()).unwrap();
        Answer {
            status,
            content_type,
            headers,
            body,
        }
    }

    async fn call(app: &Router, method: &str, uri: &str, json: Option<&str>) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if json.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let body = Body::from(json.unwrap_or("").to_string());
        read(app.clone().oneshot(req.body(body).unwrap()).await.unwrap()).await
    }

    fn new_todo(title: &str, priority: i64) -> String {
        json!({ "title": title, "priority": priority }).to_string()
    }

    /// A problem+json answer with exactly these members.
    fn assert_problem(res: &Answer, status: StatusCode, expected: Value, what: &str) {
        assert_eq!(res.status, status, "{what}: expected status {status}");
        assert_eq!(
            res.content_type, "application/problem+json",
            "{what}: expected Content-Type: application/problem+json (RFC 9457, section 3)"
        );
        assert_eq!(
            res.json(),
            expected,
            "{what}: expected exactly this problem object"
        );
    }

    #[tokio::test]
    async fn a_missing_todo_is_a_plain_404_problem() {
        let app = app(db());
        let res = call(&app, "POST", "/todos", Some(&new_todo("buy milk", 2))).await;
        assert_eq!(
            res.status,
            StatusCode::CREATED,
            "creating a valid todo: 201"
        );
        let res = call(&app, "GET", "/todos/1", None).await;
        assert_eq!(res.status, StatusCode::OK, "todo 1 exists");
        assert_eq!(
            res.content_type, "application/json",
            "a success is plain JSON"
        );
        for id in [7, 4242] {
            let res = call(&app, "GET", &format!("/todos/{id}"), None).await;
            let expected = json!({
                "type": "about:blank",
                "title": "Not Found",
                "status": 404,
                "detail": format!("todo {id} does not exist"),
            });
            assert_problem(
                &res,
                StatusCode::NOT_FOUND,
                expected,
                &format!("GET /todos/{id}"),
            );
        }
    }

    #[tokio::test]
    async fn validation_lists_every_invalid_field() {
        let app = app(db());
        let blank = json!({ "pointer": "#/title", "detail": "must not be blank" });
        let range = json!({ "pointer": "#/priority", "detail": "must be between 1 and 5" });
        for (title, priority, errors) in [
            ("  ", 9, vec![blank.clone(), range.clone()]),
            ("ok", 0, vec![range.clone()]),
            ("", 5, vec![blank.clone()]),
            ("ok", 6, vec![range.clone()]),
            ("ok", -1, vec![range.clone()]),
        ] {
            let res = call(&app, "POST", "/todos", Some(&new_todo(title, priority))).await;
            let expected = json!({
                "type": "https://example.com/problems/validation",
                "title": "Invalid request",
                "status": 422,
                "detail": format!("{} invalid field(s)", errors.len()),
                "errors": errors,
            });
            let what = format!("title {title:?}, priority {priority}");
            assert_problem(&res, StatusCode::UNPROCESSABLE_ENTITY, expected, &what);
        }
        for (title, priority) in [("low", 1), ("high", 5)] {
            let res = call(&app, "POST", "/todos", Some(&new_todo(title, priority))).await;
            assert_eq!(
                res.status,
                StatusCode::CREATED,
                "priority {priority} is within 1..=5: expected 201"
            );
            assert_eq!(
                res.content_type, "application/json",
                "a success is plain JSON"
            );
        }
    }

    fn rejected(status: u16, title: &str, detail: &str) -> Value {
        json!({ "type": "about:blank", "title": title, "status": status, "detail": detail })
    }

    #[tokio::test]
    async fn what_axum_rejects_is_a_problem_too() {
        let app = app(db());
        let res = call(&app, "POST", "/todos", Some("{not json")).await;
        let detail = res.json()["detail"].as_str().unwrap_or("").to_string();
        assert!(
            detail.starts_with("Failed to parse the request body as JSON: "),
            "malformed JSON: expected axum's message (`body_text()`) as the detail, got {detail:?}"
        );
        let expected = rejected(400, "Bad Request", &detail);
        assert_problem(&res, StatusCode::BAD_REQUEST, expected, "malformed JSON");

        let req = Request::post("/todos").body(Body::from(new_todo("x", 1)));
        let res = read(app.clone().oneshot(req.unwrap()).await.unwrap()).await;
        let detail = "Expected request with `Content-Type: application/json`";
        let expected = rejected(415, "Unsupported Media Type", detail);
        let status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        assert_problem(&res, status, expected, "a body without Content-Type");

        for (id, shown) in [("abc", "abc"), ("a%22b%5C", r#"a"b\"#)] {
            let res = call(&app, "GET", &format!("/todos/{id}"), None).await;
            let detail = format!("Invalid URL: Cannot parse `{shown}` to a `i64`");
            let expected = rejected(400, "Bad Request", &detail);
            let what = format!("GET /todos/{id} (a quote and a backslash must be escaped in JSON)");
            assert_problem(&res, StatusCode::BAD_REQUEST, expected, &what);
        }
    }

    fn generic_500() -> Value {
        json!({
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
            "detail": "the server could not complete the request",
        })
    }

    #[tokio::test]
    async fn a_database_error_leaks_nothing() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE todos (id INTEGER PRIMARY KEY)")
            .unwrap();
        for (sql, secrets) in [
            (
                "SELECT password_hash FROM internal_user_secrets_v2",
                ["internal_user_secrets_v2", "no such table"],
            ),
            (
                "SELECT ssn_plaintext FROM todos",
                ["ssn_plaintext", "no such column"],
            ),
        ] {
            let err = conn
                .query_row(sql, [], |r| r.get::<_, String>(0))
                .expect_err("the query fails");
            let message = err.to_string();
            assert!(message.contains(secrets[0]), "SQLite names it: {message}");
            let res = read(ApiError::from(err).into_response()).await;
            for secret in secrets.iter().chain([&message.as_str()]) {
                assert!(
                    !res.body.contains(secret) && !res.headers.contains(secret),
                    "{sql}: the answer must not contain {secret:?} (RFC 9457, section 5), got {} {}",
                    res.headers,
                    res.body
                );
            }
            assert_problem(&res, StatusCode::INTERNAL_SERVER_ERROR, generic_500(), sql);
        }
    }

    #[tokio::test]
    async fn a_broken_database_answers_a_generic_500_through_the_router() {
        for (breakage, method, uri, json) in [
            ("DROP TABLE todos", "GET", "/todos/1", None),
            (
                "ALTER TABLE todos RENAME COLUMN priority TO priority_secret_col",
                "POST",
                "/todos",
                Some(new_todo("tidy up", 2)),
            ),
        ] {
            let db = db();
            db.lock().unwrap().execute_batch(breakage).unwrap();
            let res = call(&app(db), method, uri, json.as_deref()).await;
            assert_problem(
                &res,
                StatusCode::INTERNAL_SERVER_ERROR,
                generic_500(),
                &format!("{method} {uri} after {breakage}"),
            );
            for secret in ["no such", "todos", "priority", "SQL"] {
                assert!(
                    !res.body.contains(secret),
                    "{method} {uri}: the body must not contain {secret:?}, got {}",
                    res.body
                );
            }
        }
    }
}
