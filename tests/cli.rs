//! The commands, driven as a learner drives them, on the std-only fixture pack.
mod common;

use common::*;
use std::time::Duration;

#[test]
fn init_refuses_a_non_empty_folder() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
    let out = bin()
        .args(["init", "--no-watch", "--pack"])
        .arg(fixture("basic"))
        .arg(tmp.path())
        .assert()
        .code(1);
    let err = text(&out.get_output().stderr);
    assert!(err.contains("already exists and is not empty"), "{err}");
    assert!(err.contains("help:"), "{err}");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn commands_outside_a_workspace_say_how_to_make_one() {
    let tmp = tempfile::tempdir().unwrap();
    let out = in_ws(tmp.path()).arg("run").assert().code(1);
    let err = text(&out.get_output().stderr);
    assert!(
        err.contains("not inside a backlings workspace") && err.contains("backlings init"),
        "{err}"
    );
}

#[test]
fn run_fails_then_passes_and_list_shows_it_done() {
    let (_tmp, root) = workspace();
    let out = in_ws(&root).arg("run").assert().code(1);
    let stdout = text(&out.get_output().stdout);
    assert!(
        stdout.contains("mismatched types"),
        "the compiler's error is shown:\n{stdout}"
    );
    assert!(stdout.contains("compile_error: compile error"), "{stdout}");

    solve(&root, "00_basics/compile_error.rs");
    let out = in_ws(&root).arg("run").assert().code(0);
    let stdout = text(&out.get_output().stdout);
    assert!(stdout.contains("compile_error passed"), "{stdout}");
    assert!(
        root.join("solutions/00_basics/compile_error.rs").is_file(),
        "the solution is written on a pass"
    );

    let out = in_ws(&root).args(["list", "--json"]).assert().success();
    let list: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(list["done"], 1);
    assert_eq!(
        list["current"], "failing_test",
        "the next exercise becomes current"
    );
    assert_eq!(list["exercises"][0]["status"], "done");

    // From a folder below the root, too.
    in_ws(&root.join("exercises/00_basics"))
        .arg("list")
        .assert()
        .success();
}

#[test]
fn failing_tests_come_first_and_passing_output_is_hidden() {
    let (_tmp, root) = workspace();
    let out = in_ws(&root).args(["run", "failing_test"]).assert().code(1);
    let stdout = text(&out.get_output().stdout);
    let failure = stdout
        .find("expected 6")
        .expect("the failing assertion is shown");
    let list = stdout
        .find("test tests::passing_test_output_is_hidden ... ok")
        .expect("each test has a line");
    assert!(failure < list, "failures first:\n{stdout}");
    assert!(stdout.contains("output of a failing test"), "{stdout}");
    assert!(!stdout.contains("noise from a passing test"), "{stdout}");
    assert!(stdout.contains("failing_test: tests failed"), "{stdout}");
}

#[test]
fn an_infinite_loop_is_killed_at_the_time_limit_with_its_children() {
    let (_tmp, root) = workspace();
    let out = in_ws(&root)
        .args(["run", "loops_forever"])
        .timeout(Duration::from_secs(60))
        .assert()
        .code(1);
    let stdout = text(&out.get_output().stdout);
    assert!(stdout.contains("timed out after 2 s"), "{stdout}");
    assert!(
        stdout.contains("probably a deadlock, an infinite loop"),
        "{stdout}"
    );
    // The test spawned `sleep 1000` in its process group: the group kill must take it too.
    let left = processes_in(&root);
    assert!(left.is_empty(), "a child outlived the time limit: {left:?}");
}

