//! One module per command. Each returns the process exit code.
//! Watch mode is one of them (`crate::watch`); it shares nothing with the others but
//! `progress`, `exec` and `term`, so neither side imports the other.
mod dev_check;
mod doctor;
mod generated;
mod hint;
mod list;
mod reset;
mod run;
mod solution;
mod verify;

use crate::cli::{Cli, Command, DevCommand};
use crate::error::{Context, Error, Result};
use crate::pack::Pack;
use crate::progress::Progress;
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
            Progress::new(&ws).start()?;
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
            std::env::set_current_dir(&ws.root)
                .context(|| format!("cannot change to {}", ws.root.display()))?;
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
        Command::Reset {
            name,
            all,
            yes,
            tests,
        } => reset::reset(term, name.as_deref(), all, yes, tests),
        Command::Verify { jobs, names } => verify::verify(term, jobs, &names),
        Command::Solution { name, diff } => solution::solution(term, &name, diff),
        Command::Doctor => doctor::doctor(term),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut out = std::io::stdout();
            clap_complete::generate(shell, &mut Cli::command(), "backlings", &mut out);
            Ok(0)
        }
        Command::Dev(DevCommand::Check {
            pack_dir,
            repeat,
            jobs,
            only,
            generated,
            require_services,
        }) => dev_check::check(
            term,
            &pack_dir,
            dev_check::Options {
                repeat,
                jobs: crate::cli::jobs(jobs, usize::MAX),
                only,
                generated,
                require_services: require_services || crate::services::required_by_env(),
            },
        ),
        Command::Dev(DevCommand::Lock { pack_dir }) => dev_check::lock(term, &pack_dir),
        Command::Dev(DevCommand::Mutant {
            name,
            slug,
            file,
            catches,
            why,
            cheat,
            pack,
        }) => dev_check::mutant(
            term,
            &pack,
            dev_check::NewMutant {
                name,
                slug,
                file,
                catches,
                why,
                cheat,
            },
        ),
    }
}

/// Shows what the state loader repaired (a corrupt file moved aside) on stderr.
fn show_warnings(term: &Term, progress: &Progress) {
    for w in progress.take_warnings() {
        term.warn(&w);
    }
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
