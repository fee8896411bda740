//! Watch mode (PRODUCT.md §3). A save flows one way: file event → debounce → `exec` → `Verdict`
//! → state → screen. Everything arrives as an `Event` on one channel (file events, keys,
//! signals, finished jobs), so keys act while a build runs and a save cancels a running build.
mod files;
mod screen;
mod terminal;

use crate::cli::WatchArgs;
use crate::error::Result;
use crate::exec::{self, ExecError, Verdict, process::Cancel};
use crate::pack::Exercise;
use crate::progress::Progress;
use crate::state::State;
use crate::term::Term;
use crate::workspace::Workspace;
use files::How;
use screen::{Mode, Screen};
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};
use terminal::Key;

/// Events closer together than this are one save. Editors' multi-step saves (truncate and
/// write, vim's rename-over, JetBrains' temp file) land within a millisecond or two, and a
/// later step still restarts the build, so the wait stays short: it is pure latency.
const DEBOUNCE: Duration = Duration::from_millis(10);
/// How often the modification-time safety net looks at the current file.
const SAFETY_NET: Duration = Duration::from_secs(1);

enum Event {
    File(PathBuf),
    Key(Key),
    Signal(i32),
    Done { generation: u64, outcome: Outcome },
}

enum Outcome {
    Run(Result<Verdict, ExecError>),
    CheckAll(Result<(Vec<Verdict>, Result<State>)>),
}

struct Job {
    generation: u64,
    cancel: Cancel,
    /// What the file held when the run started (None for "check all").
    content: Option<Vec<u8>>,
}

struct App<'a> {
    ws: &'a Workspace,
    progress: Progress<'a>,
    /// The state as the last change left it: what the screen shows. Drawing never reads or
    /// repairs the state file.
    state: State,
    term: &'a Term,
    tx: Sender<Event>,
    screen: Screen,
    current: Exercise,
    job: Option<Job>,
    generation: u64,
    /// The content of the last finished run, to skip saves that changed nothing.
    last_run: Option<Vec<u8>>,
    /// When the pending (debounced) save should run.
    due: Option<Instant>,
    stamp: Option<(std::time::SystemTime, u64)>,
    since: Instant,
    quit: Option<i32>,
}

pub fn run(ws: &Workspace, term: &Term, args: &WatchArgs) -> Result<i32> {
    let how = if args.manual {
        How::Manual
    } else if args.poll {
        How::Poll
    } else {
        How::Events
    };
    let progress = Progress::new(ws);
    let state = progress.sync()?;
    let (tx, rx) = mpsc::channel();
    let _watch = files::watch(&ws.root.join("exercises"), how, tx.clone(), Event::File)?;
    // The first signal quits through the loop's clean-up; `lifetime` then kills the children.
    let signals = tx.clone();
    exec::lifetime::take_signals(move |sig| {
        let _ = signals.send(Event::Signal(sig));
    });
    exec::lifetime::at_exit(terminal::restore);
    let raw = if term.interactive {
        terminal::RawMode::enable()
    } else {
        None
    };
    terminal::spawn_key_reader(tx.clone(), Event::Key);

    let current = state.current(&ws.pack.info).clone();
    let mut app = App {
        ws,
        progress,
        state,
        term,
        tx,
        screen: Screen::new(term.clone(), how),
        stamp: files::stamp(&ws.path(&current.path())),
        current,
        job: None,
        generation: 0,
        last_run: None,
        due: None,
        since: Instant::now(),
        quit: None,
    };
    app.start_run(true);
    let mut next_check = Instant::now() + SAFETY_NET;
    while app.quit.is_none() {
        app.show_warnings();
        let done = app.state.done_count(&ws.pack.info);
        app.screen.draw(ws, &app.current, app.job.is_some(), done);
        let wake = app.due.map_or(next_check, |d| d.min(next_check));
        match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Ok(event) => app.handle(event),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let now = Instant::now();
        if app.due.is_some_and(|d| d <= now) {
            app.due = None;
            app.start_run(false);
        }
        if now >= next_check {
            next_check = now + SAFETY_NET;
            app.safety_net(how);
        }
    }
    if let Some(job) = app.job.take() {
        job.cancel.cancel();
    }
    let saved = app.add_time_spent();
    drop(raw);
    app.screen
        .goodbye(saved.err().map(|e| e.message).as_deref());
    Ok(app.quit.unwrap_or(0))
}

