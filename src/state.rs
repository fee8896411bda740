//! Progress in `.backlings/state.toml`: the data and its file. Keyed by exercise name, so
//! curriculum updates that add, remove or reorder exercises keep it. Written atomically,
//! under a lock, re-read before each change, so that watch mode and a `backlings run` in
//! another terminal lose nothing. What "done", "pending" and "advance" mean lives in
//! `progress.rs`; this module only reads, guards and writes.
//!
//! The loader never prints: what it had to repair comes back as a warning for the caller
//! to show (on stderr for commands, on the screen in watch mode).
use crate::error::{Context, Error, Result};
use crate::fsutil::{move_aside, now_secs, write_atomic};
use crate::pack::{Exercise, Info};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use toml::Value;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct State {
    pub format_version: u32,
    pub current: Option<String>,
    pub exercises: BTreeMap<String, ExerciseState>,
}

#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct ExerciseState {
    pub status: Status,
    pub done_at: Option<u64>,
    pub runs: u32,
    pub time_spent_secs: u64,
    pub hints_seen: u32,
}

#[derive(Serialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
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

impl State {
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
    pub fn current<'a>(&self, info: &'a Info) -> &'a Exercise {
        self.current
            .as_deref()
            .and_then(|n| info.exercise(n))
            .or_else(|| self.first_pending(info, 0))
            .unwrap_or_else(|| info.exercises.last().expect("a pack has exercises"))
    }

    /// The first pending exercise at or after position `from`, wrapping around.
    pub fn first_pending<'a>(&self, info: &'a Info, from: usize) -> Option<&'a Exercise> {
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
}

/// Why a state file was not taken as it is.
#[derive(Debug, PartialEq)]
enum Unreadable {
    /// Written by a newer backlings: refused, and left as it is.
    Newer(i64),
    /// Not a state file at all: moved aside and rebuilt.
    Corrupt(String),
}

/// Reads a state file leniently: whatever is not understood in one entry falls back to that
/// field's default (an unknown status is pending), and the other entries are kept whole.
fn parse(text: &str) -> Result<State, Unreadable> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| Unreadable::Corrupt(e.message().to_string()))?;
    let version = table
        .get("format_version")
        .and_then(Value::as_integer)
        .ok_or_else(|| Unreadable::Corrupt("it has no format_version".into()))?;
    if version > i64::from(FORMAT_VERSION) {
        return Err(Unreadable::Newer(version));
    }
    if version != i64::from(FORMAT_VERSION) {
        return Err(Unreadable::Corrupt(format!(
            "format_version {version} is unknown"
        )));
    }
    let exercises = match table.get("exercises") {
        None => BTreeMap::new(),
        Some(Value::Table(t)) => t
            .iter()
            .filter_map(|(name, v)| Some((name.clone(), entry(v.as_table()?))))
            .collect(),
        Some(_) => return Err(Unreadable::Corrupt("`exercises` is not a table".into())),
    };
    Ok(State {
        format_version: FORMAT_VERSION,
        current: table
            .get("current")
            .and_then(Value::as_str)
            .map(str::to_string),
        exercises,
    })
}

fn entry(t: &toml::Table) -> ExerciseState {
    let int = |key: &str| t.get(key).and_then(Value::as_integer);
    ExerciseState {
        status: match t.get("status").and_then(Value::as_str) {
            Some("done") => Status::Done,
            _ => Status::Pending,
        },
        done_at: int("done_at").and_then(|i| u64::try_from(i).ok()),
        runs: int("runs").and_then(|i| u32::try_from(i).ok()).unwrap_or(0),
        time_spent_secs: int("time_spent_secs")
            .and_then(|i| u64::try_from(i).ok())
            .unwrap_or(0),
        hints_seen: int("hints_seen")
            .and_then(|i| u32::try_from(i).ok())
            .unwrap_or(0),
    }
}

/// The state file of one workspace, and the warnings its loader has collected.
#[derive(Clone)]
pub struct Store {
    dir: PathBuf,
    warnings: Arc<Mutex<Vec<String>>>,
}

impl Store {
    /// `dir` is the workspace's `.backlings` folder.
    pub fn new(dir: PathBuf) -> Store {
        Store {
            dir,
            warnings: Arc::default(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("state.toml")
    }

    /// What the loader had to repair since the last call, for the caller to show.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().unwrap())
    }

    /// Reads the state. A missing file is a fresh start. A corrupt or unreadable one is moved
    /// aside under a name no other file has (the path goes into a warning) and rebuilt empty:
    /// `backlings verify` recomputes what is done from the files themselves. A file from a
    /// newer backlings is refused and left untouched, so that a downgrade loses nothing.
    pub fn load(&self) -> Result<State> {
        let path = self.path();
        let problem = match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(e) => e.to_string(),
            Ok(bytes) => match std::str::from_utf8(&bytes) {
                Err(_) => "it is not UTF-8 text".into(),
                Ok(text) => match parse(text) {
                    Ok(state) => return Ok(state),
                    Err(Unreadable::Newer(v)) => {
                        return Err(Error::new(format!(
                            "{} was written by a newer backlings (state format {v}; this one reads format {FORMAT_VERSION}); it was left as it is",
                            path.display()
                        ))
                        .help("upgrade backlings (`cargo install --locked backlings`, or build the newer version again)"));
                    }
                    Err(Unreadable::Corrupt(why)) => why,
                },
            },
        };
        let aside = path.with_file_name(format!("state.toml.corrupt-{}", now_secs()));
        let moved = match move_aside(&path, &aside) {
            Ok(to) => format!(" The old file was moved to {}.", to.display()),
            Err(e) => format!(" It could not be moved aside ({e})."),
        };
        self.warnings.lock().unwrap().push(format!(
            "{} could not be read ({problem}), so progress starts afresh.{moved}\nRun `backlings verify` to mark every exercise you already solved as done.",
            path.display()
        ));
        Ok(State::default())
    }

