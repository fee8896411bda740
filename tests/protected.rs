//! The verdict comes from the shipped tests: a learner's file whose protected region (the
//! banner and the tests under it) was changed never passes, in `run` or `verify`, and
//! `reset --tests` puts the shipped tests back without touching the learner's code.
mod common;

use common::*;
use std::path::Path;

const FILE: &str = "exercises/00_basics/failing_test.rs";

/// The solved exercise with `edit` applied to it.
fn solved_then(root: &Path, edit: impl FnOnce(String) -> String) {
    solve(root, "00_basics/failing_test.rs");
    let path = root.join(FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = edit(text.clone());
    assert_ne!(edited, text, "the edit must change the file");
    std::fs::write(path, edited).unwrap();
}

fn run_fails_saying_the_tests_changed(root: &Path) -> String {
    let out = in_ws(root).args(["run", "failing_test"]).assert().code(1);
    let stdout = text(&out.get_output().stdout);
    assert!(
        stdout.contains("failing_test: tests were changed")
            && stdout.contains("backlings reset failing_test --tests"),
        "{stdout}"
    );
    stdout
}

#[test]
fn an_assertion_replaced_by_assert_true_never_passes() {
    let (_tmp, root) = workspace();
    solved_then(&root, |s| {
        s.replace(
            "assert_eq!(super::sum(&[4, 5]), 9, \"expected 9\");",
            "assert!(true);",
        )
    });
    let out = run_fails_saying_the_tests_changed(&root);
    assert!(out.contains("first at line"), "{out}");
}

#[test]
fn a_deleted_test_or_a_deleted_banner_never_passes() {
    let (_tmp, root) = workspace();
    solved_then(&root, |s| {
        let start = s
            .find("    #[test]\n    fn passing_test_output_is_hidden")
            .unwrap();
        let end = s.rfind("}\n").unwrap();
        format!("{}{}", &s[..start], &s[end..])
    });
    run_fails_saying_the_tests_changed(&root);

    solved_then(&root, |s| {
        let start = s.find("// Tests: do not edit").unwrap();
        s[..start].to_string()
    });
    let out = run_fails_saying_the_tests_changed(&root);
    assert!(out.contains("missing"), "{out}");
}

#[test]
fn code_that_shadows_the_tests_assertions_never_passes() {
    let (_tmp, root) = workspace();
    solved_then(&root, |s| {
        format!("macro_rules! assert_eq {{ ($($t:tt)*) => {{}}; }}\n{s}")
            .replace("xs.iter().sum()", "0")
    });
    let out = run_fails_saying_the_tests_changed(&root);
    assert!(out.contains("macro_rules! assert_eq"), "{out}");
}

#[test]
fn verify_agrees_and_reset_tests_keeps_the_code() {
    let (_tmp, root) = workspace();
    // A right solution whose tests were weakened: still not a pass.
    solved_then(&root, |s| {
        s.replace("// Every element counts.", "// My own comment.")
            .replace("\"expected 9\"", "\"nine\"")
    });
    let out = in_ws(&root)
        .args(["verify", "failing_test"])
        .assert()
        .code(1);
    let stdout = text(&out.get_output().stdout);
    assert!(stdout.contains("tests were changed"), "{stdout}");

    let out = in_ws(&root)
        .args(["reset", "failing_test", "--tests"])
        .assert()
        .success();
    let stdout = text(&out.get_output().stdout);
    assert!(stdout.contains("your code is unchanged"), "{stdout}");
    let now = std::fs::read_to_string(root.join(FILE)).unwrap();
    assert!(
        now.contains("// My own comment."),
        "the learner's code stays:\n{now}"
    );
    assert!(
        now.contains("\"expected 9\""),
        "the shipped tests are back:\n{now}"
    );
    let backups: Vec<_> = std::fs::read_dir(root.join(".backlings/backups"))
        .unwrap()
        .collect();
    assert_eq!(backups.len(), 1, "the previous file is backed up");

    in_ws(&root).args(["run", "failing_test"]).assert().code(0);
    let out = in_ws(&root)
        .args(["reset", "failing_test", "--tests"])
        .assert()
        .success();
    assert!(text(&out.get_output().stdout).contains("already as shipped"));
}
