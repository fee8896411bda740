//! One module per command. Each returns the process exit code.
mod dev_check;
mod doctor;
pub mod hint;
pub mod list;
pub mod reset;
mod run;
mod solution;
pub mod verify;

use crate::cli::{Cli, Command, DevCommand};
use crate::error::{Error, Result};
use crate::pack::Pack;
use crate::term::Term;
use crate::workspace::{Workspace, init};

pub fn dispatch(cli: Cli, term: &Term) -> Result<i32> {
    let before = cli.watch;
    let Some(command) = cli.command else {
        return crate::watch::run(&Workspace::find()?, term, &before);
    };
    if before.any() && !command.watches() {
        return Err(Error::usage(
            "--poll and --manual only apply to watch mode, not to this command",
        )
        .help("watch with `backlings --poll` or `backlings --manual`; leave them out otherwise"));
    }
    match command {
        Command::Watch(args) => {
            let args = before.merge(args).map_err(Error::usage)?;
            crate::watch::run(&Workspace::find()?, term, &args)
        }
        Command::Init {
            dir,
            no_watch,
            pack,
        } => {
            let pack = match pack {
                Some(p) => Pack::from_dir(&p)?,
                None => Pack::embedded()?,
            };
            let ws = init::create(&dir, pack)?;
            term.line(ws.pack.info.welcome_message.trim_end());
            term.line(&format!(
                "\nCreated your workspace in {}.",
                ws.root.display()
            ));
            init::build_dependencies(&ws, term)?;
            if no_watch {
                term.line(&format!(
                    "Next: `cd {}` and run `backlings`.",
                    dir.display()
                ));
                return Ok(0);
            }
            std::env::set_current_dir(&ws.root)?;
            crate::watch::run(&ws, term, &before)
        }
        Command::Run { name } => run::run(term, name.as_deref()),
        Command::Hint { name, all } => hint::hint(term, name.as_deref(), all),
        Command::List {
            pending,
            done,
            topic,
            json,
        } => list::list(
            term,
            list::Filter {
                pending,
                done,
                topic,
            },
            json,
        ),
        Command::Reset { name, all, yes } => reset::reset(term, name.as_deref(), all, yes),
        Command::Verify { jobs, names } => verify::verify(term, jobs, &names),
        Command::Solution { name, diff } => solution::solution(term, &name, diff),
        Command::Doctor => doctor::doctor(term),
        Command::Dev(DevCommand::Check {
            pack_dir,
            repeat,
            jobs,
            only,
        }) => dev_check::check(
            term,
            &pack_dir,
            dev_check::Options {
                repeat,
                jobs: jobs_or_cores(jobs),
                only,
            },
        ),
        Command::Dev(DevCommand::Lock { pack_dir }) => dev_check::lock(term, &pack_dir),
    }
}

pub fn jobs_or_cores(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1)
}

/// The exercise named on the command line, or the current one.
fn pick<'a>(
    ws: &'a Workspace,
    state: &crate::state::State,
    name: Option<&str>,
) -> Result<&'a crate::pack::Exercise> {
    match name {
        Some(n) => ws.exercise(n),
        None => Ok(state.current(&ws.pack.info)),
    }
}
