use crate::error::Result;
use crate::state::State;
use crate::term::Term;
use crate::workspace::Workspace;
use console::style;

const LEVELS: [&str; 3] = ["nudge", "concept", "near-solution"];

pub fn hint(term: &Term, name: Option<&str>, all: bool) -> Result<i32> {
    let ws = Workspace::find()?;
    // sync: a curriculum update shows up here as it does in watch mode.
    let state = ws.sync()?;
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
        term.line(&render(ex, i));
    }
    let last = *shown.last().unwrap();
    if !all && last + 1 == n && seen >= n {
        term.line("That was the last hint. `backlings hint --all` shows every level.");
    }
    State::update(&ws, |s| {
        let e = s.entry(&ex.name);
        e.hints_seen = e.hints_seen.max(last as u32 + 1);
    })?;
    Ok(0)
}

/// "Hint 2/3 (concept): ..."
pub fn render(ex: &crate::pack::Exercise, i: usize) -> String {
    let level = LEVELS.get(i).copied().unwrap_or("more");
    let head = style(format!(
        "Hint {}/{} ({level}) for {}:",
        i + 1,
        ex.hints.len(),
        ex.name
    ))
    .cyan()
    .bold();
    format!("{head}\n{}\n", ex.hints[i].trim_end())
}
