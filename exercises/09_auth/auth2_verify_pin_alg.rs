// auth2_verify_pin_alg: the verifier chooses the algorithm, not the token
//
// A JWT's header names its algorithm, and a verifier that believes it can be told anything:
// `"alg":"none"` (an "unsecured JWT", RFC 7519 §6) means "no signature to check", and
// `HS512` asks for another MAC. This service signs with HS256 only, so it pins it: any other
// `alg` is refused before anything else is looked at (RFC 8725 §3.1). Then the tag is compared
// in constant time. `==` on two byte slices makes no such promise: it may return as soon as
// it finds a difference, so the time it takes can tell an attacker how much of a forged tag is
// right; `Mac::verify_slice` looks at every byte whatever they hold. A tampered token and a wrong key look the same from here:
// the tag does not match, and that is all a verifier can know.
//
// Why it matters: in 2015 several JWT libraries accepted `alg: none` tokens with no signature
// at all, because verification followed whatever the header asked for.
//
// Production caveat: pin the algorithm per key, not per service. A service that accepts HS256
// with a shared secret and RS256 with a public key must never use the public key as an HMAC
// secret when a token says HS256 (the algorithm confusion attack of RFC 8725 §2.1).
//
// What to do: in `verify_hs256`, refuse every `alg` but `HS256`, then check the tag with
// `verify_slice`.
// Run `backlings hint` if you are stuck.

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::Sha256;
use thiserror::Error;

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

/// The inverse: `None` for a character outside the alphabet (`=`, `+`, `/`), a bad length, or
/// non-zero trailing bits (RFC 4648 §3.5), so that one tag has only one spelling.
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
    (b64url_encode(&out) == text).then_some(out)
}

