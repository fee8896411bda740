use crate::error::Result;
use crate::exec::{Verdict, process::Cancel};
use crate::pack::Exercise;
use crate::progress::Progress;
use crate::term::Term;
use crate::workspace::Workspace;
use console::style;

pub fn verify(term: &Term, jobs: Option<usize>, names: &[String]) -> Result<i32> {
    let ws = Workspace::find()?;
    let exercises: Vec<&Exercise> = if names.is_empty() {
        ws.pack.info.exercises.iter().collect()
    } else {
        names
            .iter()
            .map(|n| ws.exercise(n))
            .collect::<Result<_>>()?
    };
    let bar = term.progress_bar(
        exercises.len() as u64,
        &format!("Checking {} exercises", exercises.len()),
    );
    let progress = Progress::new(&ws);
    let checked = progress.check_all(
        &bar,
        term.color,
        &exercises,
        crate::cli::jobs(jobs, exercises.len()),
        &Cancel::default(),
    );
    super::show_warnings(term, &progress);
    let (verdicts, saved) = checked?;
    bar.finish_and_clear();
    let failing: Vec<(&&Exercise, &Verdict)> = exercises
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| !v.passed() && !v.skipped())
        .collect();
    for (ex, v) in &failing {
        term.line(&format!(
            "  {} {:<36} {}",
            style("✗").red(),
            ex.name,
            v.label()
        ));
    }
    // Optional tracks whose server is missing do not count against the learner.
    let skipped: Vec<(&&Exercise, &Verdict)> = exercises
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| v.skipped())
        .collect();
    for (ex, v) in &skipped {
        term.line(&format!(
            "  {} {:<36} {} (optional)",
            style("-").yellow(),
            ex.name,
            v.label()
        ));
    }
    let counted = exercises.len() - skipped.len();
    let passed = counted - failing.len();
    term.line(&format!("{passed}/{counted} exercises pass."));
    if let Some((_, Verdict::NeedsService { why, .. })) = skipped.first() {
        term.line(&format!(
            "{} optional exercise(s) skipped: no server for them here. {}",
            skipped.len(),
            why.lines().next().unwrap_or_default()
        ));
    }
    if let Err(e) = saved {
        term.warn(&format!(
            "progress could not be saved, so these verdicts are not recorded: {}",
            e.message
        ));
    }
    if failing.is_empty() && names.is_empty() {
        term.line(ws.pack.info.final_message.trim_end());
    }
    Ok(if failing.is_empty() { 0 } else { 1 })
}
