//! What watch mode shows: the exercise's path (a terminal link), the verdict with build errors
//! or failing tests first, a progress bar and the keys; or the interactive list. On a terminal
//! the frame is redrawn in place; without one, each new frame is printed as plain lines.
use super::files::How;
use super::terminal::Key;
use crate::exec::Verdict;
use crate::pack::{Exercise, Info};
use crate::state::State;
use crate::term::Term;
use crate::workspace::Workspace;
use console::style;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;
use std::path::Path;

pub enum Mode {
    Normal,
    List(List),
    ConfirmReset {
        name: String,
        back_to_list: Option<List>,
    },
}

enum Status {
    Running(String),
    Verdict {
        name: String,
        heading: String,
        details: String,
    },
    CheckingAll,
    CheckAll {
        failing: Vec<(String, String)>,
        total: usize,
    },
    Finished(String),
    Error(String),
}

pub struct Screen {
    term: Term,
    how: How,
    pub mode: Mode,
    status: Status,
    /// A message that stays until the next verdict of another exercise: a success, a reset.
    pub banner: Option<String>,
    pub notice: Option<String>,
    pub hint: Option<String>,
    pub hint_level: Option<usize>,
    last_plain: String,
}

impl Screen {
    pub fn new(term: Term, how: How) -> Screen {
        Screen {
            term,
            how,
            mode: Mode::Normal,
            status: Status::Running(String::new()),
            banner: None,
            notice: None,
            hint: None,
            hint_level: None,
            last_plain: String::new(),
        }
    }

    pub fn running(&mut self, ex: &Exercise) {
        self.status = Status::Running(ex.name.clone());
    }

    pub fn checking_all(&mut self) {
        self.status = Status::CheckingAll;
    }

    pub fn verdict(&mut self, ex: &Exercise, v: Verdict, solution: Option<&Path>) {
        if let Some(sol) = solution {
            let rel = ex.solution_path();
            self.banner = Some(format!(
                "{} {} passed. Compare with the reference solution: {}",
                style("✓").green().bold(),
                style(&ex.name).bold(),
                self.term.link(sol, &rel)
            ));
            self.hint = None;
        }
        self.status = Status::Verdict {
            name: ex.name.clone(),
            heading: Term::verdict_heading(ex, &v),
            details: v.details(),
        };
    }

    pub fn check_all_result(&mut self, failing: Vec<(String, String)>, total: usize) {
        self.status = Status::CheckAll { failing, total };
    }

    pub fn finished(&mut self, message: &str) {
        self.status = Status::Finished(message.trim_end().to_string());
    }

    pub fn error(&mut self, e: crate::error::Error) {
        let help = e.help.map(|h| format!("\nhelp: {h}")).unwrap_or_default();
        self.status = Status::Error(format!("{}{help}", e.message));
    }

