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
        #[arg(long, short)]
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
        #[arg(long, short)]
        jobs: Option<usize>,
        /// Only these exercises
        #[arg(long = "only", value_name = "NAME")]
        only: Vec<String>,
    },
    /// Regenerate deps.lock from deps.toml
    Lock {
        #[arg(default_value = ".")]
        pack_dir: PathBuf,
    },
}
