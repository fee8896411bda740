//! The hot path's memory: the exact rustc command cargo ran for an exercise's test target,
//! recorded while cargo builds it, and the key that says whether it still holds.
//!
//! Capture: every test-mode cargo build of the learner workspace names the backlings binary
//! as cargo's `RUSTC_WORKSPACE_WRAPPER` (the exercises package only; dependencies are never
//! wrapped) and sets `BACKLINGS_CAPTURE_DIR`. In that role backlings writes the rustc path,
//! arguments and cargo's environment of each bin's test compile to
//! `.backlings/hot/incoming/ARTIFACT.json`, then execs rustc. After the build the runner
//! commits the record of the artifact cargo reports with its key (`.backlings/hot/CRATE.json`).
//!
//! Key: the captured command holds while Cargo.toml (dependencies, profile), Cargo.lock, the
//! toolchain (the rustc binary's identity, `rust-toolchain` files, rustup's settings), cargo's
//! config files and the environment that steers cargo and rustc (`CARGO*`, `RUSTC*`,
//! `RUSTFLAGS`, `RUSTUP*`, and the cargo and rustc on `PATH`) are what they were at capture. `rustc -vV` is recorded
//! with it. Anything else is stale, and the build goes through cargo, which recaptures.
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// Set on cargo by the runner: where the wrapper writes what it captures.
pub const DIR_VAR: &str = "BACKLINGS_CAPTURE_DIR";
/// `BACKLINGS_BUILD=cargo` keeps every build on the cargo path.
pub const BUILD_VAR: &str = "BACKLINGS_BUILD";
/// Where captured commands live, inside the workspace.
pub const HOT_DIR: &str = ".backlings/hot";
/// Bumped when the record's meaning changes: older records are then stale.
const FORMAT: u32 = 2;

/// What the wrapper saw: one rustc invocation, as cargo made it.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct Invocation {
    pub rustc: String,
    pub args: Vec<String>,
    /// What cargo (and rustup) add to rustc's environment; the rest is the runner's own.
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
}

/// A committed capture: the invocation and the key it holds under.
#[derive(Serialize, Deserialize, Debug)]
pub struct Captured {
    format: u32,
    pub invocation: Invocation,
    /// The rustc to call directly: the toolchain's own binary, never the rustup proxy.
    pub rustc: PathBuf,
    /// `rustc -vV` of that rustc, at capture.
    pub version: String,
    /// The toolchain's target library folder (`libstd-*.so`), for `-C prefer-dynamic`.
    pub libdir: Option<PathBuf>,
    pub key: Key,
    /// How many times this bin's command was captured (tests watch it change).
    pub generation: u64,
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Clone, Debug, Default)]
pub struct Key {
    manifest: u64,
    lock: u64,
    toolchain: u64,
    config: u64,
    env: u64,
}

impl Key {
    /// The key of the workspace at `root` now, for a command that calls `rustc`.
    pub fn now(root: &Path, rustc: &Path) -> Key {
        Key {
            manifest: hash_file(&root.join("Cargo.toml")),
            lock: hash_file(&root.join("Cargo.lock")),
            toolchain: toolchain_stamp(rustc),
            config: config_files(root),
            env: steering_env(),
        }
    }

    /// Why `self` (the capture's key) no longer holds against `now`, if it does not.
    pub fn differs(&self, now: &Key) -> Option<&'static str> {
        if self.manifest != now.manifest {
            Some("Cargo.toml (dependencies or profile) changed")
        } else if self.lock != now.lock {
            Some("Cargo.lock changed")
        } else if self.toolchain != now.toolchain {
            Some("the Rust toolchain changed")
        } else if self.config != now.config {
            Some("a cargo config or rust-toolchain file changed")
        } else if self.env != now.env {
            Some(
                "the build environment (CARGO*, RUSTC*, RUSTFLAGS, RUSTUP*, or the cargo or rustc on PATH) changed",
            )
        } else {
            None
        }
    }
}

