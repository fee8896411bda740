//! What a verdict does to the learner's progress: the state, the `solutions/` folder and the
//! current exercise. Shared by `run`, `verify` and watch mode.
use crate::error::{Context, Result};
use crate::exec::Verdict;
use crate::fsutil::write_atomic;
use crate::pack::Exercise;
use crate::state::State;
use crate::workspace::Workspace;
use std::path::PathBuf;

pub struct Recorded {
    pub state: State,
    /// The reference solution, written to `solutions/` once the exercise is done.
    pub solution: Option<PathBuf>,
    /// The exercise that is current now.
    pub current: String,
    pub all_done: bool,
}

/// Records a verdict. On a pass of the current exercise, the next pending one becomes current.
pub fn record(ws: &Workspace, ex: &Exercise, verdict: &Verdict) -> Result<Recorded> {
    let passed = verdict.passed();
    let info = &ws.pack.info;
    let (state, current) = State::update(ws, |s| {
        if !matches!(
            verdict,
            Verdict::NeedsService { .. } | Verdict::Missing { .. }
        ) {
            s.record_run(&ex.name, passed);
        }
        let is_current = s.current(info).name == ex.name;
        if passed && is_current {
            let from = info.index_of(&ex.name).unwrap_or(0) + 1;
            if let Some(next) = s.first_pending(info, from) {
                s.current = Some(next.name.clone());
            }
        }
        s.current(info).name.clone()
    })?;
    let solution = if passed {
        Some(write_solution(ws, ex)?)
    } else {
        None
    };
    let all_done = state.done_count(info) == info.exercises.len();
    Ok(Recorded {
        state,
        solution,
        current,
        all_done,
    })
}

pub fn write_solution(ws: &Workspace, ex: &Exercise) -> Result<PathBuf> {
    let path = ws.path(&ex.solution_path());
    let bytes = ws.pack.solution(ex)?;
    if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
        write_atomic(&path, &bytes).context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(path)
}
