// auth3_claims_and_clock: a valid signature is not a valid token
//
// A signature says who wrote the claims, not that they still hold. After it, the claims are
// checked against the clock and against this service (RFC 7519 §4.1):
// - `exp`: the current time MUST be before it (§4.1.4). With a leeway of L seconds the token
//   is accepted while `now < exp + L`; at `exp + L` it is refused.
// - `nbf`: the current time MUST be at or after it (§4.1.5), so with leeway `nbf <= now + L`.
// - `iss`: the issuer this service trusts, compared exactly.
// - `aud`: one string or an array of strings (§4.1.3); this service must be among them,
//   compared exactly. RFC 7519 refuses only a present `aud` that misses us; RFC 8725 §3.9
//   adds that when one issuer serves several services, a token with no `aud` MUST be refused.
// The time is a parameter: the caller reads its clock once, and the tests pass any instant.
//
// Why it matters: two services trusted the same login server's key. A token minted for the
// staging dashboard, whose `aud` nobody checked, opened the production billing API.
//
// Production caveat: clocks on the issuer and on this server drift apart, and RFC 7519 lets
// implementers "provide for some small leeway, usually no more than a few minutes, to account
// for clock skew". Keep it small: every second of leeway is one more second in which a
// stolen, expired token still works.
//
// What to do: implement `validate_claims`.
// Run `backlings hint` if you are stuck.

use serde::Deserialize;
use thiserror::Error;

/// `aud` is one string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The registered claims this service reads; times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: Option<String>,
    pub aud: Option<Audience>,
    pub exp: Option<u64>,
    pub nbf: Option<u64>,
}

/// What this service accepts.
pub struct Rules {
    pub issuer: &'static str,
    pub audience: &'static str,
    pub leeway_secs: u64,
    pub require_exp: bool,
}

#[derive(Debug, PartialEq, Error)]
pub enum ClaimsError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token has no exp and this service requires one")]
    MissingExp,
    #[error("the token was issued by someone this service does not trust")]
    WrongIssuer,
    #[error("the token was issued for another audience")]
    WrongAudience,
}

