//! Helpers for the tests that drive the real `backlings` binary on the fixture packs.
#![allow(dead_code)]
use assert_cmd::Command;
use std::path::{Path, PathBuf};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn bin() -> Command {
    let mut cmd = Command::cargo_bin("backlings").unwrap();
    cmd.env_remove("NO_COLOR").env("RUST_BACKTRACE", "0");
    cmd
}

/// A fresh learner workspace made from the `basic` fixture pack (its dependencies: std only).
pub fn workspace() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ws");
    bin()
        .args(["init", "--no-watch", "--pack"])
        .arg(fixture("basic"))
        .arg(&root)
        .assert()
        .success();
    (tmp, root)
}

/// A workspace made from a copy of the `basic` pack, for tests that change the pack later.
/// Returns the temporary folder, the pack and the workspace root.
pub fn workspace_of_own_pack() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let pack = tmp.path().join("pack");
    copy_dir(&fixture("basic"), &pack);
    let root = tmp.path().join("ws");
    bin()
        .args(["init", "--no-watch", "--pack"])
        .arg(&pack)
        .arg(&root)
        .assert()
        .success();
    (tmp, pack, root)
}

/// The workspace's progress file, parsed.
pub fn state(root: &Path) -> toml::Value {
    toml::from_str(&std::fs::read_to_string(root.join(".backlings/state.toml")).unwrap()).unwrap()
}

/// A learner-style command run inside `root`.
pub fn in_ws(root: &Path) -> Command {
    let mut cmd = bin();
    cmd.current_dir(root);
    cmd
}

pub fn solve(root: &Path, rel: &str) {
    std::fs::copy(
        fixture("basic").join("solutions").join(rel),
        root.join("exercises").join(rel),
    )
    .unwrap();
}

pub fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// Copies a directory tree, for tests that break a pack on purpose.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() == "target" {
            continue;
        }
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Processes whose working directory is inside `root`, other than tmux's shell and its `sleep`.
pub fn processes_in(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cwd) = std::fs::read_link(e.path().join("cwd")) else {
            continue;
        };
        if !cwd.starts_with(root) {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if !(cmd.starts_with("sh -c trap true") || cmd.trim() == "sleep 600" || cmd.is_empty()) {
            found.push(cmd);
        }
    }
    found
}

/// Runs `backlings ARGS` in `root` while `dir` is read-only, as on a full or read-only disk.
/// Root ignores file modes, so as root `dir` becomes a read-only bind mount in a mount
/// namespace of the command's own (`unshare -m`); otherwise its mode is taken away for
/// the command's duration.
pub fn with_read_only(root: &Path, dir: &Path, args: &[&str]) -> std::process::Output {
    let bin = assert_cmd::cargo::cargo_bin("backlings");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let script = r#"mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@""#;
        let out = std::process::Command::new("unshare")
            .args(["-m", "sh", "-c", script])
            .arg(dir)
            .arg(&bin)
            .args(args)
            .current_dir(root)
            .env_remove("NO_COLOR")
            .output()
            .expect("these tests need unshare (util-linux) when run as root");
        return out;
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir).unwrap().permissions().mode();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = std::process::Command::new(&bin)
        .args(args)
        .current_dir(root)
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
    out
}