/// Whether the runner may capture and skip cargo: not when the learner forces the cargo
/// path, nor when a wrapper of their own (sccache, say) is already in cargo's way.
pub fn enabled() -> Result<(), &'static str> {
    if std::env::var(BUILD_VAR).is_ok_and(|v| v.eq_ignore_ascii_case("cargo")) {
        return Err("BACKLINGS_BUILD=cargo");
    }
    for var in ["RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER"] {
        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
            return Err(if var == "RUSTC_WRAPPER" {
                "RUSTC_WRAPPER is set"
            } else {
                "RUSTC_WORKSPACE_WRAPPER is set"
            });
        }
    }
    Ok(())
}

pub fn crate_name(bin: &str) -> String {
    bin.replace('-', "_")
}

fn incoming_dir(root: &Path) -> PathBuf {
    root.join(HOT_DIR).join("incoming")
}

fn capture_path(root: &Path, crate_name: &str) -> PathBuf {
    root.join(HOT_DIR).join(format!("{crate_name}.json"))
}

/// The folder the runner owns for a bin's direct builds: output and incremental state.
pub fn build_dir(root: &Path, crate_name: &str) -> PathBuf {
    root.join("target").join("backlings").join(crate_name)
}

/// The environment a capturing cargo build needs, or none when capture is off.
pub fn cargo_env(root: &Path) -> Option<[(&'static str, OsString); 2]> {
    enabled().ok()?;
    // A binary replaced while running (an upgrade) cannot be cargo's wrapper any more.
    let exe = std::env::current_exe().ok().filter(|e| e.is_file())?;
    Some([
        ("RUSTC_WORKSPACE_WRAPPER", exe.into_os_string()),
        (DIR_VAR, incoming_dir(root).into_os_string()),
    ])
}

/// What backlings does when cargo runs it as a rustc wrapper: record a bin's test compile,
/// then become rustc. `None` when this process is not a wrapper.
pub fn wrapper_main() -> Option<i32> {
    use std::os::unix::process::CommandExt;
    let dir = std::env::var_os(DIR_VAR)?;
    let mut argv = std::env::args_os().skip(1);
    let Some(rustc) = argv.next() else {
        eprintln!("backlings: {DIR_VAR} is set, but no rustc to wrap was given");
        return Some(2);
    };
    let args: Vec<OsString> = argv.collect();
    if let Some((name, inv)) = record(&rustc, &args) {
        // A record that cannot be written only costs the next save its shortcut.
        // By artifact, for `commit` to find what cargo reports built (fresh or not), and as
        // the crate's latest, for a compile that failed.
        let dir = Path::new(&dir);
        if let Some(extra) = extra_filename(&inv.args) {
            write_cache(&dir.join(format!("{name}{extra}.json")), &inv);
        }
        write_cache(&dir.join(format!("{name}.json")), &inv);
    }
    let err = Command::new(&rustc)
        .args(&args)
        .env_remove(DIR_VAR)
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .exec();
    eprintln!("backlings: cannot run {}: {err}", rustc.to_string_lossy());
    Some(127)
}

/// The record of a bin's test compile (`--test`, `--crate-name`, `--out-dir`); nothing for
/// cargo's other calls (`-vV`, target queries) or arguments that are not UTF-8.
fn record(rustc: &OsString, args: &[OsString]) -> Option<(String, Invocation)> {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_str().map(str::to_string))
        .collect::<Option<_>>()?;
    let name = args
        .iter()
        .position(|a| a == "--crate-name")
        .and_then(|i| args.get(i + 1))?
        .clone();
    if !args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--out-dir") {
        return None;
    }
    let env = std::env::vars()
        .filter(|(k, _)| {
            (k.starts_with("CARGO") && k != "CARGO_MAKEFLAGS")
                || matches!(
                    k.as_str(),
                    "LD_LIBRARY_PATH"
                        | "DYLD_FALLBACK_LIBRARY_PATH"
                        | "RUSTUP_TOOLCHAIN"
                        | "RUSTUP_HOME"
                )
        })
        .collect();
    let inv = Invocation {
        rustc: rustc.to_str()?.to_string(),
        args,
        env,
        cwd: std::env::current_dir().ok()?,
    };
    Some((name, inv))
}

