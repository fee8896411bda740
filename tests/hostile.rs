//! Issue 11: a hostile learner. The `hostile` pack's exercises loop, fork, leave their process
//! group, flood and allocate; the runner is interrupted by real signals. Afterwards the whole
//! process table must hold nothing of the test, and the runner must stay small. Each test uses
//! its own `sleep MARK` (HOSTILE_MARK) so that tests running in parallel do not see each other.
mod common;

use common::*;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn spawn(dir: &Path, args: &[&str], mark: u32, path: Option<&Path>) -> Child {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("backlings"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env("HOSTILE_MARK", mark.to_string())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(bin) = path {
        let old = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{old}", bin.display()));
    }
    cmd.spawn().unwrap()
}

/// Waits for the runner to exit (60 s bound), killing it if it hangs.
fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the runner did not exit within 60 s of the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts the runner, waits until `ready`, sends `sig`, and checks the conventional exit code
/// and that nothing of the test is left anywhere in the process table.
fn interrupt(
    dir: &Path,
    args: &[&str],
    mark: u32,
    fake_cargo: Option<&Path>,
    ready: impl FnMut() -> bool,
    sig: i32,
) {
    let mut child = spawn(dir, args, mark, fake_cargo);
    wait_until("the test processes to start", 180, ready);
    signal(child.id(), sig);
    let status = wait_exit(&mut child);
    assert_eq!(status.code(), Some(128 + sig), "exit status {status:?}");
    assert_nothing_left(dir, mark);
}

/// A `cargo` that never finishes its build: it starts a `sleep MARK` "rustc" and sleeps
/// itself. Answers `cargo tree` at once, as init asks it first.
fn fake_cargo(dir: &Path, mark: u32) -> std::path::PathBuf {
    let bin = dir.join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in tree) exit 0;; esac\nsleep {mark} &\nexec sleep {mark}\n"
    );
    let path = bin.join("cargo");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn ctrl_c_during_run_kills_a_hundred_forked_children() {
    let (_tmp, root) = hostile_workspace("forks");
    interrupt(
        &root,
        &["run", "forks"],
        611,
        None,
        || sleepers(611) >= 100,
        libc::SIGINT,
    );
}

#[test]
fn sigterm_during_verify_kills_every_test_process() {
    let (_tmp, root) = hostile_workspace("loops");
    interrupt(
        &root,
        &["verify", "loops", "forks"],
        612,
        None,
        || sleepers(612) >= 101,
        libc::SIGTERM,
    );
}

#[test]
fn sighup_during_verify_kills_a_spinning_test() {
    let (_tmp, root) = hostile_workspace("loops");
    interrupt(
        &root,
        &["verify", "loops"],
        613,
        None,
        || sleepers(613) >= 1,
        libc::SIGHUP,
    );
}

#[test]
fn ctrl_c_during_the_build_kills_cargo_and_what_it_started() {
    let (tmp, root) = hostile_workspace("loops");
    let bin = fake_cargo(tmp.path(), 614);
    interrupt(
        &root,
        &["verify"],
        614,
        Some(&bin),
        || sleepers(614) >= 2,
        libc::SIGINT,
    );
}

#[test]
fn sighup_during_init_kills_its_build() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = fake_cargo(tmp.path(), 615);
    let dir = tmp.path().join("work");
    std::fs::create_dir(&dir).unwrap();
    let pack = fixture("hostile");
    interrupt(
        &dir,
        &["init", "--no-watch", "--pack", pack.to_str().unwrap(), "ws"],
        615,
        Some(&bin),
        || sleepers(615) >= 2,
        libc::SIGHUP,
    );
}

#[test]
fn sigterm_during_dev_check_kills_its_tests() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = tmp.path().join("pack");
    copy_dir(&fixture("hostile"), &pack);
    interrupt(
        &pack,
        &[
            "dev", "check", ".", "--jobs", "4", "--only", "loops", "--only", "forks",
        ],
        616,
        None,
        // Two variants of each (as shipped, solution): 2 + 200 sleepers.
        || sleepers(616) >= 202,
        libc::SIGTERM,
    );
}

#[test]
fn processes_that_leave_the_group_die_with_the_time_limit() {
    let (_tmp, root) = hostile_workspace("escapes");
    let mut child = spawn(&root, &["run", "escapes"], 617, None);
    wait_until("the escaped sleepers", 180, || sleepers(617) >= 2);
    let out = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    let status = wait_exit(&mut child);
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.contains("timed out after 3 s"), "{out}");
    assert_nothing_left(&root, 617);
}

/// Runs `name` to its verdict while sampling the runner's peak memory and the test processes'
/// resident memory. Returns stdout, the runner's VmHWM and the test processes' peak, in KiB.
fn run_measured(root: &Path, name: &str) -> (String, u64, u64) {
    // Build first, so that only the test run is measured.
    let _ = in_ws(root).args(["run", name]).output();
    let mut child = spawn(root, &["run", name], 618, None);
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap());
    let exe = root.join("target");
    let (mut runner_kb, mut tests_kb) = (0, 0);
    while child.try_wait().unwrap().is_none() {
        runner_kb = runner_kb.max(status_kb(child.id() as i32, "VmHWM:"));
        for p in process_table() {
            if p.cmdline.starts_with(&exe.display().to_string()) {
                tests_kb = tests_kb.max(status_kb(p.pid, "VmHWM:"));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (reader.join().unwrap(), runner_kb, tests_kb)
}

#[test]
fn a_println_flood_meets_the_memory_limit_and_gets_its_own_verdict() {
    let (_tmp, root) = hostile_workspace("prints_forever");
    let (out, runner_kb, tests_kb) = run_measured(&root, "prints_forever");
    assert!(
        out.contains("used more than 256 MiB of memory"),
        "{}",
        &out[..out.len().min(3000)]
    );
    assert!(
        out.len() < 400_000,
        "capped output, not {} bytes",
        out.len()
    );
    assert!(
        runner_kb > 0 && runner_kb < 100 * 1024,
        "runner peak {runner_kb} KiB"
    );
    assert!(tests_kb <= 256 * 1024, "test process peak {tests_kb} KiB");
    assert_nothing_left(&root, 618);
}

#[test]
fn an_allocation_bomb_meets_the_memory_limit_and_gets_its_own_verdict() {
    let (_tmp, root) = hostile_workspace("allocates");
    let (out, runner_kb, tests_kb) = run_measured(&root, "allocates");
    assert!(out.contains("used more than 256 MiB of memory"), "{out}");
    assert!(
        out.contains("allocates: used more than 256 MiB"),
        "the heading names the verdict:\n{out}"
    );
    assert!(
        runner_kb > 0 && runner_kb < 100 * 1024,
        "runner peak {runner_kb} KiB"
    );
    assert!(tests_kb <= 256 * 1024, "test process peak {tests_kb} KiB");
}

#[test]
fn control_sequences_from_tests_do_not_reach_the_terminal() {
    let (_tmp, root) = hostile_workspace("escape_codes");
    let out = in_ws(&root)
        .args(["run", "escape_codes", "--color", "always"])
        .assert()
        .code(1);
    let out = text(&out.get_output().stdout);
    assert!(out.contains("HOSTILE-CLEAR"), "{out:?}");
    for bad in ["\x1b[2J", "\x1b[H", "\x1b]0;", "\u{9b}", "\x07"] {
        assert!(!out.contains(bad), "{bad:?} reached the terminal: {out:?}");
    }
    assert!(
        out.contains("\x1b["),
        "the runner's own colours stay: {out:?}"
    );
}
