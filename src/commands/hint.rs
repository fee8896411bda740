use super::show_warnings;
use crate::error::Result;
use crate::progress::Progress;
use crate::term::Term;
use crate::workspace::Workspace;

pub fn hint(term: &Term, name: Option<&str>, all: bool) -> Result<i32> {
    let ws = Workspace::find()?;
    let progress = Progress::new(&ws);
    // sync: a curriculum update shows up here as it does in watch mode.
    let state = progress.sync();
    show_warnings(term, &progress);
    let state = state?;
    let ex = super::pick(&ws, &state, name)?;
    let n = ex.hints.len();
    if n == 0 {
        term.line(&format!("{} has no hints.", ex.name));
        return Ok(0);
    }
    let seen = state.get(&ex.name).hints_seen as usize;
    let shown: Vec<usize> = if all {
        (0..n).collect()
    } else {
        vec![seen.min(n - 1)]
    };
    for &i in &shown {
        term.line(&Term::hint(ex, i));
    }
    let last = shown.last().copied().unwrap_or(0);
    if !all && last + 1 == n && seen >= n {
        term.line("That was the last hint. `backlings hint --all` shows every level.");
    }
    // The hint is shown either way; only the next level is lost if this cannot be saved.
    if let Err(e) = progress.hint_seen(&ex.name, last) {
        term.warn(&format!(
            "the hint level could not be saved, so the next `backlings hint` shows this one again: {}",
            e.message
        ));
    }
    Ok(0)
}
