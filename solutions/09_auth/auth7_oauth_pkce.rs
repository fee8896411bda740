// auth7_oauth_pkce: the authorization-code flow, with PKCE and `state`
//
// "Log in with GitHub" is OAuth2's authorization-code flow. The client sends the browser to the
// authorization server with an `AuthorizeRequest`; the user approves; the browser comes back
// with a one-time `code` and the request's `state`; the client trades the code for tokens.
// PKCE (RFC 7636) keeps a random `code_verifier` secret and sends only its S256 challenge,
// `b64url(SHA-256(verifier))`: a stolen code is useless without the verifier, and the challenge
// does not reveal it (the `plain` method sends the verifier itself). `state` is a random value
// the callback must bring back unchanged: another state means another login (CSRF), refused
// before the code is spent.
//
// Why it matters: an Android app used a custom URL scheme for its redirect. A malicious app
// registered the same scheme, received the codes and, without PKCE, redeemed them.
//
// Production caveat: this `Client` holds one pending login. A web backend serves many browsers
// and keeps each pending state and verifier with that browser's session: RFC 6749 §10.12 asks
// that `state` be bound to the user-agent's authenticated state (e.g. a session cookie).
//
// What to do: compute the S256 challenge in `code_challenge`, and check `state` in `callback`.
// Run `backlings hint` if you are stuck.

use sha2::{Digest, Sha256};
use thiserror::Error;

/// The source of randomness (an OS RNG in production, a seeded one in tests).
pub trait Rng {
    fn fill(&mut self, buf: &mut [u8]);
}

/// The authorization server's token endpoint (an HTTPS POST in production).
pub trait TokenEndpoint {
    fn token(&mut self, code: &str, verifier: &str) -> Result<String, TokenError>;
}

/// RFC 6749 §5.2: a bad, spent or unverified code is `invalid_grant`.
#[derive(Debug, PartialEq, Error)]
#[error("invalid_grant")]
pub struct TokenError;

