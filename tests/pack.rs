//! The repo's own curriculum must pass `backlings dev check`: every exercise fails as shipped,
//! every solution passes and is clean, every mutant fails the test it names, and (where
//! cargo-mutants is installed, which CI requires) every generated mutant is caught or
//! accepted with a reason. This builds every variant, so it takes minutes on a cold cache.
mod common;

#[test]
fn the_curriculum_passes_dev_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let generated = std::process::Command::new("cargo")
        .args(["mutants", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !generated {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install cargo-mutants (see .ci/run)"
        );
        eprintln!(
            "note: cargo-mutants is not installed, so the generated mutants are not checked \
             (cargo install --locked cargo-mutants --version 27.1.0)"
        );
    }
    let mut cmd = common::bin();
    cmd.args(["dev", "check"]);
    if generated {
        cmd.arg("--generated");
    }
    let out = cmd.arg(root).output().unwrap();
    let text = common::text(&out.stdout) + &common::text(&out.stderr);
    assert!(
        out.status.success(),
        "dev check failed on the repo's pack:\n{text}"
    );
    // The table of generated mutants, for the log.
    println!("{text}");
}
