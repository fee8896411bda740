//! How output looks: colour (`--color`, `NO_COLOR`), and whether we talk to a terminal.
//! Without one (pipes, CI), output is plain lines: no cursor moves, no prompts, no bars.
use crate::exec::Verdict;
use crate::pack::Exercise;
use clap::ValueEnum;
use console::style;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};

#[derive(Clone, Copy, Debug, ValueEnum, Default)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Clone)]
pub struct Term {
    pub color: bool,
    /// stdout and stdin are both terminals: prompts, bars and the full-screen watch mode.
    pub interactive: bool,
}

impl Term {
    pub fn new(choice: ColorChoice) -> Term {
        let tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color,
        };
        console::set_colors_enabled(color);
        console::set_colors_enabled_stderr(color);
        Term {
            color,
            interactive: tty && std::io::stdin().is_terminal(),
        }
    }

    pub fn line(&self, s: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{s}");
    }

    pub fn progress_bar(&self, len: u64, message: &str) -> ProgressBar {
        if !self.interactive {
            self.line(message);
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stdout());
        bar.set_style(
            ProgressStyle::with_template("{msg}\n[{bar:40.cyan/blue}] {pos}/{len} {wide_msg:.dim}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(message.to_string());
        bar
    }

    /// Asks a yes/no question; `false` without a terminal (callers then ask for `--yes`).
    pub fn confirm(&self, question: &str) -> bool {
        if !self.interactive {
            return false;
        }
        print!("{question} [y/N] ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        matches!(answer.trim(), "y" | "Y" | "yes")
    }

    /// A warning on stderr: something went wrong that does not change the command's outcome.
    pub fn warn(&self, message: &str) {
        eprintln!("{} {message}", style("warning:").yellow().bold());
    }

    /// "Hint 2/3 (concept) for NAME:" and the hint.
    pub fn hint(ex: &Exercise, i: usize) -> String {
        const LEVELS: [&str; 3] = ["nudge", "concept", "near-solution"];
        let level = LEVELS.get(i).copied().unwrap_or("more");
        let head = style(format!(
            "Hint {}/{} ({level}) for {}:",
            i + 1,
            ex.hints.len(),
            ex.name
        ))
        .cyan()
        .bold();
        format!("{head}\n{}\n", ex.hints[i].trim_end())
    }

    /// The one-line heading of a verdict.
    pub fn verdict_heading(ex: &Exercise, v: &Verdict) -> String {
        if v.passed() {
            format!(
                "{} {} passed",
                style("✓").green().bold(),
                style(&ex.name).bold()
            )
        } else if v.skipped() {
            format!(
                "{} {}: {} (optional)",
                style("-").yellow().bold(),
                style(&ex.name).bold(),
                style(v.label()).yellow()
            )
        } else {
            format!(
                "{} {}: {}",
                style("✗").red().bold(),
                style(&ex.name).bold(),
                style(v.label()).red()
            )
        }
    }

    /// A path as a terminal hyperlink (OSC 8) when colours are on.
    pub fn link(&self, path: &std::path::Path, text: &str) -> String {
        if self.color {
            format!(
                "\x1b]8;;file://{}\x1b\\{text}\x1b]8;;\x1b\\",
                path.display()
            )
        } else {
            text.to_string()
        }
    }
}
