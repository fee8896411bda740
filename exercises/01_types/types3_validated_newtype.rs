// types3_validated_newtype: parse, don't validate
//
// If `Email` can only be built through one checked constructor, every `Email` in the program
// is valid, and no function ever has to check again. Make its field private, give it only
// `TryFrom<String>`, and route serde through the same check with
// `#[serde(try_from = "String")]`. This is what zod or Pydantic do at the boundary; in Rust the
// type system keeps the guarantee after the boundary, too.
//
// Why it matters: a sign-up endpoint once accepted "bob@" because only the web form checked
// emails. The mobile app did not, and the mailer crashed on every retry for a week.
//
// The rules: trim, lowercase, at most 254 bytes (RFC 5321 caps a path at 256 octets, angle
// brackets included), exactly one `@` with something on each side. Lowercasing all of it is
// this service's policy, not a rule of email: RFC 5321 lets the part before the `@` be
// case-sensitive (only the domain is not), so `Bob@x` and `bob@x` could be two mailboxes.
// Caveat: serde_json's errors carry a line and a column, not the path of the field that
// failed; name the field in your own message (as `EmailError` does), or use the
// `serde_path_to_error` crate, which tracks the path.
//
// What to do: implement `TryFrom<String> for Email`, then add the serde attributes so that
// JSON goes through it, and so that unknown fields in a `Signup` are refused.
// Run `backlings hint` if you are stuck.

use serde::Deserialize;

// TODO: make serde build an `Email` through `TryFrom<String>`, not straight from the string.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email: must contain exactly one @")]
    At,
    #[error("email: the parts before and after @ must not be empty")]
    EmptyPart,
    #[error("email: longer than 254 bytes")]
    TooLong,
}

impl TryFrom<String> for Email {
    type Error = EmailError;

    /// Trims, lowercases, then checks: at most 254 bytes, one `@`, non-empty parts.
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        // TODO: trim and lowercase `raw`, then refuse: more than 254 bytes (TooLong), not
        // exactly one `@` (At), an empty part before or after it (EmptyPart).
        Ok(Email(raw))
    }
}

impl Email {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The body of `POST /signup`.
// TODO: refuse JSON with fields this struct does not have.
#[derive(Debug, Deserialize)]
pub struct Signup {
    pub email: Email,
    pub name: String,
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    /// `local@` followed by a domain of `len - local.len() - 1` bytes.
    fn email_of_len(local: &str, len: usize) -> String {
        let domain = "d".repeat(len - local.len() - 1);
        format!("{local}@{domain}")
    }

    #[test]
    fn valid_emails_are_normalised() {
        let at_limit = email_of_len("a", 254);
        let padded = format!("  {}\t", email_of_len("B", 254));
        for (raw, want) in [
            ("ada@example.com", "ada@example.com"),
            ("  Ada@Example.COM ", "ada@example.com"),
            ("a@b", "a@b"),
            (at_limit.as_str(), at_limit.as_str()),
            (padded.as_str(), &*email_of_len("b", 254)),
        ] {
            let email = Email::try_from(raw.to_string());
            assert_eq!(
                email.as_ref().map(Email::as_str),
                Ok(want),
                "{raw:?} ({} bytes) is valid: expected Ok({want:?})",
                raw.len()
            );
        }
    }

    #[test]
    fn invalid_emails_are_refused_with_the_reason() {
        let over = email_of_len("a", 255);
        let padded_over = format!(" {over} ");
        // 254 characters but 255 bytes: the limit counts bytes.
        let accented = email_of_len("\u{e9}", 255);
        for (raw, want) in [
            ("ada.example.com", EmailError::At),
            ("a@b@c", EmailError::At),
            ("@example.com", EmailError::EmptyPart),
            ("ada@", EmailError::EmptyPart),
            (" @ ", EmailError::EmptyPart),
            ("   ", EmailError::At),
            (over.as_str(), EmailError::TooLong),
            (padded_over.as_str(), EmailError::TooLong),
            (accented.as_str(), EmailError::TooLong),
        ] {
            assert_eq!(
                Email::try_from(raw.to_string()),
                Err(want.clone()),
                "{raw:?} ({} bytes): expected Err({want:?})",
                raw.len()
            );
        }
    }

    #[test]
    fn json_goes_through_the_same_check() {
        for (raw, want) in [(" Ada@Example.com", "ada@example.com"), ("x@Y", "x@y")] {
            let json = format!(r#"{{"email": "{raw}", "name": "Ada"}}"#);
            let ok: Signup = serde_json::from_str(&json).expect("a valid sign-up parses");
            assert_eq!(
                ok.email.as_str(),
                want,
                "the email is normalised: expected {want:?}"
            );
        }
        for (raw, want) in [("ada@", EmailError::EmptyPart), ("a@b@c", EmailError::At)] {
            let json = format!(r#"{{"email": "{raw}", "name": "Ada"}}"#);
            let err = serde_json::from_str::<Signup>(&json)
                .expect_err("an invalid email must be refused at the boundary")
                .to_string();
            // serde_json adds only "at line L column C", never the field's path, so the
            // message from `EmailError` must say which field failed.
            assert!(
                err.starts_with(&want.to_string()),
                "{raw:?}: expected serde_json to report {:?}, got: {err}",
                want.to_string()
            );
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        for extra in ["is_admin", "role"] {
            let json = format!(r#"{{"email": "ada@example.com", "name": "Ada", "{extra}": true}}"#);
            let err = serde_json::from_str::<Signup>(&json)
                .expect_err("a request with an unknown field must be refused")
                .to_string();
            assert!(
                err.contains(&format!("unknown field `{extra}`")),
                "expected \"unknown field `{extra}`\", got: {err}"
            );
        }
    }
}
