// svc2_validated_json: a validation model is an extractor
//
// In FastAPI a Pydantic model in a handler's signature validates the body before the handler
// runs: a bad request gets a 422 that lists every invalid field. The Rust version has two
// steps. serde turns the bytes into a `T` (it checks syntax and types: a body that is not a
// `T` at all is a 400). Then `T::validate()` checks the rules serde cannot express (an email
// has one `@`, an age is at least 13) and collects every broken rule, so the client fixes its
// form in one round trip instead of one field at a time. Wrapped in an extractor,
// `ValidatedJson<T>`, a handler that takes one can only ever see a valid `T`.
//
// Why it matters: a signup form showed one error per submit; many users gave up on the third.
//
// Production caveat: axum's own `Json<T>` answers 415 without `Content-Type:
// application/json`, 400 for a syntax error and 422 for a wrong type (see `JsonRejection`).
// This API answers 400 for all three and keeps 422 for "a `T`, but it breaks a rule": pick one
// convention, document it, and let no rejection echo more than the field names.
//
// What to do: implement `FromRequest` for `ValidatedJson<T>` (400 when the body is not a `T`,
// 422 with every invalid field otherwise), and make `SignupRequest::validate` report every
// field, not only the first.
// Run `backlings hint` if you are stuck.

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: &'static str,
}

/// The rules serde cannot check. `Err` lists every broken rule.
pub trait Validate {
    fn validate(&self) -> Result<(), Vec<FieldError>>;
}

/// An RFC 9457 problem; `errors` is added when there are field errors.
pub fn problem(status: StatusCode, detail: &str, errors: &[FieldError]) -> Response {
    let mut body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    if !errors.is_empty() {
        body["errors"] = serde_json::json!(errors);
    }
    let content_type = [(header::CONTENT_TYPE, "application/problem+json")];
    (status, content_type, body.to_string()).into_response()
}

/// A JSON body that deserialized into a `T` and passed `T::validate()`.
pub struct ValidatedJson<T>(pub T);

impl<T, S> FromRequest<S> for ValidatedJson<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // TODO (1/2): deserialize with `Json::<T>` (any rejection: 400), then `validate()`
        // (errors: 422 with every field, detail "{n} invalid field(s)"). Use `problem`.
        let _ = (req, state);
        todo!("implement ValidatedJson's extractor")
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SignupRequest {
    pub email: String,
    pub username: String,
    pub age: u32,
}

impl Validate for SignupRequest {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        // TODO (2/2): this stops at the first broken rule; report every one, in this order.
        let error = |field, message| Err(vec![FieldError { field, message }]);
        let parts: Vec<&str> = self.email.split('@').collect();
        if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
            return error("email", "must be one name, one @ and one domain");
        }
        let name = &self.username;
        let name_ok = (3..=20).contains(&name.chars().count())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !name_ok {
            return error("username", "must be 3 to 20 letters, digits or _");
        }
        if self.age < 13 {
            return error("age", "must be at least 13");
        }
        Ok(())
    }
}

pub fn app() -> Router {
    Router::new().route("/signups", post(signup))
}

