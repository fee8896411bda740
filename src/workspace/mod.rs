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

    /// Adds the files of exercises that a newer curriculum introduced (ones the state has
    /// never seen: a file the learner deleted stays deleted), then rewrites Cargo.toml if it
    /// changed. Never overwrites learner files.
    pub fn sync(&self, state: &crate::state::State) -> Result<()> {
        for ex in &self.pack.info.exercises {
            let path = self.path(&ex.path());
            if !path.exists()
                && !state.exercises.contains_key(&ex.name)
                && let Ok(bytes) = self.pack.pristine(ex)
            {
                write_atomic(&path, &bytes)
                    .context(|| format!("cannot write {}", path.display()))?;
            }
        }
        self.sync_manifest()
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
