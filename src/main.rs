//! backlings: learn backend engineering in Rust. Parses the command line and dispatches.
mod cli;
mod commands;
mod error;
mod exec;
mod fsutil;
mod pack;
mod progress;
mod services;
mod state;
mod term;
mod watch;
mod workspace;

use clap::Parser;

fn main() {
    // Cargo runs backlings as its rustc wrapper while capturing the hot path's commands.
    if let Some(code) = exec::capture::wrapper_main() {
        std::process::exit(code);
    }
    let cli = cli::Cli::parse();
    let term = term::Term::new(cli.color);
    if let Err(e) = exec::lifetime::install() {
        eprintln!("warning: cannot handle signals ({e}); Ctrl-C may leave processes behind");
    }
    let result = commands::dispatch(cli, &term);
    // Nothing the runner started outlives it, whatever the command did.
    exec::lifetime::finish();
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("{} {}", console::style("error:").red().bold(), e.message);
            if let Some(help) = &e.help {
                eprintln!("{} {help}", console::style("help:").cyan().bold());
            }
            std::process::exit(e.code);
        }
    }
}
