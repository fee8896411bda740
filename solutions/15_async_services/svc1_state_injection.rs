// svc1_state_injection: axum's `State` is the dependency-injection container
//
// FastAPI injects dependencies with `Depends(get_db)`; in axum the router carries one value,
// the state, and every handler that asks for `State<AppState>` gets a clone of it. Put the
// ports in it as trait objects, `Arc<dyn TodoRepo>` and `Arc<dyn Clock>`, and the same
// handlers run against SQLite in production and against fakes in tests. A global (`static`
// with `OnceLock`, `lazy_static`) cannot do that: there is one per process, so two routers
// with two different repositories in one test process share whichever was set first.
//
// Why it matters: a service kept its pool in a global; its tests ran one at a time with
// `--test-threads=1` because each test had to reset it, and the suite took twelve minutes.
//
// Production caveat: `Extension<T>` also injects values, but it is checked at run time: a
// forgotten `.layer(Extension(..))` compiles and answers every request with a 500 "Missing
// request extension". A missing `.with_state(..)` does not compile (the router's type says
// which state it still needs).
//
// What to do: hand the state to the router with `.with_state(state)`, take `State<AppState>`
// in both handlers, and delete the global.
// Run `backlings hint` if you are stuck.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Todo {
    pub id: u64,
    pub title: String,
    /// Seconds since the Unix epoch, from the clock.
    pub created_at: u64,
}

#[derive(Deserialize)]
pub struct NewTodo {
    pub title: String,
}

/// The storage port.
pub trait TodoRepo: Send + Sync {
    fn all(&self) -> Vec<Todo>;
    fn insert(&self, title: &str, created_at: u64) -> Todo;
}

/// The time port.
pub trait Clock: Send + Sync {
    fn now(&self) -> u64;
}

/// Everything the handlers depend on. Cloning it clones two `Arc`s.
#[derive(Clone)]
pub struct AppState {
    pub repo: Arc<dyn TodoRepo>,
    pub clock: Arc<dyn Clock>,
}

pub fn app(state: AppState) -> Router {
    // The router owns the state; each handler asks for it by type.
    Router::new()
        .route("/todos", get(list).post(create))
        .with_state(state)
}

async fn list(State(state): State<AppState>) -> Json<Vec<Todo>> {
    Json(state.repo.all())
}

