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
// Caveat: these are the rules of JSON Merge Patch (RFC 7396, `application/merge-patch+json`),
// and so are its limits: a patch cannot set a field to an explicit `null` value (null always
// means "remove"), and an array in the patch replaces the whole array.
//
// What to do: make a missing nullable field deserialize to `None` and a `null` one to
// `Some(None)`, with `#[serde(default, deserialize_with = "double_option")]` and a two-line
// generic helper. Then finish `apply`. Run `backlings hint` if you are stuck.

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub bio: Option<String>,
    pub manager_id: Option<u64>,
}

/// Nullable fields: `None` = missing (keep), `Some(None)` = null (clear), `Some(Some(v))` = set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// Not nullable: missing keeps it, a value sets it.
    #[serde(default)]
    pub name: Option<String>,
    // TODO: serde reads both a missing key and `null` as `None` in these two fields. Add
    // `deserialize_with = "double_option"` to each, so that `null` becomes `Some(None)`.
    #[serde(default)]
    pub bio: Option<Option<String>>,
    #[serde(default)]
    pub manager_id: Option<Option<u64>>,
}

/// Called only when the key is present.
// TODO: deserialize an `Option<T>` (None for null) and wrap it in `Some`.
fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    todo!()
}

impl ProfilePatch {
    pub fn apply(self, profile: &mut Profile) {
        if let Some(name) = self.name {
            profile.name = name;
        }
        // TODO: set or clear `bio` and `manager_id` when the patch has them; keep them otherwise.
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    /// Two starting points: every nullable field set, and every one empty.
    fn profiles() -> [Profile; 2] {
        [
            Profile {
                name: "Ada".into(),
                bio: Some("Analyst".into()),
                manager_id: Some(7),
            },
            Profile {
                name: "Bob".into(),
                bio: None,
                manager_id: None,
            },
        ]
    }

    fn patched(start: &Profile, json: &str) -> Profile {
        let patch: ProfilePatch = serde_json::from_str(json).expect("the patch parses");
        let mut p = start.clone();
        patch.apply(&mut p);
        p
    }

    /// Applies `json` to both profiles and expects `want(start)`.
    fn check(json: &str, want: impl Fn(Profile) -> Profile, what: &str) {
        for start in profiles() {
            let want = want(start.clone());
            assert_eq!(
                patched(&start, json),
                want,
                "{json} on {start:?}: {what}, expected {want:?}"
            );
        }
    }

    #[test]
    fn a_missing_field_is_kept() {
        check("{}", |p| p, "an empty patch changes nothing");
        check(
            r#"{"name": "Ada L."}"#,
            |p| Profile {
                name: "Ada L.".into(),
                ..p
            },
            "renaming keeps the bio and the manager",
        );
    }

    #[test]
    fn a_null_field_is_cleared() {
        check(
            r#"{"bio": null}"#,
            |p| Profile { bio: None, ..p },
            "null clears the bio and keeps the rest",
        );
        check(
            r#"{"manager_id": null}"#,
            |p| Profile {
                manager_id: None,
                ..p
            },
            "null clears the manager and keeps the rest",
        );
    }

    #[test]
    fn a_value_is_set() {
        for (bio, manager) in [("Countess", 12), ("Engineer", 3)] {
            check(
                &format!(r#"{{"bio": "{bio}"}}"#),
                |p| Profile {
                    bio: Some(bio.into()),
                    ..p
                },
                "a value sets the bio",
            );
            check(
                &format!(r#"{{"manager_id": {manager}, "bio": null}}"#),
                |p| Profile {
                    bio: None,
                    manager_id: Some(manager),
                    ..p
                },
                "one patch sets the manager and clears the bio",
            );
        }
    }

    #[test]
    fn the_three_cases_deserialize_apart() {
        let parse = |j: &str| serde_json::from_str::<ProfilePatch>(j).unwrap();
        let (bio, manager) = (|p: ProfilePatch| p.bio, |p: ProfilePatch| p.manager_id);
        assert_eq!(bio(parse("{}")), None, "bio missing: None");
        assert_eq!(
            bio(parse(r#"{"bio": null}"#)),
            Some(None),
            "bio null: Some(None)"
        );
        assert_eq!(
            bio(parse(r#"{"bio": "x"}"#)),
            Some(Some("x".into())),
            "bio \"x\": Some(Some(\"x\"))"
        );
        assert_eq!(manager(parse("{}")), None, "manager_id missing: None");
        assert_eq!(
            manager(parse(r#"{"manager_id": null}"#)),
            Some(None),
            "manager_id null: Some(None)"
        );
        assert_eq!(
            manager(parse(r#"{"manager_id": 9}"#)),
            Some(Some(9)),
            "manager_id 9: Some(Some(9))"
        );
        assert!(
            serde_json::from_str::<ProfilePatch>(r#"{"manager_id": -1}"#).is_err(),
            "-1 is not a u64: the patch must be refused"
        );
    }
}
