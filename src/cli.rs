//! The command line.
use crate::term::ColorChoice;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "backlings",
    version,
    about = "Learn backend engineering in Rust, one small exercise at a time",
    long_about = "Learn backend engineering in Rust, one small exercise at a time.\n\nStart with `backlings init`, then run `backlings` inside the folder it made."
)]
pub struct Cli {
    /// When to use colours
    #[arg(long, value_enum, default_value_t, global = true)]
    pub color: ColorChoice,
    /// Watch-mode flags given before any subcommand (`backlings --poll`). They also apply to
    /// `watch` and to the watch mode `init` starts; with any other command they are an error.
    #[command(flatten)]
    pub watch: WatchArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Clone, Copy, Default)]
pub struct WatchArgs {
    /// Poll the exercise files instead of waiting for file events (WSL /mnt, NFS, Docker volumes)
    #[arg(long, conflicts_with = "manual")]
    pub poll: bool,
    /// Don't watch files: press `r` to run the exercise
    #[arg(long)]
    pub manual: bool,
}

impl WatchArgs {
    /// Flags given both before and after `watch` add up; `--poll` with `--manual` is an error.
    pub fn merge(self, other: WatchArgs) -> Result<WatchArgs, &'static str> {
        let merged = WatchArgs {
            poll: self.poll || other.poll,
            manual: self.manual || other.manual,
        };
        if merged.poll && merged.manual {
            return Err("--poll and --manual cannot be used together");
        }
        Ok(merged)
    }

    pub fn any(self) -> bool {
        self.poll || self.manual
    }
}

impl Command {
    /// Whether the command runs watch mode, so that `--poll`/`--manual` mean something to it.
    pub fn watches(&self) -> bool {
        matches!(
            self,
            Command::Watch(_)
                | Command::Init {
                    no_watch: false,
                    ..
                }
        )
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Create a workspace with the exercises, build their dependencies, and start watch mode
    Init {
        /// Where to create it
        #[arg(default_value = "backlings")]
        dir: PathBuf,
        /// Don't start watch mode afterwards
        #[arg(long)]
        no_watch: bool,
        /// Use the pack in this folder instead of the built-in curriculum
        #[arg(long, value_name = "PACK_DIR")]
        pack: Option<PathBuf>,
    },
    /// Re-run the current exercise on every save (the default command)
    Watch(WatchArgs),
    /// Build and test one exercise (default: the current one) and print the verdict
    Run { name: Option<String> },
    /// Show the next hint level for an exercise
    Hint {
        name: Option<String>,
        /// Show every hint level at once
        #[arg(long)]
        all: bool,
    },
    /// Show progress by phase and topic
    List {
        /// Only pending exercises
        #[arg(long, conflicts_with = "done")]
        pending: bool,
        /// Only finished exercises
        #[arg(long)]
        done: bool,
        /// Only this topic (e.g. 01_types, or just types)
        #[arg(long, value_name = "TOPIC")]
        topic: Option<String>,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Restore the shipped version of an exercise (your version is backed up first)
    Reset {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Restore only the tests (below "do not edit") and keep your code
        #[arg(long)]
        tests: bool,
        /// Reset every exercise
        #[arg(long)]
        all: bool,
        /// Don't ask for confirmation
        #[arg(long)]
        yes: bool,
    },
    /// Build and test every exercise (or the named ones) and update progress
    Verify {
        /// Test binaries to run at once (default: the number of cores)
        #[arg(long, short, value_parser = parse_jobs)]
        jobs: Option<usize>,
        names: Vec<String>,
    },
    /// Show the reference solution of an exercise you have finished
    Solution {
        name: String,
        /// Show a diff between your version and the solution
        #[arg(long)]
        diff: bool,
    },
    /// Check the toolchain, file watching and optional services
    Doctor,
    /// Print a shell completion script, e.g. `backlings completions bash > ~/.local/share/bash-completion/completions/backlings`
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Tools for exercise authors
    #[command(subcommand)]
    Dev(DevCommand),
}

#[derive(Subcommand)]
pub enum DevCommand {
    /// Check a pack: exercises fail as shipped, solutions pass and are clean, mutants fail
    Check {
        /// The pack's folder (default: the current one)
        #[arg(default_value = ".")]
        pack_dir: PathBuf,
        /// Also run every solution's tests N times with the other cores busy
        #[arg(long, value_name = "N")]
        repeat: Option<u32>,
        /// Test binaries to run at once (default: the number of cores)
        #[arg(long, short, value_parser = parse_jobs)]
        jobs: Option<usize>,
        /// Only these exercises
        #[arg(long = "only", value_name = "NAME")]
        only: Vec<String>,
        /// Also run cargo-mutants over every solution: each generated mutant must be caught or
        /// accepted in mutants/NAME.toml
        #[arg(long)]
        generated: bool,
        /// Fail, rather than skip, an exercise whose server (PostgreSQL, Redis) cannot start;
        /// also set by BACKLINGS_REQUIRE_SERVICES=1
        #[arg(long)]
        require_services: bool,
    },
    /// Turn an edited copy of a solution into a mutant in mutants/NAME.toml
    Mutant {
        /// The exercise
        name: String,
        /// The mutant's name ([a-z0-9_]); an existing mutant of that name is replaced
        slug: String,
        /// The edited copy of the solution
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// The test that must fail (e.g. order_survives_inverted_latencies)
        #[arg(long, value_name = "TEST")]
        catches: String,
        /// The wrong fix, and why the tests catch it
        #[arg(long)]
        why: String,
        /// It is a cheat (passes naive tests without doing the idea), not a wrong fix
        #[arg(long)]
        cheat: bool,
        /// The pack's folder
        #[arg(long, default_value = ".")]
        pack: PathBuf,
    },
    /// Regenerate deps.lock from deps.toml
    Lock {
        #[arg(default_value = ".")]
        pack_dir: PathBuf,
    },
}

fn parse_jobs(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

/// How many test binaries to run at once: what was asked (default: the number of cores),
/// but never more than there is work for, nor more than a few per core, where extra
/// threads only add memory and contention.
pub fn jobs(requested: Option<usize>, work: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    requested.unwrap_or(cores).min(cores * 4).min(work).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn jobs_are_clamped_to_the_work_and_the_machine() {
        assert_eq!(jobs(Some(100_000), 3), 3);
        assert!(jobs(Some(100_000), 100_000) <= 4 * 1024);
        assert_eq!(jobs(None, 0), 1);
        assert_eq!(jobs(Some(1), 50), 1);
    }

    #[test]
    fn zero_jobs_is_a_usage_error() {
        let err = Cli::try_parse_from(["backlings", "verify", "--jobs", "0"])
            .err()
            .expect("refused");
        assert!(err.to_string().contains("at least 1"), "{err}");
    }
}
