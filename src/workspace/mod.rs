//! The learner workspace: an ordinary Cargo package plus `.backlings/`. Commands find it the
//! way cargo finds `Cargo.toml`: from the current folder upwards.
pub mod init;
pub mod manifest;

use crate::error::{Context, Error, Result};
use crate::fsutil::write_atomic;
use crate::pack::{Exercise, Pack};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const DIR: &str = ".backlings";
const MARKER: &str = ".backlings/workspace.toml";

#[derive(Serialize, Deserialize, Default)]
struct WorkspaceFile {
    /// A pack folder this workspace was created from; none means the embedded curriculum.
    pack: Option<PathBuf>,
}

#[derive(Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub pack: Pack,
}

impl Workspace {
    pub fn find_from(start: &Path) -> Result<Workspace> {
        let root = start
            .ancestors()
            .find(|d| d.join(MARKER).is_file())
            .ok_or_else(|| {
                Error::new("this folder is not inside a backlings workspace")
                    .help("create one with `backlings init`, or `cd` into the folder it made")
            })?;
        let text = std::fs::read_to_string(root.join(MARKER))
            .context(|| format!("cannot read {MARKER}"))?;
        let file: WorkspaceFile = toml::from_str(&text)
            .context(|| format!("{} is not valid", root.join(MARKER).display()))?;
        let pack = match &file.pack {
            Some(dir) => Pack::from_dir(dir)?,
            None => Pack::embedded()?,
        };
        Ok(Workspace {
            root: root.to_path_buf(),
            pack,
        })
    }

    pub fn find() -> Result<Workspace> {
        let cwd = std::env::current_dir().context(|| "cannot read the current folder".into())?;
        Self::find_from(&cwd)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn exercise(&self, name: &str) -> Result<&Exercise> {
        self.pack.info.exercise(name).ok_or_else(|| {
            let close: Vec<&str> = self
                .pack
                .info
                .exercises
                .iter()
                .map(|e| e.name.as_str())
                .filter(|n| n.contains(name) || name.contains(*n))
                .take(3)
                .collect();
            let help = if close.is_empty() {
                "see `backlings list` for every name".to_string()
            } else {
                format!("did you mean {}?", close.join(", "))
            };
            Error::new(format!("there is no exercise named {name:?}")).help(help)
        })
    }

    /// Adopts exercises that a newer curriculum introduced (ones the state has never seen):
    /// writes their files, records them as pending, and, when they come before the current
    /// exercise or the learner had finished the current one, makes the first of them current,
    /// so that a learner who updates backlings goes straight to the new topic. A file the learner deleted stays deleted, and learner
    /// files are never overwritten. Rewrites Cargo.toml if it changed. Returns the state.
    pub fn sync(&self) -> Result<crate::state::State> {
        use crate::state::State;
        let info = &self.pack.info;
        let unseen = |s: &State| {
            info.exercises
                .iter()
                .position(|e| !s.exercises.contains_key(&e.name))
        };
        let mut state = State::load(&self.root);
        if unseen(&state).is_some() {
            let (updated, ()) = State::update(self, |s| {
                let current = s.current.as_deref().and_then(|n| info.index_of(n));
                // Someone who finished everything sits on a done exercise: move them on too.
                let current_done = s.current.as_deref().is_some_and(|n| s.is_done(n));
                let first_new = unseen(s);
                for ex in &info.exercises {
                    if s.exercises.contains_key(&ex.name) {
                        continue;
                    }
                    let path = self.path(&ex.path());
                    if !path.exists()
                        && let Ok(bytes) = self.pack.pristine(ex)
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
            })?;
            state = updated;
        }
        self.sync_manifest()?;
        Ok(state)
    }

    pub fn sync_manifest(&self) -> Result<()> {
        let manifest = manifest::generate(&self.pack, &self.root);
        let path = self.path("Cargo.toml");
        if std::fs::read_to_string(&path).ok().as_deref() != Some(&manifest) {
            write_atomic(&path, manifest.as_bytes())
                .context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}
