// auth1_sign_hs256: a JWT is three base64url strings and one HMAC
//
// A JWT signed with HS256 is `b64url(header) "." b64url(claims) "." b64url(signature)`, where
// the signature is HMAC-SHA256 keyed with the shared secret over the ASCII of the first two
// parts joined by their dot (RFC 7515 §5.1). Nothing is encrypted: anyone can decode the
// claims. The MAC only proves that someone holding the key wrote exactly these bytes, and
// they are signed as they are: `{"a":1}` and `{ "a": 1 }` give different tokens.
//
// Why it matters: Flickr's API signed requests with MD5(secret + parameters). In 2009 Duong
// and Rizzo showed that, by length extension, anyone who saw one signed request could sign a
// longer one without the secret. HMAC (RFC 2104) is built so that this does not work.
//
// Production caveat: RFC 7518 §3.2 requires an HS256 key of at least 256 bits (32 bytes), and
// a password is not a key: generate the secret randomly, and keep it out of the code.
//
// What to do: in `sign_hs256`, compute the MAC over the signing input and assemble the token.
// Run `backlings hint` if you are stuck.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

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

/// Signs the exact `header` and `claims` JSON bytes with HS256: the JWS compact serialization.
pub fn sign_hs256(header: &[u8], claims: &[u8], key: &[u8]) -> String {
    // TODO: the token is b64url(header) "." b64url(claims) "." b64url(MAC), where the MAC is
    // HMAC-SHA256 keyed with `key` over the first two parts joined by the dot.
    todo!(
        "sign {} + {} bytes with a {}-byte key",
        header.len(),
        claims.len(),
        key.len()
    )
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7515 Appendix A.1: the header and payload bytes, CRLFs and spaces included.
    const RFC_HEADER: &[u8] = b"{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
    const RFC_CLAIMS: &[u8] =
        b"{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";
    /// The JWK's `k`, the symmetric key itself in base64url (64 bytes).
    const RFC_K: &str =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";

    #[test]
    fn reproduces_rfc_7515_appendix_a1() {
        let key = b64url_decode(RFC_K).expect("k is base64url");
        assert_eq!(key.len(), 64, "the RFC key is 64 bytes");
        assert_eq!(
            sign_hs256(RFC_HEADER, RFC_CLAIMS, &key),
            "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9\
             .eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ\
             .dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "RFC 7515 A.1: b64url(header).b64url(payload).b64url(HMAC-SHA256(k, the first two parts))"
        );
    }

    #[test]
    fn reproduces_a_second_vector_with_another_key() {
        // Computed with Python's hmac, hashlib and base64 modules.
        let token = sign_hs256(
            br#"{"alg":"HS256","typ":"JWT"}"#,
            br#"{"sub":"ada","name":"Ada Lovelace","iat":1700000000}"#,
            b"backlings-second-vector-key-32by!",
        );
        assert_eq!(
            token,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9\
             .eyJzdWIiOiJhZGEiLCJuYW1lIjoiQWRhIExvdmVsYWNlIiwiaWF0IjoxNzAwMDAwMDAwfQ\
             .tHfG7a9Ru9ddVc7y9N_UlbFNyeoPchg2eh6z3ojpC6g",
            "another header, claims and key: another signature"
        );
    }

    #[test]
    fn the_parts_carry_the_exact_bytes_and_a_32_byte_mac() {
        let header = b"{ \"alg\": \"HS256\" }";
        for (claims, key) in [
            (&b"{\"sub\":\"bob\"}"[..], &b"k1"[..]),
            (b"{\"sub\":\"bob\"} ", b"k2"),
        ] {
            let token = sign_hs256(header, claims, key);
            let parts: Vec<&str> = token.split('.').collect();
            assert_eq!(parts.len(), 3, "{token}: three parts separated by two dots");
            assert_eq!(
                b64url_decode(parts[0]).as_deref(),
                Some(&header[..]),
                "part 1 is the header, byte for byte"
            );
            assert_eq!(
                b64url_decode(parts[1]).as_deref(),
                Some(claims),
                "part 2 is the claims, byte for byte"
            );
            let mac = b64url_decode(parts[2]).expect("part 3 is base64url");
            assert_eq!(
                mac.len(),
                32,
                "an HMAC-SHA256 tag is 32 bytes, not hex text"
            );
        }
        assert_ne!(
            sign_hs256(header, b"{}", b"key one"),
            sign_hs256(header, b"{}", b"key two"),
            "the same claims under another key: another signature"
        );
        assert_ne!(
            sign_hs256(header, b"{\"a\":1}", b"key"),
            sign_hs256(header, b"{ \"a\": 1 }", b"key"),
            "the same JSON written differently: other bytes, another signature"
        );
    }

    #[test]
    fn every_token_carries_the_hmac_of_its_signing_input() {
        // The reference: HMAC-SHA256 computed here, over the first two parts of the token.
        let hmac = |key: &[u8], input: &str| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
            mac.update(input.as_bytes());
            b64url_encode(&mac.finalize().into_bytes())
        };
        let long_key = [0x5a; 100]; // longer than SHA-256's 64-byte block: HMAC hashes it first
        let keys: [&[u8]; 4] = [b"k", b"a-32-byte-secret-for-hs256-use!!", &long_key, b""];
        let claims: [&[u8]; 4] = [
            b"{}",
            br#"{"sub":"ada","admin":false}"#,
            br#"{"sub":"grace","exp":1900000000,"aud":["api","web"]}"#,
            br#"{"iss":"joe","exp":1300819380,"http://example.com/is_root":true}"#,
        ];
        for key in keys {
            for claim in claims {
                let token = sign_hs256(br#"{"alg":"HS256"}"#, claim, key);
                let (input, tag) = token.rsplit_once('.').expect("three parts");
                assert_eq!(
                    tag,
                    hmac(key, input),
                    "part 3 of {token} must be b64url(HMAC-SHA256(key, part 1 \".\" part 2)) \
                     with a key of {} bytes",
                    key.len()
                );
            }
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
