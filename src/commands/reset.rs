use crate::error::{Context, Error, Result};
use crate::fsutil::{now_secs, write_atomic};
use crate::pack::{Exercise, protected};
use crate::state::{State, Status};
use crate::term::Term;
use crate::workspace::{DIR, Workspace};
use std::path::PathBuf;

pub fn reset(term: &Term, name: Option<&str>, all: bool, yes: bool, tests: bool) -> Result<i32> {
    let ws = Workspace::find()?;
    let targets: Vec<&Exercise> = if all {
        ws.pack.info.exercises.iter().collect()
    } else {
        vec![ws.exercise(name.unwrap_or_default())?]
    };
    if tests {
        // Only the shipped tests come back; the learner's code stays, so no question is asked.
        for ex in targets {
            match reset_tests(&ws, ex)? {
                Some(backup) => term.line(&format!(
                    "Restored the tests of {}; your code is unchanged. The previous file is saved in {}",
                    ex.path(),
                    backup.display()
                )),
                None => term.line(&format!("The tests of {} are already as shipped.", ex.path())),
            }
        }
        return Ok(0);
    }
    let what = if all {
        "every exercise".to_string()
    } else {
        targets[0].path()
    };
    if !yes
        && !term.confirm(&format!(
            "Reset {what} to the shipped version? Your version is backed up first."
        ))
    {
        if term.interactive {
            term.line("Nothing was reset.");
            return Ok(1);
        }
        return Err(Error::new(format!("resetting {what} needs confirmation"))
            .help("add --yes to reset without a prompt"));
    }
    for ex in targets {
        if let Some(backup) = reset_one(&ws, ex)? {
            term.line(&format!(
                "Reset {}. Your version is saved in {}",
                ex.path(),
                backup.display()
            ));
        } else {
            term.line(&format!("Restored {}.", ex.path()));
        }
    }
    Ok(0)
}

/// Puts the shipped tests (the protected region) back under the learner's code, after a
/// backup. Returns the backup's path, or `None` when the tests were already as shipped.
pub fn reset_tests(ws: &Workspace, ex: &Exercise) -> Result<Option<PathBuf>> {
    let path = ws.path(&ex.path());
    let pristine = String::from_utf8_lossy(&ws.pack.pristine(ex)?).into_owned();
    let mine = std::fs::read(&path).unwrap_or_default();
    let mine_text = String::from_utf8_lossy(&mine);
    if protected::check(&pristine, &mine_text).is_ok() && !mine.is_empty() {
        return Ok(None);
    }
    let fixed = protected::restore(&pristine, &mine_text).unwrap_or(pristine);
    let backup = back_up(ws, ex, &mine)?;
    write_atomic(&path, fixed.as_bytes()).context(|| format!("cannot write {}", path.display()))?;
    Ok(backup)
}

/// Copies the learner's file into `.backlings/backups/` under a name no backup has yet.
fn back_up(ws: &Workspace, ex: &Exercise, mine: &[u8]) -> Result<Option<PathBuf>> {
    if mine.is_empty() {
        return Ok(None);
    }
    let dir = ws.path(DIR).join("backups");
    let mut dest = dir.join(format!("{}-{}.rs", ex.name, now_secs()));
    let mut n = 1;
    while dest.exists() {
        dest = dir.join(format!("{}-{}-{n}.rs", ex.name, now_secs()));
        n += 1;
    }
    write_atomic(&dest, mine)
        .context(|| format!("cannot back up {} (nothing was reset)", ex.path()))?;
    Ok(Some(dest))
}

/// Backs the learner's file up, then restores the pristine one. Returns the backup's path.
pub fn reset_one(ws: &Workspace, ex: &Exercise) -> Result<Option<PathBuf>> {
    let path = ws.path(&ex.path());
    let pristine = ws.pack.pristine(ex)?;
    let mut backup = None;
    if let Ok(mine) = std::fs::read(&path)
        && mine != pristine[..]
    {
        backup = back_up(ws, ex, &mine)?;
    }
    write_atomic(&path, &pristine).context(|| format!("cannot write {}", path.display()))?;
    State::update(ws, |s| s.entry(&ex.name).status = Status::Pending)?;
    ws.sync_manifest()?;
    Ok(backup)
}
