// rest4_versioning: a new version is a new view of the same data
//
// Clients pin a version in the URL (`/v1/users/7`) and expect its answers never to change
// shape. When the API needs another shape, here `first_name` and `last_name` instead of one
// `name`, it adds `/v2` and leaves v1 alone. Both versions read and write one domain model,
// `User`: a version is only its DTOs, mapped to and from that model with `From`, and a router
// mounted with `Router::nest`. A user created through v2 is the same user v1 shows.
//
// The mapping, decided once: v1's `name` is `first_name`, a space, `last_name`. A v1 `name`
// splits at its first space (`Johann Sebastian Bach` is `Johann` + `Sebastian Bach`), and a
// one-word name (`Plato`) has no last name: `"last_name": null` in v2.
//
// Why it matters: a team renamed `name` in place, "the app updates anyway". Phones that had
// not updated showed blank names for weeks, and only a release could fix them.
//
// Production caveat: each version stays routed, tested and served until its last client is
// gone. Announce v1's end in its own responses: a `Sunset` header (RFC 8594) gives the date.
//
// What to do: add `UserV2` and `NewUserV2` (`first_name`, `last_name`) with their mappings
// and `v2_routes`, and nest it under `/v2` in `app`.
// Run `backlings hint` if you are stuck.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The domain model: what the service knows, whatever the version.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: u64,
    pub first_name: String,
    pub last_name: Option<String>,
}

/// A user to create: a first name and maybe a last name.
pub struct NewUser(pub String, pub Option<String>);

pub type Store = Arc<Mutex<BTreeMap<u64, User>>>;

/// v1's shape, frozen: `{"id":7,"name":"Ada Lovelace"}`.
#[derive(Serialize)]
pub struct UserV1 {
    pub id: u64,
    pub name: String,
}

#[derive(Deserialize)]
pub struct NewUserV1 {
    pub name: String,
}

impl From<&User> for UserV1 {
    fn from(u: &User) -> Self {
        let name = match &u.last_name {
            Some(last) => format!("{} {last}", u.first_name),
            None => u.first_name.clone(),
        };
        Self { id: u.id, name }
    }
}

impl From<NewUserV1> for NewUser {
    fn from(n: NewUserV1) -> Self {
        match n.name.split_once(' ') {
            Some((first, last)) => Self(first.into(), Some(last.into())),
            None => Self(n.name, None),
        }
    }
}

/// v2's shape: `{"id":7,"first_name":"Ada","last_name":"Lovelace"}`, `null` for no last name.
#[derive(Serialize)]
pub struct UserV2 {
    pub id: u64,
    pub first_name: String,
    pub last_name: Option<String>,
}

#[derive(Deserialize)]
pub struct NewUserV2 {
    pub first_name: String,
    pub last_name: Option<String>,
}

// Each version maps the one domain model; nothing in v2 goes through v1's shape.
impl From<&User> for UserV2 {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
        }
    }
}

impl From<NewUserV2> for NewUser {
    fn from(n: NewUserV2) -> Self {
        Self(n.first_name, n.last_name)
    }
}

/// The `/users` resource in one version's shapes: `Out` is sent, `In` is accepted.
fn users<Out, In>() -> Router<Store>
where
    Out: for<'a> From<&'a User> + Serialize + Send + 'static,
    In: Into<NewUser> + DeserializeOwned + Send + 'static,
{
    Router::new()
        .route("/users", post(create::<Out, In>))
        .route("/users/{id}", get(fetch::<Out>))
}

async fn create<Out: for<'a> From<&'a User>, In: Into<NewUser>>(
    State(store): State<Store>,
    Json(new): Json<In>,
) -> (StatusCode, Json<Out>) {
    let NewUser(first_name, last_name) = new.into();
    let mut users = store.lock().unwrap();
    let id = users.keys().last().map_or(1, |k| k + 1);
    let user = users.entry(id).or_insert(User {
        id,
        first_name,
        last_name,
    });
    (StatusCode::CREATED, Json(Out::from(user)))
}

async fn fetch<Out: for<'a> From<&'a User>>(
    State(store): State<Store>,
    Path(id): Path<u64>,
) -> Result<Json<Out>, StatusCode> {
    let users = store.lock().unwrap();
    let user = users.get(&id).ok_or(StatusCode::NOT_FOUND)?;
    Ok(Json(Out::from(user)))
}

pub fn v1_routes() -> Router<Store> {
    users::<UserV1, NewUserV1>()
}

pub fn v2_routes() -> Router<Store> {
    users::<UserV2, NewUserV2>()
}

