//! The protected region of an exercise file: the banner `// Tests: do not edit below this line.`
//! and everything after it (the tests module, its fakes, clocks and counters). The verdict
//! must come from the shipped tests, so a learner's file whose region differs never passes
//! (PRODUCT.md §5); `backlings reset NAME --tests` puts the shipped region back.

/// The start of the banner line. Text after it on the same line is part of the region.
pub const BANNER: &str = "// Tests: do not edit";

/// Where a file's protected region starts: the byte offset of the banner line.
pub fn start(text: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with(BANNER) {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

/// The learner's part (above the banner) and the protected part.
pub fn split(text: &str) -> Option<(&str, &str)> {
    start(text).map(|i| text.split_at(i))
}

/// Why a learner's file cannot pass, if it cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tampered {
    /// The banner line is gone, so the tests are too.
    BannerMissing,
    /// The region differs from the shipped one; `line` is the first differing line of the
    /// learner's file (1-based).
    Edited { line: usize },
    /// The learner's code can change what the tests mean without touching them.
    Shadowing { line: usize, what: String },
}

impl Tampered {
    pub fn describe(&self, path: &str) -> String {
        match self {
            Tampered::BannerMissing => format!(
                "The line `{BANNER} below this line.` and the tests under it are missing from {path}."
            ),
            Tampered::Edited { line } => format!(
                "The tests in {path} differ from the shipped ones (first at line {line}). \
                 A pass must come from the shipped tests, their fakes and their clocks."
            ),
            Tampered::Shadowing { line, what } => format!(
                "{path}:{line}: {what}. It changes what the shipped tests check, so the \
                 exercise cannot pass with it."
            ),
        }
    }
}

/// Line endings and trailing whitespace at the end are an editor's business, not an edit.
fn normalize(s: &str) -> String {
    let mut t = s.replace("\r\n", "\n");
    t.truncate(t.trim_end().len());
    t
}

/// Checks a learner's file against the shipped one.
pub fn check(pristine: &str, mine: &str) -> Result<(), Tampered> {
    let Some((_, shipped)) = split(pristine) else {
        // A pack without a banner protects nothing (dev check reports it).
        return Ok(());
    };
    let Some((code, region)) = split(mine) else {
        return Err(Tampered::BannerMissing);
    };
    if normalize(region) != normalize(shipped) {
        let base = code.lines().count();
        let line = region
            .lines()
            .zip(shipped.lines())
            .position(|(a, b)| a.trim_end() != b.trim_end())
            .unwrap_or_else(|| region.lines().count().min(shipped.lines().count()));
        return Err(Tampered::Edited {
            line: base + line + 1,
        });
    }
    let (shipped_code, _) = split(pristine).unwrap_or_default();
    shadowing(code, shipped_code)
}

/// Macros the tests lean on: a `macro_rules!` of the same name above the tests would replace
/// them inside the tests module (textual scope), so `assert_eq!` could check nothing.
const TEST_MACROS: [&str; 12] = [
    "assert",
    "assert_eq",
    "assert_ne",
    "assert_matches",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "matches",
    "panic",
    "unreachable",
    "vec",
    "format",
];

fn shadowing(code: &str, shipped_code: &str) -> Result<(), Tampered> {
    for (i, line) in code.lines().enumerate() {
        let t = line.trim_start();
        // `#![cfg(not(test))]` or `#![no_implicit_prelude]` would change or drop the tests.
        if t.starts_with("#![") && !shipped_code.lines().any(|l| l.trim_start() == t) {
            return Err(Tampered::Shadowing {
                line: i + 1,
                what: format!(
                    "`{}` is a crate-wide attribute the exercise did not ship",
                    t.trim_end()
                ),
            });
        }
        if let Some(rest) = t.strip_prefix("macro_rules!") {
            let name: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if TEST_MACROS.contains(&name.as_str()) {
                return Err(Tampered::Shadowing {
                    line: i + 1,
                    what: format!("`macro_rules! {name}` replaces the `{name}!` the tests use"),
                });
            }
        }
    }
    Ok(())
}

/// The learner's code with the shipped tests under it: what `reset --tests` writes.
pub fn restore(pristine: &str, mine: &str) -> Option<String> {
    let (_, shipped) = split(pristine)?;
    let code = match split(mine) {
        Some((code, _)) => code.to_string(),
        None => {
            let mut c = mine.trim_end().to_string();
            c.push_str("\n\n");
            c
        }
    };
    Some(code + shipped)
}

/// The names of the test functions in a protected region, as libtest prints them
/// (`tests::name`; nested modules are followed).
pub fn test_names(region: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut modules: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut is_test = false;
    for line in region.lines() {
        let t = line.trim();
        if t.starts_with("//") {
            continue;
        }
        if t.starts_with("#[test]") || t.starts_with("#[tokio::test") {
            is_test = true;
        } else if let Some(name) = item_name(t, "mod ") {
            modules.push((name, depth + 1));
        } else if is_test && let Some(name) = item_name(t, "fn ") {
            let mut path: Vec<&str> = modules.iter().map(|(m, _)| m.as_str()).collect();
            path.push(&name);
            names.push(path.join("::"));
            is_test = false;
        }
        for c in t.chars() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if modules.last().is_some_and(|(_, d)| *d > depth) {
                        modules.pop();
                    }
                }
                _ => {}
            }
        }
    }
    names
}