async fn signup(ValidatedJson(req): ValidatedJson<SignupRequest>) -> impl IntoResponse {
    (StatusCode::CREATED, Json(req))
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use tower::ServiceExt;

    async fn post_to(
        app: Router,
        uri: &str,
        body: Body,
        json: bool,
    ) -> (StatusCode, String, serde_json::Value) {
        let mut req = Request::post(uri);
        if json {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let res = app.oneshot(req.body(body).unwrap()).await.unwrap();
        let status = res.status();
        let ct = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, ct.unwrap_or_default(), value)
    }

    async fn signup(json: &str) -> (StatusCode, String, serde_json::Value) {
        post_to(app(), "/signups", Body::from(json.to_string()), true).await
    }

    fn body(email: &str, username: &str, age: i64) -> String {
        serde_json::json!({"email": email, "username": username, "age": age}).to_string()
    }

    fn fields(problem: &serde_json::Value) -> Vec<String> {
        let errors = problem["errors"].as_array().cloned().unwrap_or_default();
        errors
            .iter()
            .map(|e| e["field"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    #[tokio::test]
    async fn a_valid_signup_is_201() {
        for (email, name, age) in [
            ("ann@example.com", "ann", 13),
            ("b@x.io", "bob_the_builder_2026", 130),
        ] {
            let (status, _, got) = signup(&body(email, name, age)).await;
            assert_eq!(
                status,
                StatusCode::CREATED,
                "{email}, {name}, {age} is valid: expected 201, got {got}"
            );
            assert_eq!(got["username"], name, "the handler saw the request");
        }
    }

    #[tokio::test]
    async fn every_invalid_field_is_listed_not_only_the_first() {
        let cases: [(&str, &str, i64, &[&str]); 6] = [
            ("no-at-sign", "x", 12, &["email", "username", "age"]),
            ("a@@b", "ab", 99, &["email", "username"]),
            ("ok@example.com", "has space", 5, &["username", "age"]),
            ("@example.com", "valid_name", 40, &["email"]),
            ("cy@example.com", "twenty_one_chars_xxxx", 20, &["username"]),
            ("di@", "dí_accented", 0, &["email", "username", "age"]),
        ];
        for (email, name, age, want) in cases {
            let (status, ct, got) = signup(&body(email, name, age)).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{email}, {name}, {age}: expected 422, got {got}"
            );
            assert_eq!(
                ct, "application/problem+json",
                "a 422 is a problem+json document"
            );
            assert_eq!(got["status"], 422, "the problem's status member: {got}");
            assert_eq!(
                fields(&got),
                want,
                "{email}, {name}, {age}: expected every invalid field, in order, in `errors`"
            );
            assert_eq!(
                got["detail"],
                format!("{} invalid field(s)", want.len()),
                "{email}, {name}, {age}: the detail counts the invalid fields"
            );
        }
    }

    #[tokio::test]
    async fn a_body_that_is_not_a_signup_is_400() {
        let big = r#"{"email":"a@b.c","username":"ann","age":4294967296}"#;
        let wrong_type = r#"{"email":"a@b.c","username":"ann","age":"13"}"#;
        let missing = r#"{"email":"a@b.c","age":20}"#;
        for json in ["{not json", "", "[]", big, wrong_type, missing] {
            let (status, ct, got) = signup(json).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{json:?} is not a SignupRequest: expected 400, got {got}"
            );
            assert_eq!(
                ct, "application/problem+json",
                "{json:?}: a 400 is a problem+json document too"
            );
            assert!(
                got.get("errors").is_none(),
                "{json:?}: a 400 has no field list: {got}"
            );
        }
        let (status, _, _) =
            post_to(app(), "/signups", Body::from(vec![b'{', 0xff, b'}']), true).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "invalid UTF-8: expected 400"
        );
        let (status, _, _) = post_to(
            app(),
            "/signups",
            Body::from(body("a@b.c", "ann", 20)),
            false,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "no content-type: application/json: expected 400"
        );
    }

    /// A model of the test's own: the extractor works for any `T: Validate`.
    #[derive(Deserialize, Serialize)]
    struct Range {
        lo: i32,
        hi: i32,
    }

    impl Validate for Range {
        fn validate(&self) -> Result<(), Vec<FieldError>> {
            let mut errors = vec![];
            if self.lo < 0 {
                errors.push(FieldError {
                    field: "lo",
                    message: "negative",
                });
            }
            if self.hi < self.lo {
                errors.push(FieldError {
                    field: "hi",
                    message: "below lo",
                });
            }
            if errors.is_empty() {
                Ok(())
            } else {
                Err(errors)
            }
        }
    }

    #[tokio::test]
    async fn the_extractor_works_for_any_validated_model() {
        async fn range(ValidatedJson(r): ValidatedJson<Range>) -> String {
            format!("{}..{}", r.lo, r.hi)
        }
        let app = || Router::new().route("/ranges", post(range));
        let (status, _, _) =
            post_to(app(), "/ranges", Body::from(r#"{"lo":1,"hi":5}"#), true).await;
        assert_eq!(status, StatusCode::OK, "1..5 is a valid range");
        let (status, _, got) =
            post_to(app(), "/ranges", Body::from(r#"{"lo":-3,"hi":-4}"#), true).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "-3..-4: expected 422"
        );
        assert_eq!(
            fields(&got),
            ["lo", "hi"],
            "both of Range's errors are listed"
        );
        assert_eq!(
            got["detail"], "2 invalid field(s)",
            "the detail counts the fields"
        );
    }
}
