//! `backlings dev check` on the fixture pack, and on copies broken on purpose.
mod common;

use common::*;
use std::path::Path;

fn broken_copy(tmp: &Path, edit: impl FnOnce(&Path)) -> std::path::PathBuf {
    let pack = tmp.join("pack");
    copy_dir(&fixture("basic"), &pack);
    edit(&pack);
    pack
}

fn check(pack: &Path) -> (i32, String) {
    let out = bin().args(["dev", "check"]).arg(pack).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout) + &text(&out.stderr),
    )
}

#[test]
fn the_fixture_pack_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = broken_copy(tmp.path(), |_| {});
    let (code, out) = check(&pack);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("dev check passed: 16 variants"), "{out}");
}

#[test]
fn an_exercise_that_passes_as_shipped_fails_the_check() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = broken_copy(tmp.path(), |p| {
        std::fs::copy(
            p.join("solutions/00_basics/failing_test.rs"),
            p.join("exercises/00_basics/failing_test.rs"),
        )
        .unwrap();
    });
    let (code, out) = check(&pack);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("failing_test") && out.contains("passes as shipped"),
        "{out}"
    );
    assert!(
        out.contains("TODO marker"),
        "the copied solution has no TODO either:\n{out}"
    );
}

#[test]
fn a_broken_solution_fails_the_check_with_its_error() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = broken_copy(tmp.path(), |p| {
        let f = p.join("solutions/00_basics/failing_test.rs");
        let s = std::fs::read_to_string(&f)
            .unwrap()
            .replace("xs.iter().sum()", "xs.iter().sum::<u32>() + 1");
        std::fs::write(f, s).unwrap();
    });
    let (code, out) = check(&pack);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("failing_test") && out.contains("solution") && out.contains("expected 6"),
        "{out}"
    );
}

#[test]
fn a_mutant_that_passes_fails_the_check() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = broken_copy(tmp.path(), |p| {
        let right =
            std::fs::read_to_string(p.join("solutions/00_basics/compile_error.rs")).unwrap();
        std::fs::write(
            p.join("mutants/compile_error/zero.rs"),
            format!("// mutant: actually right\n{right}"),
        )
        .unwrap();
        std::fs::write(
            p.join("mutants/failing_test/take.rs"),
            "// mutant: does not even compile\nfn main() { let x: u8 = \"no\"; }\n",
        )
        .unwrap();
    });
    let (code, out) = check(&pack);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("mutant zero") && out.contains("the tests do not catch this wrong fix"),
        "{out}"
    );
    assert!(
        out.contains("mutant take") && out.contains("does not compile"),
        "a mutant the compiler rejects proves nothing:\n{out}"
    );
}

#[test]
fn lint_format_and_listing_problems_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = broken_copy(tmp.path(), |p| {
        let f = p.join("solutions/01_more/floods.rs");
        let s = std::fs::read_to_string(&f)
            .unwrap()
            .replace("let mut n = 0;", "let mut n = 0;   let unused_var = 1;");
        std::fs::write(f, s).unwrap();
        std::fs::write(p.join("exercises/01_more/stray.rs"), "fn main() {}\n").unwrap();
        let f = p.join("exercises/00_basics/failing_test.rs");
        let s = std::fs::read_to_string(&f).unwrap();
        std::fs::write(
            f,
            format!(
                "{s}\nfn nap() {{ std::thread::sleep(std::time::Duration::from_millis(1)); }}\n"
            ),
        )
        .unwrap();
        std::fs::remove_file(p.join("mutants/floods/never.rs")).unwrap();
    });
    let (code, out) = check(&pack);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("clippy") && out.contains("unused"), "{out}");
    assert!(
        out.contains("rustfmt") && out.contains("not formatted"),
        "{out}"
    );
    assert!(
        out.contains("exercises/01_more/stray.rs is not an exercise"),
        "{out}"
    );
    assert!(out.contains("1 found under mutants/floods/"), "{out}");
    assert!(out.contains("failing_test.rs calls thread::sleep"), "{out}");
}

#[test]
fn repeat_reports_a_solution_that_fails_only_sometimes() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = broken_copy(tmp.path(), |p| {
        // Fails in about one run in three: the kind of flake one run rarely shows.
        let flaky = "// A number, not a string.\n\
            fn answer() -> u32 {\n    \
                let nanos = std::time::SystemTime::now()\n        \
                    .duration_since(std::time::UNIX_EPOCH)\n        \
                    .unwrap()\n        \
                    .subsec_nanos();\n    \
                if nanos % 3 == 0 { 41 } else { 42 }\n\
            }\n\n\
            fn main() {}\n\n\
            #[cfg(test)]\n\
            mod tests {\n    \
                #[test]\n    \
                fn answer_is_42() {\n        \
                    assert_eq!(super::answer(), 42, \"expected 42\");\n    \
                }\n\
            }\n";
        std::fs::write(p.join("solutions/00_basics/compile_error.rs"), flaky).unwrap();
    });
    let out = bin()
        .args(["dev", "check", "--repeat", "40", "--only", "compile_error"])
        .arg(&pack)
        .output()
        .unwrap();
    let text = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("repeat 40") && text.contains("of 40 runs"),
        "the flaky solution is reported with how often it failed:\n{text}"
    );
}
