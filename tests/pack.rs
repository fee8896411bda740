//! The repo's own curriculum must pass `backlings dev check`: every exercise fails as shipped,
//! every solution passes and is clean, every mutant fails. This builds every variant, so it
//! takes minutes on a cold cache.
mod common;

#[test]
fn the_curriculum_passes_dev_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = common::bin()
        .args(["dev", "check"])
        .arg(root)
        .output()
        .unwrap();
    let text = common::text(&out.stdout) + &common::text(&out.stderr);
    assert!(
        out.status.success(),
        "dev check failed on the repo's pack:\n{text}"
    );
}