#[test]
fn a_gigabyte_of_output_is_capped_and_the_runner_stays_small() {
    let (_tmp, root) = workspace();
    // Build first, so that only the test run is measured.
    let _ = in_ws(&root).args(["run", "floods"]).output();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("backlings"))
        .args(["run", "floods"])
        .current_dir(&root)
        .env_remove("CARGO_TARGET_DIR")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap());
    while child.try_wait().unwrap().is_none() {
        if let Ok(s) = std::fs::read_to_string(&status_path)
            && let Some(line) = s.lines().find(|l| l.starts_with("VmHWM:"))
        {
            peak_kb = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stdout = reader.join().unwrap();
    assert!(
        stdout.contains("bytes of output omitted"),
        "{}",
        &stdout[..stdout.len().min(2000)]
    );
    assert!(
        stdout.len() < 400_000,
        "the learner sees the capped output, not {} bytes",
        stdout.len()
    );
    assert!(
        peak_kb > 0 && peak_kb < 100 * 1024,
        "runner peak memory {peak_kb} KiB, expected under 100 MiB"
    );
}

#[test]
fn a_corrupt_state_file_is_moved_aside_with_a_message() {
    let (_tmp, root) = workspace();
    std::fs::write(root.join(".backlings/state.toml"), "\u{0}\u{1}garbage = [").unwrap();
    let out = in_ws(&root).arg("list").assert().success();
    let err = text(&out.get_output().stderr);
    assert!(
        err.contains("could not be read") && err.contains("state.toml.corrupt-"),
        "{err}"
    );
    let aside = std::fs::read_dir(root.join(".backlings"))
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state.toml.corrupt-")
        });
    assert!(aside, "the corrupt file is kept for inspection");
    // And the state works again afterwards.
    in_ws(&root).arg("hint").assert().success();
    let state = std::fs::read_to_string(root.join(".backlings/state.toml")).unwrap();
    assert!(state.contains("format_version = 1"), "{state}");
}

#[test]
fn reset_backs_up_the_learners_file_first() {
    let (_tmp, root) = workspace();
    let file = root.join("exercises/00_basics/compile_error.rs");
    let pristine = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, "// my precious work\n").unwrap();

    // No terminal and no --yes: refuse, change nothing.
    let out = in_ws(&root)
        .args(["reset", "compile_error"])
        .assert()
        .code(1);
    assert!(text(&out.get_output().stderr).contains("--yes"));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "// my precious work\n"
    );

    let out = in_ws(&root)
        .args(["reset", "compile_error", "--yes"])
        .assert()
        .success();
    let stdout = text(&out.get_output().stdout);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), pristine);
    let backups: Vec<_> = std::fs::read_dir(root.join(".backlings/backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(
        std::fs::read_to_string(&backups[0]).unwrap(),
        "// my precious work\n"
    );
    assert!(
        stdout.contains(&backups[0].display().to_string()),
        "the backup path is printed: {stdout}"
    );
}

#[test]
fn reset_restores_a_deleted_file_and_unknown_names_get_suggestions() {
    let (_tmp, root) = workspace();
    let file = root.join("exercises/00_basics/failing_test.rs");
    std::fs::remove_file(&file).unwrap();
    let out = in_ws(&root).args(["run", "failing_test"]).assert().code(1);
    assert!(text(&out.get_output().stdout).contains("backlings reset"));
    in_ws(&root)
        .args(["reset", "failing_test", "--yes"])
        .assert()
        .success();
    assert!(file.is_file());
    let out = in_ws(&root)
        .args(["reset", "failing", "--yes"])
        .assert()
        .code(1);
    assert!(text(&out.get_output().stderr).contains("did you mean failing_test"));
}

#[test]
fn verify_reports_pending_then_all_done() {
    let (_tmp, root) = workspace();
    let out = in_ws(&root)
        .arg("verify")
        .timeout(Duration::from_secs(120))
        .assert()
        .code(1);
    assert!(text(&out.get_output().stdout).contains("0/4 exercises pass"));
    for rel in [
        "00_basics/compile_error.rs",
        "00_basics/failing_test.rs",
        "01_more/loops_forever.rs",
        "01_more/floods.rs",
    ] {
        solve(&root, rel);
    }
    let out = in_ws(&root)
        .arg("verify")
        .timeout(Duration::from_secs(120))
        .assert()
        .code(0);
    let stdout = text(&out.get_output().stdout);
    assert!(
        stdout.contains("4/4 exercises pass") && stdout.contains("Fixture pack complete."),
        "{stdout}"
    );
    let out = in_ws(&root).args(["list", "--json"]).assert().success();
    let list: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(list["done"], 4);
}

#[test]
fn hints_are_levelled_and_solutions_stay_hidden_until_done() {
    let (_tmp, root) = workspace();
    let first = in_ws(&root).arg("hint").assert().success();
    assert!(text(&first.get_output().stdout).contains("Hint 1/3 (nudge)"));
    let second = in_ws(&root).arg("hint").assert().success();
    assert!(text(&second.get_output().stdout).contains("Hint 2/3 (concept)"));
    let all = in_ws(&root).args(["hint", "--all"]).assert().success();
    assert!(text(&all.get_output().stdout).contains("Near-solution: return a number."));

    let out = in_ws(&root)
        .args(["solution", "compile_error"])
        .assert()
        .code(1);
    assert!(text(&out.get_output().stderr).contains("not done yet"));
    solve(&root, "00_basics/compile_error.rs");
    in_ws(&root).arg("run").assert().success();
    let out = in_ws(&root)
        .args(["solution", "compile_error"])
        .assert()
        .success();
    assert!(text(&out.get_output().stdout).contains("A number, not a string."));
}

