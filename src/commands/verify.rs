use crate::error::Result;
use crate::exec::{self, Verdict, process::Cancel};
use crate::pack::Exercise;
use crate::state::{State, Status};
use crate::term::Term;
use crate::workspace::Workspace;
use console::style;
use indicatif::ProgressBar;

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
    let verdicts = check_all(
        &ws,
        &bar,
        term.color,
        &exercises,
        super::jobs_or_cores(jobs),
        &Cancel::default(),
    )?;
    bar.finish_and_clear();
    let failing: Vec<(&&Exercise, &Verdict)> = exercises
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| !v.passed())
        .collect();
    for (ex, v) in &failing {
        term.line(&format!(
            "  {} {:<36} {}",
            style("✗").red(),
            ex.name,
            v.label()
        ));
    }
    let passed = exercises.len() - failing.len();
    term.line(&format!("{passed}/{} exercises pass.", exercises.len()));
    if failing.is_empty() && names.is_empty() {
        term.line(ws.pack.info.final_message.trim_end());
    }
    Ok(if failing.is_empty() { 0 } else { 1 })
}

/// Builds and tests `exercises` in parallel with a progress bar, and recomputes their
/// done-ness from the files themselves. Shared with watch mode's "check all".
pub fn check_all(
    ws: &Workspace,
    bar: &ProgressBar,
    color: bool,
    exercises: &[&Exercise],
    jobs: usize,
    cancel: &Cancel,
) -> Result<Vec<Verdict>> {
    ws.sync()?;
    bar.set_message("building");
    let opts = exec::Options {
        color,
        locked: false,
        jobs,
    };
    let verdicts = exec::run_many(
        &ws.root,
        &ws.pack,
        exercises,
        opts,
        cancel,
        |_| bar.tick(),
        |i, _| {
            bar.set_message(exercises[i].name.clone());
            bar.inc(1);
        },
    )?;
    State::update(ws, |s| {
        for (ex, v) in exercises.iter().zip(&verdicts) {
            match v {
                Verdict::NeedsService { .. } => {}
                v if v.passed() => {
                    let e = s.entry(&ex.name);
                    if e.status != Status::Done {
                        e.status = Status::Done;
                        e.done_at = Some(crate::fsutil::now_secs());
                    }
                }
                _ => s.entry(&ex.name).status = Status::Pending,
            }
        }
        let info = &ws.pack.info;
        if s.is_done(&s.current(info).name)
            && let Some(next) = s.first_pending(info, 0)
        {
            s.current = Some(next.name.clone());
        }
    })?;
    for (ex, v) in exercises.iter().zip(&verdicts) {
        if v.passed() {
            crate::progress::write_solution(ws, ex)?;
        }
    }
    Ok(verdicts)
}
