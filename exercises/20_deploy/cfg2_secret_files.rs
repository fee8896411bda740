// cfg2_secret_files: secrets come from files only their owner can read, and never print
//
// A password in an environment variable is easy to leak: `docker inspect` shows it, every
// child process inherits it, and a crash report dumps it. So orchestrators mount secrets as
// files (Docker's `/run/secrets/<name>`, a Kubernetes secret volume) and the service is told
// where by `DB_PASSWORD_FILE`. Here it wins over `DB_PASSWORD` (the official postgres and
// mysql images refuse to start when both are set). Two checks make the file safe to trust.
// Its mode: if group or others have any permission (`mode & 0o077 != 0`), someone else on the
// host may read it, so refuse to start and say why. Its content: `echo pw > file` adds one
// newline, which is not part of the password (but spaces may be). And once read, the value
// lives in a `Secret<T>` whose `Debug` prints `[redacted]`, so a `{config:?}` in a log line
// cannot leak it.
//
// Why it matters: a startup log line printed the whole config struct with `{:?}`; the database
// password sat in the log store for a year, readable by everyone with dashboard access.
//
// Production caveat: the orchestrators' defaults fail this check: Kubernetes secret volumes
// default to mode 0644, Docker swarm secrets to 0444. Set `defaultMode: 0400` on the volume
// (an `fsGroup` may still add group bits) or `mode: 0400` in the service's long-syntax
// `secrets:` entry. The failed start is by design: fix the manifest, not the check.
//
// What to do: finish `read_secret_file`: refuse a file that group or others may access, and
// strip one trailing newline. Run `backlings hint` if you are stuck.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A value that never shows up in `Debug` output. Read it with `expose`.
#[derive(Clone, PartialEq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug)]
pub struct DbConfig {
    pub user: String,
    pub password: Secret<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{0} (or {0}_FILE) is required")]
    Missing(String),
    #[error("cannot read {path:?}: {source}")]
    Read { path: PathBuf, source: io::Error },
    /// `mode`: the permission bits only (`mode & 0o777`).
    #[error("{path:?} has mode {mode:o}: group or others may read it; chmod 600 it")]
    TooOpen { path: PathBuf, mode: u32 },
}

/// Reads a secret file: only its owner may access it; one trailing newline is not part of it.
pub fn read_secret_file(path: &Path) -> Result<Secret<String>, SecretError> {
    let err = |source| SecretError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(err)?;
    // TODO: a file that group or others may access is refused with `TooOpen` (its mode is in
    // the file's metadata), and one trailing newline is not part of the secret.
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(err)?;
    Ok(Secret(text))
}

