//! Helpers for the tests that drive the real `backlings` binary on the fixture packs.
#![allow(dead_code)]
use assert_cmd::Command;
use std::path::{Path, PathBuf};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `backlings`, as a learner runs it. Each workspace builds in its own `target/`: a
/// `CARGO_TARGET_DIR` inherited from the test run would make parallel tests' workspaces, whose
/// bins share names, overwrite each other's test binaries.
pub fn bin() -> Command {
    let mut cmd = Command::cargo_bin("backlings").unwrap();
    // Each learner workspace builds into its own target folder. A CARGO_TARGET_DIR shared
    // by every test's workspace (`CARGO_TARGET_DIR=... cargo test`) lets one workspace's
    // build pass for another's: cargo names artifacts by paths relative to the workspace,
    // and the fixture workspaces are alike.
    cmd.env_remove("NO_COLOR")
        .env_remove("CARGO_TARGET_DIR")
        .env("RUST_BACKTRACE", "0");
    cmd
}

/// `backlings init --no-watch --pack PACK ROOT`, which must succeed.
pub fn init_from(pack: &Path, root: &Path) {
    bin()
        .args(["init", "--no-watch", "--pack"])
        .arg(pack)
        .arg(root)
        .assert()
        .success();
}

/// A fresh learner workspace made from the `basic` fixture pack (its dependencies: std only).
pub fn workspace() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ws");
    init_from(&fixture("basic"), &root);
    (tmp, root)
}

/// A workspace made from a copy of the `basic` pack, for tests that change the pack later.
/// Returns the temporary folder, the pack and the workspace root.
pub fn workspace_of_own_pack() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let pack = tmp.path().join("pack");
    copy_dir(&fixture("basic"), &pack);
    let root = tmp.path().join("ws");
    init_from(&pack, &root);
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
            .env_remove("CARGO_TARGET_DIR")
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
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
    out
}

/// A workspace made from a copy of the `hostile` pack (issue 11), with `first` moved to the
/// front so that watch mode starts on it. Returns the temporary folder and the root.
pub fn hostile_workspace(first: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let pack = tmp.path().join("pack");
    copy_dir(&fixture("hostile"), &pack);
    let info = std::fs::read_to_string(pack.join("info.toml")).unwrap();
    let mut blocks: Vec<&str> = info.split("[[exercises]]\n").collect();
    let head = blocks.remove(0);
    let at = blocks
        .iter()
        .position(|b| b.starts_with(&format!("name = \"{first}\"")))
        .unwrap();
    let block = blocks.remove(at);
    blocks.insert(0, block);
    let info = format!("{head}[[exercises]]\n{}", blocks.join("[[exercises]]\n"));
    std::fs::write(pack.join("info.toml"), info).unwrap();
    let root = tmp.path().join("ws");
    init_from(&pack, &root);
    (tmp, root)
}

/// One live process: its pid, command line and working directory.
pub struct Proc {
    pub pid: i32,
    pub cmdline: String,
    pub cwd: Option<PathBuf>,
}

/// Every live (not zombie) process in the whole process table.
pub fn process_table() -> Vec<Proc> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next());
        if !matches!(state, Some(Some(s)) if s != 'Z' && s != 'X') {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        out.push(Proc {
            pid,
            cmdline: String::from_utf8_lossy(&cmd)
                .replace('\0', " ")
                .trim()
                .to_string(),
            cwd: std::fs::read_link(e.path().join("cwd")).ok(),
        });
    }
    out
}

/// How many live `sleep MARK` processes the hostile exercises started with this mark.
pub fn sleepers(mark: u32) -> usize {
    let want = format!("sleep {mark}");
    process_table().iter().filter(|p| p.cmdline == want).count()
}

