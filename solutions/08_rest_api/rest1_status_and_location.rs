// rest1_status_and_location: the status code is part of the answer
//
// A REST client reads the status before the body. `POST /todos` that creates something answers
// `201 Created` with a `Location` header naming the new resource, so the client never has to
// guess its URL. `GET /todos/{id}` for an id that does not exist answers `404 Not Found`, not
// `200` with an empty body. A request the server understood but cannot accept, such as a
// blank title, is `422 Unprocessable Content`. axum turns return values into responses: a
// tuple `(StatusCode, [(header, value)], Json(body))` sets all three, and `Err(StatusCode)`
// from a handler returning `Result<_, StatusCode>` becomes that status.
//
// Why it matters: a mobile app retried every "successful" 200 whose body lacked an id, so
// each failed create was sent again and again: the API answered 200 for its own errors.
//
// Production caveat: a relative `Location` such as `/todos/7` is resolved against the URL the
// client used (RFC 9110, section 10.2.2). Behind a proxy that strips a prefix (`/api`), it
// points outside the API unless the proxy rewrites the header or the app adds the prefix.
//
// What to do: in `create`, answer 201 with `Location: /todos/{id}`, and 422 for a blank
// title; in `fetch`, answer 404 for an unknown id.
// Run `backlings hint` if you are stuck.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Todo {
    pub id: u64,
    pub title: String,
    pub done: bool,
}

#[derive(Deserialize)]
pub struct NewTodo {
    pub title: String,
}

/// The store: ids start at 1 and grow.
#[derive(Clone, Default)]
pub struct Db(Arc<Mutex<Vec<Todo>>>);

impl Db {
    fn insert(&self, title: &str) -> Todo {
        let mut todos = self.0.lock().unwrap();
        let todo = Todo {
            id: todos.len() as u64 + 1,
            title: title.to_string(),
            done: false,
        };
        todos.push(todo.clone());
        todo
    }

    fn get(&self, id: u64) -> Option<Todo> {
        self.0.lock().unwrap().iter().find(|t| t.id == id).cloned()
    }
}

pub fn app(db: Db) -> Router {
    Router::new()
        .route("/todos", post(create))
        .route("/todos/{id}", get(fetch))
        .with_state(db)
}

async fn create(State(db): State<Db>, Json(new): Json<NewTodo>) -> impl IntoResponse {
    if new.title.trim().is_empty() {
        return StatusCode::UNPROCESSABLE_ENTITY.into_response();
    }
    let todo = db.insert(new.title.trim());
    let location = format!("/todos/{}", todo.id);
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(todo),
    )
        .into_response()
}

async fn fetch(State(db): State<Db>, Path(id): Path<u64>) -> Result<Json<Todo>, StatusCode> {
    db.get(id).map(Json).ok_or(StatusCode::NOT_FOUND)
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, Response};
    use tower::ServiceExt;

    async fn call(app: &Router, method: &str, uri: &str, json: Option<&str>) -> Response<Body> {
        let mut req = Request::builder().method(method).uri(uri);
        if json.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let body = json.map_or(Body::empty(), |j| Body::from(j.to_string()));
        app.clone().oneshot(req.body(body).unwrap()).await.unwrap()
    }

    async fn body(res: Response<Body>) -> String {
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn todo(id: u64, title: &str) -> Todo {
        Todo {
            id,
            title: title.into(),
            done: false,
        }
    }

    #[tokio::test]
    async fn creating_answers_201_with_the_location_of_the_new_todo() {
        let app = app(Db::default());
        for (id, title) in [(1, "buy milk"), (2, "walk the dog"), (3, "call mum")] {
            let res = call(
                &app,
                "POST",
                "/todos",
                Some(&format!(r#"{{"title":"{title}"}}"#)),
            )
            .await;
            assert_eq!(
                res.status(),
                StatusCode::CREATED,
                "creating {title:?}: expected 201"
            );
            let location = res.headers().get(header::LOCATION).cloned();
            assert_eq!(
                location.as_ref().and_then(|l| l.to_str().ok()),
                Some(format!("/todos/{id}").as_str()),
                "expected Location: /todos/{id}"
            );
            let created: Todo = serde_json::from_str(&body(res).await).unwrap();
            assert_eq!(created, todo(id, title), "the body is the new todo");

            let res = call(&app, "GET", &format!("/todos/{id}"), None).await;
            assert_eq!(res.status(), StatusCode::OK, "the Location works");
            let fetched: Todo = serde_json::from_str(&body(res).await).unwrap();
            assert_eq!(fetched, todo(id, title));
        }
    }

    #[tokio::test]
    async fn an_unknown_id_is_404_and_a_malformed_one_400() {
        let app = app(Db::default());
        call(&app, "POST", "/todos", Some(r#"{"title":"one"}"#)).await;
        for id in ["2", "999", "18446744073709551615"] {
            let res = call(&app, "GET", &format!("/todos/{id}"), None).await;
            assert_eq!(
                res.status(),
                StatusCode::NOT_FOUND,
                "GET /todos/{id}: expected 404"
            );
        }
        for id in ["abc", "-1", "1.5", "18446744073709551616"] {
            let res = call(&app, "GET", &format!("/todos/{id}"), None).await;
            assert_eq!(
                res.status(),
                StatusCode::BAD_REQUEST,
                "GET /todos/{id} is not an id at all: expected 400, not 404"
            );
        }
    }

    #[tokio::test]
    async fn a_blank_title_is_422_and_creates_nothing() {
        let app = app(Db::default());
        for title in ["", "   "] {
            let res = call(
                &app,
                "POST",
                "/todos",
                Some(&format!(r#"{{"title":"{title}"}}"#)),
            )
            .await;
            assert_eq!(
                res.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "title {title:?}: expected 422"
            );
            assert!(
                res.headers().get(header::LOCATION).is_none(),
                "nothing was created"
            );
        }
        let res = call(&app, "POST", "/todos", Some(r#"{"title":" tidy up "}"#)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let created: Todo = serde_json::from_str(&body(res).await).unwrap();
        assert_eq!(
            created,
            todo(1, "tidy up"),
            "the first todo that was created is number 1, trimmed"
        );
    }

    #[tokio::test]
    async fn what_axum_answers_for_a_body_it_cannot_read() {
        let app = app(Db::default());
        let res = call(&app, "POST", "/todos", Some("{not json")).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "malformed JSON: 400");
        let res = call(&app, "POST", "/todos", Some(r#"{"name":"x"}"#)).await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no title field: 422"
        );
        let res = app
            .clone()
            .oneshot(
                Request::post("/todos")
                    .body(Body::from(r#"{"title":"x"}"#))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "no content-type: application/json: 415"
        );
    }
}
