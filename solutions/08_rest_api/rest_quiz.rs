// rest_quiz: a `/v1/todos` resource that two clients can edit safely
//
// The topic in one resource: `201` and `Location` on create, `problem+json` errors, a PATCH
// whose fields can be missing, `null` or a value (the rules of JSON Merge Patch, RFC 7396),
// and optimistic concurrency over HTTP. Every
// representation carries an `ETag` (here the todo's version, `"3"`). A client that wants to
// change it sends `If-Match` with the ETag it read. If the todo changed since, the server
// answers `412 Precondition Failed` and changes nothing, instead of silently overwriting the
// other client's edit (the "lost update"). This server requires the header on PATCH:
// without it, `428 Precondition Required` (RFC 6585). `If-Match: *` matches any current
// version, and the header may list several ETags, on one line or several. ETags in `If-Match`
// use the strong comparison: a weak one (`W/"3"`) never matches (RFC 9110, section 13.1.1).
//
// Why it matters: two support agents edited the same ticket; the second save wiped the first
// one's note, and nobody noticed for a week.
//
// Production caveat: an ETag must change whenever the representation does. A version column
// bumped in the same UPDATE does that; a hash of the body does too, but a timestamp with
// one-second resolution does not: two edits in the same second share it.
//
// What to do: in `patch`, check `If-Match` against the current ETag (428 without it, 412 when
// it does not match), before anything changes; then apply the fields, all or none: missing
// keeps, `null` clears the note, a blank title refuses the whole patch.
// Run `backlings hint` if you are stuck.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Todo {
    pub id: u64,
    pub title: String,
    pub note: Option<String>,
    pub version: u64,
}

#[derive(Deserialize)]
pub struct NewTodo {
    pub title: String,
}

/// A PATCH body: `None` = the field was missing; `Some(None)` = it was `null`.
#[derive(Deserialize)]
pub struct TodoPatch {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub note: Option<Option<String>>,
}

/// Runs only for a field that is present, so `null` becomes `Some(None)`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

pub type Db = Arc<Mutex<BTreeMap<u64, Todo>>>;

pub fn app(db: Db) -> Router {
    Router::new()
        .route("/v1/todos", post(create))
        .route("/v1/todos/{id}", get(fetch).patch(patch))
        .with_state(db)
}

/// An RFC 9457 problem response.
fn problem(status: StatusCode, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    let content_type = [(header::CONTENT_TYPE, "application/problem+json")];
    (status, content_type, body.to_string()).into_response()
}

fn etag(todo: &Todo) -> String {
    format!("\"{}\"", todo.version)
}

fn with_etag(status: StatusCode, todo: Todo) -> Response {
    (status, [(header::ETAG, etag(&todo))], Json(todo)).into_response()
}

async fn create(State(db): State<Db>, Json(new): Json<NewTodo>) -> Response {
    if new.title.trim().is_empty() {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, "title must not be blank");
    }
    let mut todos = db.lock().unwrap();
    let id = todos.keys().last().map_or(1, |k| k + 1);
    let todo = Todo {
        id,
        title: new.title.trim().to_string(),
        note: None,
        version: 1,
    };
    todos.insert(id, todo.clone());
    let mut res = with_etag(StatusCode::CREATED, todo);
    let location = format!("/v1/todos/{id}")
        .parse()
        .expect("a valid header value");
    res.headers_mut().insert(header::LOCATION, location);
    res
}

async fn fetch(State(db): State<Db>, Path(id): Path<u64>) -> Response {
    match db.lock().unwrap().get(&id) {
        Some(todo) => with_etag(StatusCode::OK, todo.clone()),
        None => problem(StatusCode::NOT_FOUND, &format!("no todo {id}")),
    }
}

/// Whether the `If-Match` header lines match `current`: `*`, or one of the listed ETags,
/// compared strongly (a weak `W/"…"` never matches). Splitting on `,` is safe for this API's
/// numeric ETags; an ETag may itself contain a comma.
fn if_match<'a>(lines: impl Iterator<Item = &'a str>, current: &str) -> bool {
    lines
        .flat_map(|line| line.split(','))
        .any(|tag| tag.trim() == "*" || tag.trim() == current)
}

