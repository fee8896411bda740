// auth4_bearer_extractor: authentication is an extractor
//
// In axum, a handler that takes an `AuthUser` argument cannot run without one: the extractor
// (`FromRequestParts`) reads `Authorization: Bearer <token>`, verifies the token with the key
// kept in the app's state, and either hands the handler a user or answers for it. That answer
// is `401 Unauthorized` with a `WWW-Authenticate: Bearer` challenge (RFC 6750 §3). A request
// with no Bearer credentials at all gets the bare challenge, `Bearer realm="api"`, with no
// error code; a token that was sent but is bad (forged, expired, garbage) adds
// `error="invalid_token"`. The auth scheme is case-insensitive (RFC 9110 §11.1). A `Bearer`
// header with no token after it is malformed: RFC 6750 §3.1 suggests `400` with
// `error="invalid_request"`; this service answers `401 invalid_token`, and either is a refusal.
//
// Why it matters: a team checked tokens inside each handler; a new endpoint forgot, and
// answered anyone. A handler that takes `AuthUser` cannot forget.
//
// Production caveat: 401 means "who are you?". A valid token that may not do this gets
// `403 Forbidden` with `error="insufficient_scope"` (RFC 6750 §3.1), not a new login.
//
// What to do: answer the challenge in `AuthError::into_response`, and implement the extractor.
// Run `backlings hint` if you are stuck.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::sync::Arc;

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding (RFC 4648 §5), the encoding of every JWT part (RFC 7515 §2).
pub fn b64url_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let mut word = [0u8; 4];
        word[1..=chunk.len()].copy_from_slice(chunk);
        let n = u32::from_be_bytes(word);
        for i in 0..=chunk.len() {
            out.push(B64URL[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The inverse: `None` for a character outside the alphabet (`=`, `+`, `/`) or a bad length.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for chunk in text.as_bytes().chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= (B64URL.iter().position(|b| b == c)? as u32) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    Some(out)
}

/// auth2 and auth3 in one: HS256 pinned, the tag checked in constant time, `exp` enforced.
pub fn verify_token(token: &str, key: &[u8], now: u64) -> Option<String> {
    let (input, tag) = token.rsplit_once('.')?;
    let (header, claims) = input.split_once('.')?;
    let header: serde_json::Value = serde_json::from_slice(&b64url_decode(header)?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(input.as_bytes());
    if header["alg"] != "HS256" || mac.verify_slice(&b64url_decode(tag)?).is_err() {
        return None;
    }
    let claims: serde_json::Value = serde_json::from_slice(&b64url_decode(claims)?).ok()?;
    let sub = claims["sub"].as_str()?;
    (now < claims["exp"].as_u64()?).then(|| sub.to_string())
}

#[derive(Clone)]
pub struct AppState {
    pub key: Arc<[u8]>,
    /// Seconds since the Unix epoch: the system clock in production, a fake one in tests.
    pub clock: Arc<dyn Fn() -> u64 + Send + Sync>,
}

pub struct AuthUser {
    pub sub: String,
}

pub enum AuthError {
    /// No `Authorization` header, or one with another scheme than Bearer.
    Missing,
    /// A Bearer token that does not verify.
    InvalidToken,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        // RFC 6750 §3: no error code when no credentials came at all.
        let challenge = match self {
            AuthError::Missing => r#"Bearer realm="api""#,
            AuthError::InvalidToken => r#"Bearer realm="api", error="invalid_token""#,
        };
        (StatusCode::UNAUTHORIZED, [(WWW_AUTHENTICATE, challenge)]).into_response()
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthError> {
        let header = parts.headers.get(AUTHORIZATION);
        let value = header
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::Missing)?;
        let (scheme, token) = value.split_once(' ').ok_or(AuthError::Missing)?;
        if !scheme.eq_ignore_ascii_case("Bearer") {
            return Err(AuthError::Missing);
        }
        // From here on a token was sent: whatever is wrong with it is `invalid_token`.
        let sub =
            verify_token(token, &state.key, (state.clock)()).ok_or(AuthError::InvalidToken)?;
        Ok(AuthUser { sub })
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use axum::routing::get;
    use serde_json::json;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tower::ServiceExt;

    const T0: u64 = 1_700_000_000;
    const KEY_A: &[u8] = b"key-of-service-a-0123456789abcdef";
    const KEY_B: &[u8] = b"another-key-for-service-b-9876543";
    const BARE: &str = r#"Bearer realm="api""#;
    const INVALID: &str = r#"Bearer realm="api", error="invalid_token""#;

    fn sign(header: &serde_json::Value, claims: &serde_json::Value, key: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            b64url_encode(header.to_string().as_bytes()),
            b64url_encode(claims.to_string().as_bytes())
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", b64url_encode(&mac.finalize().into_bytes()))
    }

    fn token(sub: &str, exp: u64, key: &[u8]) -> String {
        sign(
            &json!({"alg": "HS256", "typ": "JWT"}),
            &json!({"sub": sub, "exp": exp}),
            key,
        )
    }

    /// Any handler that takes an `AuthUser` runs only for an authenticated request.
    async fn me(user: AuthUser) -> String {
        format!("hello, {}", user.sub)
    }

    /// The app with `key`, and the clock the test moves.
    fn server(key: &[u8]) -> (Router, Arc<AtomicU64>) {
        let now = Arc::new(AtomicU64::new(T0));
        let clock = now.clone();
        let state = AppState {
            key: key.into(),
            clock: Arc::new(move || clock.load(Ordering::SeqCst)),
        };
        (Router::new().route("/me", get(me)).with_state(state), now)
    }

    /// GET /me with that Authorization header: (status, WWW-Authenticate, body).
    async fn get_me(
        app: &Router,
        authorization: Option<&str>,
    ) -> (StatusCode, Option<String>, String) {
        let mut req = Request::get("/me");
        if let Some(value) = authorization {
            req = req.header(AUTHORIZATION, value);
        }
        let res = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let challenge = res
            .headers()
            .get(WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_string());
        let body = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (status, challenge, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_valid_token_reaches_the_handler_as_its_user() {
        for (key, sub) in [(KEY_A, "ada"), (KEY_B, "grace")] {
            let (app, _) = server(key);
            let t = token(sub, T0 + 300, key);
            for scheme in ["Bearer", "bearer", "BEARER"] {
                let (status, challenge, body) = get_me(&app, Some(&format!("{scheme} {t}"))).await;
                assert_eq!(
                    status,
                    StatusCode::OK,
                    "{scheme} and a token signed with this key: 200"
                );
                assert_eq!(challenge, None, "no challenge on success");
                assert_eq!(
                    body,
                    format!("hello, {sub}"),
                    "the handler sees the token's sub"
                );
            }
        }
    }

    #[tokio::test]
    async fn no_bearer_credentials_get_the_bare_challenge() {
        for key in [KEY_A, KEY_B] {
            let (app, _) = server(key);
            let good = token("ada", T0 + 300, key);
            for authorization in [
                None,
                Some("Basic YWRhOnNlY3JldA=="),
                Some(format!("Token {good}").as_str()),
                Some(format!("Bearer{good}").as_str()),
            ] {
                let (status, challenge, body) = get_me(&app, authorization).await;
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "Authorization {authorization:?}: 401"
                );
                assert_eq!(
                    challenge.as_deref(),
                    Some(BARE),
                    "Authorization {authorization:?}: no Bearer token was sent, so no error code (RFC 6750 §3)"
                );
                assert!(!body.contains("hello"), "the handler must not run");
            }
        }
    }

    #[tokio::test]
    async fn a_bad_token_is_invalid_token() {
        for (key, other) in [(KEY_A, KEY_B), (KEY_B, KEY_A)] {
            let (app, _) = server(key);
            let good = token("ada", T0 + 300, key);
            let forged = format!("{}x", &good[..good.len() - 1]);
            let none = sign(
                &json!({"alg": "none"}),
                &json!({"sub": "ada", "exp": T0 + 300}),
                key,
            );
            for (what, t) in [
                ("signed with another key", token("ada", T0 + 300, other)),
                ("with a changed tag", forged),
                ("with alg none", none),
                ("that is not a JWT", "not-a-jwt".to_string()),
                ("that is only dots", "..".to_string()),
            ] {
                let (status, challenge, body) = get_me(&app, Some(&format!("Bearer {t}"))).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "a token {what}: 401");
                assert_eq!(
                    challenge.as_deref(),
                    Some(INVALID),
                    "a token {what}: the challenge says invalid_token"
                );
                assert!(!body.contains("hello"), "the handler must not run");
            }
        }
    }

    #[tokio::test]
    async fn a_bearer_header_without_a_token_never_reaches_the_handler() {
        // Malformed credentials: RFC 6750 §3.1 suggests 400 with error="invalid_request"; a
        // 401 (with invalid_token, or the bare challenge) is a refusal too. All three pass here.
        for key in [KEY_A, KEY_B] {
            let (app, _) = server(key);
            for authorization in ["Bearer ", "Bearer    ", "bearer "] {
                let (status, challenge, body) = get_me(&app, Some(authorization)).await;
                let answer = (status, challenge.as_deref());
                assert!(
                    matches!(
                        answer,
                        (StatusCode::BAD_REQUEST, _)
                            | (StatusCode::UNAUTHORIZED, Some(BARE | INVALID))
                    ),
                    "Authorization {authorization:?} carries no token: expected 400, or 401 with \
                     a Bearer challenge; got {answer:?}"
                );
                assert!(!body.contains("hello"), "the handler must not run");
            }
        }
    }

    #[tokio::test]
    async fn expiry_follows_the_clock_in_the_state() {
        for (key, lifetime) in [(KEY_A, 300), (KEY_B, 60)] {
            let (app, now) = server(key);
            let t = format!("Bearer {}", token("ada", T0 + lifetime, key));
            now.store(T0 + lifetime - 1, Ordering::SeqCst);
            let (status, _, _) = get_me(&app, Some(&t)).await;
            assert_eq!(status, StatusCode::OK, "one second before exp: 200");
            now.store(T0 + lifetime, Ordering::SeqCst);
            let (status, challenge, _) = get_me(&app, Some(&t)).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "at exp, by the state's clock: 401"
            );
            assert_eq!(
                challenge.as_deref(),
                Some(INVALID),
                "an expired token is invalid_token"
            );
            now.store(T0, Ordering::SeqCst);
            let (status, _, _) = get_me(&app, Some(&t)).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "the clock read per request, not once: 200 again at T0"
            );
        }
    }

    #[test]
    fn the_b64url_helpers_follow_rfc_4648() {
        let vectors: [(&[u8], &str); 8] = [
            (b"", ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
            (&[0xfb, 0xff, 0xbf], "-_-_"),
        ];
        for (bytes, text) in vectors {
            assert_eq!(b64url_encode(bytes), text, "encoding {bytes:?}");
            assert_eq!(
                b64url_decode(text).as_deref(),
                Some(bytes),
                "decoding {text:?}"
            );
        }
        for bad in ["Zm9v=", "Zm+v", "Zm/v", "Z", "Zm9vY", "Zm 9"] {
            assert_eq!(
                b64url_decode(bad),
                None,
                "{bad:?} is not unpadded base64url"
            );
        }
    }
}
