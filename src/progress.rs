//! What the learner's progress means, in one place: what a verdict does (a run is counted, a
//! pass is done, a failure is pending again), what check-all recomputes, what a reset does,
//! and which exercise comes next. `run`, `verify`, `hint`, `reset` and watch mode all change
//! progress through here, so that they cannot drift apart. The transitions themselves are
//! plain functions on `State`; `Progress` adds the workspace files that go with them (the
//! `solutions/` folder, backups, new exercises' files).
use crate::error::{Context, Result};
use crate::exec::{self, Verdict, process::Cancel};
use crate::fsutil::{now_secs, write_atomic};
use crate::pack::{Exercise, Info, protected};
use crate::state::{State, Status, Store};
use crate::workspace::{DIR, Workspace};
use indicatif::ProgressBar;
use std::path::PathBuf;

/// A verdict's effect on the state. A run that never happened (a missing file, a service that
/// is not there) counts no run; a missing file is not done.
pub fn apply_verdict(s: &mut State, name: &str, verdict: &Verdict) {
    match verdict {
        Verdict::NeedsService { .. } => {}
        Verdict::Missing { .. } => s.entry(name).status = Status::Pending,
        v => {
            let e = s.entry(name);
            e.runs += 1;
            if !v.passed() {
                e.status = Status::Pending;
            } else if e.status != Status::Done {
                e.status = Status::Done;
                e.done_at = Some(now_secs());
            }
        }
    }
}

/// After `name` passed: if it was the current exercise, the next pending one after it
/// becomes current.
pub fn advance_past(s: &mut State, info: &Info, name: &str) {
    if s.current(info).name != name {
        return;
    }
    let from = info.index_of(name).map_or(0, |i| i + 1);
    if let Some(next) = s.first_pending(info, from) {
        s.current = Some(next.name.clone());
    }
}

/// After a check of everything: a current exercise that is done gives way to the first
/// pending one.
pub fn advance_if_done(s: &mut State, info: &Info) {
    if s.is_done(&s.current(info).name)
        && let Some(next) = s.first_pending(info, 0)
    {
        s.current = Some(next.name.clone());
    }
}

/// A reset exercise is pending again; its history (runs, time, hints) stays.
pub fn reset(s: &mut State, name: &str) {
    s.entry(name).status = Status::Pending;
}

pub struct Recorded {
    pub state: State,
    /// The reference solution, written to `solutions/` once the exercise is done.
    pub solution: Option<PathBuf>,
    /// The exercise that is current now.
    pub current: String,
    pub all_done: bool,
}

/// A workspace's progress: its state file, and the files that change with it.
pub struct Progress<'a> {
    pub ws: &'a Workspace,
    store: Store,
}

