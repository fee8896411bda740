// auth_quiz: login, tokens, roles and ownership, end to end
//
// The topic in one service. `POST /login` checks an argon2 password hash and answers an access
// JWT (HS256, 5 minutes) and an opaque refresh token. `POST /refresh` rotates the refresh token;
// a replayed one revokes its family. `GET /docs/{id}` shows a public doc to anyone logged in,
// a private one only to its owner. `GET /admin/users` needs the `ManageUsers` permission.
// The server decides every failure, whatever the client sends:
// - the JWT header must be the one this server mints (`HS256`, never `none`), the MAC is
//   checked with `verify_slice` (constant time), and `exp` against the injected clock;
// - a wrong password and an unknown user get the same `401` and cost one password check each:
//   login does not tell an attacker which accounts exist (user enumeration). Usernames are
//   case-insensitive (`Alice` is `alice`, as OWASP advises); passwords are not;
// - another user's private doc is `404`, exactly like a missing one: a `403` would confirm it.
//
// Why it matters: an API answered 403 for other users' invoices and 404 for missing ones; a
// script walked the ids and learned how many invoices each customer had.
//
// Production caveat: equal answers are not enough when their timing differs. Skipping argon2
// for an unknown user answers faster, and the OWASP Authentication Cheat Sheet warns that such a
// quick exit shows in response times; so `login` runs one verification against a dummy hash (at
// the real cost) then. Equal work narrows the gap; it does not promise equal times.
//
// What to do: the three TODOs, in `verify_access`, `login` and `doc`.
// Run `backlings hint` if you are stuck.

use argon2::{Argon2, PasswordVerifier as _};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

