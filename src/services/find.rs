//! Finding a server's binaries with `which`: on PATH, then in `pg_config --bindir`, then in
//! Debian's `/usr/lib/postgresql/<version>/bin` (the newest first), which is not on PATH there,
//! and Homebrew's keg-only `postgresql@<version>`.
//! `BACKLINGS_SERVICE_PATH` (a PATH-like list, possibly empty) replaces the whole search: the
//! tests hide the servers with it, and a learner can point at a particular installation.
use std::path::{Path, PathBuf};

/// Replaces the search for server binaries: only these folders are looked in.
pub const SEARCH_VAR: &str = "BACKLINGS_SERVICE_PATH";

/// The first folder that holds every one of `bins`, each as an executable file, with their
/// paths; or where it looked.
pub fn find(bins: &[&str]) -> Result<Vec<PathBuf>, String> {
    let dirs = candidates();
    for dir in &dirs {
        let found: Option<Vec<PathBuf>> = bins
            .iter()
            .map(|b| which::which_in(b, Some(dir), dir).ok())
            .collect();
        if let Some(found) = found {
            return Ok(found);
        }
    }
    let searched = match std::env::var_os(SEARCH_VAR) {
        Some(v) if v.is_empty() => format!("{SEARCH_VAR} is set and empty"),
        Some(_) => format!("searched {SEARCH_VAR} only"),
        None => "searched PATH, pg_config --bindir, /usr/lib/postgresql/*/bin and Homebrew's postgresql@*".to_string(),
    };
    Err(format!("{} not found ({searched})", bins.join(" and ")))
}

/// The folders to look in, in order.
fn candidates() -> Vec<PathBuf> {
    if let Some(v) = std::env::var_os(SEARCH_VAR) {
        return std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Ok(pg_config) = which::which("pg_config")
        && let Ok(out) = std::process::Command::new(pg_config)
            .arg("--bindir")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
        && out.status.success()
    {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !dir.is_empty() {
            dirs.push(PathBuf::from(dir));
        }
    }
    dirs.extend(debian_bindirs(Path::new("/usr/lib/postgresql")));
    // Homebrew's postgresql@N is keg-only: not on PATH after `brew install postgresql@16`.
    for prefix in ["/opt/homebrew/opt", "/usr/local/opt"] {
        dirs.extend(homebrew_bindirs(Path::new(prefix)));
    }
    dirs
}

/// `<prefix>/postgresql@<major>/bin` (Homebrew), the newest major version first.
fn homebrew_bindirs(prefix: &Path) -> Vec<PathBuf> {
    versioned_bindirs(prefix, "postgresql@")
}

/// `<root>/<major>/bin` (Debian), the newest major version first.
fn debian_bindirs(root: &Path) -> Vec<PathBuf> {
    versioned_bindirs(root, "")
}

/// `<dir>/<name_prefix><major>/bin` for every entry named so, the newest major version first.
fn versioned_bindirs(dir: &Path, name_prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut versions: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let major = name.to_str()?.strip_prefix(name_prefix)?.parse().ok()?;
            Some((major, e.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    versions.into_iter().map(|(_, p)| p).collect()
}

/// The first line a binary prints for `--version`, if it runs.
pub fn version(bin: &Path) -> Option<String> {
    let out = std::process::Command::new(bin)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_versions_are_tried_newest_first_and_other_names_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        for d in ["9", "16", "15", "common"] {
            std::fs::create_dir_all(tmp.path().join(d).join("bin")).unwrap();
        }
        let dirs = debian_bindirs(tmp.path());
        let names: Vec<_> = dirs
            .iter()
            .map(|p| p.parent().unwrap().file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["16", "15", "9"]);
        for d in ["postgresql@14", "postgresql@17", "redis"] {
            std::fs::create_dir_all(tmp.path().join(d).join("bin")).unwrap();
        }
        let brew: Vec<_> = homebrew_bindirs(tmp.path())
            .iter()
            .map(|p| {
                p.parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(brew, ["postgresql@17", "postgresql@14"]);
    }
}
