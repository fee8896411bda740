//! A pack: `info.toml` (the ordered curriculum), `deps.toml` (the exercise dependency set),
//! `exercises/`, `solutions/` and, for authors, `mutants/`. The curriculum pack is embedded
//! in the binary; other packs are read from a folder.
mod info;
pub mod mutants;
pub mod protected;

pub use info::{Exercise, Info, is_valid_name};

use crate::error::{Context, Error, Result};
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// The name of the Cargo package every pack is built as: the learner's workspace, and the
/// packages `dev check` generates.
pub const PACKAGE: &str = "backlings-exercises";

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

#[derive(Clone)]
pub struct Pack {
    pub info: Info,
    source: Source,
}

#[derive(Clone)]
enum Source {
    Embedded,
    Dir(PathBuf),
}

impl Pack {
    /// The curriculum compiled into this binary.
    pub fn embedded() -> Result<Pack> {
        let text = embedded_file("info.toml")
            .ok_or_else(|| Error::new("this backlings binary has no embedded info.toml"))?;
        let info =
            Info::parse(&String::from_utf8_lossy(text), "info.toml (embedded)").map_err(|e| {
                Error::new(e.to_string()).help("this is a bug in backlings: please report it")
            })?;
        Ok(Pack {
            info,
            source: Source::Embedded,
        })
    }

    /// A pack in a folder, for authors and for third-party curricula.
    pub fn from_dir(dir: &Path) -> Result<Pack> {
        let path = dir.join("info.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::new(format!("cannot read {}: {e}", path.display()))
                .help("a pack is a folder with info.toml, deps.toml, exercises/ and solutions/")
        })?;
        let info = Info::parse(&text, &path.display().to_string())
            .map_err(|e| Error::new(e.to_string()))?;
        let dir = dir
            .canonicalize()
            .context(|| format!("cannot resolve {}", dir.display()))?;
        let pack = Pack {
            info,
            source: Source::Dir(dir),
        };
        pack.check_inside()?;
        Ok(pack)
    }

    /// Every file the pack ships, relative to its root.
    fn shipped_files(&self) -> Vec<String> {
        let mut files: Vec<String> = ["info.toml", "deps.toml", "deps.lock"]
            .map(String::from)
            .into();
        for ex in &self.info.exercises {
            files.push(ex.path());
            files.push(ex.solution_path());
        }
        files
    }

    /// Refuses a pack whose files lead outside its folder (a symlink to `/etc/passwd` as a
    /// solution would be compiled, printed and copied to learners).
    fn check_inside(&self) -> Result<()> {
        let Source::Dir(dir) = &self.source else {
            return Ok(());
        };
        for rel in self.shipped_files() {
            let path = dir.join(&rel);
            let Ok(real) = path.canonicalize() else {
                continue; // missing files are reported where they are needed
            };
            if !real.starts_with(dir) {
                return Err(Error::new(format!(
                    "{rel} in the pack {} leads outside the pack (to {}): a pack must contain its own files",
                    dir.display(),
                    real.display()
                ))
                .help(format!("replace the symlink {} with a copy of the file", path.display())));
            }
        }
        Ok(())
    }

    /// Copies what a learner's workspace needs (info.toml, deps, exercises, solutions) to
    /// `dest`, so that the workspace keeps working when the pack folder moves.
    pub fn copy_to(&self, dest: &Path) -> Result<()> {
        for rel in self.shipped_files() {
            if let Some(bytes) = self.file(&rel) {
                let to = dest.join(&rel);
                crate::fsutil::write_atomic(&to, &bytes)
                    .context(|| format!("cannot write {}", to.display()))?;
            }
        }
        Ok(())
    }

    /// The folder a pack was read from, or `None` for the embedded one.
    pub fn dir(&self) -> Option<&Path> {
        match &self.source {
            Source::Embedded => None,
            Source::Dir(d) => Some(d),
        }
    }

    /// A file of the pack by its path relative to the pack root, e.g. `solutions/01_types/x.rs`.
    pub fn file(&self, rel: &str) -> Option<Cow<'static, [u8]>> {
        match &self.source {
            Source::Embedded => embedded_file(rel).map(Cow::Borrowed),
            Source::Dir(d) => std::fs::read(d.join(rel)).ok().map(Cow::Owned),
        }
    }

    pub fn pristine(&self, ex: &Exercise) -> Result<Cow<'static, [u8]>> {
        self.file(&ex.path())
            .ok_or_else(|| Error::new(format!("the pack has no file {}", ex.path())))
    }

    pub fn solution(&self, ex: &Exercise) -> Result<Cow<'static, [u8]>> {
        self.file(&ex.solution_path())
            .ok_or_else(|| Error::new(format!("the pack has no solution {}", ex.solution_path())))
    }

    /// The `[dependencies]`/`[dev-dependencies]` tables that every exercise builds with.
    pub fn deps_toml(&self) -> String {
        self.file("deps.toml")
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The Cargo.lock shipped to learners, if the pack has one.
    pub fn deps_lock(&self) -> Option<Vec<u8>> {
        self.file("deps.lock").map(Cow::into_owned)
    }
}

fn embedded_file(rel: &str) -> Option<&'static [u8]> {
    embedded::FILES
        .binary_search_by(|(p, _)| (*p).cmp(rel))
        .ok()
        .map(|i| embedded::FILES[i].1)
}