pub const ACCESS_TTL: u64 = 300;
pub const REFRESH_TTL: u64 = 2_592_000; // 30 days
/// The only header this server mints, `{"alg":"HS256","typ":"JWT"}` in base64url.
pub const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub trait Clock: Send {
    fn now(&self) -> u64;
}
pub trait Rng: Send {
    fn fill(&mut self, buf: &mut [u8]);
}
/// Checks a password against an argon2 PHC string: `Argon2Check` in production; the tests count
/// the calls.
pub trait PasswordCheck: Send {
    fn check(&self, password: &str, phc: &str) -> bool;
}
pub struct Argon2Check;
impl PasswordCheck for Argon2Check {
    fn check(&self, password: &str, phc: &str) -> bool {
        let argon = Argon2::default();
        argon.verify_password(password.as_bytes(), phc).is_ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Role {
    Member,
    Admin,
}
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Permission {
    ReadDocs,
    ManageUsers,
}
impl Role {
    pub fn grants(self, perm: Permission) -> bool {
        matches!((self, perm), (_, Permission::ReadDocs) | (Role::Admin, _))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub roles: Vec<Role>,
    pub exp: u64,
}

pub fn b64url(bytes: &[u8]) -> String {
    let (mut bits, mut n, mut out) = (0u32, 0, String::new());
    for &b in bytes {
        (bits, n) = ((bits << 8) + u32::from(b), n + 8);
        while n >= 6 {
            n -= 6;
            out.push(ABC[((bits >> n) & 63) as usize] as char);
        }
    }
    if n > 0 {
        out.push(ABC[((bits << (6 - n)) & 63) as usize] as char);
    }
    out
}

pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let (mut bits, mut n, mut out) = (0u32, 0, Vec::new());
    for c in s.bytes() {
        (bits, n) = (
            (bits << 6) + ABC.iter().position(|&a| a == c)? as u32,
            n + 6,
        );
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    Some(out)
}

fn mac(key: &[u8], header: &str, payload: &str) -> Hmac<Sha256> {
    let mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.chain_update(format!("{header}.{payload}"))
}

pub fn sign(claims: &Claims, key: &[u8]) -> String {
    let payload = b64url(&serde_json::to_vec(claims).unwrap());
    let tag = mac(key, HEADER, &payload).finalize().into_bytes();
    format!("{HEADER}.{payload}.{}", b64url(&tag))
}

/// The claims of a token this server minted that has not expired; `None` for anything else.
pub fn verify_access(token: &str, key: &[u8], now: u64) -> Option<Claims> {
    let mut parts = token.split('.');
    let (header, payload, tag) = (parts.next()?, parts.next()?, parts.next()?);
    // Pin the header (and so `alg`), check the MAC in constant time, then `exp`.
    if header != HEADER || parts.next().is_some() {
        return None;
    }
    let tag = b64url_decode(tag)?;
    mac(key, header, payload).verify_slice(&tag).ok()?;
    let claims: Claims = serde_json::from_slice(&b64url_decode(payload)?).ok()?;
    (now < claims.exp).then_some(claims)
}

pub struct User {
    pub hash: String, // an argon2 PHC string: `$argon2id$v=19$m=...`
    pub roles: Vec<Role>,
}
pub struct Doc {
    pub owner: String,
    pub private: bool,
    pub title: String,
}
struct Refresh {
    user: String,
    family: u64,
    used: bool,
    expires_at: u64,
}

pub struct Service {
    pub key: Vec<u8>,
    pub clock: Box<dyn Clock>,
    pub rng: Box<dyn Rng>,
    pub passwords: Box<dyn PasswordCheck>,
    /// Verified for unknown users, so they cost as much as known ones.
    pub dummy_hash: String,
    pub users: HashMap<String, User>,
    pub docs: Vec<Doc>, // doc `id` is its index + 1
    pub sessions: Sessions,
}

/// Refresh tokens by `b64url(SHA-256(token))`, and the revoked families.
#[derive(Default)]
pub struct Sessions {
    refresh: HashMap<String, Refresh>,
    revoked: HashSet<u64>,
    families: u64,
}

type Reply = Result<Value, StatusCode>;

impl Service {
    fn tokens(&mut self, user: &str, family: u64) -> Reply {
        let (now, roles) = (self.clock.now(), self.users[user].roles.clone());
        let claims = Claims {
            sub: user.into(),
            roles,
            exp: now + ACCESS_TTL,
        };
        let mut raw = [0u8; 32];
        self.rng.fill(&mut raw);
        let (user, refresh) = (user.to_string(), b64url(&raw));
        let record = Refresh {
            user,
            family,
            used: false,
            expires_at: now + REFRESH_TTL,
        };
        self.sessions
            .refresh
            .insert(b64url(&Sha256::digest(&refresh)), record);
        let access = sign(&claims, &self.key);
        Ok(json!({ "access_token": access, "expires_in": ACCESS_TTL, "refresh_token": refresh }))
    }

    pub fn login(&mut self, username: &str, password: &str) -> Reply {
        let username = username.to_lowercase();
        let user = self.users.get(&username);
        // One answer for both failures, and one password check for an unknown user too.
        let hash = user.map_or(self.dummy_hash.as_str(), |u| u.hash.as_str());
        let ok = self.passwords.check(password, hash);
        if user.is_none() || !ok {
            return Err(StatusCode::UNAUTHORIZED);
        }
        self.sessions.families += 1;
        self.tokens(&username, self.sessions.families)
    }

    pub fn rotate(&mut self, token: &str) -> Reply {
        let key = b64url(&Sha256::digest(token.as_bytes()));
        let record = self
            .sessions
            .refresh
            .get_mut(&key)
            .ok_or(StatusCode::UNAUTHORIZED)?;
        let (user, family, spent) = (record.user.clone(), record.family, record.used);
        let expired = self.clock.now() >= record.expires_at;
        record.used = true;
        if spent {
            self.sessions.revoked.insert(family); // a replay: someone holds a copy
        }
        if expired || self.sessions.revoked.contains(&family) {
            return Err(StatusCode::UNAUTHORIZED);
        }
        self.tokens(&user, family)
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<Claims, StatusCode> {
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        // The scheme is case-insensitive (RFC 9110 §11.1): `bearer` is `Bearer`.
        let token = match value.and_then(|v| v.split_once(' ')) {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("Bearer") => token,
            _ => "",
        };
        verify_access(token, &self.key, self.clock.now()).ok_or(StatusCode::UNAUTHORIZED)
    }

    pub fn doc(&self, headers: &HeaderMap, id: usize) -> Reply {
        let me = self.authenticate(headers)?;
        let doc = id.checked_sub(1).and_then(|i| self.docs.get(i));
        match doc {
            // Someone else's private doc does not exist, as far as this caller can tell.
            Some(d) if !d.private || d.owner == me.sub => Ok(json!({ "id": id, "title": d.title })),
            _ => Err(StatusCode::NOT_FOUND),
        }
    }

    pub fn list_users(&self, headers: &HeaderMap) -> Reply {
        let me = self.authenticate(headers)?;
        if !me.roles.iter().any(|r| r.grants(Permission::ManageUsers)) {
            return Err(StatusCode::FORBIDDEN);
        }
        let mut names: Vec<&String> = self.users.keys().collect();
        names.sort();
        Ok(json!(names))
    }
}

type Shared = Arc<Mutex<Service>>;

fn reply(result: Reply) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(status) => (status, Json(json!({ "error": status.as_u16() }))).into_response(),
    }
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    refresh_token: String,
}

pub fn app(service: Shared) -> Router {
    Router::new()
        .route("/login", post(login))
        .route("/refresh", post(refresh))
        .route("/docs/{id}", get(doc))
        .route("/admin/users", get(list_users))
        .with_state(service)
}

async fn login(State(s): State<Shared>, Json(b): Json<Body>) -> Response {
    reply(s.lock().unwrap().login(&b.username, &b.password))
}
async fn refresh(State(s): State<Shared>, Json(b): Json<Body>) -> Response {
    reply(s.lock().unwrap().rotate(&b.refresh_token))
}
async fn doc(State(s): State<Shared>, h: HeaderMap, Path(id): Path<usize>) -> Response {
    reply(s.lock().unwrap().doc(&h, id))
}
async fn list_users(State(s): State<Shared>, h: HeaderMap) -> Response {
    reply(s.lock().unwrap().list_users(&h))
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{Algorithm, Params, PasswordHasher, Version};
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tower::ServiceExt;

    /// The real argon2 check, with a log of every PHC string it was asked about.
    struct Counting(Arc<Mutex<Vec<String>>>);
    impl PasswordCheck for Counting {
        fn check(&self, password: &str, phc: &str) -> bool {
            self.0.lock().unwrap().push(phc.to_string());
            Argon2Check.check(password, phc)
        }
    }

    const KEY: &[u8] = b"quiz-signing-key-0123456789abcdef";
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    struct FakeClock(Arc<AtomicU64>);
    impl Clock for FakeClock {
        fn now(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }
    struct XorShift(u64);
    impl Rng for XorShift {
        fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                *b = self.0 as u8;
            }
        }
    }

    /// The tests' own base64url, written differently from the server's.
    fn enc(bytes: &[u8]) -> String {
        let bits: String = bytes.iter().map(|b| format!("{b:08b}")).collect();
        let sextet = |c: &[u8]| format!("{:0<6}", std::str::from_utf8(c).unwrap());
        (bits.as_bytes().chunks(6))
            .map(|c| ALPHABET.as_bytes()[usize::from_str_radix(&sextet(c), 2).unwrap()] as char)
            .collect()
    }
    fn dec(s: &str) -> Vec<u8> {
        assert_ne!(s.len() % 4, 1, "{s:?} is not canonical base64url");
        let bits: String = (s.chars())
            .map(|c| format!("{:06b}", ALPHABET.find(c).expect("base64url alphabet only")))
            .collect();
        (bits.as_bytes().chunks_exact(8))
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap())
            .collect()
    }
    fn tag(h: &str, p: &str, key: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(format!("{h}.{p}").as_bytes());
        enc(&mac.finalize().into_bytes())
    }
    /// A JWT with any header, signed with HMAC-SHA256 under `key`.
    fn forge(header: &str, claims: &Value, key: &[u8]) -> String {
        let (h, p) = (enc(header.as_bytes()), enc(claims.to_string().as_bytes()));
        format!("{h}.{p}.{}", tag(&h, &p, key))
    }
    const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