/// After a capturing cargo build that started at `started`: commits, for each of `bins`,
/// the command that produced what cargo has now, under the key of the workspace as it is
/// now. For a bin cargo built (`executables`), that is the record of that very artifact
/// (crate name and `-C extra-filename`), whether cargo compiled it just now or found it
/// fresh: the wrapper records every compile of the workspace's test targets, and a compile
/// without it (the learner's own `cargo test`) makes an artifact of another name. For a bin
/// that failed to compile, the crate's latest record, if this build wrote it.
pub fn commit(
    root: &Path,
    bins: &[String],
    executables: &HashMap<String, PathBuf>,
    started: SystemTime,
) {
    let mut versions: BTreeMap<String, Resolved> = BTreeMap::new();
    let mut keys: BTreeMap<PathBuf, Key> = BTreeMap::new();
    for bin in bins {
        let name = crate_name(bin);
        let old = load(root, &name);
        let record_path = match executables.get(bin).and_then(|e| e.file_name()) {
            Some(artifact) => {
                incoming_dir(root).join(format!("{}.json", artifact.to_string_lossy()))
            }
            None => {
                let latest = incoming_dir(root).join(format!("{name}.json"));
                let this_build = std::fs::metadata(&latest)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t >= started);
                if !this_build {
                    continue;
                }
                latest
            }
        };
        let Some(inv) = std::fs::read(&record_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Invocation>(&b).ok())
        else {
            // Nothing known about what cargo built: the old command may be another's.
            forget(root, &name, "cargo built it without a recorded command");
            continue;
        };
        let Resolved {
            rustc,
            version,
            libdir,
        } = match (&old, versions.get(&inv.rustc)) {
            (_, Some(v)) => v.clone(),
            (Some(o), None)
                if o.invocation.rustc == inv.rustc
                    && o.key.toolchain == toolchain_stamp(&o.rustc) =>
            {
                Resolved {
                    rustc: o.rustc.clone(),
                    version: o.version.clone(),
                    libdir: o.libdir.clone(),
                }
            }
            _ => {
                let Some(v) = resolve_rustc(&inv) else {
                    continue;
                };
                versions.insert(inv.rustc.clone(), v.clone());
                v
            }
        };
        // One key per rustc for the whole batch: `verify` commits every exercise at once.
        let key = keys
            .entry(rustc.clone())
            .or_insert_with(|| Key::now(root, &rustc))
            .clone();
        if let Some(o) = &old
            && o.invocation == inv
            && o.key == key
        {
            continue;
        }
        if old.as_ref().is_none_or(|o| o.invocation != inv) {
            // New flags: the incremental state of the old ones is of no use.
            let _ = std::fs::remove_dir_all(build_dir(root, &name));
        }
        let captured = Captured {
            format: FORMAT,
            key,
            rustc,
            version,
            libdir,
            invocation: inv,
            generation: old.map_or(1, |o| o.generation + 1),
        };
        write_cache(&capture_path(root, &name), &captured);
    }
}

/// Writes a record by temp file and rename, without fsync: a record lost in a crash only
/// costs one build through cargo, where an fsync per bin would cost every cold `verify`.
fn write_cache(path: &Path, value: &impl Serialize) {
    use std::io::Write;
    let Some(dir) = path.parent() else { return };
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".backlings-tmp-")
            .tempfile_in(dir)?;
        tmp.write_all(&serde_json::to_vec_pretty(value)?)?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    };
    let _ = write();
}

#[derive(Clone)]
struct Resolved {
    rustc: PathBuf,
    version: String,
    libdir: Option<PathBuf>,
}