    /// Draws a frame from what it is given: `done` is the count the watch loop holds. It never
    /// reads the state file.
    pub fn draw(&mut self, ws: &Workspace, current: &Exercise, busy: bool, done: usize) {
        let (rows, cols) = console::Term::stdout().size();
        let body = match &self.mode {
            Mode::List(list) => list.render(rows as usize),
            _ => self.normal_body(ws, current, busy, rows as usize),
        };
        let mut out = std::io::stdout().lock();
        if !self.term.interactive {
            // Plain output: print each new frame once, as lines.
            if body != self.last_plain {
                let _ = writeln!(out, "{}", console::strip_ansi_codes(&body).trim_end());
                self.last_plain = body;
            }
            return;
        }
        // Home, clear, draw: one write, so the screen never shows half a frame.
        let clipped: String = body
            .lines()
            .map(|l| format!("{}\n", console::truncate_str(l, cols as usize, "…")))
            .collect();
        let _ = write!(out, "\x1b[H\x1b[2J{clipped}");
        let _ = out.flush();
        drop(out);
        if matches!(self.mode, Mode::Normal | Mode::ConfirmReset { .. }) {
            let total = ws.pack.info.exercises.len() as u64;
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stdout());
            bar.set_style(
                ProgressStyle::with_template("[{bar:40.green/dim}] {pos}/{len} exercises done")
                    .expect("valid template")
                    .progress_chars("#>-"),
            );
            bar.set_position(done as u64);
            bar.abandon();
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "{}", self.keys_line());
            let _ = out.flush();
        }
    }

    fn normal_body(&self, ws: &Workspace, current: &Exercise, busy: bool, rows: usize) -> String {
        let mut s = String::new();
        let index = ws.pack.info.index_of(&current.name).unwrap_or(0) + 1;
        let path = ws.path(&current.path());
        s.push_str(&format!(
            "{} {}  {}\n",
            style("Exercise").dim(),
            self.term.link(&path, &current.path()),
            style(format!(
                "({index}/{}, {})",
                ws.pack.info.exercises.len(),
                current.topic
            ))
            .dim()
        ));
        if let Some(b) = &self.banner {
            s.push_str(&format!("{b}\n"));
        }
        s.push('\n');
        let mut extra = String::new();
        if let Some(h) = &self.hint {
            extra.push_str(&format!("\n{h}"));
        }
        if let Some(n) = &self.notice {
            extra.push_str(&format!("\n{} {n}\n", style("note:").yellow().bold()));
        }
        if let Mode::ConfirmReset { name, .. } = &self.mode {
            extra.push_str(&format!(
                "\n{} Reset {name} to the shipped version? Your version is backed up first. [y/N]\n",
                style("?").yellow().bold()
            ));
        }
        // Room for the output: the terminal minus the header, extras, bar and keys.
        let room = rows
            .saturating_sub(s.lines().count() + extra.lines().count() + 5)
            .max(5);
        match &self.status {
            Status::Running(name) => s.push_str(&format!(
                "{} {}…\n",
                style("Building and testing").cyan(),
                name
            )),
            Status::Verdict {
                heading,
                details,
                name,
            } => {
                if busy {
                    s.push_str(&format!(
                        "{} {name}…\n",
                        style("Building and testing").cyan()
                    ));
                }
                s.push_str(&clip(details.trim_end(), room));
                s.push_str(&format!("\n{heading}\n"));
                if !heading.contains(" passed") {
                    s.push_str(&format!(
                        "{}\n",
                        style("Save the file to try again; `h` shows a hint.").dim()
                    ));
                }
            }
            Status::CheckingAll => {
                s.push_str(&format!("{}\n", style("Checking every exercise…").cyan()))
            }
            Status::CheckAll { failing, total } => {
                s.push_str(&format!(
                    "{}/{total} exercises pass. Not yet:\n",
                    total - failing.len()
                ));
                for (name, why) in failing.iter().take(room) {
                    s.push_str(&format!("  {} {name:<36} {why}\n", style("✗").red()));
                }
            }
            Status::Finished(msg) => s.push_str(&format!("{}\n", style(msg).green())),
            Status::Error(msg) => s.push_str(&format!("{} {msg}\n", style("error:").red().bold())),
        }
        s.push_str(&extra);
        s
    }

    fn keys_line(&self) -> String {
        let manual = if self.how == How::Manual {
            " (manual: r runs)"
        } else {
            ""
        };
        format!(
            "\n{}{manual}",
            style("h hint · l list · r rerun · n next · c check all · x reset · q quit").dim()
        )
    }

    /// The last words; `not_saved` says why the state could not be saved, if it could not.
    pub fn goodbye(&self, not_saved: Option<&str>) {
        let mut out = std::io::stdout().lock();
        let _ = match not_saved {
            None => writeln!(out, "\nProgress saved. Run `backlings` to continue."),
            Some(why) => writeln!(out, "\nProgress could not be saved: {why}"),
        };
    }
}

/// The first `n` lines, and how many were left out.
fn clip(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= n {
        return format!("{text}\n");
    }
    let mut s: String = lines[..n.saturating_sub(1)]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    s.push_str(&format!(
        "{}\n",
        style(format!(
            "… {} more lines (`backlings run` shows everything)",
            lines.len() + 1 - n
        ))
        .dim()
    ));
    s
}

/// The interactive list: move with ↑/↓ (or j/k), `/` to search, Enter to jump, `x` to reset.
pub struct List {
    cursor: usize,
    filter: String,
    searching: bool,
    state: State,
    rows: Vec<(String, String)>,
}

pub enum ListAction {
    Stay,
    Close,
    Jump(String),
    Reset(String),
}

impl List {
    pub fn new(info: &Info, current: &str, state: State) -> List {
        let rows = info
            .exercises
            .iter()
            .map(|e| (e.name.clone(), e.topic.clone()))
            .collect();
        let cursor = info.index_of(current).unwrap_or(0);
        List {
            cursor,
            filter: String::new(),
            searching: false,
            state,
            rows,
        }
    }

    fn visible(&self) -> Vec<usize> {
        (0..self.rows.len())
            .filter(|&i| {
                self.rows[i].0.contains(&self.filter) || self.rows[i].1.contains(&self.filter)
            })
            .collect()
    }