    fn save(&self, state: &State) -> Result<()> {
        let text = toml::to_string(state).expect("state serializes");
        let path = self.path();
        write_atomic(&path, text.as_bytes())
            .context(|| format!("cannot save progress to {}", path.display()))
    }

    /// Locks, re-reads, applies `f`, writes. The only way state is changed.
    pub fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<(State, T)> {
        let _lock = self.lock()?;
        let mut state = self.load()?;
        let out = f(&mut state);
        self.save(&state)?;
        Ok((state, out))
    }

    /// An exclusive lock on the state, held while reading, changing and writing it; released
    /// when the file is closed.
    fn lock(&self) -> Result<File> {
        let path = self.dir.join("state.lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .context(|| format!("cannot open {} to save progress", path.display()))?;
        // Retried when a signal interrupts the wait. Where the file system has no locks
        // (some network mounts), it goes on unlocked: the write itself is still atomic.
        loop {
            match f.lock() {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                _ => return Ok(f),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join(".backlings"));
        std::fs::create_dir(dir.path().join(".backlings")).unwrap();
        (dir, store)
    }

    fn files(store: &Store) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&store.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn round_trips_through_toml() {
        let mut s = State {
            current: Some("a".into()),
            ..State::default()
        };
        s.entry("a").runs = 2;
        s.entry("a").status = Status::Done;
        s.entry("b").hints_seen = 2;
        assert_eq!(parse(&toml::to_string(&s).unwrap()), Ok(s));
    }

    #[test]
    fn corrupt_state_is_moved_aside_with_a_warning_and_never_printed() {
        let (_dir, store) = store();
        std::fs::write(store.path(), "garbage = [").unwrap();
        assert_eq!(store.load().unwrap(), State::default());
        assert!(files(&store)[0].starts_with("state.toml.corrupt-"));
        let warnings = store.take_warnings();
        assert!(warnings[0].contains("state.toml.corrupt-"), "{warnings:?}");
        assert!(
            store.take_warnings().is_empty(),
            "each warning is given once"
        );
    }

    #[test]
    fn two_recoveries_in_the_same_second_keep_both_files() {
        let (_dir, store) = store();
        for text in ["first = [", "second = ["] {
            std::fs::write(store.path(), text).unwrap();
            store.load().unwrap();
        }
        let names = files(&store);
        assert_eq!(names.len(), 2, "{names:?}");
        let kept: Vec<String> = names
            .iter()
            .map(|n| std::fs::read_to_string(store.dir.join(n)).unwrap())
            .collect();
        assert!(kept.contains(&"first = [".to_string()), "{kept:?}");
        assert!(kept.contains(&"second = [".to_string()), "{kept:?}");
    }

    #[test]
    fn a_newer_format_is_refused_and_left_untouched() {
        let (_dir, store) = store();
        let text = "format_version = 2\ncurrent = \"a\"\n[exercises.a]\nstatus = \"done\"\n";
        std::fs::write(store.path(), text).unwrap();
        let err = store.load().unwrap_err();
        assert!(err.message.contains("newer backlings"), "{}", err.message);
        assert!(err.message.contains("format 2"), "{}", err.message);
        assert!(err.help.unwrap().contains("upgrade backlings"));
        assert!(store.update(|s| s.current = None).is_err());
        assert_eq!(std::fs::read_to_string(store.path()).unwrap(), text);
        assert_eq!(files(&store), ["state.lock", "state.toml"]);
    }

    #[test]
    fn one_odd_entry_does_not_lose_the_others() {
        let (_dir, store) = store();
        std::fs::write(
            store.path(),
            "format_version = 1\ncurrent = \"b\"\n\
             [exercises.a]\nstatus = \"done\"\nruns = 3\n\
             [exercises.b]\nstatus = \"half-done\"\nruns = 7\nhints_seen = 2\ntime_spent_secs = 60\n\
             [exercises.c]\nstatus = \"done\"\nruns = \"many\"\n",
        )
        .unwrap();
        let s = store.load().unwrap();
        assert!(store.take_warnings().is_empty());
        assert_eq!(s.current.as_deref(), Some("b"));
        assert!(s.is_done("a") && s.get("a").runs == 3);
        let b = s.get("b");
        assert_eq!(b.status, Status::Pending, "an unknown status is pending");
        assert_eq!((b.runs, b.hints_seen, b.time_spent_secs), (7, 2, 60));
        assert!(s.is_done("c") && s.get("c").runs == 0);
    }
}