#[derive(Debug, PartialEq, Error)]
pub enum FlowError {
    #[error("no login in progress")]
    NoLoginInProgress,
    #[error("state mismatch: this callback answers another login")]
    StateMismatch,
    #[error("the authorization server refused the code")]
    Refused(#[from] TokenError),
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub state: String,
    pub code_challenge: String,
    pub code_challenge_method: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    pub code: String,
    pub state: String,
}

/// Base64url without padding (RFC 4648 §5), as PKCE and JWTs use it.
pub fn b64url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let mut word = [0u8; 4];
        word[1..=chunk.len()].copy_from_slice(chunk);
        let n = u32::from_be_bytes(word);
        for i in 0..=chunk.len() {
            out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

pub fn code_challenge(verifier: &str) -> String {
    // S256: only the hash travels through the browser; the verifier never does.
    b64url(&Sha256::digest(verifier.as_bytes()))
}

pub struct Client<R> {
    pub client_id: String,
    rng: R,
    pending: Option<(String, String)>, // (state, verifier)
}

impl<R: Rng> Client<R> {
    pub fn new(client_id: &str, rng: R) -> Self {
        Client {
            client_id: client_id.to_string(),
            rng,
            pending: None,
        }
    }

    /// Starts a login: 32 random bytes for the verifier, then 16 for the state.
    pub fn begin(&mut self) -> AuthorizeRequest {
        let (mut verifier, mut state) = ([0u8; 32], [0u8; 16]);
        self.rng.fill(&mut verifier);
        self.rng.fill(&mut state);
        let (verifier, state) = (b64url(&verifier), b64url(&state));
        let request = AuthorizeRequest {
            client_id: self.client_id.clone(),
            state: state.clone(),
            code_challenge: code_challenge(&verifier),
            code_challenge_method: "S256",
        };
        self.pending = Some((state, verifier));
        request
    }

    /// The redirect came back: trade the code for an access token.
    pub fn callback(
        &mut self,
        cb: &Callback,
        server: &mut impl TokenEndpoint,
    ) -> Result<String, FlowError> {
        let (state, verifier) = self.pending.take().ok_or(FlowError::NoLoginInProgress)?;
        // Not our state: another login's callback (CSRF). Refuse before the code is spent.
        if cb.state != state {
            return Err(FlowError::StateMismatch);
        }
        Ok(server.token(&cb.code, &verifier)?)
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// xorshift64, or a fixed list of bytes when the test needs exact values.
    enum FakeRng {
        XorShift(u64),
        Bytes(Vec<u8>),
    }
    impl Rng for FakeRng {
        fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                *b = match self {
                    FakeRng::XorShift(x) => {
                        *x ^= *x << 13;
                        *x ^= *x >> 7;
                        *x ^= *x << 17;
                        *x as u8
                    }
                    FakeRng::Bytes(bytes) => bytes.remove(0),
                };
            }
        }
    }

    /// The authorization server's own S256, written independently of the client's.
    fn s256(verifier: &str) -> String {
        let bits: String = Sha256::digest(verifier.as_bytes())
            .iter()
            .map(|b| format!("{b:08b}"))
            .collect();
        let abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        bits.as_bytes()
            .chunks(6)
            .map(|c| {
                let mut six = String::from_utf8(c.to_vec()).unwrap();
                while six.len() < 6 {
                    six.push('0');
                }
                abc.as_bytes()[usize::from_str_radix(&six, 2).unwrap()] as char
            })
            .collect()
    }

    /// A fake authorization server: one-time codes bound to the challenge they were issued for.
    #[derive(Default)]
    struct FakeServer {
        grants: HashMap<String, (String, &'static str)>,
        issued: usize,
        token_calls: usize,
    }

    impl FakeServer {
        /// The user approves the request: the browser comes back with this callback.
        fn approve(&mut self, req: &AuthorizeRequest) -> Callback {
            self.issued += 1;
            let code = format!("code-{}-{}", req.client_id, self.issued);
            let grant = (req.code_challenge.clone(), req.code_challenge_method);
            self.grants.insert(code.clone(), grant);
            Callback {
                code,
                state: req.state.clone(),
            }
        }
    }

    impl TokenEndpoint for FakeServer {
        fn token(&mut self, code: &str, verifier: &str) -> Result<String, TokenError> {
            self.token_calls += 1;
            // A code is spent by its first use, whatever the outcome (RFC 6749 §4.1.2).
            let (challenge, method) = self.grants.remove(code).ok_or(TokenError)?;
            let proof = match method {
                "S256" => s256(verifier),
                "plain" => verifier.to_string(),
                _ => return Err(TokenError),
            };
            if proof != challenge {
                return Err(TokenError);
            }
            Ok(format!("access-token-for-{code}"))
        }
    }

    #[test]
    fn the_rfc_7636_appendix_b_vector_and_a_second_one() {
        for (verifier, challenge) in [
            (
                "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            (
                "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-._~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                "-M3PRG_yFUX99qiorFlnC0W1egXPkF64JU809TJCnh4",
            ),
        ] {
            assert_eq!(
                code_challenge(verifier),
                challenge,
                "S256 of {verifier:?}: base64url (no padding, `-` and `_`) of its SHA-256"
            );
        }
    }

    #[test]
    fn the_appendix_b_octets_make_the_appendix_b_request() {
        let octets = vec![
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let mut bytes = octets;
        bytes.extend(1..=16u8);
        let mut client = Client::new("app", FakeRng::Bytes(bytes));
        let req = client.begin();
        assert_eq!(
            req.code_challenge,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(
            req.code_challenge_method, "S256",
            "always S256, never plain"
        );
        assert_eq!(
            req.state, "AQIDBAUGBwgJCgsMDQ4PEA",
            "state: b64url of the next 16 bytes"
        );
    }

    #[test]
    fn the_whole_flow_logs_in() {
        for (client_id, seed) in [("notes-web", 7), ("mobile", 2024)] {
            let mut server = FakeServer::default();
            let mut client = Client::new(client_id, FakeRng::XorShift(seed));
            for round in 1..=2 {
                let req = client.begin();
                assert_eq!(req.code_challenge_method, "S256");
                assert_eq!(
                    req.code_challenge.len(),
                    43,
                    "a SHA-256 is 43 base64url characters"
                );
                let cb = server.approve(&req);
                let token = client.callback(&cb, &mut server);
                assert_eq!(
                    token,
                    Ok(format!("access-token-for-code-{client_id}-{round}")),
                    "login {round} of {client_id}: the server checks S256(verifier) against the challenge"
                );
            }
        }
    }

    #[test]
    fn a_wrong_state_is_refused_before_the_code_is_spent() {
        for forged in ["attacker-state", ""] {
            let mut server = FakeServer::default();
            let mut client = Client::new("notes-web", FakeRng::XorShift(99));
            let req = client.begin();
            let mut cb = server.approve(&req);
            cb.state = forged.to_string();
            assert_eq!(
                client.callback(&cb, &mut server),
                Err(FlowError::StateMismatch),
                "the callback brought state {forged:?}, not the one we sent: StateMismatch"
            );
            assert_eq!(
                server.token_calls, 0,
                "a forged callback never reaches the token endpoint"
            );
        }
        // A callback for an earlier login of the same client is also someone else's.
        let mut server = FakeServer::default();
        let mut client = Client::new("notes-web", FakeRng::XorShift(5));
        let old = server.approve(&client.begin());
        let _new = server.approve(&client.begin());
        assert_eq!(
            client.callback(&old, &mut server),
            Err(FlowError::StateMismatch)
        );
        assert_eq!(
            server.token_calls, 0,
            "a stale callback never reaches the token endpoint"
        );
    }

    #[test]
    fn a_stolen_code_is_useless_without_the_verifier() {
        for seed in [3, 31337] {
            let mut server = FakeServer::default();
            let mut client = Client::new("mobile", FakeRng::XorShift(seed));
            let req = client.begin();
            let cb = server.approve(&req);
            // The attacker saw the authorization URL (challenge) and intercepted the code.
            assert_eq!(
                server.token(&cb.code, &req.code_challenge),
                Err(TokenError),
                "the challenge in the URL must not work as the verifier (that is `plain`)"
            );
            assert_eq!(server.token_calls, 1);
        }
    }

    #[test]
    fn a_code_and_a_callback_work_only_once() {
        for seed in [8, 800] {
            let mut server = FakeServer::default();
            let mut client = Client::new("notes-web", FakeRng::XorShift(seed));
            let cb = server.approve(&client.begin());
            assert!(
                client.callback(&cb, &mut server).is_ok(),
                "the first callback logs in"
            );
            assert_eq!(
                client.callback(&cb, &mut server),
                Err(FlowError::NoLoginInProgress),
                "a replayed callback finds no login in progress"
            );
            assert_eq!(
                server.token_calls, 1,
                "the replay never reached the token endpoint"
            );
            assert_eq!(
                server.token(&cb.code, "anything"),
                Err(TokenError),
                "a spent code"
            );
        }
    }
}
