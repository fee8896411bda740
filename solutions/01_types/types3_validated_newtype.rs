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
// What to do: implement `TryFrom<String> for Email`, then add the serde attributes so that
// JSON goes through it, and so that unknown fields in a `Signup` are refused.
// Run `backlings hint` if you are stuck.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email: must contain exactly one @")]
    At,
    #[error("email: the parts before and after @ must not be empty")]
    EmptyPart,
    #[error("email: longer than 254 characters")]
    TooLong,
}

impl TryFrom<String> for Email {
    type Error = EmailError;

    /// Trims, lowercases, then checks: one `@`, non-empty parts, at most 254 characters.
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        let email = raw.trim().to_lowercase();
        if email.chars().count() > 254 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = email.split_once('@').ok_or(EmailError::At)?;
        if domain.contains('@') {
            return Err(EmailError::At);
        }
        if local.is_empty() || domain.is_empty() {
            return Err(EmailError::EmptyPart);
        }
        Ok(Email(email))
    }
}

impl Email {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The body of `POST /signup`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signup {
    pub email: Email,
    pub name: String,
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_emails_are_normalised() {
        for (raw, want) in [
            ("ada@example.com", "ada@example.com"),
            ("  Ada@Example.COM ", "ada@example.com"),
            ("a@b", "a@b"),
        ] {
            let email = Email::try_from(raw.to_string());
            assert_eq!(
                email.as_ref().map(Email::as_str),
                Ok(want),
                "{raw:?} is valid: expected Ok({want:?})"
            );
        }
    }

    #[test]
    fn invalid_emails_are_refused_with_the_reason() {
        let long = format!("{}@example.com", "a".repeat(250));
        for (raw, want) in [
            ("ada.example.com", EmailError::At),
            ("a@b@c", EmailError::At),
            ("@example.com", EmailError::EmptyPart),
            ("ada@", EmailError::EmptyPart),
            ("   ", EmailError::At),
            (long.as_str(), EmailError::TooLong),
        ] {
            assert_eq!(
                Email::try_from(raw.to_string()),
                Err(want.clone()),
                "{raw:?}: expected Err({want:?})"
            );
        }
    }

    #[test]
    fn json_goes_through_the_same_check() {
        let ok: Signup = serde_json::from_str(r#"{"email": " Ada@Example.com", "name": "Ada"}"#)
            .expect("a valid sign-up parses");
        assert_eq!(
            ok.email.as_str(),
            "ada@example.com",
            "the email is normalised"
        );

        let err = serde_json::from_str::<Signup>(r#"{"email": "ada@", "name": "Ada"}"#)
            .expect_err("an invalid email must be refused at the boundary")
            .to_string();
        assert!(
            err.contains("email:"),
            "the error names the field, got: {err}"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<Signup>(
            r#"{"email": "ada@example.com", "name": "Ada", "is_admin": true}"#,
        )
        .expect_err("a request with an unknown field must be refused")
        .to_string();
        assert!(
            err.contains("is_admin"),
            "the error names the unknown field, got: {err}"
        );
    }
}
