// rest6_openapi_contract: the API description that cannot drift
//
// An OpenAPI document is a contract: clients generate code from it, gateways check requests
// against it. Written by hand beside the router, it drifts. Here one table, `ROUTES`, gives
// each route's method, path, summary and examples; `app_with` builds the router from it, and
// `openapi_for` must build the document's `paths` from the same table, so what the router
// answers is documented, and nothing else. In OpenAPI 3.1, `paths` maps each path (axum 0.8's
// `/todos/{id}` is already OpenAPI's template syntax) to one operation per lowercase method,
// and each `{name}` in a path needs a parameter with `"in": "path"` and `"required": true`.
//
// Why it matters: a team's SDK had no `delete` because the hand-written spec never listed it.
// Customers scripted the web UI instead, until a redesign broke every one of those scripts.
//
// Production caveat: examples are not schemas. Client generators read each body's JSON Schema
// (OpenAPI 3.1's Schema Object is a superset of JSON Schema 2020-12): derive those from the
// DTO types as well (utoipa and schemars do), for the same reason.
//
// What to do: in `openapi_for`, build `paths` by iterating `routes`.
// Run `backlings hint` if you are stuck.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Todo {
    pub id: u64,
    pub title: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTodo {
    pub title: String,
}

pub type Db = Arc<Mutex<BTreeMap<u64, Todo>>>;

/// One operation. Examples are JSON text; `response` is the success status and its body.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub summary: &'static str,
    pub request: Option<&'static str>,
    pub response: (StatusCode, Option<&'static str>),
    pub handler: fn(MethodFilter) -> MethodRouter<Db>,
}

const TODO: &str = r#"{"id": 1, "title": "buy milk"}"#;