/// `{name}_FILE` wins over `{name}`: the file is where the orchestrator put the secret.
pub fn secret(
    env: &impl Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Secret<String>, SecretError> {
    match env(&format!("{name}_FILE")) {
        Some(path) => read_secret_file(Path::new(&path)),
        None => env(name)
            .map(Secret)
            .ok_or_else(|| SecretError::Missing(name.to_string())),
    }
}

pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<DbConfig, SecretError> {
    Ok(DbConfig {
        user: env("DB_USER").unwrap_or_else(|| "app".to_string()),
        password: secret(&env, "DB_PASSWORD")?,
    })
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::fs;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A file in the temp dir with a unique name (nothing in the name tells its mode),
    /// removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(content: &str, mode: u32) -> TempFile {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::SeqCst);
            let path = std::env::temp_dir().join(format!("cfg2-{}-{n}", std::process::id()));
            fs::write(&path, content).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            TempFile(path)
        }
        fn env_value(&self) -> String {
            self.0.to_str().unwrap().to_string()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = fs::remove_file(&self.0);
        }
    }

    fn env(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn an_owner_only_file_is_read_without_its_trailing_newline() {
        let cases = [
            ("s3cret\n", 0o600, "s3cret"),
            ("  pass phrase \t\n", 0o400, "  pass phrase \t"),
            ("no-newline", 0o600, "no-newline"),
            ("two\n\n", 0o700, "two\n"),
            ("x\n", 0o500, "x"),
        ];
        for (content, mode, want) in cases {
            let file = TempFile::new(content, mode);
            match read_secret_file(&file.0) {
                Ok(s) => assert_eq!(
                    s.expose(),
                    want,
                    "file {content:?} with mode {mode:o}: expected {want:?} (exactly one \
                     trailing newline removed, spaces kept)"
                ),
                Err(e) => panic!("mode {mode:o} is owner-only and must be accepted, got: {e}"),
            }
        }
        for mode in [0o200, 0o300] {
            let file = TempFile::new("x", mode);
            let res = read_secret_file(&file.0);
            assert!(
                !matches!(res, Err(SecretError::TooOpen { .. })),
                "mode {mode:o} is owner-only: reading may fail, but never with TooOpen: {res:?}"
            );
        }
    }

    #[test]
    fn a_symlink_is_judged_by_the_file_it_points_to() {
        // Kubernetes mounts `password -> ..data/password`; the link itself is always 0777.
        for (mode, ok) in [(0o600, true), (0o400, true), (0o644, false), (0o640, false)] {
            let file = TempFile::new("via-link\n", mode);
            let link = TempFile(PathBuf::from(format!("{}-link", file.env_value())));
            std::os::unix::fs::symlink(&file.0, &link.0).unwrap();
            match (read_secret_file(&link.0), ok) {
                (Ok(s), true) => assert_eq!(s.expose(), "via-link"),
                (Err(SecretError::TooOpen { mode: got, .. }), false) => assert_eq!(
                    got, mode,
                    "TooOpen's mode is the target's {mode:o}, not the link's 777"
                ),
                (res, _) => panic!(
                    "a symlink to a file with mode {mode:o}: expected {}, got {res:?}",
                    if ok { "its content" } else { "TooOpen" }
                ),
            }
        }
    }

    #[test]
    fn a_file_group_or_others_may_access_is_refused() {
        for mode in [0o644, 0o640, 0o604, 0o620, 0o601, 0o610, 0o660, 0o666] {
            let file = TempFile::new("hunter2\n", mode);
            match read_secret_file(&file.0) {
                Err(SecretError::TooOpen { path, mode: got }) => {
                    assert_eq!(path, file.0);
                    assert_eq!(got, mode, "TooOpen's mode: the permission bits {mode:o}");
                }
                other => {
                    panic!("mode {mode:o} lets group or others in: expected TooOpen, got {other:?}")
                }
            }
            let msg = load(env(&[("DB_PASSWORD_FILE", file.env_value())]))
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains(&format!("{mode:o}")) && !msg.contains("hunter2"),
                "the error names the mode {mode:o} and never the secret: {msg}"
            );
        }
    }

    #[test]
    fn the_file_variable_wins() {
        let file = TempFile::new("from-file\n", 0o600);
        let cfg = load(env(&[
            ("DB_PASSWORD", "from-env".into()),
            ("DB_PASSWORD_FILE", file.env_value()),
        ]))
        .unwrap();
        assert_eq!(cfg.password.expose(), "from-file", "DB_PASSWORD_FILE wins");
        let cfg = load(env(&[("DB_PASSWORD", "from-env".into())])).unwrap();
        assert_eq!(
            cfg.password.expose(),
            "from-env",
            "only DB_PASSWORD: use it"
        );

        let missing = format!("{}-gone", file.env_value());
        let res = load(env(&[
            ("DB_PASSWORD", "from-env".into()),
            ("DB_PASSWORD_FILE", missing),
        ]));
        assert!(
            matches!(res, Err(SecretError::Read { .. })),
            "DB_PASSWORD_FILE names a missing file: expected a Read error, never a silent \
             fallback to DB_PASSWORD, got {res:?}"
        );
        assert!(
            matches!(load(env(&[])), Err(SecretError::Missing(ref n)) if n == "DB_PASSWORD"),
            "neither variable set: expected Missing(\"DB_PASSWORD\")"
        );
    }

    #[test]
    fn the_secret_never_prints() {
        for pw in ["correct-horse", "Tr0ub4dor&3"] {
            let file = TempFile::new(&format!("{pw}\n"), 0o600);
            let cfg = load(env(&[
                ("DB_USER", "svc".into()),
                ("DB_PASSWORD_FILE", file.env_value()),
            ]))
            .unwrap();
            let shown = format!("{cfg:?} {cfg:#?}");
            assert!(
                !shown.contains(pw) && shown.contains("[redacted]") && shown.contains("svc"),
                "Debug of the config shows the user and `[redacted]` for the password: {shown}"
            );
            assert_eq!(cfg.password.expose(), pw);
        }
    }
}