impl<'a> Progress<'a> {
    pub fn new(ws: &'a Workspace) -> Progress<'a> {
        Progress {
            ws,
            store: Store::new(ws.path(DIR)),
        }
    }

    /// The state file, for a thread that makes a `Progress` of its own with `with_store`:
    /// warnings end up in the same list.
    pub fn store(&self) -> Store {
        self.store.clone()
    }

    pub fn with_store(ws: &'a Workspace, store: Store) -> Progress<'a> {
        Progress { ws, store }
    }

    /// What the state loader repaired since the last call (a corrupt file moved aside).
    pub fn take_warnings(&self) -> Vec<String> {
        self.store.take_warnings()
    }

    pub fn load(&self) -> Result<State> {
        self.store.load()
    }

    fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<(State, T)> {
        self.store.update(f)
    }

    /// A new workspace: every exercise pending, the first one current.
    pub fn start(&self) -> Result<State> {
        let info = &self.ws.pack.info;
        Ok(self
            .update(|s| {
                s.current = Some(info.exercises[0].name.clone());
                for ex in &info.exercises {
                    s.entry(&ex.name);
                }
            })?
            .0)
    }

    /// Adopts exercises that a newer curriculum introduced (ones the state has never seen):
    /// writes their files, records them as pending, and, when they come before the current
    /// exercise or the learner had finished the current one, makes the first of them current,
    /// so that a learner who updates backlings goes straight to the new topic. A file the
    /// learner deleted stays deleted, and learner files are never overwritten. Rewrites
    /// Cargo.toml if it changed. Returns the state.
    pub fn sync(&self) -> Result<State> {
        let info = &self.ws.pack.info;
        let unseen = |s: &State| {
            info.exercises
                .iter()
                .position(|e| !s.exercises.contains_key(&e.name))
        };
        self.relocate();
        let mut state = self.load()?;
        if unseen(&state).is_some() {
            state = self
                .update(|s| {
                    let current = s.current.as_deref().and_then(|n| info.index_of(n));
                    // Someone who finished everything sits on a done exercise: move them on too.
                    let current_done = s.current.as_deref().is_some_and(|n| s.is_done(n));
                    let first_new = unseen(s);
                    for ex in &info.exercises {
                        if s.exercises.contains_key(&ex.name) {
                            continue;
                        }
                        let path = self.ws.path(&ex.path());
                        if !path.exists()
                            && let Ok(bytes) = self.ws.pack.pristine(ex)
                        {
                            // Best effort: a file that cannot be written shows up as missing.
                            let _ = write_atomic(&path, &bytes);
                        }
                        s.entry(&ex.name);
                    }
                    if let (Some(cur), Some(new)) = (current, first_new)
                        && (new < cur || current_done)
                    {
                        s.current = Some(info.exercises[new].name.clone());
                    }
                })?
                .0;
        }
        self.ws.sync_manifest()?;
        Ok(state)
    }

    /// A newer curriculum may renumber a topic's folder (a track inserted before it). The
    /// learner's file then sits under the old folder: move it to the new one, by its name,
    /// which is unique in the pack. Never over an existing file; best effort, since a file
    /// that stays behind shows up as missing and is still there to move by hand.
    fn relocate(&self) {
        let exercises = self.ws.path("exercises");
        let mut folders = None;
        for ex in &self.ws.pack.info.exercises {
            let path = self.ws.path(&ex.path());
            if path.exists() {
                continue;
            }
            let folders = folders.get_or_insert_with(|| {
                std::fs::read_dir(&exercises)
                    .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
                    .unwrap_or_default()
            });
            let file = format!("{}.rs", ex.name);
            let Some(old) = folders.iter().map(|d| d.join(&file)).find(|f| f.is_file()) else {
                continue;
            };
            if let Some(dir) = path.parent()
                && std::fs::create_dir_all(dir).is_ok()
                && std::fs::rename(&old, &path).is_ok()
                && let Some(left) = old.parent()
            {
                // Only an emptied folder goes; anything else the learner keeps there stays.
                let _ = std::fs::remove_dir(left);
            }
        }
    }

    /// Records a verdict of one exercise. On a pass of the current exercise, the next pending
    /// one becomes current, and the reference solution is written to `solutions/`.
    pub fn record(&self, ex: &Exercise, verdict: &Verdict) -> Result<Recorded> {
        let info = &self.ws.pack.info;
        let (state, current) = self.update(|s| {
            apply_verdict(s, &ex.name, verdict);
            if verdict.passed() {
                advance_past(s, info, &ex.name);
            }
            s.current(info).name.clone()
        })?;
        let solution = if verdict.passed() {
            Some(self.write_solution(ex)?)
        } else {
            None
        };
        let all_done = state.done_count(info) == info.exercises.len();
        Ok(Recorded {
            state,
            solution,
            current,
            all_done,
        })
    }

    /// Builds and tests `exercises` in parallel, and recomputes their done-ness from the files
    /// themselves: each verdict counts as a run, as in `record`. Shared by `verify` and watch
    /// mode's "check all". The verdicts come back even when saving them failed (a full disk),
    /// so that the caller can show them first and the failure after.
    pub fn check_all(
        &self,
        bar: &ProgressBar,
        color: bool,
        exercises: &[&Exercise],
        jobs: usize,
        cancel: &Cancel,
    ) -> Result<(Vec<Verdict>, Result<State>)> {
        self.sync()?;
        bar.set_message("building");
        let opts = exec::Options {
            color,
            locked: false,
            jobs,
        };
        // The servers any of them needs, started once for all (or the reason they are not).
        let services = crate::services::provide(exercises);
        let verdicts = exec::run_many(
            &self.ws.root,
            &self.ws.pack,
            exercises,
            opts,
            &services,
            cancel,
            |_| bar.tick(),
            |i, _| {
                bar.set_message(exercises[i].name.clone());
                bar.inc(1);
            },
        )?;
        let saved = self
            .update(|s| {
                for (ex, v) in exercises.iter().zip(&verdicts) {
                    apply_verdict(s, &ex.name, v);
                }
                advance_if_done(s, &self.ws.pack.info);
            })
            .and_then(|(state, ())| {
                for (ex, v) in exercises.iter().zip(&verdicts) {
                    if v.passed() {
                        self.write_solution(ex)?;
                    }
                }
                Ok(state)
            });
        Ok((verdicts, saved))
    }

    /// Backs the learner's file up, restores the pristine one, and makes the exercise
    /// pending. Returns the backup's path.
    pub fn reset_one(&self, ex: &Exercise) -> Result<(Option<PathBuf>, State)> {
        let ws = self.ws;
        let path = ws.path(&ex.path());
        let pristine = ws.pack.pristine(ex)?;
        let mut backup = None;
        if let Ok(mine) = std::fs::read(&path)
            && mine != pristine[..]
        {
            backup = self.back_up(ex, &mine)?;
        }
        write_atomic(&path, &pristine).context(|| format!("cannot write {}", path.display()))?;
        let (state, ()) = self.update(|s| reset(s, &ex.name))?;
        ws.sync_manifest()?;
        Ok((backup, state))
    }

    /// Puts the shipped tests (the protected region) back under the learner's code, after a
    /// backup. Returns the backup's path, or `None` when the tests were already as shipped.
    pub fn reset_tests(&self, ex: &Exercise) -> Result<Option<PathBuf>> {
        let path = self.ws.path(&ex.path());
        let pristine = String::from_utf8_lossy(&self.ws.pack.pristine(ex)?).into_owned();
        let mine = std::fs::read(&path).unwrap_or_default();
        let mine_text = String::from_utf8_lossy(&mine);
        if !mine.is_empty() && protected::check(&pristine, &mine_text).is_ok() {
            return Ok(None);
        }
        let fixed = protected::restore(&pristine, &mine_text).unwrap_or(pristine);
        let backup = self.back_up(ex, &mine)?;
        write_atomic(&path, fixed.as_bytes())
            .context(|| format!("cannot write {}", path.display()))?;
        Ok(backup)
    }

    /// Copies the learner's file into `.backlings/backups/` under a name no backup has yet.
    fn back_up(&self, ex: &Exercise, mine: &[u8]) -> Result<Option<PathBuf>> {
        if mine.is_empty() {
            return Ok(None);
        }
        let dir = self.ws.path(DIR).join("backups");
        let mut dest = dir.join(format!("{}-{}.rs", ex.name, now_secs()));
        let mut n = 1;
        while dest.exists() {
            dest = dir.join(format!("{}-{}-{n}.rs", ex.name, now_secs()));
            n += 1;
        }
        write_atomic(&dest, mine)
            .context(|| format!("cannot back up {} (nothing was reset)", ex.path()))?;
        Ok(Some(dest))
    }

    /// The learner has seen hint `level` (0-based) of `name`.
    pub fn hint_seen(&self, name: &str, level: usize) -> Result<State> {
        let seen = u32::try_from(level + 1).unwrap_or(u32::MAX);
        Ok(self
            .update(|s| {
                let e = s.entry(name);
                e.hints_seen = e.hints_seen.max(seen);
            })?
            .0)
    }

    /// Makes `to` current, adding the time spent on `left`: one write, because it sits between
    /// a pass and the next exercise's build.
    pub fn move_to(&self, to: &str, left: &str, secs: u64) -> Result<State> {
        Ok(self
            .update(|s| {
                s.entry(left).time_spent_secs += secs;
                s.current = Some(to.to_string());
            })?
            .0)
    }

    pub fn add_time(&self, name: &str, secs: u64) -> Result<State> {
        Ok(self.update(|s| s.entry(name).time_spent_secs += secs)?.0)
    }

    pub fn write_solution(&self, ex: &Exercise) -> Result<PathBuf> {
        let path = self.ws.path(&ex.solution_path());
        let bytes = self.ws.pack.solution(ex)?;
        if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            write_atomic(&path, &bytes).context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> Info {
        let mut text = String::from(
            "format_version = 1\nwelcome_message = \"hi\"\nfinal_message = \"bye\"\n[[phases]]\nname = \"p\"\ntitle = \"P\"\n",
        );
        for name in ["a", "b", "c"] {
            text.push_str(&format!(
                "[[exercises]]\nname = \"{name}\"\ntopic = \"00_t\"\nphase = \"p\"\nhints = [\"h\"]\n"
            ));
        }
        Info::parse(&text, "info.toml").unwrap()
    }

    fn pass() -> Verdict {
        Verdict::Pass {
            report: String::new(),
        }
    }

    fn fail() -> Verdict {
        Verdict::TestsFailed {
            report: String::new(),
            failed: Vec::new(),
        }
    }

    #[test]
    fn every_verdict_that_ran_counts_a_run_and_only_the_first_pass_sets_done_at() {
        let mut s = State::default();
        apply_verdict(&mut s, "a", &pass());
        let first = s.get("a").done_at;
        apply_verdict(&mut s, "a", &pass());
        assert_eq!(s.get("a").runs, 2);
        assert_eq!(s.get("a").done_at, first);
        apply_verdict(&mut s, "a", &fail());
        assert!(!s.is_done("a"), "a failing run makes it pending again");
        apply_verdict(
            &mut s,
            "b",
            &Verdict::NeedsService {
                service: "redis".into(),
                why: "not installed".into(),
                instead: None,
            },
        );
        apply_verdict(&mut s, "c", &Verdict::Missing { path: "x".into() });
        assert_eq!(s.get("b").runs + s.get("c").runs, 0);
    }

    #[test]
    fn a_pass_of_the_current_exercise_moves_on_to_the_next_pending_one() {
        let info = info();
        let mut s = State {
            current: Some("a".into()),
            ..State::default()
        };
        apply_verdict(&mut s, "b", &pass());
        advance_past(&mut s, &info, "b");
        assert_eq!(s.current.as_deref(), Some("a"), "b was not current");
        apply_verdict(&mut s, "a", &pass());
        advance_past(&mut s, &info, "a");
        assert_eq!(s.current.as_deref(), Some("c"), "b is done: skipped");
        apply_verdict(&mut s, "c", &pass());
        reset(&mut s, "a");
        advance_if_done(&mut s, &info);
        assert_eq!(s.current.as_deref(), Some("a"));
    }
}