#[test]
fn a_missing_cargo_gets_one_clear_line() {
    let (_tmp, root) = workspace();
    let empty = tempfile::tempdir().unwrap();
    let out = in_ws(&root)
        .env("PATH", empty.path())
        .arg("run")
        .assert()
        .code(1);
    let err = text(&out.get_output().stderr);
    assert!(
        err.contains("cargo was not found") && err.contains("rustup"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    bin().args(["list", "--pending", "--done"]).assert().code(2);
    bin().arg("frobnicate").assert().code(2);
}

#[test]
fn two_processes_at_once_lose_no_progress() {
    let (_tmp, root) = workspace();
    solve(&root, "00_basics/compile_error.rs");
    solve(&root, "00_basics/failing_test.rs");
    // Build both first so the runs overlap on the state, not on cargo's lock.
    in_ws(&root)
        .args(["verify", "compile_error", "failing_test"])
        .assert()
        .success();
    let runs = 6;
    let spawn = |name: &'static str| {
        let root = root.clone();
        std::thread::spawn(move || {
            for _ in 0..runs {
                in_ws(&root).args(["run", name]).assert().success();
                in_ws(&root).args(["hint", name]).assert().success();
            }
        })
    };
    let (a, b) = (spawn("compile_error"), spawn("failing_test"));
    a.join().unwrap();
    b.join().unwrap();
    let state = state(&root);
    for name in ["compile_error", "failing_test"] {
        assert_eq!(
            state["exercises"][name]["runs"].as_integer(),
            Some(runs + 1),
            "{name}: every run is counted, the verify's too\n{state}"
        );
        assert_eq!(state["exercises"][name]["status"].as_str(), Some("done"));
    }
}

#[test]
fn a_bad_info_toml_is_reported_with_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = tmp.path().join("pack");
    copy_dir(&fixture("basic"), &pack);
    let info = std::fs::read_to_string(pack.join("info.toml")).unwrap();
    std::fs::write(
        pack.join("info.toml"),
        info.replacen("name = \"failing_test\"", "name = \"Failing Test\"", 1),
    )
    .unwrap();
    let out = bin().args(["dev", "check"]).arg(&pack).assert().code(1);
    let err = text(&out.get_output().stderr);
    assert!(
        err.contains("info.toml:17:8") && err.contains("Failing Test"),
        "{err}"
    );
    let out = bin()
        .args(["init", "--no-watch", "--pack"])
        .arg(&pack)
        .arg(tmp.path().join("ws"))
        .assert()
        .code(1);
    assert!(text(&out.get_output().stderr).contains("info.toml:17:8"));
}

#[test]
fn a_curriculum_update_adds_new_exercises_and_moves_the_learner_to_them() {
    // A pack of our own, so that it can gain an exercise between two the learner has done.
    let (_tmp, pack, root) = workspace_of_own_pack();
    for rel in ["00_basics/compile_error.rs", "00_basics/failing_test.rs"] {
        solve(&root, rel);
    }
    in_ws(&root).arg("verify").assert().code(1);
    let list = |root: &std::path::Path| -> serde_json::Value {
        let out = in_ws(root).args(["list", "--json"]).assert().success();
        serde_json::from_slice(&out.get_output().stdout).unwrap()
    };
    assert_eq!(list(&root)["current"], "loops_forever");

    // The update: `inserted` comes after the two done exercises, before the current one.
    let shipped = add_exercise(&pack, "inserted", Some("loops_forever"));
    let out = in_ws(&root).arg("run").assert().code(1);
    let stdout = text(&out.get_output().stdout);
    assert!(
        stdout.contains("inserted: tests failed"),
        "the learner moves to the new exercise:\n{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("exercises/00_basics/inserted.rs")).unwrap(),
        shipped,
        "the new exercise's file is added to the workspace"
    );
    let list = list(&root);
    assert_eq!(list["current"], "inserted");
    assert_eq!(list["done"], 2, "progress is kept: {list}");
}

