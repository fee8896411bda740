use crate::error::{Context, Error, Result};
use crate::progress::Progress;
use crate::term::Term;
use crate::workspace::Workspace;
use console::style;

pub fn solution(term: &Term, name: &str, diff: bool) -> Result<i32> {
    let ws = Workspace::find()?;
    let ex = ws.exercise(name)?;
    let progress = Progress::new(&ws);
    let state = progress.load();
    super::show_warnings(term, &progress);
    if !state?.is_done(&ex.name) {
        return Err(Error::new(format!(
            "{} is not done yet, so its solution stays hidden",
            ex.name
        ))
        .help(format!(
            "`backlings hint {}` helps without giving it away",
            ex.name
        )));
    }
    progress.write_solution(ex)?;
    let solution = String::from_utf8_lossy(&ws.pack.solution(ex)?).into_owned();
    if !diff {
        term.line(solution.trim_end());
        return Ok(0);
    }
    let path = ws.path(&ex.path());
    let yours =
        std::fs::read_to_string(&path).context(|| format!("cannot read {}", path.display()))?;
    term.line(unified_diff(&yours, &solution).trim_end());
    Ok(0)
}

/// `diff -u` style, labelled `yours` and `solution`, coloured when colour is on.
fn unified_diff(yours: &str, solution: &str) -> String {
    let diff = similar::TextDiff::from_lines(yours, solution);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header("yours", "solution")
        .to_string();
    text.lines()
        .map(|l| {
            let styled = if l.starts_with("+++") || l.starts_with("---") {
                style(l).bold()
            } else if l.starts_with('+') {
                style(l).green()
            } else if l.starts_with('-') {
                style(l).red()
            } else if l.starts_with("@@") {
                style(l).cyan()
            } else {
                style(l)
            };
            format!("{styled}\n")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_diff_is_unified_and_labelled() {
        console::set_colors_enabled(false);
        let d = super::unified_diff("a\nb\nc\n", "a\nB\nc\n");
        assert!(d.starts_with("--- yours\n+++ solution\n@@ "), "{d}");
        assert!(d.contains("-b\n+B\n"), "{d}");
    }
}