async fn patch(
    State(db): State<Db>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    Json(p): Json<TodoPatch>,
) -> Response {
    let mut todos = db.lock().unwrap();
    let Some(todo) = todos.get_mut(&id) else {
        return problem(StatusCode::NOT_FOUND, &format!("no todo {id}"));
    };
    let wanted = headers.get_all(header::IF_MATCH);
    if wanted.iter().next().is_none() {
        return problem(
            StatusCode::PRECONDITION_REQUIRED,
            "send If-Match with the ETag you read",
        );
    }
    // Every header line counts; a line that is not text matches nothing.
    let lines = wanted.iter().map(|v| v.to_str().unwrap_or(""));
    if !if_match(lines, &etag(todo)) {
        return problem(
            StatusCode::PRECONDITION_FAILED,
            "the todo changed since you read it",
        );
    }
    if p.title.as_ref().is_some_and(|t| t.trim().is_empty()) {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, "title must not be blank");
    }
    if let Some(title) = p.title {
        todo.title = title.trim().to_string();
    }
    if let Some(note) = p.note {
        todo.note = note;
    }
    todo.version += 1;
    with_etag(StatusCode::OK, todo.clone())
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    struct Answer {
        status: StatusCode,
        etag: Option<String>,
        location: Option<String>,
        content_type: Option<String>,
        body: serde_json::Value,
    }

    async fn call(
        app: &Router,
        method: &str,
        uri: &str,
        if_match: Option<&str>,
        json: &str,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(m) = if_match {
            req = req.header(header::IF_MATCH, m);
        }
        if !json.is_empty() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(Body::from(json.to_string())).unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let head = |name| {
            res.headers()
                .get(name)
                .map(|v: &header::HeaderValue| v.to_str().unwrap().to_string())
        };
        let (etag, location, content_type) = (
            head(header::ETAG),
            head(header::LOCATION),
            head(header::CONTENT_TYPE),
        );
        let status = res.status();
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Answer {
            status,
            etag,
            location,
            content_type,
            body,
        }
    }

    /// A server holding one todo, created through the API; returns its ETag.
    async fn one_todo(title: &str) -> (Router, String) {
        let app = app(Db::default());
        let a = call(
            &app,
            "POST",
            "/v1/todos",
            None,
            &format!(r#"{{"title":"{title}"}}"#),
        )
        .await;
        assert_eq!(a.status, StatusCode::CREATED, "creating: expected 201");
        assert_eq!(
            a.location.as_deref(),
            Some("/v1/todos/1"),
            "expected Location: /v1/todos/1"
        );
        (app, a.etag.expect("a created todo carries an ETag"))
    }

    #[tokio::test]
    async fn a_patch_with_the_current_etag_applies_and_moves_the_etag_on() {
        for (title, patch, note) in [
            ("buy milk", r#"{"note":"two litres"}"#, Some("two litres")),
            (
                "call mum",
                r#"{"title":"call dad","note":"after six"}"#,
                Some("after six"),
            ),
        ] {
            let (app, etag) = one_todo(title).await;
            let a = call(&app, "PATCH", "/v1/todos/1", Some(&etag), patch).await;
            assert_eq!(
                a.status,
                StatusCode::OK,
                "PATCH with If-Match: {etag}: expected 200"
            );
            assert_eq!(a.body["note"].as_str(), note, "the note after {patch}");
            let next = a.etag.expect("the answer carries the new ETag");
            assert_ne!(next, etag, "the ETag must change when the todo does");
            let got = call(&app, "GET", "/v1/todos/1", None, "").await;
            assert_eq!(
                got.etag.as_deref(),
                Some(next.as_str()),
                "GET shows the same new ETag"
            );
            assert_eq!(got.body, a.body, "GET shows what the PATCH answered");
        }
    }

    #[tokio::test]
    async fn a_stale_etag_is_412_and_the_other_clients_edit_survives() {
        for (first, second) in [("note A", "note B"), ("x", "y")] {
            let (app, etag) = one_todo("ticket").await;
            let a = call(
                &app,
                "PATCH",
                "/v1/todos/1",
                Some(&etag),
                &format!(r#"{{"note":"{first}"}}"#),
            )
            .await;
            assert_eq!(
                a.status,
                StatusCode::OK,
                "the first client's PATCH: expected 200"
            );
            // The second client still holds the ETag it read before the first edit.
            let b = call(
                &app,
                "PATCH",
                "/v1/todos/1",
                Some(&etag),
                &format!(r#"{{"note":"{second}"}}"#),
            )
            .await;
            assert_eq!(
                b.status,
                StatusCode::PRECONDITION_FAILED,
                "a stale If-Match: expected 412"
            );
            assert_eq!(
                b.content_type.as_deref(),
                Some("application/problem+json"),
                "a 412 is a problem+json"
            );
            assert_eq!(b.body["status"], 412, "the problem's status field");
            let now = call(&app, "GET", "/v1/todos/1", None, "").await;
            assert_eq!(
                now.body["note"].as_str(),
                Some(first),
                "the first client's edit survives"
            );
            assert_eq!(
                now.etag, a.etag,
                "a refused PATCH changes nothing, not even the ETag"
            );
        }
    }

    #[tokio::test]
    async fn if_match_is_required_and_compared_as_rfc_9110_says() {
        let (app, etag) = one_todo("t").await;
        let a = call(&app, "PATCH", "/v1/todos/1", None, r#"{"note":"n"}"#).await;
        assert_eq!(
            a.status,
            StatusCode::PRECONDITION_REQUIRED,
            "no If-Match: expected 428"
        );
        assert_eq!(
            a.content_type.as_deref(),
            Some("application/problem+json"),
            "a 428 is a problem+json that says what to send"
        );
        let weak = format!("W/{etag}");
        let a = call(&app, "PATCH", "/v1/todos/1", Some(&weak), r#"{"note":"n"}"#).await;
        assert_eq!(
            a.status,
            StatusCode::PRECONDITION_FAILED,
            "{weak}: a weak ETag never matches in If-Match"
        );
        let a = call(
            &app,
            "PATCH",
            "/v1/todos/1",
            Some(&format!("\"999\", {etag}")),
            r#"{"note":"n"}"#,
        )
        .await;
        assert_eq!(
            a.status,
            StatusCode::OK,
            "a list containing the current ETag matches"
        );
        let a = call(&app, "PATCH", "/v1/todos/1", Some("*"), r#"{"note":"m"}"#).await;
        assert_eq!(
            a.status,
            StatusCode::OK,
            "If-Match: * matches any current version"
        );
        let a = call(&app, "PATCH", "/v1/todos/2", Some("*"), r#"{"note":"m"}"#).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "there is no todo 2");
        assert_eq!(
            a.content_type.as_deref(),
            Some("application/problem+json"),
            "a 404 is a problem+json"
        );
    }

    #[tokio::test]
    async fn missing_keeps_null_clears_and_a_value_sets() {
        let (app, mut etag) = one_todo("walk").await;
        for (patch, title, note) in [
            (r#"{"note":"park"}"#, "walk", Some("park")),
            (r#"{}"#, "walk", Some("park")),
            (r#"{"title":"run"}"#, "run", Some("park")),
            (r#"{"note":null}"#, "run", None),
            (r#"{"note":"beach","title":"swim"}"#, "swim", Some("beach")),
        ] {
            let a = call(&app, "PATCH", "/v1/todos/1", Some(&etag), patch).await;
            assert_eq!(a.status, StatusCode::OK, "PATCH {patch}");
            assert_eq!(a.body["title"].as_str(), Some(title), "after {patch}");
            assert_eq!(a.body["note"].as_str(), note, "after {patch}");
            etag = a.etag.unwrap();
        }
        let a = call(
            &app,
            "PATCH",
            "/v1/todos/1",
            Some(&etag),
            r#"{"title":"  "}"#,
        )
        .await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "a blank title: expected 422"
        );
        let now = call(&app, "GET", "/v1/todos/1", None, "").await;
        assert_eq!(
            now.etag.as_deref(),
            Some(etag.as_str()),
            "a refused PATCH changes nothing"
        );
        assert_eq!(
            now.body["title"].as_str(),
            Some("swim"),
            "the title is as before"
        );
    }

    #[tokio::test]
    async fn each_todo_has_its_own_location_and_etag() {
        let app = app(Db::default());
        for id in 1..=3 {
            let a = call(
                &app,
                "POST",
                "/v1/todos",
                None,
                &format!(r#"{{"title":"t{id}"}}"#),
            )
            .await;
            assert_eq!(
                a.location,
                Some(format!("/v1/todos/{id}")),
                "todo number {id}"
            );
        }
        let two = call(&app, "GET", "/v1/todos/2", None, "").await;
        let one = call(&app, "GET", "/v1/todos/1", None, "").await;
        let a = call(
            &app,
            "PATCH",
            "/v1/todos/2",
            two.etag.as_deref(),
            r#"{"note":"n"}"#,
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "PATCH todo 2 with its own ETag");
        let again = call(&app, "GET", "/v1/todos/1", None, "").await;
        assert_eq!(
            again.etag, one.etag,
            "editing todo 2 leaves todo 1's ETag alone"
        );
        assert_eq!(
            again.body["title"].as_str(),
            Some("t1"),
            "todo 1 is untouched"
        );
    }

    #[tokio::test]
    async fn a_refused_patch_changes_nothing_at_all() {
        for (stale, patch) in [
            (true, r#"{"title":"mine","note":"mine"}"#),
            (false, r#"{"note":"kept?","title":"  "}"#),
        ] {
            let (app, etag) = one_todo("theirs").await;
            let a = call(
                &app,
                "PATCH",
                "/v1/todos/1",
                Some(&etag),
                r#"{"note":"theirs"}"#,
            )
            .await;
            let current = a.etag.clone().unwrap();
            let tag = if stale { etag } else { current.clone() };
            let b = call(&app, "PATCH", "/v1/todos/1", Some(&tag), patch).await;
            let expected = if stale {
                StatusCode::PRECONDITION_FAILED
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            assert_eq!(b.status, expected, "PATCH {patch} with If-Match: {tag}");
            let now = call(&app, "GET", "/v1/todos/1", None, "").await;
            assert_eq!(
                now.body, a.body,
                "after a refused {patch}, no field may have changed"
            );
            assert_eq!(now.etag, Some(current), "and the ETag stays");
        }
    }

    #[tokio::test]
    async fn only_an_exact_current_etag_matches() {
        let app = app(Db::default());
        for title in ["a", "b"] {
            call(
                &app,
                "POST",
                "/v1/todos",
                None,
                &format!(r#"{{"title":"{title}"}}"#),
            )
            .await;
        }
        // Todo 1 goes to version 12; todo 2 stays at version 1.
        let mut etag = call(&app, "GET", "/v1/todos/1", None, "")
            .await
            .etag
            .unwrap();
        for _ in 0..11 {
            etag = call(&app, "PATCH", "/v1/todos/1", Some(&etag), "{}")
                .await
                .etag
                .unwrap();
        }
        assert_eq!(etag, "\"12\"");
        for wrong in ["\"12\"", "1", "\"11\""] {
            let a = call(&app, "PATCH", "/v1/todos/2", Some(wrong), r#"{"note":"x"}"#).await;
            assert_eq!(
                a.status,
                StatusCode::PRECONDITION_FAILED,
                "todo 2 is at \"1\": If-Match: {wrong} must not match"
            );
        }
        // A list may also come as several header lines.
        let req = Request::patch("/v1/todos/2")
            .header(header::IF_MATCH, "\"7\"")
            .header(header::IF_MATCH, "\"9\", \"1\"")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"note":"y"}"#))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "If-Match on two lines, the second listing the current ETag: expected 200"
        );
    }
}
