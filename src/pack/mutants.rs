//! Mutants: small changes to a reference solution that the tests must catch, kept in
//! `mutants/<exercise>.toml` as find/replace edits, each naming the test that catches it.
//!
//! Find/replace rather than unified diffs: an edit keeps applying when unrelated lines of the
//! solution move, it reads as what it is (`.buffered(` → `.buffer_unordered(`) in review, and
//! it needs no patch crate. When the solution changes under an edit, the edit stops matching
//! and `dev check` asks the author to look at the mutant again, which is the review we want.
//!
//! The same file lists the generated mutants (cargo-mutants) that the tests are allowed to
//! miss, each with its reason.
use super::protected;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MutantFile {
    /// Set, with a reason, for the rare exercise where no cheat is plausible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_cheat: Option<String>,
    #[serde(default, rename = "mutant")]
    pub mutants: Vec<Mutant>,
    /// Generated mutants the tests may miss, each with a reason.
    #[serde(default, rename = "accepted", skip_serializing_if = "Vec::is_empty")]
    pub accepted: Vec<Accepted>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mutant {
    /// `[a-z0-9_]`, unique within the exercise.
    pub name: String,
    pub kind: Kind,
    /// The wrong fix or cheat, and why the tests catch it.
    pub why: String,
    /// The test that must fail: `tests::name` or just `name`.
    pub catches: String,
    #[serde(rename = "edit")]
    pub edits: Vec<Edit>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A plausible wrong fix.
    Wrong,
    /// Passes naive tests without doing the idea: a hard-coded answer, the mechanism done
    /// once, validation up front, work done inline that the lesson moves elsewhere.
    Cheat,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    /// Text that occurs exactly once in the solution, above the tests.
    pub find: String,
    pub replace: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Accepted {
    /// cargo-mutants' description without its `file:line:col:` prefix, e.g.
    /// `replace * with / in total`.
    pub mutant: String,
    pub why: String,
}

/// Why a mutant cannot be built from the solution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    NotFound { edit: usize },
    Ambiguous { edit: usize, count: usize },
    InTests { edit: usize },
    NoChange,
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::NotFound { edit } => write!(
                f,
                "edit {} no longer applies: its `find` text is not in the solution",
                edit + 1
            ),
            ApplyError::Ambiguous { edit, count } => write!(
                f,
                "edit {}'s `find` text occurs {count} times in the solution: make it unique",
                edit + 1
            ),
            ApplyError::InTests { edit } => write!(
                f,
                "edit {} changes the protected tests: a mutant changes only the learner's code",
                edit + 1
            ),
            ApplyError::NoChange => write!(f, "the edits change nothing"),
        }
    }
}

impl MutantFile {
    pub fn parse(text: &str) -> Result<MutantFile, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The file's text, each mutant's edits right under it with no blank line between.
    pub fn to_toml(&self) -> String {
        toml::to_string(self)
            .expect("mutants serialize")
            .replace("\n\n[[mutant.edit]]", "\n[[mutant.edit]]")
    }
}

impl Mutant {
    /// The solution with this mutant's edits applied, in order.
    pub fn apply(&self, solution: &str) -> Result<String, ApplyError> {
        let mut text = solution.to_string();
        for (i, e) in self.edits.iter().enumerate() {
            let count = text.matches(&e.find).count();
            match count {
                0 => return Err(ApplyError::NotFound { edit: i }),
                1 => {}
                _ => return Err(ApplyError::Ambiguous { edit: i, count }),
            }
            let at = text.find(&e.find).expect("counted once");
            if protected::start(&text).is_some_and(|s| at + e.find.len() > s) {
                return Err(ApplyError::InTests { edit: i });
            }
            text.replace_range(at..at + e.find.len(), &e.replace);
        }
        if text == solution {
            return Err(ApplyError::NoChange);
        }
        Ok(text)
    }

    /// Whether a libtest name is the one this mutant names.
    pub fn is_caught_by(&self, test: &str) -> bool {
        test == self.catches || test.rsplit("::").next() == Some(self.catches.as_str())
    }
}

/// The edits that turn `from` into `to`: one per changed block of lines, each `find` grown
/// with context lines until it is unique in `from`.
pub fn edits_between(from: &str, to: &str) -> Vec<Edit> {
    let a: Vec<&str> = from.split_inclusive('\n').collect();
    let b: Vec<&str> = to.split_inclusive('\n').collect();
    let diff = similar::capture_diff_slices(similar::Algorithm::Myers, &a, &b);
    let mut edits = Vec::new();
    for op in diff {
        let (old, new) = match op {
            similar::DiffOp::Equal { .. } => continue,
            similar::DiffOp::Delete {
                old_index,
                old_len,
                new_index,
                ..
            } => (old_index..old_index + old_len, new_index..new_index),
            similar::DiffOp::Insert {
                old_index,
                new_index,
                new_len,
                ..
            } => (old_index..old_index, new_index..new_index + new_len),
            similar::DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => (
                old_index..old_index + old_len,
                new_index..new_index + new_len,
            ),
        };
        // `apply` runs the edits in order, so this one sees the earlier ones applied: its
        // lines sit in `b[..new.start] ++ a[old.start..]`. Grow the context until `find` is
        // unique in that text (an insertion needs at least one line of it).
        let cur: Vec<&str> = b[..new.start]
            .iter()
            .chain(&a[old.start..])
            .copied()
            .collect();
        let text = cur.concat();
        let (at, len) = (new.start, old.len());
        let (mut lo, mut hi) = (at, at + len);
        loop {
            let find: String = cur[lo..hi].concat();
            if !find.is_empty() && text.matches(&find).count() == 1 {
                let replace =
                    cur[lo..at].concat() + &b[new.clone()].concat() + &cur[at + len..hi].concat();
                edits.push(shortest(&text, find, replace));
                break;
            }
            if lo > 0 && (at - lo <= hi - (at + len) || hi == cur.len()) {
                lo -= 1;
            } else if hi < cur.len() {
                hi += 1;
            } else {
                break;
            }
        }
    }
    edits
}