pub fn app(store: Store) -> Router {
    Router::new()
        .nest("/v1", v1_routes())
        .nest("/v2", v2_routes())
        .with_state(store)
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, header};
    use serde_json::{Value, json};
    use tower::ServiceExt;

    type Seed = &'static [(u64, &'static str, Option<&'static str>)];

    // Ids with gaps, as after deletions: a new user gets the highest id + 1.
    const SET_A: Seed = &[
        (3, "Ada", Some("Lovelace")),
        (17, "Plato", None),
        (4096, "Renée", Some("\"Ray\" O'Brien")),
    ];
    const SET_B: Seed = &[
        (11, "Mary Ann", Some("Evans")),
        (250, "Sukarno", None),
        (999_999, "Grace", Some("Brewster Hopper")),
    ];

    fn store(seed: Seed) -> Store {
        let users = seed.iter().map(|&(id, first, last)| {
            let user = User {
                id,
                first_name: first.into(),
                last_name: last.map(Into::into),
            };
            (id, user)
        });
        Arc::new(Mutex::new(users.collect()))
    }

    fn v1_name(first: &str, last: Option<&str>) -> String {
        last.map_or(first.to_string(), |l| format!("{first} {l}"))
    }

    async fn call(
        app: &Router,
        method: &str,
        uri: &str,
        json: Option<&str>,
    ) -> (StatusCode, String) {
        let mut req = Request::builder().method(method).uri(uri);
        if json.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let body = json.map_or(Body::empty(), |j| Body::from(j.to_string()));
        let res = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = res.status();
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn get_ok(app: &Router, uri: &str) -> String {
        let (status, body) = call(app, "GET", uri, None).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "GET {uri}: expected 200, got {status}: {body}"
        );
        body
    }

    fn mapped_from_the_domain<T: for<'a> From<&'a User> + Serialize>() {}

    #[test]
    fn each_version_is_a_dto_mapped_from_the_one_user() {
        mapped_from_the_domain::<UserV1>();
        mapped_from_the_domain::<UserV2>();
        for (id, first, last) in [
            (5, "Ada", Some("Lovelace")),
            (8, "Johann Sebastian", Some("Bach")),
            (9, "Plato", None),
        ] {
            let user = User {
                id,
                first_name: first.into(),
                last_name: last.map(Into::into),
            };
            let v2 = serde_json::to_value(UserV2::from(&user)).unwrap();
            let want = json!({ "id": id, "first_name": first, "last_name": last });
            assert_eq!(v2, want, "UserV2 of {user:?}: expected {want}");
        }
    }

    /// v1's exact bytes: `{"id":N,"name":"..."}`, the name JSON-escaped.
    fn v1_json(id: u64, name: &str) -> String {
        format!(
            r#"{{"id":{id},"name":{}}}"#,
            serde_json::to_string(name).unwrap()
        )
    }

    #[tokio::test]
    async fn v1_answers_byte_for_byte_what_it_always_did() {
        for seed in [SET_A, SET_B] {
            let app = app(store(seed));
            for &(id, first, last) in seed {
                let want = v1_json(id, &v1_name(first, last));
                let got = get_ok(&app, &format!("/v1/users/{id}")).await;
                assert_eq!(got, want, "GET /v1/users/{id}: v1's body, byte for byte");
            }
            let next = seed.last().unwrap().0 + 1;
            let (status, body) =
                call(&app, "POST", "/v1/users", Some(r#"{"name":"Alan Turing"}"#)).await;
            assert_eq!(
                status,
                StatusCode::CREATED,
                "POST /v1/users: expected 201: {body}"
            );
            assert_eq!(
                body,
                v1_json(next, "Alan Turing"),
                "POST /v1/users: v1's body, byte for byte"
            );
        }
    }

    #[tokio::test]
    async fn v2_answers_first_and_last_name_with_null_for_none() {
        for seed in [SET_A, SET_B] {
            let app = app(store(seed));
            for &(id, first, last) in seed {
                let got: Value =
                    serde_json::from_str(&get_ok(&app, &format!("/v2/users/{id}")).await).unwrap();
                let want = json!({ "id": id, "first_name": first, "last_name": last });
                assert_eq!(got, want, "GET /v2/users/{id}: expected {want}");
            }
            let next = seed.last().unwrap().0 + 1;
            for (i, (body, first, last)) in [
                (
                    r#"{"first_name":"Ada Augusta","last_name":"King"}"#,
                    "Ada Augusta",
                    Some("King"),
                ),
                (r#"{"first_name":"Homer","last_name":null}"#, "Homer", None),
                (r#"{"first_name":"Hypatia"}"#, "Hypatia", None),
            ]
            .into_iter()
            .enumerate()
            {
                let id = next + i as u64;
                let (status, got) = call(&app, "POST", "/v2/users", Some(body)).await;
                assert_eq!(
                    status,
                    StatusCode::CREATED,
                    "POST /v2/users {body}: expected 201: {got}"
                );
                let want = json!({ "id": id, "first_name": first, "last_name": last });
                assert_eq!(
                    serde_json::from_str::<Value>(&got).unwrap(),
                    want,
                    "POST /v2/users {body}: expected {want}"
                );
            }
        }
    }

    #[tokio::test]
    async fn both_versions_read_and_write_the_same_users() {
        for seed in [SET_A, SET_B] {
            let app = app(store(seed));
            let next = seed.last().unwrap().0 + 1;
            // Written through v2, read through both: v2 gets back exactly what it wrote.
            for (i, (first, last)) in [("Mary Ann", Some("Evans Cross")), ("Socrates", None)]
                .into_iter()
                .enumerate()
            {
                let id = next + i as u64;
                let body = json!({ "first_name": first, "last_name": last }).to_string();
                let (status, _) = call(&app, "POST", "/v2/users", Some(&body)).await;
                assert_eq!(
                    status,
                    StatusCode::CREATED,
                    "POST /v2/users {body}: expected 201"
                );
                let v1 = get_ok(&app, &format!("/v1/users/{id}")).await;
                assert_eq!(
                    v1,
                    v1_json(id, &v1_name(first, last)),
                    "created through v2, read through v1"
                );
                let v2: Value =
                    serde_json::from_str(&get_ok(&app, &format!("/v2/users/{id}")).await).unwrap();
                let want = json!({ "id": id, "first_name": first, "last_name": last });
                assert_eq!(
                    v2, want,
                    "created through v2, read back through v2: expected {want}"
                );
            }
            // Written through v1: the name splits at its first space; one word has no last name.
            for (i, (name, first, last)) in [
                ("Johann Sebastian Bach", "Johann", Some("Sebastian Bach")),
                ("Aristotle", "Aristotle", None),
            ]
            .into_iter()
            .enumerate()
            {
                let id = next + 2 + i as u64;
                let body = json!({ "name": name }).to_string();
                let (status, _) = call(&app, "POST", "/v1/users", Some(&body)).await;
                assert_eq!(
                    status,
                    StatusCode::CREATED,
                    "POST /v1/users {body}: expected 201"
                );
                let v2: Value =
                    serde_json::from_str(&get_ok(&app, &format!("/v2/users/{id}")).await).unwrap();
                let want = json!({ "id": id, "first_name": first, "last_name": last });
                assert_eq!(v2, want, "v1's {name:?} through v2: expected {want}");
                let v1 = get_ok(&app, &format!("/v1/users/{id}")).await;
                assert_eq!(
                    v1,
                    v1_json(id, name),
                    "v1 gets back exactly the name it wrote"
                );
            }
        }
    }

    #[tokio::test]
    async fn unknown_versions_paths_and_ids_are_404() {
        for seed in [SET_A, SET_B] {
            let app = app(store(seed));
            let (id, missing) = (seed[0].0, seed[0].0 + 1);
            for uri in [
                format!("/v3/users/{id}"),
                format!("/v0/users/{id}"),
                format!("/V2/users/{id}"),
                format!("/users/{id}"),
                format!("/v2/users/{missing}"),
                format!("/v1/users/{missing}"),
                format!("/v2/v1/users/{id}"),
                "/v2".to_string(),
            ] {
                let (status, body) = call(&app, "GET", &uri, None).await;
                assert_eq!(
                    status,
                    StatusCode::NOT_FOUND,
                    "GET {uri}: expected 404, got {status}: {body}"
                );
            }
            for uri in ["/v2/users/abc", "/v2/users/-1"] {
                let (status, _) = call(&app, "GET", uri, None).await;
                assert_eq!(
                    status,
                    StatusCode::BAD_REQUEST,
                    "GET {uri}: not an id, expected 400"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_body_in_the_other_versions_shape_is_refused() {
        for seed in [SET_A, SET_B] {
            let s = store(seed);
            let app = app(s.clone());
            for (uri, body) in [
                ("/v2/users", r#"{"name":"Ada Lovelace"}"#),
                (
                    "/v1/users",
                    r#"{"first_name":"Ada","last_name":"Lovelace"}"#,
                ),
                ("/v2/users", r#"{"first_name":null}"#),
            ] {
                let (status, got) = call(&app, "POST", uri, Some(body)).await;
                assert_eq!(
                    status,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "POST {uri} {body}: expected 422, got {status}: {got}"
                );
            }
            assert_eq!(
                s.lock().unwrap().len(),
                seed.len(),
                "a refused body creates nothing"
            );
        }
    }
}