#[rustfmt::skip]
pub const ROUTES: &[Route] = &[
    Route { method: Method::POST, path: "/todos", summary: "Create a todo",
            request: Some(r#"{"title": "buy milk"}"#), response: (StatusCode::CREATED, Some(TODO)),
            handler: |m| on(m, create) },
    Route { method: Method::GET, path: "/todos/{id}", summary: "Get one todo",
            request: None, response: (StatusCode::OK, Some(TODO)), handler: |m| on(m, fetch) },
    Route { method: Method::DELETE, path: "/todos/{id}", summary: "Delete a todo",
            request: None, response: (StatusCode::NO_CONTENT, None), handler: |m| on(m, remove) },
];

/// The router, built from the table: each handler on its route's method and path.
pub fn app_with(routes: &[Route], db: Db) -> Router {
    let add = |router: Router<Db>, r: &Route| {
        let filter = MethodFilter::try_from(r.method.clone()).expect("a standard method");
        router.route(r.path, (r.handler)(filter))
    };
    routes.iter().fold(Router::new(), add).with_state(db)
}

/// `{"application/json": {"example": ...}}`, the example parsed: a JSON value, not a string.
fn example(text: &str) -> Value {
    let value: Value = serde_json::from_str(text).expect("an example is JSON");
    json!({ "application/json": { "example": value } })
}

/// The names of a path's parameters: `/a/{x}/b/{y}` gives `x`, then `y`.
fn param_names(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
}

pub fn openapi_for(routes: &[Route]) -> Value {
    let mut paths = json!({});
    // One operation per route, under its path and its lowercase method.
    for r in routes {
        let schema = json!({ "type": "string" }); // a path segment is text on the wire
        let param =
            |name| json!({ "name": name, "in": "path", "required": true, "schema": schema });
        let params: Vec<Value> = param_names(r.path).map(param).collect();
        let mut op = json!({ "summary": r.summary, "parameters": params });
        if let Some(body) = r.request {
            op["requestBody"] = json!({ "required": true, "content": example(body) });
        }
        let (status, body) = r.response;
        let mut response = json!({ "description": status.canonical_reason() });
        if let Some(body) = body {
            response["content"] = example(body);
        }
        op["responses"] = json!({ status.as_str(): response });
        paths[r.path][r.method.as_str().to_lowercase()] = op;
    }
    let info = json!({ "title": "Todos", "version": "1.0.0" });
    json!({ "openapi": "3.1.0", "info": info, "paths": paths })
}

async fn create(State(db): State<Db>, Json(new): Json<NewTodo>) -> (StatusCode, Json<Todo>) {
    let mut todos = db.lock().unwrap();
    let id = todos.keys().last().map_or(1, |last| last + 1);
    let todo = Todo {
        id,
        title: new.title,
    };
    todos.insert(id, todo.clone());
    (StatusCode::CREATED, Json(todo))
}

async fn fetch(State(db): State<Db>, Path(id): Path<u64>) -> Result<Json<Todo>, StatusCode> {
    let todo = db.lock().unwrap().get(&id).cloned();
    todo.map(Json).ok_or(StatusCode::NOT_FOUND)
}

async fn remove(State(db): State<Db>, Path(id): Path<u64>) -> StatusCode {
    match db.lock().unwrap().remove(&id) {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::NOT_FOUND,
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, header};
    use std::collections::BTreeSet;
    use tower::ServiceExt;

    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

    /// A second API with other paths, methods and parameters, whose handlers echo a fixed
    /// answer: a document written by hand for `ROUTES` cannot describe it.
    const SHELVES: &[Route] = &[
        Route {
            method: Method::PUT,
            path: "/shelves/{shelf}/books/{isbn}",
            summary: "Put a book on a shelf",
            request: Some(r#"{"title": "Dune"}"#),
            response: (StatusCode::OK, Some(r#"{"title": "Dune"}"#)),
            handler: |m| answer(m, StatusCode::OK, r#"{"title": "Dune"}"#),
        },
        Route {
            method: Method::GET,
            path: "/health",
            summary: "Liveness",
            request: None,
            response: (StatusCode::OK, Some(r#"{"ok": true}"#)),
            handler: |m| answer(m, StatusCode::OK, r#"{"ok": true}"#),
        },
        Route {
            method: Method::DELETE,
            path: "/shelves/{shelf}/books/{isbn}",
            summary: "Take a book off a shelf",
            request: None,
            response: (StatusCode::NO_CONTENT, None),
            handler: |m| answer(m, StatusCode::NO_CONTENT, ""),
        },
        Route {
            method: Method::PATCH,
            path: "/shelves/{shelf}",
            summary: "Rename a shelf",
            request: Some(r#"{"name": "sci-fi"}"#),
            response: (StatusCode::ACCEPTED, Some(r#"{"name": "sci-fi"}"#)),
            handler: |m| answer(m, StatusCode::ACCEPTED, r#"{"name": "sci-fi"}"#),
        },
    ];

    fn answer(m: MethodFilter, status: StatusCode, body: &'static str) -> MethodRouter<Db> {
        on(m, move || async move { (status, body) })
    }

    fn db() -> Db {
        let todo = Todo {
            id: 1,
            title: "buy milk".into(),
        };
        Arc::new(Mutex::new(BTreeMap::from([(1, todo)])))
    }

    /// Every (path, method) the document lists, methods as written: every key of a Path Item
    /// except its fields that are not operations.
    fn operations(doc: &Value) -> BTreeSet<(String, String)> {
        let not_operations = ["$ref", "summary", "description", "servers", "parameters"];
        let paths = doc["paths"].as_object().expect("`paths` is a JSON object");
        let mut ops = BTreeSet::new();
        for (path, item) in paths {
            let item = item
                .as_object()
                .expect("each path maps to a Path Item object");
            for key in item
                .keys()
                .filter(|k| !not_operations.contains(&k.as_str()))
            {
                ops.insert((path.clone(), key.clone()));
            }
        }
        ops
    }

    fn table(routes: &[Route]) -> BTreeSet<(String, String)> {
        let lower = |r: &Route| r.method.as_str().to_lowercase();
        routes
            .iter()
            .map(|r| (r.path.to_string(), lower(r)))
            .collect()
    }

    fn concrete(path: &str) -> String {
        let segment = |s: &str| {
            if s.starts_with('{') {
                "1".to_string()
            } else {
                s.to_string()
            }
        };
        path.split('/').map(segment).collect::<Vec<_>>().join("/")
    }

    async fn send(
        app: &Router,
        method: &str,
        uri: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method.to_uppercase().as_str())
            .uri(uri);
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
        let res = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = res.status();
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    const BOTH: [(&str, &[Route]); 2] = [("ROUTES", ROUTES), ("the shelf routes", SHELVES)];

    #[test]
    fn the_document_is_openapi_3_1_with_its_required_fields() {
        for (name, routes) in BOTH {
            let doc = openapi_for(routes);
            assert_eq!(
                doc["openapi"], "3.1.0",
                "{name}: expected \"openapi\": \"3.1.0\""
            );
            assert!(
                doc["info"]["title"].is_string() && doc["info"]["version"].is_string(),
                "{name}: `info` with a string `title` and `version` is REQUIRED"
            );
        }
    }

    #[test]
    fn every_route_and_its_method_is_documented_and_nothing_else() {
        for (name, routes) in BOTH {
            let doc = openapi_for(routes);
            let got = operations(&doc);
            assert_eq!(
                got,
                table(routes),
                "{name}: `paths` must hold exactly the table's (path, lowercase method) pairs"
            );
            for r in routes {
                let op = &doc["paths"][r.path][r.method.as_str().to_lowercase()];
                assert_eq!(
                    op["summary"], r.summary,
                    "{name}: {} {}: expected its summary",
                    r.method, r.path
                );
            }
        }
    }

    #[tokio::test]
    async fn the_router_built_from_routes_serves_the_todos() {
        let app = app_with(ROUTES, db());
        let (milk, mum) = (
            json!({ "id": 1, "title": "buy milk" }),
            json!({ "id": 2, "title": "call mum" }),
        );
        for (method, uri, body, status, answer) in [
            (
                "post",
                "/todos",
                Some(json!({ "title": "call mum" })),
                201,
                mum.clone(),
            ),
            ("get", "/todos/1", None, 200, milk),
            ("delete", "/todos/1", None, 204, Value::Null),
            ("get", "/todos/1", None, 404, Value::Null),
            ("delete", "/todos/1", None, 404, Value::Null),
            ("get", "/todos/2", None, 200, mum),
        ] {
            let got = send(&app, method, uri, body.as_ref()).await;
            assert_eq!(
                got,
                (StatusCode::from_u16(status).unwrap(), answer),
                "{method} {uri}: expected this status and body"
            );
        }
    }

    #[tokio::test]
    async fn the_router_answers_exactly_the_documented_methods() {
        for (name, routes) in BOTH {
            let doc = openapi_for(routes);
            let app = app_with(routes, db());
            let paths: BTreeSet<&str> = routes.iter().map(|r| r.path).collect();
            for path in paths {
                for method in METHODS {
                    let documented = doc["paths"][path].get(method).is_some();
                    let (status, _) = send(&app, method, &concrete(path), None).await;
                    assert_eq!(
                        status != StatusCode::METHOD_NOT_ALLOWED,
                        documented,
                        "{name}: {method} {path}: the router answers {status}, and the \
                         document says documented = {documented}: they must agree"
                    );
                }
            }
        }
    }

    #[test]
    fn path_parameters_are_declared_required_in_the_path() {
        for (name, routes) in BOTH {
            let doc = openapi_for(routes);
            for r in routes {
                let method = r.method.as_str().to_lowercase();
                let item = &doc["paths"][r.path];
                let mut declared = Vec::new();
                for list in [&item["parameters"], &item[&method]["parameters"]] {
                    for p in list.as_array().into_iter().flatten() {
                        assert_eq!(
                            (&p["in"], &p["required"]),
                            (&json!("path"), &json!(true)),
                            "{name}: {method} {}: parameter {p}: expected \"in\": \"path\", \
                             \"required\": true",
                            r.path
                        );
                        assert!(
                            p["schema"].is_object(),
                            "{name}: {method} {}: parameter {p} needs a `schema`",
                            r.path
                        );
                        declared.push(p["name"].as_str().unwrap_or("?").to_string());
                    }
                }
                let expected: Vec<String> = r
                    .path
                    .split('/')
                    .filter(|s| s.starts_with('{'))
                    .map(|s| s.trim_matches(['{', '}']).to_string())
                    .collect();
                assert_eq!(
                    declared, expected,
                    "{name}: {method} {}: expected one path parameter per `{{name}}`, in order",
                    r.path
                );
            }
        }
    }

    fn request_example(op: &Value) -> Option<&Value> {
        op["requestBody"]["content"]["application/json"].get("example")
    }

    /// The example of `what` (a JSON Pointer into the document), as a `T`.
    fn example_as<T: serde::de::DeserializeOwned>(doc: &Value, what: &str) -> T {
        let example = doc.pointer(what).cloned().unwrap_or_default();
        serde_json::from_value(example.clone()).unwrap_or_else(|e| {
            panic!("{what}: the example {example} must deserialize into its DTO: {e}")
        })
    }

    #[test]
    fn every_example_is_json_that_deserializes_into_its_dto() {
        let doc = openapi_for(ROUTES);
        let (todos, one) = ("/paths/~1todos", "/paths/~1todos~1{id}");
        let json = "content/application~1json/example";
        let new: NewTodo = example_as(&doc, &format!("{todos}/post/requestBody/{json}"));
        let created: Todo = example_as(&doc, &format!("{todos}/post/responses/201/{json}"));
        let fetched: Todo = example_as(&doc, &format!("{one}/get/responses/200/{json}"));
        assert_eq!(
            new.title, created.title,
            "the created todo has the posted title"
        );
        assert_eq!(fetched, created, "the examples describe the same todo");
        let deleted = &doc["paths"]["/todos/{id}"]["delete"]["responses"]["204"];
        assert!(
            deleted["description"].is_string() && deleted.get("content").is_none(),
            "DELETE /todos/{{id}}: a 204 with a description and no content, got {deleted}"
        );
    }

    #[tokio::test]
    async fn each_operation_answers_its_documented_status_and_shape() {
        for (name, routes) in BOTH {
            let doc = openapi_for(routes);
            for r in routes {
                let method = r.method.as_str().to_lowercase();
                let op = &doc["paths"][r.path][&method];
                let responses = op["responses"].as_object().cloned().unwrap_or_default();
                let codes: Vec<&String> = responses.keys().collect();
                let code = r.response.0.as_str();
                assert_eq!(
                    codes,
                    [code],
                    "{name}: {method} {}: expected one response, {code}",
                    r.path
                );
                let response = &responses[code];
                assert!(
                    response["description"].is_string(),
                    "{name}: a response's `description` is REQUIRED"
                );
                let example = response["content"]["application/json"].get("example");

                // Send the documented request example to a fresh router built from the table.
                let app = app_with(routes, db());
                let (status, body) =
                    send(&app, &method, &concrete(r.path), request_example(op)).await;
                assert_eq!(
                    status.as_str(),
                    code,
                    "{name}: {method} {}: the router answers {status}",
                    r.path
                );
                let shape =
                    |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
                assert_eq!(
                    example.map(shape),
                    (status != StatusCode::NO_CONTENT).then(|| shape(&body)),
                    "{name}: {method} {}: the documented example has the shape of the real answer {body}",
                    r.path
                );
            }
        }
    }
}
