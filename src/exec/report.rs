//! Turns libtest's output into the learner's view: failing tests first, with their output;
//! then one line per test; then the summary.
use console::style;

#[derive(Debug, Default, PartialEq)]
pub struct TestReport {
    pub results: Vec<(String, Outcome)>,
    /// (test name, what it printed and why it panicked)
    pub failures: Vec<(String, String)>,
    pub summary: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
    Ignored,
}

pub fn parse(text: &str) -> TestReport {
    let mut report = TestReport::default();
    let mut lines = text.lines().peekable();
    let mut in_failures = false;
    let mut current: Option<(String, String)> = None;
    // Output that bypassed libtest's capture, glued to a result row, by test name.
    let mut stray: Vec<(String, String)> = Vec::new();
    while let Some(line) = lines.next() {
        if let Some((name, outcome, glued)) = result_row(line) {
            if !glued.is_empty() {
                stray.push((name.to_string(), glued));
            }
            report.results.push((name.to_string(), outcome));
            continue;
        }
        if line.starts_with("test result: ") {
            if let Some(f) = current.take() {
                report.failures.push(f);
            }
            report.summary = Some(line.to_string());
            in_failures = false;
            continue;
        }
        if line == "failures:" {
            if let Some(f) = current.take() {
                report.failures.push(f);
            }
            // The first "failures:" opens the output blocks; the second only lists names.
            in_failures = lines.peek().is_some_and(|l| l.is_empty()) && report.failures.is_empty();
            continue;
        }
        if !in_failures {
            continue;
        }
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            if let Some(f) = current.take() {
                report.failures.push(f);
            }
            current = Some((name.to_string(), String::new()));
        } else if let Some((_, out)) = current.as_mut()
            && !line.starts_with("note: run with `RUST_BACKTRACE=1`")
        {
            out.push_str(line);
            out.push('\n');
        }
    }
    if let Some(f) = current.take() {
        report.failures.push(f);
    }
    // A failing test's stray output belongs with its failure, where the learner looks.
    for (name, glued) in stray {
        let failed = report
            .results
            .iter()
            .any(|(n, o)| *n == name && *o == Outcome::Failed);
        match report.failures.iter_mut().find(|(n, _)| *n == name) {
            Some((_, out)) => out.insert_str(0, &format!("{glued}\n")),
            None if failed => report.failures.push((name, format!("{glued}\n"))),
            None => {}
        }
    }
    report
}

/// A `test NAME ... OUTCOME` row. Output that bypassed libtest's capture and has no final
/// newline gets glued onto it: before the row when tests run in parallel
/// (`no newlinetest x ... FAILED`), or before the outcome when they run one by one
/// (`test x ... no newlineFAILED`). Returns the name, the outcome and the glued text.
fn result_row(line: &str) -> Option<(&str, Outcome, String)> {
    line.match_indices("test ").find_map(|(start, _)| {
        let rest = &line[start + "test ".len()..];
        let (name, tail) = rest.split_once(" ... ")?;
        if name.is_empty() || name.contains(char::is_whitespace) {
            return None;
        }
        let tail = tail.trim_end();
        let (before, outcome) = if let Some(b) = tail.strip_suffix("FAILED") {
            (b, Outcome::Failed)
        } else if let Some(b) = tail.strip_suffix("ok") {
            (b, Outcome::Ok)
        } else if let Some(i) = tail.find("ignored") {
            (&tail[..i], Outcome::Ignored)
        } else {
            return None;
        };
        let glued = format!("{}{before}", &line[..start]);
        Some((name, outcome, glued))
    })
}

impl TestReport {
    /// The names of the tests that failed.
    pub fn failed(&self) -> Vec<String> {
        self.results
            .iter()
            .filter(|(_, o)| *o == Outcome::Failed)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The learner's view. Returns `None` when the output wasn't libtest's.
    pub fn render(&self) -> Option<String> {
        if self.results.is_empty() && self.summary.is_none() {
            return None;
        }
        let mut s = String::new();
        for (name, out) in &self.failures {
            s.push_str(&format!(
                "{}\n{}\n",
                style(format!("---- {name} ----")).red().bold(),
                out.trim_end()
            ));
        }
        for (name, outcome) in &self.results {
            let mark = match outcome {
                Outcome::Ok => style("ok").green(),
                Outcome::Failed => style("FAILED").red().bold(),
                Outcome::Ignored => style("ignored").yellow(),
            };
            s.push_str(&format!("test {name} ... {mark}\n"));
        }
        if let Some(sum) = &self.summary {
            s.push_str(sum);
            s.push('\n');
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\nrunning 3 tests\ntest tests::a ... ok\ntest tests::b ... FAILED\ntest tests::c ... ignored\n\nfailures:\n\n---- tests::b stdout ----\nhello from b\n\nthread 'tests::b' panicked at src/x.rs:3:5:\nexpected 4, got 5\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\n\nfailures:\n    tests::b\n\ntest result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\n";

    #[test]
    fn parses_results_failures_and_summary() {
        let r = parse(OUTPUT);
        assert_eq!(
            r.results,
            vec![
                ("tests::a".to_string(), Outcome::Ok),
                ("tests::b".to_string(), Outcome::Failed),
                ("tests::c".to_string(), Outcome::Ignored)
            ]
        );
        assert_eq!(r.failures.len(), 1);
        assert_eq!(r.failures[0].0, "tests::b");
        assert!(r.failures[0].1.contains("expected 4, got 5"));
        assert!(!r.failures[0].1.contains("RUST_BACKTRACE"));
        assert!(r.summary.unwrap().starts_with("test result: FAILED"));
    }

    #[test]
    fn renders_failures_before_the_test_list() {
        console::set_colors_enabled(false);
        let text = parse(OUTPUT).render().unwrap();
        let failure = text.find("expected 4, got 5").unwrap();
        let list = text.find("test tests::a ... ok").unwrap();
        assert!(failure < list, "{text}");
        assert!(!text.contains("hello from a"));
    }

    /// Real libtest output of a test that writes "no newline" straight to stdout (past the
    /// capture) and then panics, beside a passing test: run in parallel and one by one.
    #[test]
    fn output_without_a_newline_does_not_hide_the_failed_row() {
        let parallel = "\nrunning 2 tests\nno newlinetest a_prints_no_newline ... FAILED\ntest b_ok ... ok\n\nfailures:\n\n---- a_prints_no_newline stdout ----\n\nthread 'a_prints_no_newline' (18649) panicked at u.rs:3:5:\nboom\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\n\nfailures:\n    a_prints_no_newline\n\ntest result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.10s\n\n";
        let serial = parallel.replace(
            "no newlinetest a_prints_no_newline ... FAILED",
            "test a_prints_no_newline ... no newlineFAILED",
        );
        for text in [parallel, &serial] {
            let r = parse(text);
            assert_eq!(
                r.results,
                vec![
                    ("a_prints_no_newline".to_string(), Outcome::Failed),
                    ("b_ok".to_string(), Outcome::Ok)
                ],
                "{text}"
            );
            assert!(
                r.failures[0].1.starts_with("no newline\n"),
                "{:?}",
                r.failures
            );
            assert!(r.failures[0].1.contains("boom"));
        }
        assert_eq!(
            parse("test x ... gluedok\n").results,
            vec![("x".to_string(), Outcome::Ok)]
        );
    }

    #[test]
    fn non_libtest_output_is_not_rendered() {
        assert_eq!(parse("Segmentation fault\n").render(), None);
    }
}