    /// Acts on one key. Every index comes from `visible()`, which may be empty (a search that
    /// matches nothing), so every lookup goes through `get`.
    pub fn key(&mut self, key: Key) -> ListAction {
        if self.searching {
            match key {
                Key::Enter | Key::Esc => self.searching = false,
                Key::Backspace => {
                    self.filter.pop();
                }
                Key::Char(c) => self.filter.push(c),
                _ => {}
            }
            let visible = self.visible();
            if let Some(&first) = visible.first()
                && !visible.contains(&self.cursor)
            {
                self.cursor = first;
            }
            return ListAction::Stay;
        }
        let visible = self.visible();
        let pos = visible.iter().position(|&i| i == self.cursor);
        let selected = pos.map(|_| self.rows[self.cursor].0.clone());
        match key {
            Key::Up | Key::Char('k') => {
                if let Some(&i) = visible.get(pos.unwrap_or(0).saturating_sub(1)) {
                    self.cursor = i;
                }
            }
            Key::Down | Key::Char('j') => {
                let next = pos.map_or(0, |p| (p + 1).min(visible.len().saturating_sub(1)));
                if let Some(&i) = visible.get(next) {
                    self.cursor = i;
                }
            }
            Key::Char('/') => self.searching = true,
            Key::Enter => {
                if let Some(name) = selected {
                    return ListAction::Jump(name);
                }
            }
            Key::Char('x') => {
                if let Some(name) = selected {
                    return ListAction::Reset(name);
                }
            }
            Key::Esc | Key::Char('q') | Key::Char('l') => return ListAction::Close,
            _ => {}
        }
        ListAction::Stay
    }

    fn render(&self, rows: usize) -> String {
        let mut s = format!(
            "{}\n",
            style("Exercises: ↑/↓ move · / search · Enter jump there · x reset · Esc back").bold()
        );
        if self.searching || !self.filter.is_empty() {
            s.push_str(&format!(
                "search: {}{}\n",
                self.filter,
                if self.searching { "▏" } else { "" }
            ));
        }
        let visible = self.visible();
        let room = rows.saturating_sub(4).max(3);
        let pos = visible.iter().position(|&i| i == self.cursor).unwrap_or(0);
        let start = pos
            .saturating_sub(room / 2)
            .min(visible.len().saturating_sub(room));
        for &i in visible.iter().skip(start).take(room) {
            let (name, topic) = &self.rows[i];
            let status = if self.state.is_done(name) {
                style("done   ").green()
            } else {
                style("pending").dim()
            };
            let here = if self.state.current.as_deref() == Some(name) {
                " ← current"
            } else {
                ""
            };
            let line = format!(
                "{} {status} {topic:<22} {name}{here}",
                if i == self.cursor { ">" } else { " " }
            );
            if i == self.cursor {
                s.push_str(&format!("{}\n", style(line).reverse()));
            } else {
                s.push_str(&format!("{line}\n"));
            }
        }
        if visible.is_empty() {
            s.push_str("  (nothing matches)\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> Info {
        let mut text = String::from(
            "format_version = 1\nwelcome_message = \"hi\"\nfinal_message = \"bye\"\n[[phases]]\nname = \"p\"\ntitle = \"P\"\n",
        );
        for (name, topic) in [("alpha", "00_a"), ("beta", "00_a"), ("gamma", "01_b")] {
            text.push_str(&format!(
                "[[exercises]]\nname = \"{name}\"\ntopic = \"{topic}\"\nphase = \"p\"\nhints = [\"h\"]\n"
            ));
        }
        Info::parse(&text, "info.toml").unwrap()
    }

    #[test]
    fn up_after_a_search_that_matches_nothing_does_not_panic() {
        let info = info();
        let mut list = List::new(&info, "beta", State::default());
        for key in [
            Key::Char('/'),
            Key::Char('z'),
            Key::Char('z'),
            Key::Char('z'),
            Key::Esc,
        ] {
            list.key(key);
        }
        for key in [
            Key::Char('k'),
            Key::Up,
            Key::Down,
            Key::Char('j'),
            Key::Enter,
            Key::Char('x'),
        ] {
            assert!(matches!(list.key(key), ListAction::Stay));
        }
        assert!(list.render(10).contains("nothing matches"));
    }

    /// Thousands of random key sequences (a seeded xorshift, so a failure reproduces): no key
    /// in any order may panic, and Enter/x only ever name an exercise that is shown.
    #[test]
    fn no_key_sequence_panics() {
        let info = info();
        let keys = [
            Key::Up,
            Key::Down,
            Key::Enter,
            Key::Esc,
            Key::Backspace,
            Key::Char('/'),
            Key::Char('x'),
            Key::Char('j'),
            Key::Char('k'),
            Key::Char('a'),
            Key::Char('z'),
            Key::Char('0'),
            Key::Char('_'),
            Key::Char('q'),
            Key::Char('l'),
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5000 {
            let start = ["alpha", "beta", "gamma", "gone"][(next() % 4) as usize];
            let mut list = List::new(&info, start, State::default());
            let len = next() % 40;
            for _ in 0..len {
                let key = keys[(next() % keys.len() as u64) as usize];
                match list.key(key) {
                    ListAction::Jump(name) | ListAction::Reset(name) => {
                        assert!(info.exercise(&name).is_some());
                        assert!(list.visible().contains(&list.cursor));
                    }
                    ListAction::Close | ListAction::Stay => {}
                }
                let _ = list.render((next() % 50) as usize);
            }
        }
    }
}