#[derive(Debug, PartialEq, Error)]
pub enum VerifyError {
    #[error("malformed token: not three base64url parts of JSON")]
    Malformed,
    #[error("algorithm {0:?} is not accepted here")]
    UnsupportedAlg(String),
    #[error("the signature does not match")]
    BadSignature,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

fn decode_json<T: DeserializeOwned>(part: &str) -> Result<T, VerifyError> {
    let bytes = b64url_decode(part).ok_or(VerifyError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| VerifyError::Malformed)
}

/// Verifies an HS256 token with `key` and returns its claims.
pub fn verify_hs256(token: &str, key: &[u8]) -> Result<Value, VerifyError> {
    let [header_b64, claims_b64, signature_b64] = token.split('.').collect::<Vec<_>>()[..] else {
        return Err(VerifyError::Malformed);
    };
    let header: Header = decode_json(header_b64)?;
    let signature = b64url_decode(signature_b64).ok_or(VerifyError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(format!("{header_b64}.{claims_b64}").as_bytes());
    // TODO: the token must not choose how it is checked: refuse any `alg` but HS256 first.
    // TODO: `!=` stops at the first differing byte; compare the tag in constant time.
    if header.alg != "none" && mac.finalize().into_bytes().as_slice() != signature {
        return Err(VerifyError::BadSignature);
    }
    decode_json(claims_b64)
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sha2::Sha512;

    const KEY_A: &[u8] = b"key-of-service-a-0123456789abcdef";
    const KEY_B: &[u8] = b"another-key-for-service-b-9876543";

    fn b64json(v: &Value) -> String {
        b64url_encode(v.to_string().as_bytes())
    }

    fn hs256(key: &[u8], input: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(input.as_bytes());
        b64url_encode(&mac.finalize().into_bytes())
    }

    fn token(alg: &str, claims: &Value, key: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            b64json(&json!({"alg": alg, "typ": "JWT"})),
            b64json(claims)
        );
        format!("{input}.{}", hs256(key, &input))
    }

    fn claims(sub: &str) -> Value {
        json!({"sub": sub, "exp": 1_900_000_000})
    }

    #[test]
    fn a_token_signed_with_the_key_verifies() {
        for (key, sub) in [(KEY_A, "ada"), (KEY_B, "grace")] {
            assert_eq!(
                verify_hs256(&token("HS256", &claims(sub), key), key),
                Ok(claims(sub)),
                "a token signed with this key: its claims come back"
            );
        }
        // RFC 7515 Appendix A.1, whose header has a CRLF and a space in it.
        let rfc = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9\
            .eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ\
            .dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let key = b64url_decode(
            "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
        )
        .unwrap();
        assert_eq!(
            verify_hs256(rfc, &key),
            Ok(json!({"iss": "joe", "exp": 1300819380, "http://example.com/is_root": true})),
            "the RFC 7515 A.1 token verifies with its key"
        );
    }

    #[test]
    fn a_tampered_token_or_another_key_is_a_bad_signature() {
        for (key, other) in [(KEY_A, KEY_B), (KEY_B, KEY_A)] {
            let good = token("HS256", &claims("bob"), key);
            let parts: Vec<&str> = good.split('.').collect();
            let forged = format!("{}.{}.{}", parts[0], b64json(&claims("admin")), parts[2]);
            assert_eq!(
                verify_hs256(&forged, key),
                Err(VerifyError::BadSignature),
                "claims changed under the old signature"
            );
            assert_eq!(
                verify_hs256(&good, other),
                Err(VerifyError::BadSignature),
                "signed with another key"
            );
            let tag = b64url_decode(parts[2]).unwrap();
            let mut flipped = tag.clone();
            flipped[31] ^= 1;
            for (what, sig) in [
                ("the last bit flipped", flipped),
                ("the first 16 bytes only", tag[..16].to_vec()),
                ("the first byte only", tag[..1].to_vec()),
                ("no tag at all", Vec::new()),
                ("the tag and one more byte", [&tag[..], &[0]].concat()),
            ] {
                let t = format!("{}.{}.{}", parts[0], parts[1], b64url_encode(&sig));
                assert_eq!(
                    verify_hs256(&t, key),
                    Err(VerifyError::BadSignature),
                    "a tag with {what}"
                );
            }
        }
    }

    #[test]
    fn the_token_cannot_choose_its_algorithm() {
        let none = |sig: &str| {
            format!(
                "{}.{}.{sig}",
                b64json(&json!({"alg": "none"})),
                b64json(&claims("eve"))
            )
        };
        let unsecured = none("");
        assert_eq!(
            verify_hs256(&unsecured, KEY_A),
            Err(VerifyError::UnsupportedAlg("none".into())),
            "alg none, empty signature (RFC 7519 §6.1)"
        );
        let with_sig = none(&hs256(KEY_A, unsecured.trim_end_matches('.')));
        assert_eq!(
            verify_hs256(&with_sig, KEY_A),
            Err(VerifyError::UnsupportedAlg("none".into())),
            "alg none, even with a valid HS256 tag"
        );
        assert_eq!(
            verify_hs256(&none("c2lnbmVk"), KEY_B),
            Err(VerifyError::UnsupportedAlg("none".into())),
            "alg none with some signature part"
        );
        for alg in ["hs256", "HS384", "RS256", ""] {
            assert_eq!(
                verify_hs256(&token(alg, &claims("eve"), KEY_A), KEY_A),
                Err(VerifyError::UnsupportedAlg(alg.into())),
                "alg {alg:?}, even signed with the right key"
            );
        }
        // HS512 with a genuine HS512 tag under the right key: still not what this verifier does.
        for key in [KEY_A, KEY_B] {
            let input = format!(
                "{}.{}",
                b64json(&json!({"alg": "HS512"})),
                b64json(&claims("eve"))
            );
            let mut mac = Hmac::<Sha512>::new_from_slice(key).unwrap();
            mac.update(input.as_bytes());
            let t = format!("{input}.{}", b64url_encode(&mac.finalize().into_bytes()));
            assert_eq!(
                verify_hs256(&t, key),
                Err(VerifyError::UnsupportedAlg("HS512".into())),
                "HS512 presented to an HS256 verifier"
            );
        }
    }

    #[test]
    fn a_malformed_token_is_malformed() {
        let good = token("HS256", &claims("bob"), KEY_A);
        let p: Vec<&str> = good.split('.').collect();
        let signed = |header: &str, claims: &str| {
            format!(
                "{header}.{claims}.{}",
                hs256(KEY_A, &format!("{header}.{claims}"))
            )
        };
        // 32 bytes are 43 characters whose last 2 bits are zero: set one, the bytes stay the same.
        let last = B64URL
            .iter()
            .position(|&c| c as char == good.chars().last().unwrap());
        let respelled = format!(
            "{}{}",
            &good[..good.len() - 1],
            B64URL[last.unwrap() ^ 1] as char
        );
        let cases = [
            ("two parts", format!("{}.{}", p[0], p[1])),
            ("four parts", format!("{good}.{}", p[2])),
            ("an empty string", String::new()),
            (
                "a header that is not base64url",
                format!("{}=.{}.{}", p[0], p[1], p[2]),
            ),
            (
                "a header that is not JSON",
                format!("{}.{}.{}", b64url_encode(b"alg=HS256"), p[1], p[2]),
            ),
            (
                "a header without alg",
                signed(&b64json(&json!({"typ": "JWT"})), p[1]),
            ),
            (
                "a signature that is not base64url",
                format!("{}.{}.{}+", p[0], p[1], p[2]),
            ),
            (
                "signed claims that are not JSON",
                signed(p[0], &b64url_encode(b"{\"sub\":")),
            ),
            ("signed claims that are not base64url", signed(p[0], "e30=")),
            (
                "the tag spelled another way (non-zero trailing bits)",
                respelled,
            ),
        ];
        for (what, t) in cases {
            assert_eq!(
                verify_hs256(&t, KEY_A),
                Err(VerifyError::Malformed),
                "{what}: {t:?}"
            );
        }
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
        // reads the code above the banner, comments and strings removed. The tag must be checked
        // by the MAC itself (`.verify_slice(` or `CtOutput == CtOutput`), and no raw tag may be
        // taken out of it (`into_bytes`, `finalize_fixed`) or built by hand from a hash.
        let mut path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        path.push(file!()); // relative to the package, or absolute
        let source = std::fs::read_to_string(&path).expect("the exercise's own source");
        let banner = ["// Tests: do not edit", " below this line."].concat();
        let code = code_only(source.split(banner.as_str()).next().unwrap());
        let code: String = code.split_whitespace().collect();
        assert!(
            code.contains(".verify_slice(") || code.contains("CtOutput"),
            "check the tag with `mac.verify_slice(&signature)`, which compares in constant time"
        );
        for raw in [
            "into_bytes",
            "finalize_fixed",
            "FixedOutput",
            "Digest",
            "Sha256::",
        ] {
            assert!(
                !code.contains(raw),
                "found `{raw}`: a raw tag (or one built by hand from SHA-256) compared with `==` \
                 can leak timing; let `verify_slice` compare it"
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
        for bad in ["Zm9v=", "Zm+v", "Zm/v", "Z", "Zm9vY", "Zm 9", "Zh", "Zm9"] {
            assert_eq!(
                b64url_decode(bad),
                None,
                "{bad:?} is not unpadded base64url"
            );
        }
    }
}
