//! The hot path (PRODUCT.md §6): after one cargo build of an exercise, later builds call the
//! rustc command cargo used, with incremental compilation. These tests drive the real binary
//! and tell the paths apart by their output folder: a direct build writes
//! `target/backlings/CRATE/out`, a cargo build never does.
mod common;
use common::{in_ws, solve, text, workspace};
use std::path::{Path, PathBuf};

const EX: &str = "compile_error";
const FILE: &str = "00_basics/compile_error.rs";

fn direct_out(root: &Path) -> PathBuf {
    root.join("target/backlings").join(EX).join("out")
}

fn captured(root: &Path) -> serde_json::Value {
    let path = root.join(".backlings/hot").join(format!("{EX}.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn generation(root: &Path) -> u64 {
    captured(root)["generation"].as_u64().unwrap()
}

/// `backlings run EX` with `env`, which must reach `code`; returns stdout and whether the
/// build was direct (the direct output folder was written, after being removed first).
fn run(root: &Path, env: &[(&str, &str)], code: i32) -> (String, bool) {
    let _ = std::fs::remove_dir_all(root.join("target/backlings"));
    let mut cmd = in_ws(root);
    cmd.args(["run", EX]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.assert().code(code);
    let stdout = text(&out.get_output().stdout);
    (stdout, direct_out(root).is_dir())
}

/// A source edit that changes no meaning: what a learner's save often is.
fn touch_comment(root: &Path, n: u32) {
    let path = root.join("exercises").join(FILE);
    let src = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("// edit {n}\n{src}")).unwrap();
}

#[test]
fn init_captures_the_first_exercise_and_a_compile_error_reads_the_same_on_both_paths() {
    let (_tmp, root) = workspace();
    assert_eq!(generation(&root), 1, "init's build captured the command");
    let (by_cargo, direct) = run(&root, &[("BACKLINGS_BUILD", "cargo")], 1);
    assert!(!direct, "BACKLINGS_BUILD=cargo keeps cargo's path");
    let (by_rustc, direct) = run(&root, &[], 1);
    assert!(direct, "the captured command was used");
    assert!(by_rustc.contains("mismatched types"), "{by_rustc}");
    assert_eq!(by_rustc, by_cargo, "the same rendering on both paths");

    // With colour, too: cargo asks rustc for colour and strips it when not wanted.
    let colour = |env: &[(&str, &str)]| {
        let mut cmd = in_ws(&root);
        cmd.args(["run", EX, "--color", "always"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        text(&cmd.assert().code(1).get_output().stdout)
    };
    let a = colour(&[("BACKLINGS_BUILD", "cargo")]);
    let b = colour(&[]);
    assert!(a.contains("\x1b["), "colour was asked for: {a:?}");
    assert_eq!(a, b);

    // A pass, then the learner's own cargo still builds and tests the exercise.
    solve(&root, FILE);
    let (out, direct) = run(&root, &[], 0);
    assert!(direct && out.contains("compile_error passed"), "{out}");
    // A build forced through cargo, of an artifact cargo names differently without the
    // wrapper, leaves the captured command alone.
    let (_, direct) = run(&root, &[("BACKLINGS_BUILD", "cargo")], 0);
    assert!(!direct);
    let (_, direct) = run(&root, &[], 0);
    assert!(direct, "still captured after a forced cargo build");
    let own = std::process::Command::new("cargo")
        .args(["test", "-q", "--bin", EX])
        .env_remove("CARGO_TARGET_DIR")
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(own.status.success(), "{}", text(&own.stderr));
    assert!(
        text(&own.stdout).contains("1 passed"),
        "{}",
        text(&own.stdout)
    );
}

#[test]
fn a_changed_lock_file_or_profile_goes_through_cargo_which_recaptures() {
    let (_tmp, root) = workspace();
    solve(&root, FILE);
    let (_, direct) = run(&root, &[], 0);
    assert!(direct);
    let before = generation(&root);

    // Cargo.lock, in a form cargo keeps (an older format version).
    let lock = root.join("Cargo.lock");
    let text_before = std::fs::read_to_string(&lock).unwrap();
    assert!(text_before.contains("\nversion = 4\n"), "{text_before}");
    std::fs::write(
        &lock,
        text_before.replace("\nversion = 4\n", "\nversion = 3\n"),
    )
    .unwrap();
    let (_, direct) = run(&root, &[], 0);
    assert!(!direct, "a changed Cargo.lock goes through cargo");
    assert_eq!(
        generation(&root),
        before + 1,
        "and the command is captured again"
    );
    let (_, direct) = run(&root, &[], 0);
    assert!(direct, "then the direct path again");

    // The profile, through cargo's own environment variable (Cargo.toml is generated).
    touch_comment(&root, 1);
    let debug = [("CARGO_PROFILE_DEV_DEBUG", "1")];
    let (_, direct) = run(&root, &debug, 0);
    assert!(!direct, "another profile goes through cargo");
    let args = captured(&root)["invocation"]["args"].to_string();
    assert!(args.contains("debuginfo=1"), "recaptured with it: {args}");
    touch_comment(&root, 2);
    let (_, direct) = run(&root, &debug, 0);
    assert!(direct, "then the direct path, with the new profile's flags");
    let (_, direct) = run(&root, &[], 0);
    assert!(!direct, "and back to the old profile through cargo");
    assert!(
        !captured(&root)["invocation"]["args"]
            .to_string()
            .contains("debuginfo=1")
    );
}

/// A rustc that reports `release` as its version, and passes everything else to the real one;
/// with `break_direct`, its direct builds (the ones with `-C incremental`) fail with E0463.
fn fake_rustc(dir: &Path, release: &str, break_direct: bool) -> PathBuf {
    let out = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .unwrap();
    let real = Path::new(text(&out.stdout).trim()).join("bin/rustc");
    let broken = if break_direct {
        r#"case "$*" in *incremental=*) printf '%s\n' '{"$message_type":"diagnostic","message":"can'"'"'t find crate for `std`","code":{"code":"E0463","explanation":null},"level":"error","spans":[],"children":[],"rendered":"error[E0463]: can'"'"'t find crate for `std`\n"}' >&2; exit 1;; esac"#
    } else {
        ""
    };
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = -vV ]; then {real} -vV | sed 's/^release: .*/release: {release}/'; exit 0; fi\n{broken}\nexec {real} \"$@\"\n",
        real = real.display()
    );
    let path = dir.join("fake-rustc");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn another_toolchain_version_goes_through_cargo_which_recaptures() {
    let (tmp, root) = workspace();
    solve(&root, FILE);
    let fake = fake_rustc(tmp.path(), "9.99.0-fake", false);
    let rustc = [("RUSTC", fake.to_str().unwrap())];
    let (_, direct) = run(&root, &rustc, 0);
    assert!(!direct, "RUSTC is part of the key");
    let c = captured(&root);
    assert!(
        c["version"].as_str().unwrap().contains("9.99.0-fake"),
        "{c}"
    );
    assert_eq!(
        c["rustc"],
        fake.to_str().unwrap(),
        "not a proxy: called as named"
    );
    touch_comment(&root, 1);
    let (_, direct) = run(&root, &rustc, 0);
    assert!(direct);

    // The same RUSTC, now another version: the binary's identity is in the key.
    std::thread::sleep(std::time::Duration::from_millis(20));
    fake_rustc(tmp.path(), "9.100.0-fake", false);
    touch_comment(&root, 2);
    let (_, direct) = run(&root, &rustc, 0);
    assert!(!direct, "a changed rustc goes through cargo");
    assert!(
        captured(&root)["version"]
            .as_str()
            .unwrap()
            .contains("9.100.0-fake")
    );
    touch_comment(&root, 3);
    let (_, direct) = run(&root, &rustc, 0);
    assert!(direct);
}

#[test]
fn an_environment_error_from_rustc_goes_through_cargo_and_is_not_the_verdict() {
    let (tmp, root) = workspace();
    solve(&root, FILE);
    let fake = fake_rustc(tmp.path(), "9.99.0-fake", true);
    let rustc = [("RUSTC", fake.to_str().unwrap())];
    let (_, direct) = run(&root, &rustc, 0);
    assert!(!direct, "captured through cargo");
    touch_comment(&root, 1);
    // The direct build fails with E0463 (a crate that cannot be found): not the learner's
    // error, so cargo builds it, and the exercise passes.
    let (out, _) = run(&root, &rustc, 0);
    assert!(out.contains("compile_error passed"), "{out}");
    let note = std::fs::read_to_string(root.join(".backlings/hot/compile_error.fallback")).unwrap();
    assert!(note.contains("E0463"), "{note}");
    let doctor = in_ws(&root)
        .env("RUSTC", &fake)
        .arg("doctor")
        .output()
        .unwrap();
    let doctor = text(&doctor.stdout);
    assert!(
        doctor.contains("went back to cargo because rustc reported E0463"),
        "{doctor}"
    );
}

#[test]
fn doctor_says_which_path_builds() {
    let (_tmp, root) = workspace();
    let out = in_ws(&root).arg("doctor").output().unwrap();
    let out = text(&out.stdout);
    assert!(out.contains("build path: direct rustc"), "{out}");
    assert!(out.contains("1 exercise builds directly"), "{out}");
    let out = in_ws(&root)
        .env("BACKLINGS_BUILD", "cargo")
        .arg("doctor")
        .output()
        .unwrap();
    let out = text(&out.stdout);
    assert!(
        out.contains("build path: cargo for every save (BACKLINGS_BUILD=cargo)"),
        "{out}"
    );
}