#[test]
fn a_learner_who_finished_everything_moves_to_exercises_a_curriculum_update_adds() {
    let (_tmp, pack, root) = workspace_of_own_pack();
    for rel in [
        "00_basics/compile_error.rs",
        "00_basics/failing_test.rs",
        "01_more/loops_forever.rs",
        "01_more/floods.rs",
    ] {
        solve(&root, rel);
    }
    in_ws(&root)
        .arg("verify")
        .timeout(Duration::from_secs(120))
        .assert()
        .code(0);

    add_exercise(&pack, "appended", None);
    let out = in_ws(&root).args(["list", "--json"]).assert().success();
    let list: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(list["current"], "appended", "{list}");
    assert_eq!(list["done"], 4, "progress is kept: {list}");
    let out = in_ws(&root).arg("hint").assert().success();
    assert!(text(&out.get_output().stdout).contains("appended"));
}

#[test]
fn a_curriculum_update_that_renumbers_a_folder_moves_the_learners_file_along() {
    let (_tmp, pack, root) = workspace_of_own_pack();
    solve(&root, "01_more/loops_forever.rs");
    let mine = std::fs::read_to_string(root.join("exercises/01_more/loops_forever.rs")).unwrap();
    // The update: a track inserted before `01_more` renumbers it to `02_more`.
    let info = std::fs::read_to_string(pack.join("info.toml")).unwrap();
    std::fs::write(
        pack.join("info.toml"),
        info.replace("topic = \"01_more\"", "topic = \"02_more\""),
    )
    .unwrap();
    for dir in ["exercises", "solutions"] {
        std::fs::rename(
            pack.join(dir).join("01_more"),
            pack.join(dir).join("02_more"),
        )
        .unwrap();
    }
    let out = in_ws(&root)
        .args(["run", "loops_forever"])
        .assert()
        .success();
    assert!(
        text(&out.get_output().stdout).contains("loops_forever"),
        "{}",
        text(&out.get_output().stdout)
    );
    assert_eq!(
        std::fs::read_to_string(root.join("exercises/02_more/loops_forever.rs")).unwrap(),
        mine,
        "the learner's own file is moved to the renumbered folder, not replaced"
    );
    assert!(
        root.join("exercises/02_more/floods.rs").is_file()
            && !root.join("exercises/01_more").exists(),
        "every file of the folder moves, and the emptied old folder goes"
    );
}

/// Adds a failing exercise to the fixture pack in `pack`, before `before` or at the end, as a
/// curriculum update would. Returns its shipped text.
fn add_exercise(pack: &std::path::Path, name: &str, before: Option<&str>) -> &'static str {
    let info = std::fs::read_to_string(pack.join("info.toml")).unwrap();
    // Appended exercises go in the last topic: folder numbers follow the order.
    let topic = if before.is_some() {
        "00_basics"
    } else {
        "01_more"
    };
    let entry = format!(
        "[[exercises]]\nname = \"{name}\"\ntopic = \"{topic}\"\nphase = \"basics\"\nhints = [\"Nudge.\"]\n\n"
    );
    let at = before.map_or(info.len(), |b| {
        info.find(&format!("[[exercises]]\nname = \"{b}\""))
            .unwrap()
    });
    let sep = if before.is_none() { "\n" } else { "" };
    std::fs::write(
        pack.join("info.toml"),
        format!("{}{sep}{entry}{}", &info[..at], &info[at..]),
    )
    .unwrap();
    let shipped = "// TODO: make it pass\nfn main() {}\n#[test]\nfn t() { assert_eq!(1 + 1, 3, \"expected 3\"); }\n";
    let rel = format!("{topic}/{name}.rs");
    std::fs::write(pack.join("exercises").join(&rel), shipped).unwrap();
    std::fs::write(pack.join("solutions").join(&rel), shipped).unwrap();
    shipped
}

#[test]
fn global_flags_work_before_the_subcommand() {
    let (_tmp, root) = workspace();
    let out = in_ws(&root)
        .args(["--color", "never", "list"])
        .assert()
        .success();
    assert!(text(&out.get_output().stdout).contains("compile_error"));
    in_ws(&root)
        .args(["list", "--color", "never"])
        .assert()
        .success();
    // Watch flags mean nothing to `list`: a usage error that says so, not a silent no-op.
    for flag in ["--poll", "--manual"] {
        let out = in_ws(&root).args([flag, "list"]).assert().code(2);
        let err = text(&out.get_output().stderr);
        assert!(err.contains("only apply to watch mode"), "{err}");
    }
    let out = in_ws(&root)
        .args(["--poll", "watch", "--manual"])
        .assert()
        .code(2);
    assert!(text(&out.get_output().stderr).contains("cannot be used together"));
}

