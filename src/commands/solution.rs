use crate::error::{Error, Result};
use crate::state::State;
use crate::term::Term;
use crate::workspace::Workspace;

pub fn solution(term: &Term, name: &str, diff: bool) -> Result<i32> {
    let ws = Workspace::find()?;
    let ex = ws.exercise(name)?;
    if !State::load(&ws.root).is_done(&ex.name) {
        return Err(Error::new(format!(
            "{} is not done yet, so its solution stays hidden",
            ex.name
        ))
        .help(format!(
            "`backlings hint {}` helps without giving it away",
            ex.name
        )));
    }
    let sol = crate::progress::write_solution(&ws, ex)?;
    if !diff {
        term.line(String::from_utf8_lossy(&ws.pack.solution(ex)?).trim_end());
        return Ok(0);
    }
    let Ok(diff_bin) = which::which("diff") else {
        return Err(Error::new("`diff` was not found on PATH").help(format!(
            "install diffutils, or compare {} by hand",
            sol.display()
        )));
    };
    let mut cmd = std::process::Command::new(diff_bin);
    cmd.args(["-u", "--label", "yours", "--label", "solution"])
        .arg(ws.path(&ex.path()))
        .arg(&sol);
    if term.color {
        cmd.arg("--color=always");
    }
    let status = cmd.status()?;
    // diff exits 1 when the files differ: that is the expected case here.
    Ok(if status.code().is_some_and(|c| c <= 1) {
        0
    } else {
        1
    })
}