impl App<'_> {
    /// What the state loader repaired goes on the screen, never to stderr under it.
    fn show_warnings(&mut self) {
        if let Some(w) = self.progress.take_warnings().pop() {
            self.screen.notice = Some(w);
        }
    }

    /// Keeps the state a change returned, or shows why the change failed.
    fn keep(&mut self, result: Result<State>) {
        match result {
            Ok(state) => self.state = state,
            Err(e) => {
                let help = e.help.map(|h| format!(" ({h})")).unwrap_or_default();
                self.screen.notice =
                    Some(format!("progress could not be saved: {}{help}", e.message));
            }
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::File(path) => {
                if path == self.ws.path(&self.current.path()) {
                    // The learner is working on this one now: yesterday's news goes.
                    self.screen.banner = None;
                    self.due = Some(Instant::now() + DEBOUNCE);
                    self.stamp = files::stamp(&path);
                }
            }
            Event::Key(key) => self.key(key),
            Event::Signal(sig) => self.quit = Some(128 + sig),
            Event::Done {
                generation,
                outcome,
            } if self
                .job
                .as_ref()
                .is_some_and(|j| j.generation == generation) =>
            {
                let job = self.job.take().expect("checked above");
                match outcome {
                    Outcome::Run(Ok(v)) => self.verdict(v, job.content),
                    Outcome::Run(Err(ExecError::Cancelled)) => {}
                    Outcome::Run(Err(e)) => self.screen.error(crate::error::Error::from(e)),
                    Outcome::CheckAll(result) => self.checked_all(result),
                }
            }
            Event::Done { .. } => {} // a cancelled job's late answer
        }
    }

    /// Runs the current exercise, unless nothing changed since the last run (or is running).
    fn start_run(&mut self, force: bool) {
        let path = self.ws.path(&self.current.path());
        let content = std::fs::read(&path).ok();
        if !force {
            let same_as_running = self
                .job
                .as_ref()
                .is_some_and(|j| j.content.is_some() && j.content == content);
            let same_as_last = self.job.is_none() && content.is_some() && content == self.last_run;
            if same_as_running || same_as_last {
                return;
            }
        }
        if let Some(job) = self.job.take() {
            job.cancel.cancel();
        }
        if let Err(e) = self.ws.sync_manifest() {
            self.screen.error(e);
            return;
        }
        self.generation += 1;
        let cancel = Cancel::default();
        let (root, pack, ex, tx, generation) = (
            self.ws.root.clone(),
            self.ws.pack.clone(),
            self.current.clone(),
            self.tx.clone(),
            self.generation,
        );
        let opts = exec::Options {
            color: self.term.color,
            locked: false,
            jobs: 1,
        };
        let job_cancel = cancel.clone();
        std::thread::spawn(move || {
            // Started on the first run that needs it, then reused by every later run.
            let services = crate::services::provide(&[&ex]);
            let outcome = Outcome::Run(exec::run_exercise(
                &root,
                &pack,
                &ex,
                opts,
                &services,
                &job_cancel,
            ));
            let _ = tx.send(Event::Done {
                generation,
                outcome,
            });
        });
        self.job = Some(Job {
            generation,
            cancel,
            content,
        });
        self.screen.running(&self.current);
    }

    fn check_all(&mut self) {
        if let Some(job) = self.job.take() {
            job.cancel.cancel();
        }
        self.generation += 1;
        let cancel = Cancel::default();
        let (ws, store, tx, generation, color) = (
            self.ws.clone(),
            self.progress.store(),
            self.tx.clone(),
            self.generation,
            self.term.color,
        );
        let job_cancel = cancel.clone();
        std::thread::spawn(move || {
            let all: Vec<&Exercise> = ws.pack.info.exercises.iter().collect();
            let jobs = crate::cli::jobs(None, all.len());
            let result = Progress::with_store(&ws, store).check_all(
                &indicatif::ProgressBar::hidden(),
                color,
                &all,
                jobs,
                &job_cancel,
            );
            let _ = tx.send(Event::Done {
                generation,
                outcome: Outcome::CheckAll(result),
            });
        });
        self.job = Some(Job {
            generation,
            cancel,
            content: None,
        });
        self.screen.checking_all();
    }

    fn verdict(&mut self, verdict: Verdict, content: Option<Vec<u8>>) {
        self.last_run = content;
        let ex = self.current.clone();
        let rec = match self.progress.record(&ex, &verdict) {
            Ok(r) => r,
            Err(e) => {
                // The verdict first: a full disk must not swallow it.
                self.screen.verdict(&ex, verdict, None);
                self.keep(Err(e));
                return;
            }
        };
        self.state = rec.state.clone();
        let skipped = matches!(verdict, Verdict::NeedsService { .. });
        if let Verdict::NeedsService {
            service,
            why,
            instead,
        } = &verdict
        {
            // It stays on the screen while watch mode moves on.
            let instead = instead
                .as_ref()
                .map(|i| format!(" Without it, `{i}` teaches the same idea."))
                .unwrap_or_default();
            self.screen.banner = Some(format!(
                "{} skipped (optional, needs {service}): {}{instead} `backlings doctor` says how to install it.",
                ex.name,
                why.lines().next().unwrap_or_default().trim_end_matches('.')
            ));
        }
        self.screen.verdict(&ex, verdict, rec.solution.as_deref());
        if rec.all_done {
            return self.check_all();
        }
        if skipped {
            // Optional services must not block the core path: move past it, to the next
            // pending exercise, or back to the first pending one that needs no server. With
            // none left, check everything: skipped tracks do not count against the learner.
            let info = &self.ws.pack.info;
            let at = info.index_of(&ex.name).unwrap_or(0);
            let n = info.exercises.len();
            // Forward only over other optional ones, so that skipping never goes round in
            // circles; wrapping around only to one that needs no server.
            let next = (1..n)
                .map(|k| (at + k, &info.exercises[(at + k) % n]))
                .find(|(i, e)| !rec.state.is_done(&e.name) && (e.requires.is_empty() || *i < n))
                .map(|(_, e)| e.name.clone());
            match next {
                Some(name) => self.switch_to(&name),
                None => self.check_all(),
            }
        } else if rec.current != ex.name {
            self.switch_to(&rec.current);
        }
    }

    fn checked_all(&mut self, result: Result<(Vec<Verdict>, Result<State>)>) {
        match result {
            Ok((verdicts, saved)) => {
                self.keep(saved);
                let failing: Vec<(String, String)> = self
                    .ws
                    .pack
                    .info
                    .exercises
                    .iter()
                    .zip(&verdicts)
                    .filter(|(_, v)| !v.passed() && !v.skipped())
                    .map(|(e, v)| (e.name.clone(), v.label()))
                    .collect();
                if failing.is_empty() {
                    self.screen.finished(&self.ws.pack.info.final_message);
                } else {
                    self.screen.check_all_result(failing, verdicts.len());
                    // Whatever verify decided is current now (the first pending one).
                    let name = self.state.current(&self.ws.pack.info).name.clone();
                    if name != self.current.name {
                        self.switch_to(&name);
                    }
                }
            }
            Err(e) => self.screen.error(e),
        }
    }

    /// Makes `name` the current exercise and runs it.
    fn switch_to(&mut self, name: &str) {
        let Some(ex) = self.ws.pack.info.exercise(name).cloned() else {
            return;
        };
        // One state write for both: it sits between a pass and the next exercise's build.
        let (left, secs) = (self.current.name.clone(), self.take_time_spent());
        let moved = self.progress.move_to(&ex.name, &left, secs);
        self.keep(moved);
        self.stamp = files::stamp(&self.ws.path(&ex.path()));
        self.current = ex;
        self.last_run = None;
        self.screen.hint = None;
        self.start_run(true);
    }

    /// Whole seconds spent on the current exercise since the last call.
    fn take_time_spent(&mut self) -> u64 {
        std::mem::replace(&mut self.since, Instant::now())
            .elapsed()
            .as_secs()
    }

    /// On the way out; the goodbye says whether it worked.
    fn add_time_spent(&mut self) -> Result<State> {
        let (name, secs) = (self.current.name.clone(), self.take_time_spent());
        self.progress.add_time(&name, secs)
    }

    /// If the file changed without any event, file events are not arriving here: run anyway
    /// and say so once.
    fn safety_net(&mut self, how: How) {
        if how == How::Manual {
            return;
        }
        let stamp = files::stamp(&self.ws.path(&self.current.path()));
        if stamp != self.stamp && self.due.is_none() {
            self.stamp = stamp;
            if how == How::Events {
                self.screen.notice = Some(
                    "A save arrived without a file event: events look broken on this file system (WSL, NFS, Docker). \
                     Run `backlings --poll` to poll instead."
                        .into(),
                );
            }
            self.start_run(false);
        }
    }

    fn key(&mut self, key: Key) {
        match std::mem::replace(&mut self.screen.mode, Mode::Normal) {
            Mode::Normal => self.normal_key(key),
            Mode::List(mut list) => match list.key(key) {
                screen::ListAction::Stay => self.screen.mode = Mode::List(list),
                screen::ListAction::Close => {}
                screen::ListAction::Jump(name) => self.switch_to(&name),
                screen::ListAction::Reset(name) => {
                    self.screen.mode = Mode::ConfirmReset {
                        name,
                        back_to_list: Some(list),
                    }
                }
            },
            Mode::ConfirmReset { name, back_to_list } => {
                if key == Key::Char('y') || key == Key::Char('Y') {
                    self.reset(&name);
                }
                if let Some(list) = back_to_list {
                    self.screen.mode = Mode::List(list);
                }
            }
        }
    }

    fn normal_key(&mut self, key: Key) {
        match key {
            Key::Char('q') => self.quit = Some(0),
            Key::Char('h') => self.next_hint(),
            Key::Char('l') => {
                self.screen.mode = Mode::List(screen::List::new(
                    &self.ws.pack.info,
                    &self.current.name,
                    self.state.clone(),
                ));
            }
            Key::Char('r') => self.start_run(true),
            Key::Char('c') => self.check_all(),
            Key::Char('x') => {
                self.screen.mode = Mode::ConfirmReset {
                    name: self.current.name.clone(),
                    back_to_list: None,
                }
            }
            Key::Char('n') => {
                let state = &self.state;
                let info = &self.ws.pack.info;
                if !state.is_done(&self.current.name) {
                    self.screen.notice = Some(format!(
                        "{} is not done yet: `n` moves on once it passes.",
                        self.current.name
                    ));
                    return;
                }
                let from = info.index_of(&self.current.name).unwrap_or(0) + 1;
                let next = state
                    .first_pending(info, from)
                    .unwrap_or(&info.exercises[from % info.exercises.len()]);
                let name = next.name.clone();
                self.switch_to(&name);
            }
            _ => {}
        }
    }

    fn next_hint(&mut self) {
        let ex = &self.current;
        if ex.hints.is_empty() {
            self.screen.hint = Some(format!("{} has no hints.", ex.name));
            return;
        }
        let shown = self
            .screen
            .hint_level
            .filter(|_| self.screen.hint.is_some())
            .map_or(0, |l| (l + 1) % ex.hints.len());
        self.screen.hint = Some(Term::hint(ex, shown));
        self.screen.hint_level = Some(shown);
        let seen = self.progress.hint_seen(&ex.name, shown);
        self.keep(seen);
    }

    fn reset(&mut self, name: &str) {
        let Ok(ex) = self.ws.exercise(name).cloned() else {
            return;
        };
        match self.progress.reset_one(&ex) {
            Ok((backup, state)) => {
                self.state = state;
                self.screen.banner = Some(match backup {
                    Some(b) => format!(
                        "Reset {}. Your version is saved in {}",
                        ex.path(),
                        b.display()
                    ),
                    None => format!("Restored {}.", ex.path()),
                });
                if ex.name == self.current.name {
                    self.stamp = files::stamp(&self.ws.path(&ex.path()));
                    self.start_run(true);
                }
            }
            Err(e) => self.screen.error(e),
        }
    }
}
