// types4_patch_tristate: missing, null or a value
//
// A PATCH request changes only the fields it sends. For a nullable field there are three
// cases: the key is missing (keep the value), it is `null` (clear it), or it has a value (set
// it). `Option<T>` has two states, so it cannot tell the first two apart; `Option<Option<T>>`
// can. This is TypeScript's `Partial<T>`, done so that "absent" and "null" differ.
//
// Why it matters: a mobile client sent `{"name": "Ada"}` to rename a user, and the API wiped
// her bio, because a missing `bio` was read as `null`. Users lost their profiles.
//
// What to do: make a missing `bio` deserialize to `None` and a `null` one to `Some(None)`,
// with `#[serde(default, deserialize_with = "double_option")]` and a two-line helper. Then
// finish `apply`. Run `backlings hint` if you are stuck.

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub bio: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// Not nullable: missing keeps it, a value sets it.
    #[serde(default)]
    pub name: Option<String>,
    /// Nullable: `None` = missing (keep), `Some(None)` = null (clear), `Some(Some(v))` = set.
    #[serde(default, deserialize_with = "double_option")]
    pub bio: Option<Option<String>>,
}

/// Runs only when the key is present, so a present key always becomes `Some(...)`: `null`
/// becomes `Some(None)`. A missing key never gets here, and `default` makes it `None`.
fn double_option<'de, D>(d: D) -> Result<Option<Option<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    Option::<String>::deserialize(d).map(Some)
}

impl ProfilePatch {
    pub fn apply(self, profile: &mut Profile) {
        if let Some(name) = self.name {
            profile.name = name;
        }
        if let Some(bio) = self.bio {
            profile.bio = bio;
        }
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    fn ada() -> Profile {
        Profile {
            name: "Ada".into(),
            bio: Some("Analyst".into()),
        }
    }

    fn patched(json: &str) -> Profile {
        let patch: ProfilePatch = serde_json::from_str(json).expect("the patch parses");
        let mut p = ada();
        patch.apply(&mut p);
        p
    }

    #[test]
    fn a_missing_bio_is_kept() {
        assert_eq!(patched("{}"), ada(), "an empty patch changes nothing");
        assert_eq!(
            patched(r#"{"name": "Ada L."}"#),
            Profile {
                name: "Ada L.".into(),
                bio: Some("Analyst".into())
            },
            "renaming must keep the bio"
        );
    }

    #[test]
    fn a_null_bio_is_cleared() {
        assert_eq!(
            patched(r#"{"bio": null}"#),
            Profile {
                name: "Ada".into(),
                bio: None
            },
            "null clears the bio and keeps the name"
        );
    }

    #[test]
    fn a_bio_value_is_set() {
        assert_eq!(
            patched(r#"{"bio": "Countess"}"#).bio.as_deref(),
            Some("Countess"),
            "expected the new bio"
        );
    }

    #[test]
    fn the_three_cases_deserialize_apart() {
        let parse = |j: &str| serde_json::from_str::<ProfilePatch>(j).unwrap().bio;
        assert_eq!(parse("{}"), None, "missing: None");
        assert_eq!(parse(r#"{"bio": null}"#), Some(None), "null: Some(None)");
        assert_eq!(
            parse(r#"{"bio": "x"}"#),
            Some(Some("x".into())),
            "value: Some(Some(..))"
        );
    }
}