/// The same edit without the newline both sides end with, when `find` stays unique: a
/// one-line edit then reads `find = "..."` in the TOML file instead of a three-line string.
fn shortest(text: &str, find: String, replace: String) -> Edit {
    if let (Some(f), Some(r)) = (find.strip_suffix('\n'), replace.strip_suffix('\n'))
        && !f.is_empty()
        && !f.contains('\n')
        && text.matches(f).count() == 1
    {
        return Edit {
            find: f.to_string(),
            replace: r.to_string(),
        };
    }
    Edit { find, replace }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOLUTION: &str = "fn a() -> u32 {\n    1\n}\n\nfn b() -> u32 {\n    1\n}\n\n// Tests: do not edit below this line.\n#[cfg(test)]\nmod tests {\n    fn b() {}\n}\n";

    fn mutant(edits: Vec<Edit>) -> Mutant {
        Mutant {
            name: "m".into(),
            kind: Kind::Wrong,
            why: "w".into(),
            catches: "tests::x".into(),
            edits,
        }
    }

    fn edit(find: &str, replace: &str) -> Edit {
        Edit {
            find: find.into(),
            replace: replace.into(),
        }
    }

    #[test]
    fn applies_edits_that_match_once() {
        let m = mutant(vec![edit(
            "fn b() -> u32 {\n    1",
            "fn b() -> u32 {\n    2",
        )]);
        assert_eq!(
            m.apply(SOLUTION).unwrap(),
            SOLUTION.replacen("{\n    1\n}\n\n//", "{\n    2\n}\n\n//", 1)
        );
    }

    #[test]
    fn refuses_missing_ambiguous_protected_and_empty_edits() {
        assert_eq!(
            mutant(vec![edit("nothing", "x")]).apply(SOLUTION),
            Err(ApplyError::NotFound { edit: 0 })
        );
        assert_eq!(
            mutant(vec![edit("    1\n", "    2\n")]).apply(SOLUTION),
            Err(ApplyError::Ambiguous { edit: 0, count: 2 })
        );
        assert_eq!(
            mutant(vec![edit("    fn b() {}", "")]).apply(SOLUTION),
            Err(ApplyError::InTests { edit: 0 })
        );
        assert_eq!(
            mutant(vec![edit("fn a()", "fn a()")]).apply(SOLUTION),
            Err(ApplyError::NoChange)
        );
    }

    #[test]
    fn edits_between_round_trips_through_apply() {
        let to = SOLUTION
            .replace(
                "fn b() -> u32 {\n    1",
                "fn b() -> u32 {\n    // cheat\n    7",
            )
            .replacen("fn a", "#[inline]\nfn a", 1);
        let edits = edits_between(SOLUTION, &to);
        assert_eq!(edits.len(), 2, "{edits:?}");
        assert_eq!(mutant(edits).apply(SOLUTION).unwrap(), to);
    }

    #[test]
    fn catches_matches_with_or_without_the_module() {
        let m = mutant(vec![]);
        assert!(m.is_caught_by("tests::x"));
        let m = Mutant {
            catches: "x".into(),
            ..m
        };
        assert!(m.is_caught_by("tests::x"));
        assert!(!m.is_caught_by("tests::xy"));
    }

    #[test]
    fn parses_the_file_format() {
        let text = r#"
[[mutant]]
name = "buffer_unordered"
kind = "wrong"
why = "yields as they finish"
catches = "order_survives_inverted_latencies"
[[mutant.edit]]
find = ".buffered(MAX_IN_FLIGHT)"
replace = ".buffer_unordered(MAX_IN_FLIGHT)"

[[accepted]]
mutant = "replace * with / in total"
why = "equivalent: the factor is 1"
"#;
        let f = MutantFile::parse(text).unwrap();
        assert_eq!(f.mutants[0].kind, Kind::Wrong);
        assert_eq!(f.accepted.len(), 1);
        assert_eq!(MutantFile::parse(&f.to_toml()).unwrap(), f);
        assert!(MutantFile::parse("[[mutant]]\nname = 1\n").is_err());
    }
}
