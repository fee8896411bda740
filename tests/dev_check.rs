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
    assert!(out.contains("dev check passed: 20 variants"), "{out}");
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

/// Rewrites one `find`/`replace` pair of a fixture mutant file.
fn edit_mutants(pack: &Path, exercise: &str, from: &str, to: &str) {
    let f = pack.join(format!("mutants/{exercise}.toml"));
    let s = std::fs::read_to_string(&f).unwrap();
    assert!(s.contains(from), "{from:?} is not in {}", f.display());
    std::fs::write(f, s.replacen(from, to, 1)).unwrap();
}

#[test]
fn a_mutant_that_passes_or_does_not_compile_fails_the_check() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = broken_copy(tmp.path(), |p| {
        // "zero" becomes a right answer; "take" a wrong fix the compiler rejects.
        edit_mutants(
            p,
            "compile_error",
            "replace = \"    0\\n\"",
            "replace = \"    40 + 2\\n\"",
        );
        edit_mutants(
            p,
            "failing_test",
            "xs.iter().take(2).sum()",
            "xs.iter().sum::<u8>()",
        );
    });
    let (code, out) = check(&pack);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("mutant zero") && out.contains("passes: the tests do not catch it"),
        "{out}"
    );
    assert!(
        out.contains("mutant take") && out.contains("does not compile"),
        "a mutant the compiler rejects proves nothing:\n{out}"
    );
}

#[test]
fn a_mutant_must_fail_the_very_test_it_names() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = broken_copy(tmp.path(), |p| {
        // Catches the mutant, but is not the test the mutant names.
        let f = p.join("exercises/00_basics/failing_test.rs");
        for f in [f, p.join("solutions/00_basics/failing_test.rs")] {
            let s = std::fs::read_to_string(&f).unwrap().replace(
                "    #[test]\n    fn passing_test_output_is_hidden",
                "    #[test]\n    fn small_sums() {\n        assert_eq!(super::sum(&[1, 1, 1]), 3);\n    }\n\n    #[test]\n    fn passing_test_output_is_hidden",
            );
            std::fs::write(f, s).unwrap();
        }
        edit_mutants(
            p,
            "failing_test",
            "catches = \"sums_everything\"",
            "catches = \"passing_test_output_is_hidden\"",
        );
        edit_mutants(
            p,
            "failing_test",
            "catches = \"sums_everything\"",
            "catches = \"no_such_test\"",
        );
    });
    let (code, out) = check(&pack);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("mutant take")
            && out.contains("not in `passing_test_output_is_hidden`, the test it names")
            && out.contains("tests::sums_everything"),
        "the table names the test that should have failed and the ones that did:\n{out}"
    );
    assert!(
        out.contains("mutant zero")
            && out.contains("\"no_such_test\" is not a test of failing_test"),
        "{out}"
    );
}

#[test]
fn a_mutant_whose_edit_no_longer_applies_asks_for_a_refresh() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = broken_copy(tmp.path(), |p| {
        let f = p.join("solutions/00_basics/failing_test.rs");
        let s = std::fs::read_to_string(&f)
            .unwrap()
            .replace("xs.iter().sum()", "xs.iter().copied().sum()");
        std::fs::write(f, s).unwrap();
    });
    let (code, out) = check(&pack);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("mutant take")
            && out.contains("no longer applies")
            && out.contains("backlings dev mutant failing_test take"),
        "{out}"
    );
}

#[test]
fn tests_that_differ_between_exercise_and_solution_fail_the_check() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = broken_copy(tmp.path(), |p| {
        let f = p.join("solutions/00_basics/compile_error.rs");
        let s = std::fs::read_to_string(&f)
            .unwrap()
            .replace("\"expected 42\"", "\"expected forty-two\"");
        std::fs::write(f, s).unwrap();
    });
    let (code, out) = check(&pack);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("protected tests") && out.contains("byte for byte"),
        "{out}"
    );
}

