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
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("test ")
            && let Some((name, outcome)) = rest.rsplit_once(" ... ")
        {
            let outcome = match outcome.trim() {
                "ok" => Outcome::Ok,
                "FAILED" => Outcome::Failed,
                o if o.starts_with("ignored") => Outcome::Ignored,
                _ => continue,
            };
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
    report
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

    #[test]
    fn non_libtest_output_is_not_rendered() {
        assert_eq!(parse("Segmentation fault\n").render(), None);
    }
}