/// `fn name(` / `mod name {` after optional `pub`, `async`, `unsafe` qualifiers.
fn item_name(line: &str, keyword: &str) -> Option<String> {
    let mut rest = line;
    for q in ["pub ", "async ", "unsafe "] {
        rest = rest.strip_prefix(q).unwrap_or(rest);
    }
    let rest = rest.strip_prefix(keyword)?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = "fn f() -> u32 {\n    // TODO\n    0\n}\n\n// Tests: do not edit below this line.\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn one() {\n        assert_eq!(f(), 1);\n    }\n\n    #[tokio::test(start_paused = true)]\n    async fn two() {}\n}\n";

    #[test]
    fn the_learners_code_may_change_freely() {
        let mine = SHIPPED.replace("    0\n", "    let x = 1;\n    x\n");
        assert_eq!(check(SHIPPED, &mine), Ok(()));
        assert_eq!(check(SHIPPED, &mine.replace('\n', "\r\n")), Ok(()));
    }

    #[test]
    fn an_edited_assertion_or_a_deleted_test_is_caught_with_its_line() {
        let mine = SHIPPED.replace("assert_eq!(f(), 1);", "assert!(true);");
        assert_eq!(check(SHIPPED, &mine), Err(Tampered::Edited { line: 13 }));
        let mine = SHIPPED.replace(
            "    #[tokio::test(start_paused = true)]\n    async fn two() {}\n",
            "",
        );
        assert!(matches!(
            check(SHIPPED, &mine),
            Err(Tampered::Edited { .. })
        ));
        let (code, _) = split(SHIPPED).unwrap();
        assert_eq!(check(SHIPPED, code), Err(Tampered::BannerMissing));
    }

    #[test]
    fn shadowing_the_test_macros_or_the_crate_is_caught() {
        let mine = format!("macro_rules! assert_eq {{ ($($t:tt)*) => {{}}; }}\n{SHIPPED}");
        assert!(matches!(
            check(SHIPPED, &mine),
            Err(Tampered::Shadowing { line: 1, .. })
        ));
        let mine = format!("#![cfg(not(test))]\n{SHIPPED}");
        assert!(matches!(
            check(SHIPPED, &mine),
            Err(Tampered::Shadowing { .. })
        ));
        let mine = format!("macro_rules! my_helper {{ () => {{}}; }}\n{SHIPPED}");
        assert_eq!(check(SHIPPED, &mine), Ok(()));
    }

    #[test]
    fn restore_keeps_the_code_and_puts_the_tests_back() {
        let mine = SHIPPED
            .replace("    0\n", "    1\n")
            .replace("assert_eq!(f(), 1);", "");
        let fixed = restore(SHIPPED, &mine).unwrap();
        assert_eq!(fixed, SHIPPED.replace("    0\n", "    1\n"));
        let (code, _) = split(&mine).unwrap();
        assert_eq!(
            restore(SHIPPED, code).unwrap(),
            SHIPPED.replace("    0\n", "    1\n")
        );
    }

    #[test]
    fn finds_the_test_names() {
        let (_, region) = split(SHIPPED).unwrap();
        assert_eq!(test_names(region), ["tests::one", "tests::two"]);
        let nested = "// Tests: do not edit\n#[cfg(test)]\nmod tests {\n    mod inner {\n        #[test]\n        fn a() {}\n    }\n    #[test]\n    fn b() {}\n}\n";
        assert_eq!(test_names(nested), ["tests::inner::a", "tests::b"]);
    }
}