/// Accepts `claims` at the instant `now` under `rules`.
pub fn validate_claims(claims: &Claims, now: u64, rules: &Rules) -> Result<(), ClaimsError> {
    // TODO: this checks `exp` with no leeway and the issuer, nothing else. Count the leeway,
    // check `nbf`, refuse a missing `exp` when it is required, and check the audience.
    if claims.exp.is_some_and(|exp| now >= exp) {
        return Err(ClaimsError::Expired);
    }
    if claims.iss.as_deref() != Some(rules.issuer) {
        return Err(ClaimsError::WrongIssuer);
    }
    Ok(())
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;

    const STRICT: Rules = Rules {
        issuer: "https://id.example.com",
        audience: "orders-api",
        leeway_secs: 0,
        require_exp: true,
    };
    const LENIENT: Rules = Rules {
        issuer: "https://login.example.org",
        audience: "billing",
        leeway_secs: 90,
        require_exp: false,
    };

    /// Claims that `rules` accept, with `exp` and `nbf` as given.
    fn claims(rules: &Rules, exp: Option<u64>, nbf: Option<u64>) -> Claims {
        serde_json::from_value(json!({
            "sub": "ada", "iss": rules.issuer, "aud": rules.audience, "exp": exp, "nbf": nbf,
        }))
        .unwrap()
    }

    #[test]
    fn expiry_counts_the_leeway_and_no_more() {
        for rules in [STRICT, LENIENT] {
            let l = rules.leeway_secs;
            let exp = NOW - 600;
            let c = claims(&rules, Some(exp), None);
            let at = |now| validate_claims(&c, now, &rules);
            assert_eq!(at(exp - 1), Ok(()), "one second before exp: accepted");
            if l > 0 {
                assert_eq!(
                    at(exp),
                    Ok(()),
                    "exactly at exp, within a leeway of {l} s: accepted"
                );
                assert_eq!(at(exp + l - 1), Ok(()), "exp + leeway - 1: accepted");
            } else {
                assert_eq!(
                    at(exp),
                    Err(ClaimsError::Expired),
                    "exactly at exp, no leeway: expired (now MUST be before exp)"
                );
            }
            assert_eq!(
                at(exp + l),
                Err(ClaimsError::Expired),
                "exactly at exp + leeway ({l} s): expired"
            );
            assert_eq!(
                at(exp + l + 1),
                Err(ClaimsError::Expired),
                "exp + leeway + 1: expired"
            );
            assert_eq!(
                at(NOW),
                Err(ClaimsError::Expired),
                "ten minutes after exp: expired"
            );
        }
    }

    #[test]
    fn not_before_counts_the_leeway_too() {
        for rules in [STRICT, LENIENT] {
            let l = rules.leeway_secs;
            for (nbf, want) in [
                (NOW - 1, Ok(())),
                (NOW, Ok(())),
                (NOW + l, Ok(())),
                (NOW + l + 1, Err(ClaimsError::NotYetValid)),
                (NOW + 3600, Err(ClaimsError::NotYetValid)),
            ] {
                let c = claims(&rules, Some(NOW + 3600), Some(nbf));
                assert_eq!(
                    validate_claims(&c, NOW, &rules),
                    want,
                    "nbf = now + {}, leeway {l} s",
                    nbf as i64 - NOW as i64
                );
            }
        }
    }

    #[test]
    fn a_missing_exp_is_refused_only_where_required() {
        let c = claims(&STRICT, None, None);
        assert_eq!(
            validate_claims(&c, NOW, &STRICT),
            Err(ClaimsError::MissingExp),
            "STRICT requires exp"
        );
        let c = claims(&LENIENT, None, None);
        assert_eq!(
            validate_claims(&c, NOW, &LENIENT),
            Ok(()),
            "LENIENT does not require exp"
        );
        let far = claims(&LENIENT, Some(u64::MAX), Some(0));
        assert_eq!(
            validate_claims(&far, NOW, &LENIENT),
            Ok(()),
            "exp = u64::MAX is far in the future, not an overflow"
        );
    }

    #[test]
    fn the_issuer_must_be_the_trusted_one() {
        for (rules, other) in [(STRICT, LENIENT), (LENIENT, STRICT)] {
            let mut c = claims(&rules, Some(NOW + 60), None);
            assert_eq!(
                validate_claims(&c, NOW, &rules),
                Ok(()),
                "the trusted issuer: accepted"
            );
            for iss in [
                Some(other.issuer.to_string()),
                Some(rules.issuer.to_uppercase()),
                Some(format!("{}/", rules.issuer)),
                Some(format!("evil{}", rules.issuer)),
                Some(format!("{}.evil", rules.issuer)),
                None,
            ] {
                c.iss = iss.clone();
                assert_eq!(
                    validate_claims(&c, NOW, &rules),
                    Err(ClaimsError::WrongIssuer),
                    "iss {iss:?} is not {:?}",
                    rules.issuer
                );
            }
        }
    }

    #[test]
    fn the_audience_is_a_string_or_an_array_that_names_us() {
        for (rules, other) in [(STRICT, LENIENT), (LENIENT, STRICT)] {
            let (me, them) = (rules.audience, other.audience);
            for (aud, want) in [
                (json!(me), Ok(())),
                (json!([me]), Ok(())),
                (json!([them, me]), Ok(())),
                (json!([me, them, "web"]), Ok(())),
                (json!(them), Err(ClaimsError::WrongAudience)),
                (json!([them, "web"]), Err(ClaimsError::WrongAudience)),
                (json!([]), Err(ClaimsError::WrongAudience)),
                (json!(me.to_uppercase()), Err(ClaimsError::WrongAudience)),
                (
                    json!(format!("{me} {them}")),
                    Err(ClaimsError::WrongAudience),
                ),
                (
                    json!(format!("staging-{me}")),
                    Err(ClaimsError::WrongAudience),
                ),
                (
                    json!([format!("{me}-staging")]),
                    Err(ClaimsError::WrongAudience),
                ),
                (json!([format!("x{me}")]), Err(ClaimsError::WrongAudience)),
                // No `aud` at all: refused (RFC 8725 §3.9), not waved through.
                (json!(null), Err(ClaimsError::WrongAudience)),
            ] {
                let mut c = claims(&rules, Some(NOW + 60), None);
                c.aud = serde_json::from_value(aud.clone()).unwrap();
                assert_eq!(
                    validate_claims(&c, NOW, &rules),
                    want,
                    "aud {aud} for a service that is {me:?}"
                );
            }
        }
    }
}