/// Live processes that belong to a test on `root`: the `sleep MARK` markers, and anything
/// whose command line or working directory is inside `root` (the test binaries, cargo,
/// rustc), other than tmux (server and shell) and the shell's `sleep 600`.
pub fn leftovers(root: &Path, mark: u32) -> Vec<String> {
    let marker = format!("sleep {mark}");
    let root_text = root.display().to_string();
    process_table()
        .into_iter()
        .filter(|p| {
            p.cmdline == marker
                || p.cmdline.contains(&root_text)
                || p.cwd.as_ref().is_some_and(|c| c.starts_with(root))
        })
        .filter(|p| {
            !(p.cmdline.starts_with("tmux ")
                || p.cmdline.starts_with("sh -c trap true")
                || p.cmdline == "sleep 600")
        })
        .map(|p| format!("{} {}", p.pid, p.cmdline))
        .collect()
}

/// Polls `pred` every 20 ms for up to `secs` seconds (a bound for a hung runner, not a speed
/// check) and fails with `what` if it never holds.
pub fn wait_until(what: &str, secs: u64, mut pred: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !pred() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Asserts that nothing of the test on `root` is left, allowing a few seconds for the kernel
/// to finish killing what the runner killed.
pub fn assert_nothing_left(root: &Path, mark: u32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let left = leftovers(root, mark);
        if left.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "processes outlived the runner: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A field of /proc/PID/status in KiB (VmHWM: peak resident memory), 0 once it is gone.
pub fn status_kb(pid: i32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Sends a real signal, as a terminal or `kill` would.
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a pid this test started.
    assert_eq!(
        unsafe { libc::kill(pid as i32, sig) },
        0,
        "kill({pid}, {sig})"
    );
}

/// Whether the server binaries are installed, looked for the way the runner looks for them.
/// Without them a test that needs the server is skipped with a printed reason, except in CI
/// (`CI=true`), where it fails: CI installs them (.ci/run).
pub fn have_server(service: &str) -> bool {
    let found = match service {
        "postgres" => {
            which::which("initdb").is_ok()
                || which::which("pg_config").is_ok()
                || std::fs::read_dir("/usr/lib/postgresql")
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|e| e.path().join("bin/initdb").is_file())
        }
        "redis" => which::which("redis-server").is_ok(),
        _ => false,
    };
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must install {service} (see .ci/run)"
        );
        eprintln!(
            "skipped: {service} is not installed here (apt-get install postgresql redis-server)"
        );
    }
    found
}

/// A workspace of the `services` fixture pack, and a temp folder (`TMPDIR` for the runner)
/// that the servers' folders go into, open to the unprivileged account that runs them as
/// root. Returns the temporary folder, the workspace root and the servers' temp folder.
pub fn services_workspace() -> (tempfile::TempDir, PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let servers = tmp.path().join("t");
    std::fs::create_dir(&servers).unwrap();
    std::fs::set_permissions(&servers, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let root = tmp.path().join("ws");
    services_bin()
        .args(["init", "--no-watch", "--pack"])
        .arg(fixture("services"))
        .arg(&root)
        .assert()
        .success();
    (tmp, root, servers)
}

/// `backlings` for the services workspaces (like `bin`, each in its own target folder).
pub fn services_bin() -> Command {
    bin()
}

/// Puts the services fixture's solution of `rel` in place.
pub fn solve_services(root: &Path, rel: &str) {
    std::fs::copy(
        fixture("services").join("solutions").join(rel),
        root.join("exercises").join(rel),
    )
    .unwrap();
}

/// Live processes whose command line names `dir` (the servers started there), other than
/// the tmux terminal tests' own shell and server, whose command lines set it as TMPDIR.
pub fn processes_naming(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    process_table()
        .into_iter()
        .filter(|p| p.cmdline.contains(&dir))
        .filter(|p| !(p.cmdline.starts_with("tmux ") || p.cmdline.starts_with("sh -c trap true")))
        .map(|p| format!("{} {}", p.pid, p.cmdline))
        .collect()
}

/// After the runner exited: no server process names `servers`, and nothing is left in it.
pub fn assert_servers_gone(servers: &Path) {
    wait_until("the servers to be gone", 10, || {
        processes_naming(servers).is_empty()
    });
    let left: Vec<_> = std::fs::read_dir(servers)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "server folders left behind: {left:?}");
}
