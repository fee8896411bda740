use crate::error::{Error, Result};
use crate::pack::Exercise;
use crate::progress::Progress;
use crate::term::Term;
use crate::workspace::Workspace;

pub fn reset(term: &Term, name: Option<&str>, all: bool, yes: bool, tests: bool) -> Result<i32> {
    let ws = Workspace::find()?;
    let targets: Vec<&Exercise> = if all {
        ws.pack.info.exercises.iter().collect()
    } else {
        vec![ws.exercise(name.unwrap_or_default())?]
    };
    let progress = Progress::new(&ws);
    if tests {
        // Only the shipped tests come back; the learner's code stays, so no question is asked.
        for ex in targets {
            match progress.reset_tests(ex)? {
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
        let (backup, _) = progress.reset_one(ex)?;
        super::show_warnings(term, &progress);
        if let Some(backup) = backup {
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