    /// Cheap argon2id parameters, so each hash takes about a millisecond in a debug build.
    fn phc(password: &str, salt: &[u8]) -> String {
        let params = Params::new(64, 1, 1, None).unwrap();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let hash = argon.hash_password_with_salt(password.as_bytes(), salt);
        hash.unwrap().to_string()
    }

    struct World {
        app: Router,
        now: Arc<AtomicU64>,
        checks: Arc<Mutex<Vec<String>>>,
        dummy: String,
    }

    fn world(start: u64) -> World {
        let now = Arc::new(AtomicU64::new(start));
        let user = |pw: &str, salt: &[u8], roles: &[Role]| User {
            hash: phc(pw, salt),
            roles: roles.to_vec(),
        };
        let users = HashMap::from([
            (
                "alice".into(),
                user("correct horse", b"alice-salt-0001", &[Role::Member]),
            ),
            (
                "bob".into(),
                user("hunter2!", b"bob-salt-000001", &[Role::Member, Role::Admin]),
            ),
            (
                "carol".into(),
                user("carol's pass", b"carol-salt-0001", &[]),
            ),
        ]);
        let doc = |owner: &str, private, title: &str| Doc {
            owner: owner.into(),
            private,
            title: title.into(),
        };
        let docs = vec![
            doc("alice", true, "alice's diary"),
            doc("bob", true, "bob's salary"),
            doc("bob", false, "bob's handbook"),
            doc("alice", false, "alice's recipes"),
        ];
        let checks = Arc::new(Mutex::new(Vec::new()));
        let dummy = phc("dummy password", b"dummy-salt-0001");
        let service = Service {
            key: KEY.to_vec(),
            clock: Box::new(FakeClock(now.clone())),
            rng: Box::new(XorShift(start | 1)),
            passwords: Box::new(Counting(checks.clone())),
            dummy_hash: dummy.clone(),
            users,
            docs,
            sessions: Sessions::default(),
        };
        World {
            app: app(Arc::new(Mutex::new(service))),
            now,
            checks,
            dummy,
        }
    }