async fn create(
    State(state): State<AppState>,
    Json(new): Json<NewTodo>,
) -> (StatusCode, Json<Todo>) {
    let todo = state.repo.insert(&new.title, state.clock.now());
    (StatusCode::CREATED, Json(todo))
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, header};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tower::ServiceExt;

    /// A repository that starts with `ids_from` as its next id and records every insert.
    struct FakeRepo {
        todos: Mutex<Vec<Todo>>,
        next: AtomicU64,
    }

    impl FakeRepo {
        fn new(ids_from: u64, titles: &[&str]) -> Arc<FakeRepo> {
            let todos = titles
                .iter()
                .enumerate()
                .map(|(i, t)| Todo {
                    id: ids_from + i as u64,
                    title: t.to_string(),
                    created_at: 1,
                })
                .collect();
            Arc::new(FakeRepo {
                todos: Mutex::new(todos),
                next: AtomicU64::new(ids_from + titles.len() as u64),
            })
        }
    }

    impl TodoRepo for FakeRepo {
        fn all(&self) -> Vec<Todo> {
            self.todos.lock().unwrap().clone()
        }
        fn insert(&self, title: &str, created_at: u64) -> Todo {
            let todo = Todo {
                id: self.next.fetch_add(1, Ordering::SeqCst),
                title: title.to_string(),
                created_at,
            };
            self.todos.lock().unwrap().push(todo.clone());
            todo
        }
    }

    struct FakeClock(AtomicU64);

    impl Clock for FakeClock {
        fn now(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn state(repo: &Arc<FakeRepo>, clock: &Arc<FakeClock>) -> AppState {
        AppState {
            repo: repo.clone(),
            clock: clock.clone(),
        }
    }

    async fn call(app: &Router, method: &str, json: Option<&str>) -> (StatusCode, String) {
        let mut req = Request::builder().method(method).uri("/todos");
        if json.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let body = json.map_or(Body::empty(), |j| Body::from(j.to_string()));
        let res = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = res.status();
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn titles(app: &Router) -> Vec<String> {
        let (status, body) = call(app, "GET", None).await;
        assert_eq!(status, StatusCode::OK, "GET /todos: expected 200");
        let todos: Vec<Todo> = serde_json::from_str(&body).unwrap();
        todos.into_iter().map(|t| t.title).collect()
    }

    async fn create(app: &Router, title: &str) -> Todo {
        let json = format!(r#"{{"title":"{title}"}}"#);
        let (status, body) = call(app, "POST", Some(&json)).await;
        assert_eq!(status, StatusCode::CREATED, "POST /todos: expected 201");
        serde_json::from_str(&body).unwrap()
    }

    #[tokio::test]
    async fn two_routers_with_two_fakes_answer_differently() {
        // Both routers exist before either is called: a global would hold one state for both.
        let (repo_a, clock_a) = (FakeRepo::new(1, &["a1"]), Arc::new(FakeClock(1_000.into())));
        let (repo_b, clock_b) = (
            FakeRepo::new(50, &["b1", "b2"]),
            Arc::new(FakeClock(2_000.into())),
        );
        let a = app(state(&repo_a, &clock_a));
        let b = app(state(&repo_b, &clock_b));
        assert_eq!(
            titles(&b).await,
            ["b1", "b2"],
            "router b lists b's repository"
        );
        assert_eq!(titles(&a).await, ["a1"], "router a lists a's repository");

        let made_b = create(&b, "from b").await;
        let made_a = create(&a, "from a").await;
        assert_eq!(
            (made_a.id, made_a.created_at),
            (2, 1_000),
            "router a: id 2 from a's repo, created_at 1000 from a's clock"
        );
        assert_eq!(
            (made_b.id, made_b.created_at),
            (52, 2_000),
            "router b: id 52 from b's repo, created_at 2000 from b's clock"
        );
        assert_eq!(
            repo_a.all().last().map(|t| t.title.clone()).as_deref(),
            Some("from a"),
            "a's create lands in a's repository"
        );
        assert_eq!(repo_b.all().len(), 3, "b's repository got exactly b's todo");
    }

    #[tokio::test]
    async fn created_at_comes_from_the_injected_clock() {
        let repo = FakeRepo::new(1, &[]);
        let clock = Arc::new(FakeClock(1_700_000_000.into()));
        let app = app(state(&repo, &clock));
        assert_eq!(create(&app, "first").await.created_at, 1_700_000_000);
        clock.0.store(1_700_000_060, Ordering::SeqCst);
        let second = create(&app, "second").await;
        assert_eq!(
            second,
            Todo {
                id: 2,
                title: "second".into(),
                created_at: 1_700_000_060
            },
            "the fake clock moved to 1700000060: the handler must read it, not the system time"
        );
        assert_eq!(titles(&app).await, ["first", "second"]);
    }

    #[tokio::test]
    async fn the_router_needs_no_more_state() {
        // `app` returns a `Router<()>`: every state it needs was handed over inside.
        let _: fn(AppState) -> Router<()> = app;
        let repo = FakeRepo::new(9, &["x"]);
        let clock = Arc::new(FakeClock(5.into()));
        let app = app(state(&repo, &clock));
        assert_eq!(titles(&app).await, ["x"]);
    }
    #[tokio::test]
    async fn the_handlers_take_the_state_from_the_router() {
        // The route table is built here from the handler fns, and the state is handed over
        // with `.with_state` only: a handler that reads an `Extension` (500 "Missing request
        // extension") or a closure that captured the state (no `list` fn to route) fails.
        let repo = FakeRepo::new(7, &["seven"]);
        let clock = Arc::new(FakeClock(42.into()));
        let app = Router::new()
            .route("/todos", get(super::list).post(super::create))
            .with_state(state(&repo, &clock));
        assert_eq!(
            titles(&app).await,
            ["seven"],
            "GET through `list` with `.with_state`: expected 200 listing [\"seven\"]"
        );
        let made = create(&app, "eight").await;
        assert_eq!(
            (made.id, made.created_at),
            (8, 42),
            "POST through `create` with `.with_state`: expected id 8 and created_at 42"
        );
    }
}
