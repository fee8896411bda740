//! `backlings init`: writes a learner workspace and builds its dependencies once.
use super::{DIR, MARKER, PACK_COPY, Workspace, WorkspaceFile, manifest};
use crate::error::{Context, Error, Result};
use crate::exec::{cargo, process::Cancel};
use crate::fsutil::write_atomic;
use crate::pack::Pack;
use crate::term::Term;
use std::collections::HashSet;
use std::path::Path;

pub fn create(dir: &Path, pack: Pack) -> Result<Workspace> {
    if dir.exists() {
        let non_empty = std::fs::read_dir(dir)
            .context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some();
        if non_empty || !dir.is_dir() {
            return Err(Error::new(format!("{} already exists and is not empty", dir.display()))
                .help("choose a new folder: `backlings init NEW_FOLDER`, or `cd` into an existing workspace and run `backlings`"));
        }
    }
    std::fs::create_dir_all(dir.join(DIR))
        .context(|| format!("cannot create {}", dir.display()))?;
    let root = dir
        .canonicalize()
        .context(|| format!("cannot resolve {}", dir.display()))?;
    let write = |rel: &str, bytes: &[u8]| {
        write_atomic(&root.join(rel), bytes)
            .context(|| format!("cannot write {}", root.join(rel).display()))
    };

    for ex in &pack.info.exercises {
        write(&ex.path(), &pack.pristine(ex)?)?;
    }
    write("Cargo.toml", manifest::generate(&pack, &root).as_bytes())?;
    if let Some(lock) = pack.deps_lock() {
        write("Cargo.lock", &lock)?;
    }
    write(".gitignore", b"/target\n")?;
    // rust-analyzer is what makes every exercise file light up in VS Code.
    write(
        ".vscode/extensions.json",
        b"{\n  \"recommendations\": [\"rust-lang.rust-analyzer\"]\n}\n",
    )?;
    if pack.dir().is_some() {
        pack.copy_to(&root.join(PACK_COPY))?;
    }
    let file = WorkspaceFile {
        pack: pack.dir().map(Path::to_path_buf),
    };
    write(
        MARKER,
        toml::to_string(&file).expect("serializes").as_bytes(),
    )?;
    Ok(Workspace { root, pack })
}

/// Builds every dependency of the exercises once, with a progress bar that counts crates, so
/// that no exercise waits for tokio or SQLite to compile.
pub fn build_dependencies(ws: &Workspace, term: &Term) -> Result<()> {
    let first = &ws.pack.info.exercises[0];
    let total = count_dependencies(&ws.root);
    let bar = term.progress_bar(total as u64, "Building the exercises' dependencies (once)");
    let mut seen = HashSet::new();
    let req = cargo::Request {
        root: &ws.root,
        bins: std::slice::from_ref(&first.name),
        mode: cargo::Mode::Test,
        color: false,
        locked: false,
        target_dir: None,
        capture: true,
        // The servers' client crates are built only when an exercise needs them.
        features: &[],
    };
    let started = std::time::SystemTime::now();
    let built = cargo::build(&req, &Cancel::default(), |id| {
        if seen.insert(id.to_string()) {
            bar.inc(1);
        }
    })?;
    bar.finish_and_clear();
    crate::exec::capture::commit(
        &ws.root,
        std::slice::from_ref(&first.name),
        &built.executables,
        started,
    );
    // The first exercise fails to compile as shipped; only a failure without compiler
    // diagnostics (network, toolchain) means the dependencies did not build.
    if !built.success
        && !built.diagnostics.contains_key(&first.name)
        && !built.executables.contains_key(&first.name)
    {
        return Err(Error::new(format!(
            "the dependencies did not build:\n{}",
            built.stderr.trim_end()
        ))
        .help("fix what cargo says above, then run `backlings` in the workspace to try again"));
    }
    term.line(&format!("Built {} crates.", seen.len()));
    Ok(())
}

/// How many packages a test build compiles, from `cargo tree`; an estimate for the bar.
fn count_dependencies(root: &Path) -> usize {
    let out = std::process::Command::new("cargo")
        .args([
            "tree",
            "-q",
            "-e",
            "normal,build,dev",
            "--prefix",
            "none",
            "--target",
            "host",
        ])
        .current_dir(root)
        .output();
    let Ok(out) = out else { return 0 };
    let text = String::from_utf8_lossy(&out.stdout);
    let unique: HashSet<&str> = text
        .lines()
        .map(|l| l.trim_end_matches(" (*)").trim())
        .filter(|l| !l.is_empty())
        .collect();
    unique.len()
}