#[test]
fn dev_mutant_turns_an_edited_solution_into_a_mutant_that_is_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = broken_copy(tmp.path(), |_| {});
    let edited = tmp.path().join("edited.rs");
    let s = std::fs::read_to_string(pack.join("solutions/00_basics/failing_test.rs"))
        .unwrap()
        .replace("xs.iter().sum()", "xs.iter().skip(1).sum::<u32>() + 1");
    std::fs::write(&edited, s).unwrap();
    bin()
        .args([
            "dev",
            "mutant",
            "failing_test",
            "skip_first",
            "--catches",
            "sums_everything",
        ])
        .args(["--why", "drops the first element and adds one", "--file"])
        .arg(&edited)
        .arg("--pack")
        .arg(&pack)
        .assert()
        .success();
    let toml = std::fs::read_to_string(pack.join("mutants/failing_test.toml")).unwrap();
    assert!(
        toml.contains("name = \"skip_first\"") && toml.contains("skip(1)"),
        "{toml}"
    );
    let (code, out) = check(&pack);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("21 variants"), "{out}");
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
        edit_mutants(
            p,
            "floods",
            "[[mutant]]\nname = \"never\"",
            "[[mutant]]\nname = \"Never\"",
        );
        std::fs::remove_file(p.join("mutants/compile_error.toml")).unwrap();
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
    assert!(out.contains("0 in mutants/compile_error.toml"), "{out}");
    assert!(
        out.contains("mutant Never") && out.contains("names must be unique"),
        "{out}"
    );
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
            // Tests: do not edit below this line.\n\
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

/// cargo-mutants is needed for the generated-mutant checks; CI installs it (.ci/run), and a
/// developer without it is told how to get it instead of seeing a silent pass.
fn have_cargo_mutants() -> bool {
    let found = which_cargo_mutants();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install cargo-mutants (see .ci/run)"
        );
        eprintln!(
            "skipped: cargo-mutants is not installed (cargo install --locked cargo-mutants --version 27.1.0)"
        );
    }
    found
}

fn which_cargo_mutants() -> bool {
    std::process::Command::new("cargo")
        .args(["mutants", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_generated_mutant_the_tests_miss_fails_the_check_until_it_is_fixed_or_accepted() {
    if !have_cargo_mutants() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // A helper in the learner's part that no test looks at: cargo-mutants replaces its body
    // with 0 and with 1, and nothing fails.
    let pack = broken_copy(tmp.path(), |p| {
        let f = p.join("solutions/00_basics/failing_test.rs");
        let s = std::fs::read_to_string(&f).unwrap().replace(
            "fn main() {}",
            "fn unchecked() -> u32 {\n    7\n}\n\nfn main() {}",
        );
        std::fs::write(f, s).unwrap();
    });
    let generated = |pack: &Path| {
        let out = bin()
            .args(["dev", "check", "--generated", "--only", "failing_test"])
            .arg(pack)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout) + &text(&out.stderr),
        )
    };
    let (code, out) = generated(&pack);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("generated mutant")
            && out.contains("missed: src/failing_test.rs")
            && out.contains("replace unchecked -> u32 with 0"),
        "{out}"
    );

    let toml = pack.join("mutants/failing_test.toml");
    let mut accepted = std::fs::read_to_string(&toml).unwrap();
    for n in [0, 1] {
        accepted.push_str(&format!(
            "\n[[accepted]]\nmutant = \"replace unchecked -> u32 with {n}\"\nwhy = \"a fixture helper no test calls\"\n"
        ));
    }
    std::fs::write(&toml, &accepted).unwrap();
    let (code, out) = generated(&pack);
    assert_eq!(code, 0, "accepted with a reason, the check passes:\n{out}");
    assert!(out.contains("accepted"), "{out}");

    std::fs::write(
        &toml,
        accepted + "\n[[accepted]]\nmutant = \"replace gone -> u32 with 0\"\nwhy = \"stale\"\n",
    )
    .unwrap();
    let (code, out) = generated(&pack);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("\"replace gone -> u32 with 0\" is accepted") && out.contains("remove it"),
        "{out}"
    );
}