/// The toolchain's own rustc (cargo usually names it already; a rustup proxy is looked
/// through via `--print sysroot`), its `rustc -vV` and its target library folder.
fn resolve_rustc(inv: &Invocation) -> Option<Resolved> {
    let run = |args: &[&str]| -> Option<String> {
        let out = Command::new(&inv.rustc)
            .args(args)
            .envs(&inv.env)
            .current_dir(&inv.cwd)
            .stdin(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let version = run(&["-vV"])?;
    let printed = run(&["--print", "sysroot", "--print", "target-libdir"])?;
    let mut lines = printed.lines();
    let (sysroot, libdir) = (lines.next()?, lines.next().map(PathBuf::from));
    let named = PathBuf::from(&inv.rustc);
    let rustc = if is_rustup_proxy(&named) {
        let real = Path::new(sysroot.trim()).join("bin").join("rustc");
        real.is_file().then_some(real)?
    } else {
        named
    };
    Some(Resolved {
        rustc,
        version,
        libdir: libdir.filter(|d| d.is_dir()),
    })
}

/// Whether `path` is rustup's proxy: a link to the `rustup` binary next to it.
fn is_rustup_proxy(path: &Path) -> bool {
    let resolved = which::which(path).unwrap_or_else(|_| path.to_path_buf());
    if std::fs::canonicalize(&resolved)
        .ok()
        .and_then(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().starts_with("rustup"))
        })
        .unwrap_or(false)
    {
        return true;
    }
    let (Ok(a), Some(dir)) = (std::fs::metadata(&resolved), resolved.parent()) else {
        return false;
    };
    std::fs::metadata(dir.join("rustup")).is_ok_and(|b| a.dev() == b.dev() && a.ino() == b.ino())
}

/// The value of `-C extra-filename=`, in either spelling: with the crate name, it names the
/// artifact.
pub fn extra_filename(args: &[String]) -> Option<&str> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let opt = if a == "-C" {
            it.next().map(String::as_str)
        } else {
            a.strip_prefix("-C")
        };
        if let Some(v) = opt.and_then(|o| o.strip_prefix("extra-filename=")) {
            return Some(v);
        }
    }
    None
}

fn fallback_path(root: &Path, crate_name: &str) -> PathBuf {
    root.join(HOT_DIR).join(format!("{crate_name}.fallback"))
}

/// The committed capture of a crate, if there is one this backlings can read.
pub fn load(root: &Path, crate_name: &str) -> Option<Captured> {
    let bytes = std::fs::read(capture_path(root, crate_name)).ok()?;
    let c: Captured = serde_json::from_slice(&bytes).ok()?;
    (c.format == FORMAT).then_some(c)
}

/// Forgets a crate's capture, noting why (`backlings doctor` shows it): the next build goes
/// through cargo and captures again.
pub fn forget(root: &Path, crate_name: &str, why: &str) {
    let _ = std::fs::remove_file(capture_path(root, crate_name));
    let _ = std::fs::write(fallback_path(root, crate_name), format!("{why}\n"));
}

/// Why the direct build of a crate last went back to cargo, if it ever did.
pub fn last_fallback(root: &Path, crate_name: &str) -> Option<String> {
    Some(
        std::fs::read_to_string(fallback_path(root, crate_name))
            .ok()?
            .trim()
            .to_string(),
    )
}

/// The capture of `bin` if its key still holds, else why not.
pub fn current(root: &Path, bin: &str) -> Result<Captured, String> {
    enabled().map_err(str::to_string)?;
    let c = load(root, &crate_name(bin)).ok_or("no command captured yet")?;
    match c.key.differs(&Key::now(root, &c.rustc)) {
        Some(why) => Err(why.to_string()),
        None => Ok(c),
    }
}

/// Every committed capture in the workspace: (crate name, the capture or why it is stale).
pub fn all(root: &Path) -> Vec<(String, Result<Captured, String>)> {
    let Ok(dir) = std::fs::read_dir(root.join(HOT_DIR)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".json").map(str::to_string)
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let r = current(root, &n);
            (n, r)
        })
        .collect()
}

