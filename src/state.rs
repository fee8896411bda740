//! Progress in `.backlings/state.toml`: keyed by exercise name, so curriculum updates that
//! add, remove or reorder exercises keep it. Written atomically, under a lock, re-read before
//! each change, so that watch mode and a `backlings run` in another terminal lose nothing.
use crate::error::{Context, Result};
use crate::fsutil::{now_secs, write_atomic};
use crate::pack::Info;
use crate::workspace::{DIR, Workspace};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct State {
    pub format_version: u32,
    pub current: Option<String>,
    #[serde(default)]
    pub exercises: BTreeMap<String, ExerciseState>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct ExerciseState {
    #[serde(default)]
    pub status: Status,
    pub done_at: Option<u64>,
    #[serde(default)]
    pub runs: u32,
    #[serde(default)]
    pub time_spent_secs: u64,
    #[serde(default)]
    pub hints_seen: u32,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Pending,
    Done,
}

impl Default for State {
    fn default() -> Self {
        State {
            format_version: FORMAT_VERSION,
            current: None,
            exercises: BTreeMap::new(),
        }
    }
}

fn state_path(root: &Path) -> PathBuf {
    root.join(DIR).join("state.toml")
}

/// An exclusive lock on the state, held while reading, changing and writing it.
struct Lock {
    _file: File,
}

impl Lock {
    fn acquire(root: &Path) -> Result<Lock> {
        let path = root.join(DIR).join("state.lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: flock(2) on a descriptor we own; released when the file is closed.
        // Retried when a signal interrupts the wait. Where the file system has no locks
        // (some network mounts), it goes on unlocked: the write itself is still atomic.
        while unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0
            && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
        {}
        Ok(Lock { _file: f })
    }
}

impl State {
    /// Reads the state. A corrupt file is moved aside (and said so on stderr) and rebuilt empty:
    /// `backlings verify` recomputes what is done from the files themselves.
    pub fn load(root: &Path) -> State {
        let path = state_path(root);
        let Ok(text) = std::fs::read(&path) else {
            return State::default();
        };
        match std::str::from_utf8(&text)
            .ok()
            .and_then(|t| toml::from_str::<State>(t).ok())
        {
            Some(s) if s.format_version == FORMAT_VERSION => s,
            _ => {
                let aside = path.with_file_name(format!("state.toml.corrupt-{}", now_secs()));
                let moved = std::fs::rename(&path, &aside).is_ok();
                eprintln!(
                    "warning: {} could not be read, so progress starts afresh.{}\n         Run `backlings verify` to mark every exercise you already solved as done.",
                    path.display(),
                    if moved {
                        format!(" The old file was moved to {}.", aside.display())
                    } else {
                        String::new()
                    }
                );
                State::default()
            }
        }
    }

    fn save(&self, root: &Path) -> Result<()> {
        let text = toml::to_string(self).expect("state serializes");
        let path = state_path(root);
        write_atomic(&path, text.as_bytes())
            .context(|| format!("cannot save progress to {}", path.display()))
    }

    /// Locks, re-reads, applies `f`, writes. The only way state is changed.
    pub fn update<T>(ws: &Workspace, f: impl FnOnce(&mut State) -> T) -> Result<(State, T)> {
        let _lock = Lock::acquire(&ws.root)?;
        let mut state = State::load(&ws.root);
        let out = f(&mut state);
        state.save(&ws.root)?;
        Ok((state, out))
    }

    pub fn get(&self, name: &str) -> ExerciseState {
        self.exercises.get(name).cloned().unwrap_or_default()
    }

    pub fn entry(&mut self, name: &str) -> &mut ExerciseState {
        self.exercises.entry(name.to_string()).or_default()
    }

    pub fn is_done(&self, name: &str) -> bool {
        self.exercises
            .get(name)
            .is_some_and(|e| e.status == Status::Done)
    }

    /// The exercise watch mode and `run` work on: the saved one, or else the first pending.
    pub fn current<'a>(&self, info: &'a Info) -> &'a crate::pack::Exercise {
        self.current
            .as_deref()
            .and_then(|n| info.exercise(n))
            .or_else(|| self.first_pending(info, 0))
            .unwrap_or_else(|| info.exercises.last().expect("a pack has exercises"))
    }

    /// The first pending exercise at or after position `from`, wrapping around.
    pub fn first_pending<'a>(
        &self,
        info: &'a Info,
        from: usize,
    ) -> Option<&'a crate::pack::Exercise> {
        let n = info.exercises.len();
        (0..n)
            .map(|k| &info.exercises[(from + k) % n])
            .find(|e| !self.is_done(&e.name))
    }

    pub fn done_count(&self, info: &Info) -> usize {
        info.exercises
            .iter()
            .filter(|e| self.is_done(&e.name))
            .count()
    }

    /// Records a verdict; returns true when this run finished the exercise for the first time.
    pub fn record_run(&mut self, name: &str, passed: bool) -> bool {
        let e = self.entry(name);
        e.runs += 1;
        let newly = passed && e.status != Status::Done;
        if newly {
            e.status = Status::Done;
            e.done_at = Some(now_secs());
        } else if !passed {
            e.status = Status::Pending;
        }
        newly
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_toml() {
        let mut s = State {
            current: Some("a".into()),
            ..State::default()
        };
        assert!(s.record_run("a", true));
        assert!(!s.record_run("a", true), "only the first pass is new");
        s.entry("b").hints_seen = 2;
        let back: State = toml::from_str(&toml::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.get("a").runs, 2);
    }

    #[test]
    fn a_failing_run_makes_a_done_exercise_pending_again() {
        let mut s = State::default();
        s.record_run("a", true);
        s.record_run("a", false);
        assert!(!s.is_done("a"));
    }

    #[test]
    fn corrupt_state_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(DIR)).unwrap();
        std::fs::write(state_path(dir.path()), "garbage = [").unwrap();
        assert_eq!(State::load(dir.path()), State::default());
        let names: Vec<String> = std::fs::read_dir(dir.path().join(DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().any(|n| n.starts_with("state.toml.corrupt-")),
            "{names:?}"
        );
    }
}
