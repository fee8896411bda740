//! Writes that never leave a half-written file behind: temp file, fsync, rename.
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically. The temp file (uniquely named by tempfile, so two
/// processes never share one) sits in the target's folder, so the rename stays on one
/// file system; it is removed if anything fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".backlings-tmp-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // Make the rename itself durable.
    File::open(dir)?.sync_all()
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Moves `from` to a name built from `stem` that does not exist yet (`stem`, `stem-1`, ...),
/// and never replaces an existing file: a hard link fails when the name is taken, where a
/// rename would silently overwrite. Returns the new path.
pub fn move_aside(from: &Path, stem: &Path) -> io::Result<std::path::PathBuf> {
    for n in 0..1000 {
        let to = if n == 0 {
            stem.to_path_buf()
        } else {
            let mut s = stem.as_os_str().to_owned();
            s.push(format!("-{n}"));
            s.into()
        };
        match fs::hard_link(from, &to) {
            Ok(()) => {
                fs::remove_file(from)?;
                return Ok(to);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            // No hard links here (some network mounts): check, then rename.
            Err(_) if !to.exists() => {
                fs::rename(from, &to)?;
                return Ok(to);
            }
            Err(_) => continue,
        }
    }
    Err(io::Error::other(format!(
        "too many files named {}-N already",
        stem.display()
    )))
}
