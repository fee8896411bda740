//! Embeds the curriculum pack (info.toml, the dependency set, pristine exercises and
//! solutions) into the binary, so that a learner needs nothing but `backlings`.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let mut files = Vec::new();
    for top in ["info.toml", "deps.toml", "deps.lock"] {
        let p = root.join(top);
        println!("cargo:rerun-if-changed={}", p.display());
        if p.is_file() {
            files.push((top.to_string(), p));
        }
    }
    for dir in ["exercises", "solutions"] {
        let d = root.join(dir);
        println!("cargo:rerun-if-changed={}", d.display());
        collect(&root, &d, &mut files);
    }
    files.sort();
    let mut out = String::from("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (rel, abs) in &files {
        writeln!(
            out,
            "    ({rel:?}, include_bytes!({:?})),",
            abs.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("embedded.rs");
    std::fs::write(dest, out).unwrap();
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(root, &p, files);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            files.push((rel, p));
        }
    }
}
