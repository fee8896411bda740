use crate::cli::WatchArgs;
use crate::error::Result;
use crate::term::Term;
use crate::workspace::Workspace;
pub fn run(_ws: &Workspace, _term: &Term, _args: &WatchArgs) -> Result<i32> {
    todo!()
}