fn hash_bytes(bytes: Option<&[u8]>) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

fn hash_file(path: &Path) -> u64 {
    hash_bytes(std::fs::read(path).ok().as_deref())
}

/// The rustc binary's identity: an update or a different toolchain changes it.
fn toolchain_stamp(rustc: &Path) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    rustc.hash(&mut h);
    if let Ok(m) = std::fs::metadata(rustc) {
        (m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec()).hash(&mut h);
    }
    h.finish()
}

/// The files that choose the toolchain or change cargo's flags: `rust-toolchain(.toml)` and
/// `.cargo/config(.toml)` in the workspace and every folder above it, cargo's home config,
/// and rustup's settings (the default toolchain, directory overrides).
fn config_files(root: &Path) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".cargo")));
    let rustup_home = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".rustup")));
    let mut files = Vec::new();
    for dir in root.ancestors() {
        for f in [
            "rust-toolchain",
            "rust-toolchain.toml",
            ".cargo/config",
            ".cargo/config.toml",
        ] {
            files.push(dir.join(f));
        }
    }
    if let Some(c) = cargo_home {
        files.push(c.join("config"));
        files.push(c.join("config.toml"));
    }
    if let Some(r) = rustup_home {
        files.push(r.join("settings.toml"));
    }
    for f in files {
        hash_file(&f).hash(&mut h);
    }
    h.finish()
}

/// The part of the runner's environment that steers cargo and rustc.
fn steering_env() -> u64 {
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| {
            let k = k.to_string_lossy();
            (k.starts_with("CARGO")
                || k.starts_with("RUSTC")
                || k.starts_with("RUSTUP")
                || k == "RUSTFLAGS")
                && !k.starts_with("CARGO_TERM_")
                && k != "CARGO_MAKEFLAGS"
        })
        .collect();
    vars.sort();
    let mut h = std::hash::DefaultHasher::new();
    vars.hash(&mut h);
    // PATH matters only through the cargo and rustc it finds (pyenv, nvm and direnv change
    // it all the time).
    for tool in ["cargo", "rustc"] {
        which::which(tool).ok().hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn only_a_bins_test_compile_is_recorded() {
        let rustc = OsString::from("/tc/bin/rustc");
        assert!(record(&rustc, &os(&["-vV"])).is_none());
        let probe = os(&["-", "--crate-name", "___", "--print=file-names"]);
        assert!(record(&rustc, &probe).is_none());
        let lib = os(&["--crate-name", "dep", "--out-dir", "/t/deps"]);
        assert!(record(&rustc, &lib).is_none(), "not a test target");
        let test = os(&["--crate-name", "ex1", "--test", "--out-dir", "/t/deps"]);
        let (name, inv) = record(&rustc, &test).unwrap();
        assert_eq!(name, "ex1");
        assert_eq!(inv.rustc, "/tc/bin/rustc");
        assert!(!inv.env.contains_key("CARGO_MAKEFLAGS"));
    }

    #[test]
    fn the_artifact_suffix_is_read_in_both_spellings() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let split = args(&["-C", "metadata=1", "-C", "extra-filename=-abc"]);
        assert_eq!(extra_filename(&split), Some("-abc"));
        let joined = args(&["-Cextra-filename=-def", "--test"]);
        assert_eq!(extra_filename(&joined), Some("-def"));
        assert_eq!(extra_filename(&args(&["--test"])), None);
    }

    #[test]
    fn a_key_names_what_changed() {
        let k = Key::default();
        assert_eq!(k.differs(&k.clone()), None);
        let lock = Key {
            lock: 1,
            ..Key::default()
        };
        assert_eq!(k.differs(&lock), Some("Cargo.lock changed"));
        let tc = Key {
            toolchain: 1,
            ..Key::default()
        };
        assert_eq!(k.differs(&tc), Some("the Rust toolchain changed"));
    }
}