    impl World {
        async fn call(
            &self,
            uri: &str,
            bearer: Option<&str>,
            body: Option<Value>,
        ) -> (StatusCode, Value) {
            let authorization = bearer.map(|token| format!("Bearer {token}"));
            self.call_with(uri, authorization.as_deref(), body).await
        }
        async fn call_with(
            &self,
            uri: &str,
            authorization: Option<&str>,
            body: Option<Value>,
        ) -> (StatusCode, Value) {
            let mut req = Request::builder().uri(uri);
            if let Some(value) = authorization {
                req = req.header(header::AUTHORIZATION, value);
            }
            let req = match body {
                Some(json) => req
                    .method("POST")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(json.to_string())),
                None => req.body(Body::empty()),
            };
            let res = self.app.clone().oneshot(req.unwrap()).await.unwrap();
            let status = res.status();
            let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        }
        async fn login(&self, user: &str, password: &str) -> (StatusCode, Value) {
            let body = json!({ "username": user, "password": password });
            self.call("/login", None, Some(body)).await
        }
        /// (access, refresh) after a login that must succeed.
        async fn tokens(&self, user: &str, password: &str) -> (String, String) {
            let (status, body) = self.login(user, password).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{user} logs in with the right password"
            );
            let field = |k: &str| body[k].as_str().unwrap_or_default().to_string();
            (field("access_token"), field("refresh_token"))
        }
        async fn refresh(&self, token: &str) -> (StatusCode, Value) {
            let body = json!({ "refresh_token": token });
            self.call("/refresh", None, Some(body)).await
        }
        fn set_now(&self, t: u64) {
            self.now.store(t, Ordering::SeqCst);
        }
        /// The PHC strings checked since the last call.
        fn checked(&self) -> Vec<String> {
            std::mem::take(&mut *self.checks.lock().unwrap())
        }
    }

    #[tokio::test]
    async fn login_answers_a_five_minute_hs256_jwt_and_a_refresh_token() {
        for (start, user, pw, roles) in [
            (1_000_000, "alice", "correct horse", json!(["Member"])),
            (1_700_000_000, "bob", "hunter2!", json!(["Member", "Admin"])),
        ] {
            let w = world(start);
            let (status, body) = w.login(user, pw).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{user} with the right password: 200"
            );
            assert_eq!(body["expires_in"], 300, "the access token lives 300 s");
            let access = body["access_token"].as_str().unwrap();
            let parts: Vec<&str> = access.split('.').collect();
            assert_eq!(
                parts.len(),
                3,
                "a JWT is header.payload.signature: {access}"
            );
            let claims: Value = serde_json::from_slice(&dec(parts[1])).unwrap();
            let expected = json!({ "sub": user, "roles": roles, "exp": start + 300 });
            assert_eq!(
                claims, expected,
                "the claims name the user, the roles, and now + 300"
            );
            assert_eq!(parts[0], enc(HS256.as_bytes()), "the header is {HS256}");
            assert_eq!(
                parts[2],
                tag(parts[0], parts[1], KEY),
                "the signature is b64url(HMAC-SHA256(key, header.payload))"
            );
            let refresh = body["refresh_token"].as_str().unwrap();
            assert_eq!(
                dec(refresh).len(),
                32,
                "a refresh token is 32 random bytes: {refresh}"
            );
            let (status, _) = w.call("/docs/4", Some(access), None).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "the access token opens a public doc"
            );
        }
    }

    #[tokio::test]
    async fn wrong_password_and_unknown_user_get_the_same_401() {
        let w = world(5_000);
        let (status, first) = w.login("alice", "wrong horse").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "a wrong password is 401");
        assert_eq!(w.checked().len(), 1, "a wrong password costs one check");
        for (user, pw, known) in [
            ("alice", "", true),
            ("alice", "Correct horse", true),
            ("bob", "correct horse", true),
            ("mallory", "correct horse", false),
            ("mallory", "dummy password", false),
            ("trent", "hunter2!", false),
            ("", "", false),
        ] {
            let (status, body) = w.login(user, pw).await;
            assert_eq!(
                (status, &body),
                (StatusCode::UNAUTHORIZED, &first),
                "login {user:?}/{pw:?}: the same 401 and body as a wrong password, so nobody learns which users exist"
            );
            let checked = w.checked();
            assert_eq!(
                checked.len(),
                1,
                "login {user:?}/{pw:?}: exactly one password check, as for a wrong password; \
                 skipping it for an unknown user answers faster and gives the user away"
            );
            assert_eq!(
                checked[0] == w.dummy,
                !known,
                "login {user:?}: an unknown user is checked against dummy_hash, a known one \
                 against their own hash"
            );
        }
        w.tokens("alice", "correct horse").await;
        w.tokens("carol", "carol's pass").await;
        assert_eq!(w.checked().len(), 2, "one check per successful login too");
    }

    #[tokio::test]
    async fn usernames_are_case_insensitive_passwords_are_not() {
        for (typed, user, pw) in [
            ("Alice", "alice", "correct horse"),
            ("BOB", "bob", "hunter2!"),
        ] {
            let w = world(6_000);
            let (access, _) = w.tokens(typed, pw).await;
            let payload = access.split('.').nth(1).unwrap_or_default();
            let claims: Value = serde_json::from_slice(&dec(payload)).unwrap_or_default();
            assert_eq!(
                claims["sub"], user,
                "{typed:?} is the account {user:?} (OWASP: usernames are case-insensitive)"
            );
            let (status, _) = w.login(typed, &pw.to_uppercase()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{typed:?} with the password in upper case: passwords are case-sensitive, 401"
            );
        }
    }

    #[tokio::test]
    async fn the_bearer_scheme_is_case_insensitive() {
        for (user, pw, own) in [("alice", "correct horse", 1), ("bob", "hunter2!", 2)] {
            let w = world(8_000);
            let (access, _) = w.tokens(user, pw).await;
            let uri = format!("/docs/{own}");
            for scheme in ["Bearer", "bearer", "BEARER"] {
                let auth = format!("{scheme} {access}");
                let (status, body) = w.call_with(&uri, Some(&auth), None).await;
                assert_eq!(
                    (status, body["id"].clone()),
                    (StatusCode::OK, json!(own)),
                    "Authorization {scheme:?}: the scheme is case-insensitive (RFC 9110 §11.1)"
                );
            }
            for bad in [format!("Basic {access}"), format!("Bearer{access}"), access] {
                let (status, _) = w.call_with(&uri, Some(&bad), None).await;
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "Authorization {bad:?}: 401"
                );
            }
        }
    }

    #[tokio::test]
    async fn the_access_token_expires_after_exactly_five_minutes() {
        for start in [10_000, 1_800_000_000] {
            let w = world(start);
            let (access, refresh) = w.tokens("alice", "correct horse").await;
            w.set_now(start + 299);
            let (status, _) = w.call("/docs/1", Some(&access), None).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "at 299 s the access token still works"
            );
            w.set_now(start + 300);
            let (status, _) = w.call("/docs/1", Some(&access), None).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "at 300 s it has expired: 401"
            );
            let (status, body) = w.refresh(&refresh).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "the refresh token outlives the access token"
            );
            let fresh = body["access_token"].as_str().unwrap();
            let (status, _) = w.call("/docs/1", Some(fresh), None).await;
            assert_eq!(status, StatusCode::OK, "the refreshed access token works");
            let (_, spare) = w.tokens("bob", "hunter2!").await;
            let (_, last) = w.tokens("bob", "hunter2!").await;
            w.set_now(start + 300 + 2_592_000 - 1);
            let (status, _) = w.refresh(&spare).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "a refresh token works until its 30th day ends"
            );
            w.set_now(start + 300 + 2_592_000);
            let (status, _) = w.refresh(&last).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "after 30 days a refresh token expires"
            );
        }
    }

    #[tokio::test]
    async fn every_forged_token_is_401() {
        for start in [1_000, 900_000] {
            let w = world(start);
            let exp = start + 100;
            let alice = json!({ "sub": "alice", "roles": ["Member"], "exp": exp });
            let admin = json!({ "sub": "alice", "roles": ["Admin"], "exp": exp });
            let good = forge(HS256, &alice, KEY);
            let (status, _) = w.call("/docs/1", Some(&good), None).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "a token signed with the key is accepted"
            );

            let (real, _) = w.tokens("alice", "correct horse").await;
            let real: Vec<&str> = real.split('.').collect();
            let none = enc(br#"{"alg":"none","typ":"JWT"}"#);
            let forged = [
                (
                    "alg none, no signature",
                    format!("{none}.{}.", enc(admin.to_string().as_bytes())),
                ),
                (
                    "alg none, signed anyway",
                    forge(r#"{"alg":"none","typ":"JWT"}"#, &admin, KEY),
                ),
                (
                    "alg HS512",
                    forge(r#"{"alg":"HS512","typ":"JWT"}"#, &admin, KEY),
                ),
                (
                    "tampered payload",
                    format!(
                        "{}.{}.{}",
                        real[0],
                        enc(admin.to_string().as_bytes()),
                        real[2]
                    ),
                ),
                (
                    "signed with another key",
                    forge(HS256, &admin, b"not-the-key"),
                ),
                (
                    "an extra segment",
                    format!("{}.x", forge(HS256, &admin, KEY)),
                ),
                (
                    "expired",
                    forge(
                        HS256,
                        &json!({ "sub": "bob", "roles": ["Admin"], "exp": start }),
                        KEY,
                    ),
                ),
                (
                    "signature not base64url",
                    format!("{}.{}.{}!", real[0], real[1], real[2]),
                ),
                ("garbage", "a.b.c".to_string()),
                ("empty", String::new()),
            ];
            for (attack, token) in forged {
                let (status, _) = w.call("/admin/users", Some(&token), None).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{attack}: 401");
            }
            let (status, _) = w.call("/admin/users", None, None).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "no Authorization header: 401"
            );
        }
    }

    #[tokio::test]
    async fn refresh_rotates_and_a_replay_revokes_the_family() {
        for rotations in [1, 3] {
            let w = world(77_000);
            let (_, first) = w.tokens("alice", "correct horse").await;
            let (_, phone) = w.tokens("alice", "correct horse").await;
            let mut chain = vec![first];
            for _ in 0..rotations {
                let (status, body) = w.refresh(chain.last().unwrap()).await;
                assert_eq!(status, StatusCode::OK, "rotation of the newest token works");
                chain.push(body["refresh_token"].as_str().unwrap().to_string());
            }
            let (status, _) = w.refresh(&chain[0]).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "a spent refresh token is refused"
            );
            let (status, _) = w.refresh(chain.last().unwrap()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "after a replay, the newest token of that login is revoked too"
            );
            let (status, body) = w.refresh(&phone).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "alice's other login is another family: it works"
            );
            assert_eq!(dec(body["refresh_token"].as_str().unwrap()).len(), 32);
            let (status, _) = w.refresh("bm90LWEtdG9rZW4").await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "an unknown refresh token: 401"
            );
        }
    }

    #[tokio::test]
    async fn the_admin_route_needs_the_manage_users_permission() {
        let w = world(3_000);
        let (bob, _) = w.tokens("bob", "hunter2!").await;
        let (status, body) = w.call("/admin/users", Some(&bob), None).await;
        assert_eq!(status, StatusCode::OK, "bob is an Admin: ManageUsers");
        assert_eq!(
            body,
            json!(["alice", "bob", "carol"]),
            "the sorted user names"
        );
        for (user, pw) in [("alice", "correct horse"), ("carol", "carol's pass")] {
            let (token, _) = w.tokens(user, pw).await;
            let (status, _) = w.call("/admin/users", Some(&token), None).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{user} is authenticated but may not: 403"
            );
        }
        assert!(
            Role::Admin.grants(Permission::ManageUsers) && Role::Admin.grants(Permission::ReadDocs)
        );
        assert!(
            Role::Member.grants(Permission::ReadDocs)
                && !Role::Member.grants(Permission::ManageUsers)
        );
    }

    #[tokio::test]
    async fn another_users_private_doc_is_404_like_a_missing_one() {
        let w = world(42_000);
        for (user, pw, visible, hidden) in [
            ("alice", "correct horse", [1, 3, 4], [2, 5]),
            ("bob", "hunter2!", [2, 3, 4], [1, 0]),
        ] {
            let (token, _) = w.tokens(user, pw).await;
            for id in visible {
                let (status, body) = w.call(&format!("/docs/{id}"), Some(&token), None).await;
                assert_eq!(status, StatusCode::OK, "{user} may read doc {id}");
                assert_eq!(body["id"], id);
            }
            let (_, not_found) = w.call("/docs/999", Some(&token), None).await;
            for id in hidden {
                let res = w.call(&format!("/docs/{id}"), Some(&token), None).await;
                assert_eq!(
                    res,
                    (StatusCode::NOT_FOUND, not_found.clone()),
                    "{user} asking for doc {id}: the same 404 as a doc that does not exist"
                );
            }
        }
        let (status, _) = w.call("/docs/2", None, None).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "without a token: 401 before any lookup"
        );
    }

    /// The code with every comment removed (line, block, trailing) and every string and char
    /// literal emptied, so that neither can satisfy the scan below.
    fn code_only(src: &str) -> String {
        let b: Vec<char> = src.chars().collect();
        let (mut out, mut i) = (String::new(), 0);
        while i < b.len() {
            let next = b.get(i + 1).copied();
            if b[i] == '/' && next == Some('/') {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
            } else if b[i] == '/' && next == Some('*') {
                let mut depth = 0;
                while i < b.len() {
                    match (b[i], b.get(i + 1).copied()) {
                        ('/', Some('*')) => (depth, i) = (depth + 1, i + 2),
                        ('*', Some('/')) => (depth, i) = (depth - 1, i + 2),
                        _ => i += 1,
                    }
                    if depth == 0 {
                        break;
                    }
                }
                out.push(' ');
            } else if b[i] == '"'
                || (b[i] == '\'' && (next == Some('\\') || b.get(i + 2) == Some(&'\'')))
            {
                let quote = b[i];
                i += 1;
                while i < b.len() && b[i] != quote {
                    i += if b[i] == '\\' { 2 } else { 1 };
                }
                out.push_str(if quote == '"' { "\"\"" } else { "' '" });
                i += 1;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        out
    }

    #[test]
    fn the_tag_is_compared_in_constant_time() {
        // A tripwire, not a proof: timing cannot be measured reliably in a unit test, so this
        // reads the code above the banner, comments and strings removed. `verify_access` must
        // let the MAC check the tag (`.verify_slice(`, or `CtOutput == CtOutput`), and the only
        // raw tag taken out of a MAC (`into_bytes`) is the one `sign` writes into a token.
        let mut path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        path.push(file!()); // relative to the package, or absolute
        let source = std::fs::read_to_string(&path).expect("the exercise's own source");
        let banner = ["// Tests: do not edit", " below this line."].concat();
        let code = code_only(source.split(banner.as_str()).next().unwrap());
        let code: String = code.split_whitespace().collect();
        let verify = code
            .split("pubfnverify_access(")
            .nth(1)
            .and_then(|rest| rest.split("pubstructUser").next())
            .expect("fn verify_access is above the banner");
        assert!(
            verify.contains(".verify_slice(") || verify.contains("CtOutput"),
            "verify_access: check the tag with `verify_slice`, which compares in constant time"
        );
        for raw in ["into_bytes", "finalize", "sign(", "Sha256", "digest"] {
            assert!(
                !verify.contains(raw),
                "verify_access uses `{raw}`: a raw tag (or a re-signed token) compared with `==` \
                 can leak timing; let `verify_slice` compare it"
            );
        }
        assert_eq!(
            code.matches("into_bytes").count(),
            1,
            "only `sign` takes the raw tag out of a MAC; a second `into_bytes` is a tag compared by hand"
        );
    }
}
