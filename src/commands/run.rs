use super::show_warnings;
use crate::error::Result;
use crate::exec::{self, process::Cancel};
use crate::progress::Progress;
use crate::term::Term;
use crate::workspace::Workspace;

pub fn run(term: &Term, name: Option<&str>) -> Result<i32> {
    let ws = Workspace::find()?;
    let progress = Progress::new(&ws);
    let state = progress.sync();
    show_warnings(term, &progress);
    let ex = super::pick(&ws, &state?, name)?;
    let opts = exec::Options {
        color: term.color,
        locked: false,
        jobs: 1,
    };
    // A server this exercise needs starts now, and stops when the runner exits.
    let services = crate::services::provide(&[ex]);
    let verdict = exec::run_exercise(&ws.root, &ws.pack, ex, opts, &services, &Cancel::default())?;
    // The verdict first: a full disk must not swallow it.
    term.line(verdict.details().trim_end());
    term.line("");
    term.line(&Term::verdict_heading(ex, &verdict));
    let recorded = progress.record(ex, &verdict);
    show_warnings(term, &progress);
    match recorded {
        Ok(rec) => {
            if let Some(sol) = &rec.solution {
                let rel = ex.solution_path();
                term.line(&format!(
                    "Compare with the reference solution: {}",
                    term.link(sol, &rel)
                ));
                if rec.all_done {
                    term.line(ws.pack.info.final_message.trim_end());
                } else if rec.current != ex.name {
                    term.line(&format!("Next: {}", rec.current));
                }
            }
        }
        Err(e) => term.warn(&format!(
            "progress could not be saved, so this run is not recorded: {}",
            e.message
        )),
    }
    if !verdict.passed() && !verdict.skipped() {
        term.line("Stuck? `backlings hint` shows a hint.");
    }
    Ok(if verdict.passed() { 0 } else { 1 })
}
