//! Watch mode in a real terminal (tmux): editors' save patterns, rapid saves, swap files,
//! deleted files, keys and saves during a build, terminal recovery, leftover processes and
//! `backlings run` in a second terminal.
//! Each test reads the screen the way a learner would.
mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of its own running `backlings ARGS` in `root`.
struct Tmux {
    socket: String,
    root: PathBuf,
}

impl Tmux {
    fn start(root: &Path, args: &str) -> Tmux {
        Tmux::start_env(root, args, "")
    }

    /// Like `start`, with `env` (`NAME=value ...`) set for backlings.
    fn start_env(root: &Path, args: &str, env: &str) -> Tmux {
        let t = Tmux::launch(root, args, env);
        t.wait_for("the first verdict", |s| {
            s.contains("Save the file to try again") || s.contains(" passed")
        });
        t
    }

    /// Starts backlings without waiting for anything.
    fn launch(root: &Path, args: &str, env: &str) -> Tmux {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let socket = format!(
            "backlings-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let bin = assert_cmd::cargo::cargo_bin("backlings");
        // `exec` keeps backlings' pid in `pid`, so tests can signal it.
        let script = format!(
            "trap true INT TERM; cd {root} && stty -g > .stty.before; sh -c 'echo $$ > .pid; exec env -u CARGO_TARGET_DIR {env} {bin} {args}'; echo EXIT=$?; stty -g > .stty.after; sleep 600",
            root = root.display(),
            bin = bin.display(),
        );
        let ok = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-x",
                "120",
                "-y",
                "45",
                "sh",
                "-c",
                &script,
            ])
            .env_remove("TMUX")
            .status()
            .expect("these tests need tmux: install it (e.g. `apt install tmux`)");
        assert!(ok.success(), "tmux failed to start");
        Tmux {
            socket,
            root: root.to_path_buf(),
        }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-J"])
            .output()
            .unwrap();
        text(&out.stdout)
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            Command::new("tmux")
                .args(["-L", &self.socket, "send-keys", k])
                .status()
                .unwrap();
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Waits (up to 60 s, a deadline for a hung runner, not a speed check) for the screen.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid(&self) -> i32 {
        std::fs::read_to_string(self.root.join(".pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// After backlings exited: the terminal settings are what they were, and no process is
    /// left in the workspace.
    fn assert_clean_exit(&self, code: i32) {
        self.wait_for("backlings to exit", |s| s.contains("EXIT="));
        // Not just created: the shell makes the file before stty writes into it.
        let s = self.wait_for("the shell to save stty", |_| {
            std::fs::metadata(self.root.join(".stty.after")).is_ok_and(|m| m.len() > 0)
        });
        assert!(
            s.contains(&format!("EXIT={code}")),
            "exit code {code} expected:\n{s}"
        );
        let before = std::fs::read_to_string(self.root.join(".stty.before")).unwrap();
        let after = std::fs::read_to_string(self.root.join(".stty.after")).unwrap();
        assert_eq!(before, after, "stty -g differs after exit");
        let left = processes_in(&self.root);
        assert!(
            left.is_empty(),
            "processes left behind in the workspace: {left:?}"
        );
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn file(root: &Path) -> PathBuf {
    root.join("exercises/00_basics/compile_error.rs")
}

fn solution_text() -> String {
    std::fs::read_to_string(fixture("basic").join("solutions/00_basics/compile_error.rs")).unwrap()
}

fn passed(s: &str) -> bool {
    s.contains("compile_error passed") && s.contains("failing_test.rs")
}

#[test]
fn in_place_write_is_seen() {
    let (_tmp, root) = workspace();
    let t = Tmux::start(&root, "");
    std::fs::write(file(&root), solution_text()).unwrap();
    t.wait_for("success and the next exercise", passed);
}

#[test]
fn vim_rename_over_save_is_seen() {
    let (_tmp, root) = workspace();
    let t = Tmux::start(&root, "");
    let dir = root.join("exercises/00_basics");
    // vim (backupcopy=no): swap file, rename the original to a backup, write a new file.
    std::fs::write(dir.join(".compile_error.rs.swp"), "swap").unwrap();
    std::fs::rename(file(&root), dir.join("compile_error.rs~")).unwrap();
    std::fs::write(file(&root), solution_text()).unwrap();
    std::fs::remove_file(dir.join("compile_error.rs~")).unwrap();
    std::fs::remove_file(dir.join(".compile_error.rs.swp")).unwrap();
    t.wait_for("success after a rename-over save", passed);
}

#[test]
fn jetbrains_safe_write_is_seen() {
    let (_tmp, root) = workspace();
    let t = Tmux::start(&root, "");
    let dir = root.join("exercises/00_basics");
    let tmp = dir.join("compile_error.rs___jb_tmp___");
    let old = dir.join("compile_error.rs___jb_old___");
    std::fs::write(&tmp, solution_text()).unwrap();
    std::fs::rename(file(&root), &old).unwrap();
    std::fs::rename(&tmp, file(&root)).unwrap();
    std::fs::remove_file(&old).unwrap();
    t.wait_for("success after a safe write", passed);
}

#[test]
fn sed_in_place_and_cp_are_seen() {
    let (_tmp, root) = workspace();
    let t = Tmux::start(&root, "");
    let st = Command::new("sed")
        .args(["-i", "s/\"forty-two\"/42/"])
        .arg(file(&root))
        .status()
        .unwrap();
    assert!(st.success());
    t.wait_for("success after sed -i", passed);
    let st = Command::new("cp")
        .arg(fixture("basic").join("solutions/00_basics/failing_test.rs"))
        .arg(root.join("exercises/00_basics/failing_test.rs"))
        .status()
        .unwrap();
    assert!(st.success());
    t.wait_for("success after cp", |s| {
        s.contains("failing_test passed") && s.contains("loops_forever.rs")
    });
}

#[test]
fn twenty_rapid_saves_build_the_last_content() {
    let (_tmp, root) = workspace();
    let t = Tmux::start(&root, "");
    let wrong = std::fs::read_to_string(file(&root)).unwrap();
    for i in 0..19 {
        std::fs::write(
            file(&root),
            wrong.replace("\"forty-two\"", &format!("{}", 100 + i)),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(45));
    }
    std::fs::write(file(&root), solution_text()).unwrap();
    let s = t.wait_for("the last save's verdict", passed);
    assert!(
        !s.contains("expected 42"),
        "a stale verdict is on screen:\n{s}"
    );
}

#[test]
fn swap_and_backup_files_are_ignored() {
    let (_tmp, root) = workspace();
    let _t = Tmux::start(&root, "");
    let runs = || {
        state(&root)["exercises"]["compile_error"]["runs"]
            .as_integer()
            .unwrap_or(0)
    };
    let before = runs();
    let dir = root.join("exercises/00_basics");
    for name in [
        ".compile_error.rs.swp",
        "compile_error.rs~",
        "4913",
        "#compile_error.rs#",
        ".#compile_error.rs",
    ] {
        std::fs::write(dir.join(name), "editor noise").unwrap();
    }
    // Nothing should happen, so there is nothing to wait for: give it the safety net's period.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(runs(), before, "editor files must not trigger runs");
}

#[test]
fn a_deleted_file_gets_a_message_and_can_be_reset_from_the_screen() {
    let (_tmp, root) = workspace();
    let t = Tmux::start(&root, "");
    let pristine = std::fs::read_to_string(file(&root)).unwrap();
    std::fs::remove_file(file(&root)).unwrap();
    t.wait_for("the missing-file message", |s| {
        s.contains("is missing") && s.contains("reset")
    });
    t.keys(&["x"]);
    t.wait_for("the reset question", |s| s.contains("[y/N]"));
    t.keys(&["y"]);
    t.wait_for("the exercise back, failing again", |s| {
        s.contains("mismatched types")
    });
    assert_eq!(std::fs::read_to_string(file(&root)).unwrap(), pristine);
}

/// Jumps to `loops_forever`, whose tests run for its whole 2 s time limit.
fn jump_to_slow(t: &Tmux) {
    t.keys(&["l"]);
    t.wait_for("the list", |s| s.contains("Enter jump there"));
    t.keys(&["Down", "Up", "/", "l", "o", "o", "p", "Enter", "Enter"]);
    t.wait_for("the slow exercise running", |s| {
        s.contains("Building and testing loops_forever")
    });
}

#[test]
fn keys_act_while_a_build_runs_and_q_leaves_a_clean_terminal() {
    let (_tmp, root) = workspace();
    let t = Tmux::start(&root, "");
    jump_to_slow(&t);
    t.keys(&["h"]);
    let s = t.wait_for("a hint", |s| s.contains("Hint 1/1"));
    assert!(
        s.contains("Building and testing loops_forever"),
        "the hint came while running:\n{s}"
    );
    t.keys(&["l"]);
    t.wait_for("the list while running", |s| s.contains("Enter jump there"));
    t.keys(&["Escape"]);
    t.keys(&["r"]);
    t.wait_for("running again", |s| {
        s.contains("Building and testing loops_forever")
    });
    t.keys(&["q"]);
    t.assert_clean_exit(0);
}

#[test]
fn a_save_during_a_build_restarts_it() {
    let (_tmp, root) = workspace();
    let t = Tmux::start(&root, "");
    jump_to_slow(&t);
    // Save while the tests run (the fixture's test starts `sleep 1000`), not during the build.
    let running = || processes_in(&root).iter().any(|c| c.contains("sleep 1000"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !running() {
        assert!(Instant::now() < deadline, "the slow test never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::copy(
        fixture("basic").join("solutions/01_more/loops_forever.rs"),
        root.join("exercises/01_more/loops_forever.rs"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = t.screen();
        assert!(
            !s.contains("timed out"),
            "the old build was not cancelled:\n{s}"
        );
        if s.contains("loops_forever passed") {
            // The cancelled run's test process and its child were killed, not left to finish.
            let left: Vec<String> = processes_in(&root)
                .into_iter()
                .filter(|c| c.contains("sleep 1000"))
                .collect();
            assert!(left.is_empty(), "the old run is still going: {left:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no verdict:\n{s}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_restores_the_terminal_and_kills_children() {
    let (_tmp, root) = workspace();
    let t = Tmux::start(&root, "");
    jump_to_slow(&t);
    t.keys(&["C-c"]);
    t.assert_clean_exit(130);
}

#[test]
fn sigterm_restores_the_terminal_and_kills_children() {
    let (_tmp, root) = workspace();
    let t = Tmux::start(&root, "");
    jump_to_slow(&t);
    Command::new("kill")
        .args(["-TERM", &t.pid().to_string()])
        .status()
        .unwrap();
    t.assert_clean_exit(143);
}

#[test]
fn poll_mode_sees_saves() {
    let (_tmp, root) = workspace();
    let t = Tmux::start(&root, "--poll");
    std::fs::write(file(&root), solution_text()).unwrap();
    t.wait_for("success with --poll", passed);
}

#[test]
fn manual_mode_runs_on_r_only() {
    let (_tmp, root) = workspace();
    let t = Tmux::start(&root, "--manual");
    std::fs::write(file(&root), solution_text()).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        t.screen().contains("mismatched types"),
        "--manual must not run on save:\n{}",
        t.screen()
    );
    t.keys(&["r"]);
    t.wait_for("success after r", passed);
}

#[test]
fn run_in_a_second_terminal_while_watch_mode_runs_loses_no_progress() {
    let (_tmp, root) = workspace();
    let t = Tmux::start(&root, "");
    // The second terminal finishes the exercise after the current one.
    solve(&root, "00_basics/failing_test.rs");
    in_ws(&root).args(["run", "failing_test"]).assert().code(0);
    // Watch mode passes the current one: it must see the other's progress and skip past it.
    std::fs::write(file(&root), solution_text()).unwrap();
    let s = t.wait_for("success and the next exercise", |s| {
        s.contains("compile_error passed") && s.contains("01_more/")
            || s.contains("failing_test.rs")
    });
    assert!(
        s.contains("loops_forever.rs") && !s.contains("failing_test.rs"),
        "watch mode must skip the exercise the other terminal finished:\n{s}"
    );
    t.keys(&["q"]);
    t.assert_clean_exit(0);
    let state = state(&root);
    for name in ["compile_error", "failing_test"] {
        assert_eq!(
            state["exercises"][name]["status"].as_str(),
            Some("done"),
            "{name} is done in the state\n{state}"
        );
    }
    assert_eq!(state["current"].as_str(), Some("loops_forever"), "{state}");
}

#[test]
fn watch_mode_never_passes_an_edited_test_and_the_learner_is_told_how_to_restore_it() {
    let (_tmp, root) = workspace();
    let t = Tmux::start(&root, "");
    // The right answer, with the test weakened: not a pass.
    let weakened = solution_text().replace("\"expected 42\"", "\"forty-two will do\"");
    std::fs::write(file(&root), weakened).unwrap();
    let s = t.wait_for("the verdict on the edited tests", |s| {
        s.contains("tests were changed")
    });
    assert!(
        s.contains("backlings reset compile_error --tests") && !s.contains("compile_error passed"),
        "{s}"
    );
    std::fs::write(file(&root), solution_text()).unwrap();
    t.wait_for("success once the tests are as shipped", passed);
}

#[test]
fn a_search_that_matches_nothing_then_up_does_not_crash_the_list() {
    let (_tmp, root) = workspace();
    let t = Tmux::start(&root, "");
    t.keys(&["l"]);
    t.wait_for("the list", |s| s.contains("Enter jump there"));
    t.keys(&["/", "z", "z", "z", "Escape"]);
    t.wait_for("the empty search", |s| s.contains("nothing matches"));
    t.keys(&["k", "Up", "Down", "j", "Enter", "x"]);
    t.keys(&["Escape"]);
    t.keys(&["q"]);
    t.assert_clean_exit(0);
}

#[test]
fn a_corrupt_state_file_is_reported_on_the_screen_not_under_it() {
    let (_tmp, root) = workspace();
    std::fs::write(root.join(".backlings/state.toml"), "garbage = [").unwrap();
    let t = Tmux::start(&root, "");
    let s = t.wait_for("the note", |s| s.contains("could not be read"));
    assert!(s.contains("note:"), "shown as part of the frame:\n{s}");
    t.keys(&["q"]);
    t.assert_clean_exit(0);
}

#[test]
fn drawing_never_reads_or_repairs_the_state_file() {
    let (_tmp, root) = workspace();
    let t = Tmux::start(&root, "");
    let path = root.join(".backlings/state.toml");
    std::fs::write(&path, "garbage = [").unwrap();
    // Frames that change nothing in the state: the list, opened and closed.
    for _ in 0..3 {
        t.keys(&["l"]);
        t.wait_for("the list", |s| s.contains("Enter jump there"));
        t.keys(&["Escape"]);
        t.wait_for("the exercise again", |s| s.contains("h hint"));
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "garbage = [",
        "a redraw repaired the state file"
    );
    t.keys(&["q"]);
    t.assert_clean_exit(0);
}

/// Watch mode on the hostile `escapes` exercise, whose test leaves its process group and
/// session (setsid, double fork) and then spins into its time limit. The first run's escapees
/// must die with its time limit; a rerun's must die with the runner, however it is stopped.
fn escapes_then_stop(mark: u32, stop: impl FnOnce(&Tmux), code: i32) {
    let (_tmp, root) = hostile_workspace("escapes");
    let t = Tmux::start_env(&root, "", &format!("HOSTILE_MARK={mark}"));
    assert_nothing_left_but_the_runner(&root, mark);
    t.keys(&["r"]);
    wait_until("the rerun's escaped sleepers", 60, || sleepers(mark) >= 2);
    stop(&t);
    t.assert_clean_exit(code);
    assert_nothing_left(&root, mark);
}

/// After a verdict: no `sleep MARK` is alive (the runner itself still is).
fn assert_nothing_left_but_the_runner(root: &Path, mark: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while sleepers(mark) > 0 {
        assert!(
            Instant::now() < deadline,
            "escaped processes outlived the time limit: {:?}",
            leftovers(root, mark)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn q_kills_processes_that_left_the_group() {
    escapes_then_stop(621, |t| t.keys(&["q"]), 0);
}

#[test]
fn ctrl_c_kills_processes_that_left_the_group() {
    escapes_then_stop(622, |t| t.keys(&["C-c"]), 130);
}

#[test]
fn sigterm_kills_processes_that_left_the_group() {
    escapes_then_stop(
        623,
        |t| {
            Command::new("kill")
                .args(["-TERM", &t.pid().to_string()])
                .status()
                .unwrap();
        },
        143,
    );
}

#[test]
fn sighup_kills_processes_that_left_the_group() {
    escapes_then_stop(
        624,
        |t| {
            Command::new("kill")
                .args(["-HUP", &t.pid().to_string()])
                .status()
                .unwrap();
        },
        129,
    );
}

#[test]
fn a_test_writing_to_inherited_descriptors_cannot_fake_a_signal() {
    let (_tmp, root) = hostile_workspace("fd_probe");
    let t = Tmux::start(&root, "");
    let s = t.wait_for("the probe's verdict", |s| s.contains("FD-PROBE-DONE"));
    assert!(
        !s.contains("left:"),
        "the test process inherited descriptors beyond 0, 1 and 2:\n{s}"
    );
    // The loop still answers keys: the bytes the probe wrote were not taken for a signal.
    t.keys(&["h"]);
    let s = t.wait_for("a hint, or the runner quitting", |s| {
        s.contains("Hint 1/1") || s.contains("EXIT=")
    });
    assert!(!s.contains("EXIT="), "watch mode quit:\n{s}");
    t.keys(&["q"]);
    t.assert_clean_exit(0);
}

#[test]
fn control_sequences_from_tests_cannot_wipe_the_screen() {
    let (_tmp, root) = hostile_workspace("escape_codes");
    let t = Tmux::start(&root, "");
    let s = t.wait_for("the test's output", |s| s.contains("HOSTILE-CLEAR"));
    assert!(
        s.contains("(1/7, 00_hostile)") && s.contains("draws_nothing"),
        "the screen was wiped by the test's output:\n{s}"
    );
    let title = Command::new("tmux")
        .args(["-L", &t.socket, "display-message", "-p", "#{pane_title}"])
        .output()
        .unwrap();
    assert!(
        !text(&title.stdout).contains("HOSTILE-TITLE"),
        "the test retitled the terminal"
    );
    t.keys(&["q"]);
    t.assert_clean_exit(0);
}

/// A services workspace where `pg_ping` is current (the core exercise before it is done).
fn on_pg_ping() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (tmp, root, servers) = services_workspace();
    solve_services(&root, "00_core/plain.rs");
    let out = services_bin()
        .current_dir(&root)
        .args(["run", "plain"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
    (tmp, root, servers)
}

/// The postmasters running in `servers`, by pid.
fn postmasters(servers: &Path) -> Vec<i32> {
    let dir = servers.display().to_string();
    process_table()
        .into_iter()
        .filter(|p| p.cmdline.contains("postgres -D") && p.cmdline.contains(&dir))
        .map(|p| p.pid)
        .collect()
}

#[test]
fn watch_mode_reuses_one_cluster_across_runs_and_q_stops_it() {
    if !have_server("postgres") {
        return;
    }
    let (_tmp, root, servers) = on_pg_ping();
    let t = Tmux::start_env(&root, "", &format!("TMPDIR={}", servers.display()));
    t.wait_for("the shipped exercise to fail", |s| {
        s.contains("pg_ping") && s.contains("expected the socket")
    });
    let first = postmasters(&servers);
    assert_eq!(first.len(), 1, "one cluster: {first:?}");
    solve_services(&root, "01_postgres/pg_ping.rs");
    t.wait_for("the pass", |s| s.contains("pg_ping passed"));
    assert_eq!(postmasters(&servers), first, "the same cluster, reused");
    t.keys(&["q"]);
    t.assert_clean_exit(0);
    assert_servers_gone(&servers);
}

#[test]
fn ctrl_c_while_a_postgres_exercise_runs_leaves_no_server_and_no_folder() {
    if !have_server("postgres") {
        return;
    }
    let (_tmp, root, servers) = on_pg_ping();
    solve_services(&root, "01_postgres/pg_ping.rs");
    // The fixture's test connects, then holds on until it is killed.
    let t = Tmux::launch(
        &root,
        "",
        &format!("TMPDIR={} BACKLINGS_FIXTURE_HOLD=1", servers.display()),
    );
    wait_until("the test to hold a connection", 60, || {
        process_table().iter().any(|p| {
            p.cmdline.starts_with("postgres: postgres postgres")
                || (p.cmdline.contains("/deps/pg_ping-") && p.cmdline.ends_with("--color never"))
        }) && !postmasters(&servers).is_empty()
    });
    t.keys(&["C-c"]);
    t.assert_clean_exit(130);
    assert_servers_gone(&servers);
}

#[test]
fn without_servers_watch_mode_moves_past_the_tracks_to_the_final_message() {
    let (_tmp, root, servers) = on_pg_ping();
    let t = Tmux::launch(
        &root,
        "",
        &format!("BACKLINGS_SERVICE_PATH= TMPDIR={}", servers.display()),
    );
    // pg_ping is skipped, then redis_ping; the core is done, so everything is checked and
    // the skipped tracks do not count against the learner.
    t.wait_for("the final message", |s| {
        s.contains("Services fixture complete.")
    });
    t.keys(&["q"]);
    t.assert_clean_exit(0);
    let st = state(&root);
    for name in ["pg_ping", "redis_ping"] {
        assert_eq!(
            st["exercises"][name]["status"].as_str(),
            Some("pending"),
            "{name} is skipped, not done"
        );
    }
}
