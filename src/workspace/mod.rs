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
/// A copy of a pack given to `init --pack`, for when the pack folder moves away.
const PACK_COPY: &str = ".backlings/pack";

#[derive(Serialize, Deserialize, Default)]
struct WorkspaceFile {
    /// A pack folder this workspace was created from; none means the embedded curriculum.
    /// Read from there while it exists, so that an author's edits show up; from the copy
    /// in `.backlings/pack` once it is gone.
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
        let copy = root.join(PACK_COPY);
        let pack = match &file.pack {
            Some(dir) if !dir.join("info.toml").exists() && copy.join("info.toml").is_file() => {
                Pack::from_dir(&copy)?
            }
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
            let mut close: Vec<(f64, &str)> = self
                .pack
                .info
                .exercises
                .iter()
                .filter_map(|e| Some((similarity(name, &e.name)?, e.name.as_str())))
                .collect();
            close.sort_by(|a, b| b.0.total_cmp(&a.0));
            let close: Vec<&str> = close.into_iter().take(3).map(|(_, n)| n).collect();
            let help = if close.is_empty() {
                "see `backlings list` for every name".to_string()
            } else {
                format!("did you mean {}?", close.join(", "))
            };
            Error::new(format!("there is no exercise named {name:?}")).help(help)
        })
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

/// How close `name` is to what was typed, if close enough to suggest. Jaro-Winkler (the
/// string distance clap's own "did you mean" uses) weighs transpositions and a shared start,
/// so it catches typos and half-typed names, where plain substrings matched unrelated names.
fn similarity(typed: &str, name: &str) -> Option<f64> {
    let score = strsim::jaro_winkler(typed, name);
    (!typed.is_empty() && score >= 0.8).then_some(score)
}

#[cfg(test)]
mod tests {
    use super::similarity;

    fn is_close(typed: &str, name: &str) -> bool {
        similarity(typed, name).is_some()
    }

    #[test]
    fn suggestions_are_close_names_not_substrings() {
        assert!(is_close("failing", "failing_test"));
        assert!(is_close("compile_eror", "compile_error"));
        assert!(
            !is_close("", "failing_test"),
            "empty input gets no suggestion"
        );
        assert!(!is_close("t", "failing_test"), "one letter is not a name");
        assert!(!is_close("floods", "compile_error"));
    }
}