#[test]
fn a_state_file_from_a_newer_backlings_is_refused_and_left_as_it_is() {
    let (_tmp, root) = workspace();
    let path = root.join(".backlings/state.toml");
    let newer = "format_version = 2\ncurrent = \"failing_test\"\n\n[exercises.compile_error]\nstatus = \"done\"\nstreak = 3\n";
    std::fs::write(&path, newer).unwrap();
    for args in [&["list"][..], &["hint"], &["run"]] {
        let out = in_ws(&root).args(args).assert().code(1);
        let err = text(&out.get_output().stderr);
        assert!(
            err.contains("newer backlings") && err.contains("format 2"),
            "{args:?}: {err}"
        );
        assert!(err.contains("upgrade backlings"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), newer);
    let names: Vec<String> = std::fs::read_dir(root.join(".backlings"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("corrupt")),
        "nothing is moved aside: {names:?}"
    );
}

#[test]
fn an_unknown_status_keeps_every_other_entry() {
    let (_tmp, root) = workspace();
    let path = root.join(".backlings/state.toml");
    std::fs::write(
        &path,
        "format_version = 1\ncurrent = \"failing_test\"\n\n\
         [exercises.compile_error]\nstatus = \"done\"\nruns = 4\n\n\
         [exercises.failing_test]\nstatus = \"skipped\"\nruns = 2\nhints_seen = 1\n",
    )
    .unwrap();
    let out = in_ws(&root).args(["list", "--json"]).assert().success();
    assert!(text(&out.get_output().stderr).is_empty());
    let list: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(list["done"], 1, "{list}");
    assert_eq!(list["current"], "failing_test");
    in_ws(&root).arg("hint").assert().success();
    let state = state(&root);
    assert_eq!(
        state["exercises"]["compile_error"]["runs"].as_integer(),
        Some(4)
    );
    let odd = &state["exercises"]["failing_test"];
    assert_eq!(odd["status"].as_str(), Some("pending"), "{state}");
    assert_eq!(odd["runs"].as_integer(), Some(2), "{state}");
    assert_eq!(odd["hints_seen"].as_integer(), Some(1), "{state}");
}

#[test]
fn suggestions_are_close_names_and_empty_input_gets_none() {
    let (_tmp, root) = workspace();
    let out = in_ws(&root).args(["reset", "", "--yes"]).assert().code(1);
    let err = text(&out.get_output().stderr);
    assert!(
        !err.contains("did you mean") && err.contains("backlings list"),
        "{err}"
    );
    let out = in_ws(&root)
        .args(["reset", "compile_eror", "--yes"])
        .assert()
        .code(1);
    let err = text(&out.get_output().stderr);
    assert!(err.contains("did you mean compile_error?"), "{err}");
}

#[test]
fn verify_rejects_zero_jobs() {
    let out = bin().args(["verify", "--jobs", "0"]).assert().code(2);
    assert!(text(&out.get_output().stderr).contains("at least 1"));
}

#[test]
fn run_on_a_read_only_state_folder_prints_the_verdict_then_a_warning() {
    let (_tmp, root) = workspace();
    let dot = root.join(".backlings");
    let out = with_read_only(&root, &dot, &["run"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("compile_error: compile error"), "{stdout}");
    assert!(
        stderr.contains("progress could not be saved") && stderr.contains(".backlings/state"),
        "{stderr}"
    );
    solve(&root, "00_basics/compile_error.rs");
    let out = with_read_only(&root, &dot, &["run"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "a pass stays a pass: {stdout}{stderr}"
    );
    assert!(stdout.contains("compile_error passed"), "{stdout}");
    assert!(stderr.contains("progress could not be saved"), "{stderr}");
}

#[test]
fn hint_in_a_read_only_workspace_shows_the_hint_and_exits_0() {
    let (_tmp, root) = workspace();
    let out = with_read_only(&root, &root, &["hint"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("Hint 1/3 (nudge)"), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "one line of warning:\n{stderr}");
    assert!(stderr.contains("hint level could not be saved"), "{stderr}");
}

#[test]
fn a_workspace_keeps_working_when_its_pack_folder_moves() {
    let (tmp, pack, root) = workspace_of_own_pack();
    std::fs::rename(&pack, tmp.path().join("moved")).unwrap();
    in_ws(&root).arg("list").assert().success();
    in_ws(&root).arg("hint").assert().success();
    let out = in_ws(&root).arg("run").assert().code(1);
    assert!(text(&out.get_output().stdout).contains("compile_error: compile error"));
    let file = root.join("exercises/00_basics/compile_error.rs");
    let pristine = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, "// mine\n").unwrap();
    in_ws(&root)
        .args(["reset", "compile_error", "--yes"])
        .assert()
        .success();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), pristine);
    solve(&root, "00_basics/compile_error.rs");
    in_ws(&root).arg("run").assert().success();
    in_ws(&root)
        .args(["solution", "compile_error"])
        .assert()
        .success();
}

#[test]
fn init_recommends_rust_analyzer_to_vs_code() {
    let (_tmp, root) = workspace();
    let text = std::fs::read_to_string(root.join(".vscode/extensions.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["recommendations"][0], "rust-lang.rust-analyzer");
}

#[test]
fn a_symlink_out_of_the_pack_is_refused_by_init_and_dev_check() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = tmp.path().join("pack");
    copy_dir(&fixture("basic"), &pack);
    let secret = tmp.path().join("secret.rs");
    std::fs::write(&secret, "// SECRET outside the pack\nfn main() {}\n").unwrap();
    let sol = pack.join("solutions/00_basics/failing_test.rs");
    std::fs::remove_file(&sol).unwrap();
    std::os::unix::fs::symlink(&secret, &sol).unwrap();
    let out = bin().args(["dev", "check"]).arg(&pack).assert().code(1);
    let all = text(&out.get_output().stdout) + &text(&out.get_output().stderr);
    assert!(
        all.contains("solutions/00_basics/failing_test.rs") && all.contains("outside the pack"),
        "{all}"
    );
    assert!(!all.contains("SECRET"), "{all}");
    let ws = tmp.path().join("ws");
    let out = bin()
        .args(["init", "--no-watch", "--pack"])
        .arg(&pack)
        .arg(&ws)
        .assert()
        .code(1);
    assert!(text(&out.get_output().stderr).contains("outside the pack"));
    assert!(!ws.exists(), "nothing was written");
}

#[test]
fn an_exercise_named_like_a_cargo_build_folder_is_refused_with_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = tmp.path().join("pack");
    copy_dir(&fixture("basic"), &pack);
    let info = std::fs::read_to_string(pack.join("info.toml")).unwrap();
    std::fs::write(
        pack.join("info.toml"),
        info.replacen("name = \"failing_test\"", "name = \"deps\"", 1),
    )
    .unwrap();
    for args in [&["dev", "check"][..], &["init", "--no-watch", "--pack"]] {
        let mut cmd = bin();
        cmd.args(args).arg(&pack);
        if args[0] == "init" {
            cmd.arg(tmp.path().join("ws"));
        }
        let out = cmd.assert().code(1);
        let err = text(&out.get_output().stderr);
        assert!(
            err.contains("info.toml:17:8") && err.contains("\"deps\"") && err.contains("cargo"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn solution_diff_needs_no_diff_binary() {
    let (_tmp, root) = workspace();
    solve(&root, "00_basics/compile_error.rs");
    in_ws(&root).arg("run").assert().success();
    std::fs::write(
        root.join("exercises/00_basics/compile_error.rs"),
        std::fs::read_to_string(fixture("basic").join("solutions/00_basics/compile_error.rs"))
            .unwrap()
            .replace("42", "41 + 1"),
    )
    .unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = in_ws(&root)
        .env("PATH", empty.path())
        .args(["--color", "never", "solution", "compile_error", "--diff"])
        .assert()
        .success();
    let stdout = text(&out.get_output().stdout);
    assert!(
        stdout.starts_with("--- yours\n+++ solution\n@@"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-") && stdout.contains("41 + 1"),
        "{stdout}"
    );
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = bin().args(["completions", shell]).assert().success();
        let script = text(&out.get_output().stdout);
        assert!(
            script.contains("backlings") && script.contains("verify"),
            "{shell}"
        );
    }
    bin().args(["completions", "cmd"]).assert().code(2);
}

#[test]
fn verify_on_a_read_only_state_folder_prints_the_summary_then_a_warning() {
    let (_tmp, root) = workspace();
    solve(&root, "00_basics/compile_error.rs");
    let out = with_read_only(
        &root,
        &root.join(".backlings"),
        &["verify", "compile_error", "failing_test"],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("1/2 exercises pass"), "{stdout}");
    assert!(stderr.contains("progress could not be saved"), "{stderr}");
}
